package producer_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// wantTaskID is the documented derivation, written out independently:
// "k-" + lower-case unpadded base32 of the first 20 bytes of
// HMAC-SHA256(secret, key).
func wantTaskID(secret, key string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(key))
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return "k-" + strings.ToLower(enc.EncodeToString(m.Sum(nil)[:20]))
}

const personKey = "order:person-7731"

func sendOrder() tasks.SendEmail {
	return tasks.SendEmail{To: "a@example.com", SendOptions: customerio.SendOptions{TransactionalMessageID: "order_confirmation"}}
}

// The task id is a keyed hash of the key, never the key; the key itself is
// in the envelope and the receipt's Key.
func TestIdempotencyKeyTaskIDIsAHash(t *testing.T) {
	c, insp := setup(t)
	r, err := c.SendEmail(ctx, sendOrder(), producer.IdempotencyKey(personKey))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.TaskID) != 34 || !strings.HasPrefix(r.TaskID, "k-") || strings.Contains(r.TaskID, "7731") || strings.Contains(r.TaskID, "person") {
		t.Errorf("TaskID = %q, want k- and 32 base32 characters", r.TaskID)
	}
	if r.Key != personKey {
		t.Errorf("Receipt.Key = %q, want %q", r.Key, personKey)
	}
	if id, err := c.TaskIDForKey(ctx, personKey); err != nil || id != r.TaskID {
		t.Errorf("TaskIDForKey = %q, %v; the receipt says %q", id, err, r.TaskID)
	}
	_, env, _ := stored(t, insp, r)
	if env.IdempotencyKey != personKey {
		t.Errorf("envelope idempotency_key = %q, want %q", env.IdempotencyKey, personKey)
	}
	// Without a key: asynq's id, no key in the envelope or receipt.
	r2, err := c.SendEmail(ctx, sendOrder())
	if err != nil {
		t.Fatal(err)
	}
	if _, env, _ := stored(t, insp, r2); env.IdempotencyKey != "" || r2.Key != "" || strings.HasPrefix(r2.TaskID, "k-") {
		t.Errorf("unkeyed task: receipt %+v, envelope key %q", r2, env.IdempotencyKey)
	}
}

// Two clients sharing nothing but Redis (each its own connection and its
// own memory, as two processes would) agree on the generated secret: the
// same key from both is one task, also when they create the secret at the
// same moment.
func TestIdempotencyKeyAcrossClients(t *testing.T) {
	db := testredis.New(t)
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	newClient := func() *producer.Client {
		c, err := producer.New(db.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Eight clients, none of which has read the secret, enqueue one key
	// at once: one task, one secret, one id.
	const n = 8
	clients := make([]*producer.Client, n)
	for i := range clients {
		clients[i] = newClient()
	}
	receipts := make([]producer.Receipt, n)
	errs := make([]error, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			receipts[i], errs[i] = c.SendEmail(ctx, sendOrder(), producer.IdempotencyKey(personKey))
		}()
	}
	start.Done()
	wg.Wait()
	fresh := 0
	for i, r := range receipts {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		if r.TaskID != receipts[0].TaskID {
			t.Errorf("client %d: task id %s, client 0: %s", i, r.TaskID, receipts[0].TaskID)
		}
		if !r.Duplicate {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d clients enqueued the task, want 1", fresh)
	}
	if got := total(t, insp); got != 1 {
		t.Errorf("%d tasks in Redis, want 1", got)
	}
	secret, err := db.Client.Get(ctx, producer.KeySecretRedisKey).Result()
	if err != nil || len(secret) != 64 {
		t.Fatalf("generated secret: %d characters, %v; want 64 hex characters", len(secret), err)
	}
	if want := wantTaskID(secret, personKey); receipts[0].TaskID != want {
		t.Errorf("task id %s, want %s (HMAC under the stored secret)", receipts[0].TaskID, want)
	}

	// A client started later reads the same secret: a duplicate.
	r, err := newClient().SendEmail(ctx, sendOrder(), producer.IdempotencyKey(personKey))
	if err != nil || !r.Duplicate || r.TaskID != receipts[0].TaskID {
		t.Errorf("a later client: %+v, %v; want a duplicate of %s", r, err, receipts[0].TaskID)
	}
	// Setting the stored value as the secret keeps every id.
	c := producer.NewFromRedis(db.Client, producer.WithKeySecret(secret))
	if id, _ := c.TaskIDForKey(ctx, personKey); id != receipts[0].TaskID {
		t.Errorf("WithKeySecret(the stored secret): id %s, want %s", id, receipts[0].TaskID)
	}
}

// WithKeySecret (CIOQ_KEY_SECRET) is used as given and nothing is written
// to Redis; a different secret makes different ids.
func TestWithKeySecret(t *testing.T) {
	db := testredis.New(t)
	const secret = "0123456789abcdef0123456789abcdef-test"
	c := producer.NewFromRedis(db.Client, producer.WithKeySecret(secret))
	r, err := c.SendEmail(ctx, sendOrder(), producer.IdempotencyKey(personKey))
	if err != nil {
		t.Fatal(err)
	}
	if want := wantTaskID(secret, personKey); r.TaskID != want {
		t.Errorf("task id %s, want %s", r.TaskID, want)
	}
	if n, _ := db.Client.Exists(ctx, producer.KeySecretRedisKey).Result(); n != 0 {
		t.Errorf("with WithKeySecret a secret was still generated in Redis")
	}
	other := producer.NewFromRedis(db.Client, producer.WithKeySecret(secret+"-other"))
	if id, _ := other.TaskIDForKey(ctx, personKey); id == r.TaskID {
		t.Errorf("two secrets give the same id %s", id)
	}
	// A generated secret is not this one either.
	gen := producer.NewFromRedis(db.Client)
	if id, _ := gen.TaskIDForKey(ctx, personKey); id == r.TaskID || id == "" {
		t.Errorf("generated secret: id %q", id)
	}

	if err := producer.CheckKeySecret("short"); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("CheckKeySecret(short) = %v", err)
	}
	func() {
		defer func() {
			if x := recover(); x == nil || strings.Contains(x.(string), "too-short") {
				t.Errorf("NewFromRedis with a short secret: panic %v", x)
			}
		}()
		producer.NewFromRedis(db.Client, producer.WithKeySecret("too-short"))
	}()
}

// A secret in Redis that cannot be one is an error naming the Redis key,
// not the value; the failure is not cached, so fixing Redis fixes the
// client.
func TestKeySecretInRedisInvalid(t *testing.T) {
	db := testredis.New(t)
	if err := db.Client.Set(ctx, producer.KeySecretRedisKey, "tiny-secret", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := producer.NewFromRedis(db.Client)
	_, err := c.SendEmail(ctx, sendOrder(), producer.IdempotencyKey(personKey))
	if !errors.Is(err, producer.ErrKeySecret) || !strings.Contains(err.Error(), producer.KeySecretRedisKey) || strings.Contains(err.Error(), "tiny-secret") {
		t.Fatalf("enqueue with a short secret in Redis = %v", err)
	}
	// An unkeyed task needs no secret.
	if _, err := c.SendEmail(ctx, sendOrder()); err != nil {
		t.Errorf("unkeyed enqueue: %v", err)
	}
	good := strings.Repeat("ab", 32)
	db.Client.Set(ctx, producer.KeySecretRedisKey, good, 0)
	r, err := c.SendEmail(ctx, sendOrder(), producer.IdempotencyKey(personKey))
	if err != nil || r.TaskID != wantTaskID(good, personKey) {
		t.Errorf("after fixing Redis: %+v, %v", r, err)
	}
}
