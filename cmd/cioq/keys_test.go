package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/worker"
)

// keyTaskID is the documented task id of an idempotency key: "k-" and the
// first 20 bytes of HMAC-SHA256(secret, key) in lower-case base32.
func keyTaskID(secret, key string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(key))
	return "k-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m.Sum(nil)[:20]))
}

// generatedTaskID is the task id of key under the secret the deployment
// on db generated (read through a producer of the test's own).
func generatedTaskID(t *testing.T, db *testredis.DB, key string) string {
	t.Helper()
	id, err := producer.NewFromRedis(db.Client).TaskIDForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// An idempotency key made of a person identifier is the task id of no
// task: the receipt, the worker's log, `dlq list`, `dlq show` and `dlq
// export` show a keyed hash; `dlq show --payload` shows the key; `dlq show
// KEY` and `dlq retry KEY` find the dead letter by it. With CIOQ_KEY_SECRET
// the hash is under that secret, without it under the one generated in
// Redis, which every process agrees on.
func TestIdempotencyKeyStaysPrivate(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	sb := sandbox.NewTestServer(t)
	const key, person = "order:person-7731", "person-7731"
	const secret = "test-secret-0123456789abcdef0123456789"
	env := map[string]string{"REDIS_URL": db.URL(), "CIOQ_KEY_SECRET": secret, "CIOQ_LOG_FORMAT": "json"}
	noLeak := func(what, text string) {
		t.Helper()
		if strings.Contains(text, person) {
			t.Errorf("%s shows the idempotency key:\n%s", what, text)
		}
	}
	send := `{"transactional_message_id":"order_confirmation","to":"ada@example.com","identifiers":{"id":"user-7731"}}`

	// The receipt: a hash under CIOQ_KEY_SECRET, not the key.
	r := cli(t, env, send, "enqueue", "cio:send_email", "--key", key)
	if r.code != 0 {
		t.Fatalf("enqueue: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	rs := receipts(t, r.stdout)
	id := keyTaskID(secret, key)
	if len(rs) != 1 || rs[0].TaskID != id {
		t.Fatalf("receipt %+v, want task_id %s", rs, id)
	}
	noLeak("the enqueue receipt", r.stdout+r.stderr)
	if n, _ := db.Client.Exists(context.Background(), producer.KeySecretRedisKey).Result(); n != 0 {
		t.Error("with CIOQ_KEY_SECRET set, a secret was generated in Redis anyway")
	}
	// Again, from another process: a duplicate.
	if r := cli(t, env, send, "enqueue", "cio:send_email", "--key", key); r.code != 0 || !receipts(t, r.stdout)[0].Duplicate {
		t.Errorf("the same key again: exit %d, %s", r.code, r.stdout)
	}

	// The worker dead-letters it (Customer.io refuses it for good).
	sb.SetFault(sandbox.GroupApp, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"template not found"}}`})
	w := start(t, map[string]string{
		"REDIS_URL": db.URL(), "CIOQ_LOG_FORMAT": "json", "CIOQ_LOG_LEVEL": "debug",
		"CUSTOMERIO_APP_API_KEY": sandbox.DefaultAppAPIKey, "CUSTOMERIO_APP_URL": sb.AppURL(),
	}, "worker", "--admin-addr", freeAddr(t))
	w.waitStderr(`"msg":"task dead-lettered"`, 20*time.Second)
	if !strings.Contains(w.stderr.String(), id) {
		t.Errorf("the worker's log does not name the task by its id %s:\n%s", id, w.stderr.String())
	}
	if code := w.stop(20 * time.Second); code != 0 {
		t.Errorf("worker exit %d", code)
	}
	noLeak("the worker's log", w.stderr.String())

	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"show", id}, {"show", id, "--json"}, {"export"}, {"stats"}} {
		r := cli(t, env, "", append([]string{"dlq"}, args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "cio:send_email") {
			t.Errorf("dlq %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		noLeak("dlq "+strings.Join(args, " "), r.stdout+r.stderr)
	}
	// Shown where payloads are shown, and found by the key.
	r = cli(t, env, "", "dlq", "show", key, "--payload")
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "Idempotency key  "+key) {
		t.Errorf("dlq show KEY --payload: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, env, "", "dlq", "show", key, "--payload", "--json")
	var it dlqItem
	if err := json.Unmarshal([]byte(r.stdout), &it); err != nil || it.ID != id || it.IdempotencyKey != key {
		t.Errorf("dlq show KEY --payload --json: %+v, %v\n%s", it, err, r.stderr)
	}
	r = cli(t, env, "", "dlq", "show", key)
	if r.code != 0 || !strings.Contains(r.stdout, id) {
		t.Errorf("dlq show KEY: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	noLeak("dlq show KEY (no --payload)", r.stdout)
	// Without the secret the key hashes to another id: not found.
	noSecret := map[string]string{"REDIS_URL": db.URL()}
	if r := cli(t, noSecret, "", "dlq", "show", key); r.code != 1 {
		t.Errorf("dlq show KEY without the secret: exit %d\n%s", r.code, r.stdout)
	}
	// retry KEY re-enqueues it; the output names the dead letter by its id.
	sb.SetFault(sandbox.GroupApp, sandbox.Fault{})
	r = cli(t, env, "", "dlq", "retry", key)
	if r.code != 0 || !strings.Contains(r.stdout, `"dead_letter":"`+id+`"`) {
		t.Errorf("dlq retry KEY: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	noLeak("dlq retry KEY", r.stdout)
	if _, err := worker.NewDeadLetters(db.Client, nil).Get(context.Background(), id); err != worker.ErrNotFound {
		t.Errorf("the dead letter after retry: %v", err)
	}

	// Without CIOQ_KEY_SECRET: the secret generated in Redis, shared by
	// every process (two enqueues, one task), another id than before.
	other := "welcome:" + person
	r1 := cli(t, noSecret, send, "enqueue", "cio:send_email", "--key", other)
	r2 := cli(t, noSecret, send, "enqueue", "cio:send_email", "--key", other)
	g1, g2 := receipts(t, r1.stdout), receipts(t, r2.stdout)
	if r1.code != 0 || r2.code != 0 || g1[0].Duplicate || !g2[0].Duplicate || g1[0].TaskID != g2[0].TaskID {
		t.Fatalf("generated secret: %+v then %+v\n%s%s", g1, g2, r1.stderr, r2.stderr)
	}
	gen, err := db.Client.Get(context.Background(), producer.KeySecretRedisKey).Result()
	if err != nil || g1[0].TaskID != keyTaskID(gen, other) || g1[0].TaskID == keyTaskID(secret, other) {
		t.Errorf("task id %s: not the hash under the generated secret (%v)", g1[0].TaskID, err)
	}
	noLeak("receipts under the generated secret", r1.stdout+r2.stdout)
	if _, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo("critical", generatedTaskID(t, db, other)); err != nil {
		t.Errorf("the keyed task is not under its hashed id: %v", err)
	}

	// A secret too short is a configuration error naming the variable.
	r = cli(t, map[string]string{"REDIS_URL": db.URL(), "CIOQ_KEY_SECRET": "short-one"}, send, "enqueue", "cio:send_email", "--key", key)
	if r.code != 2 || !strings.Contains(r.stderr, "CIOQ_KEY_SECRET") || strings.Contains(r.stderr, "short-one") {
		t.Errorf("short CIOQ_KEY_SECRET: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
