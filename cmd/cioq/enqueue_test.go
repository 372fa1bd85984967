package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

func receipts(t *testing.T, out string) []receipt {
	t.Helper()
	var rs []receipt
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r receipt
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("receipt %q: %v", line, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// queued counts the tasks in Redis (every queue, every state).
func queued(t *testing.T, db *testredis.DB) int {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	qs, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range qs {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size
	}
	return n
}

func TestEnqueue(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}

	// Happy path: a typed task from stdin, with a key, a delay and an expiry.
	r := cli(t, env, `{"transactional_message_id":"password_reset","to":"ada@example.com","identifiers":{"id":"user-123"}}`,
		"enqueue", "cio:send_email", "--key", "reset:tok-1", "--expires-in", "1h", "--in", "1m")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	rs := receipts(t, r.stdout)
	id := generatedTaskID(t, db, "reset:tok-1") // the key's hash, not the key
	if len(rs) != 1 || rs[0] != (receipt{TaskID: id, Queue: "critical", Type: "cio:send_email"}) {
		t.Fatalf("receipt %+v, want task_id %s", rs, id)
	}
	info, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo("critical", id)
	if err != nil {
		t.Fatalf("task not in Redis: %v", err)
	}
	if info.State != asynq.TaskStateScheduled {
		t.Errorf("state %v, want scheduled (--in 1m)", info.State)
	}
	env2, _, err := tasks.Decode(info.Type, info.Payload)
	if err != nil || env2.ExpiresAt == 0 {
		t.Errorf("envelope %+v, err %v: want an expiry", env2, err)
	}
	if strings.Contains(r.stderr, "ada@example.com") {
		t.Errorf("stderr shows the payload:\n%s", r.stderr)
	}

	// The same key again: a duplicate, nothing enqueued.
	r = cli(t, env, `{"transactional_message_id":"password_reset","to":"ada@example.com","identifiers":{"id":"user-123"}}`,
		"enqueue", "cio:send_email", "--key", "reset:tok-1")
	if rs := receipts(t, r.stdout); r.code != 0 || len(rs) != 1 || !rs[0].Duplicate {
		t.Fatalf("duplicate: exit %d, %+v, stderr:\n%s", r.code, rs, r.stderr)
	}

	// Flags before the type work too; a queue override.
	r = cli(t, env, `{"identifiers":{"id":"user-1"},"name":"signed_up"}`, "enqueue", "--queue", "bulk", "cio:track")
	if rs := receipts(t, r.stdout); r.code != 0 || len(rs) != 1 || rs[0].Queue != "bulk" || rs[0].Type != "cio:track" {
		t.Fatalf("queue override: exit %d, %+v, stderr:\n%s", r.code, rs, r.stderr)
	}
	if n := queued(t, db); n != 2 {
		t.Fatalf("%d tasks in Redis, want 2", n)
	}

	// Invalid input: exit ≠ 0, the field named, nothing enqueued.
	for _, tc := range []struct {
		name, stdin, field string
		args               []string
	}{
		{"missing to", `{"transactional_message_id":"password_reset","identifiers":{"id":"u"}}`, `"to"`, []string{"cio:send_email"}},
		{"bad identifiers", `{"identifiers":{},"attributes":{"plan":"pro"}}`, `"identifiers"`, []string{"cio:identify"}},
		{"not JSON", `{"identifiers":`, `"payload"`, []string{"cio:identify"}},
		{"empty stdin", ``, `"payload"`, []string{"cio:identify"}},
		{"unknown type", `{}`, `"type"`, []string{"cio:nope"}},
		{"bad key", `{"identifiers":{"id":"u"}}`, `"key"`, []string{"cio:identify", "--key", "has space"}},
		{"bad workspace", `{"identifiers":{"id":"u"}}`, `"workspace"`, []string{"cio:identify", "--workspace", "Bad Name!"}},
		{"bad queue", `{"identifiers":{"id":"u"}}`, `"queue"`, []string{"cio:identify", "--queue", "a b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, env, tc.stdin, append([]string{"enqueue"}, tc.args...)...)
			if r.code == 0 {
				t.Fatalf("exit 0; stdout:\n%s", r.stdout)
			}
			if !strings.Contains(r.stderr, tc.field) {
				t.Errorf("stderr does not name %s:\n%s", tc.field, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want no receipt", r.stdout)
			}
		})
	}
	if n := queued(t, db); n != 2 {
		t.Fatalf("%d tasks in Redis after invalid input, want still 2", n)
	}
	if r := cli(t, env, "", "enqueue"); r.code != 2 {
		t.Errorf("enqueue without TYPE: exit %d", r.code)
	}

	// --in and --expires-in follow /v1/tasks's process_in and expires_in
	// rules (producer.Timing): a usage error naming the flag, nothing
	// enqueued.
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"negative delay", "--in=-5m: must not be negative", []string{"--in", "-5m"}},
		{"zero expiry", "--expires-in=0s: must be positive", []string{"--expires-in", "0s"}},
		{"negative expiry", "--expires-in=-1h: must be positive", []string{"--expires-in", "-1h"}},
		{"unparseable delay", `--in=soon: must be a duration such as "90s", "15m" or "1h30m", or a number of seconds`, []string{"--in", "soon"}},
		{"empty expiry", "--expires-in: give a duration", []string{"--expires-in", ""}},
		{"expiry before the delay", "--expires-in=1h: must not be before the process time", []string{"--in", "2h", "--expires-in", "1h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, env, `{"identifiers":{"id":"u"}}`, append([]string{"enqueue", "cio:identify"}, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	if n := queued(t, db); n != 2 {
		t.Fatalf("%d tasks in Redis after bad timing flags, want still 2", n)
	}
	// A delay in seconds, as /v1/tasks takes it.
	r = cli(t, env, `{"identifiers":{"id":"u"}}`, "enqueue", "cio:identify", "--in", "600", "--key", "secs:1")
	if r.code != 0 {
		t.Fatalf("--in 600: exit %d: %s", r.code, r.stderr)
	}
	secsID, err := producer.NewFromRedis(db.Client).TaskIDForKey(context.Background(), "secs:1")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo("default", secsID); err != nil || info.State != asynq.TaskStateScheduled {
		t.Errorf("--in 600: %+v %v, want scheduled", info, err)
	}
}

func TestEnqueueFile(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := []string{
		`{"type":"cio:identify","payload":{"identifiers":{"id":"user-1001"},"attributes":{"total_revenue":1000}},"key":"id-1001"}`,
		``,
		`{"type":"cdp:track","payload":{"userId":"user-1005","event":"Order Completed"}}`,
		`{"type":"cio:segment_add","payload":{"segment_id":7,"ids":["user-1001"]}}`,
	}

	// Line 3 is invalid: nothing at all is enqueued.
	for _, tc := range []struct {
		name, line3, want string
	}{
		{"payload field", `{"type":"cio:send_email","payload":{"transactional_message_id":"x","identifiers":{"id":"u"}}}`, `"to"`},
		{"unknown type", `{"type":"cio:nope","payload":{}}`, `"type"`},
		{"not JSON", `{"type":`, `line`},
		{"unknown field", `{"type":"cio:identify","payload":{"identifiers":{"id":"u"}},"keyy":"k"}`, `"keyy"`},
		{"missing payload", `{"type":"cio:identify"}`, `"payload"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "-")+".jsonl", good[0], good[2], tc.line3, good[3])
			r := cli(t, env, "", "enqueue", "--file", p)
			if r.code == 0 {
				t.Fatalf("exit 0; stdout:\n%s", r.stdout)
			}
			if !strings.Contains(r.stderr, "line 3") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not name line 3 and %s:\n%s", tc.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("receipts printed for an invalid file:\n%s", r.stdout)
			}
		})
	}
	if n := queued(t, db); n != 0 {
		t.Fatalf("%d tasks enqueued from invalid files, want 0", n)
	}

	// A valid file (read from stdin with "-"): one receipt per task, in order.
	r := cli(t, env, strings.Join(good, "\n"), "enqueue", "--file", "-")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	rs := receipts(t, r.stdout)
	id := generatedTaskID(t, db, "id-1001")
	if len(rs) != 3 || rs[0].TaskID != id || rs[1].Type != "cdp:track" || rs[2].Queue != "bulk" {
		t.Fatalf("receipts %+v, want the first with task_id %s", rs, id)
	}
	if n := queued(t, db); n != 3 {
		t.Fatalf("%d tasks in Redis, want 3", n)
	}
	if _, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo("default", id); err != nil {
		t.Errorf("keyed task: %v", err)
	}
}

// With CIOQ_WORKSPACES_FILE, enqueue refuses a task naming a workspace the
// file does not have (flag or envelope), naming it, and enqueues nothing;
// the file's credentials need not be in this environment.
func TestEnqueueUnknownWorkspace(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	ws := filepath.Join(t.TempDir(), "workspaces.json")
	if err := os.WriteFile(ws, []byte(`{"workspaces":{"eu-shop":{"site_id":"s","track_api_key_env":"EU_TRACK_KEY"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": db.URL(), "CIOQ_WORKSPACES_FILE": ws}
	payload := `{"identifiers":{"id":"x"}}`

	r := cli(t, env, payload, "enqueue", "cio:identify", "--workspace", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, `invalid field "workspace": "nope" is not a workspace of CIOQ_WORKSPACES_FILE`) || !strings.Contains(r.stderr, "(it has: default, eu-shop)") {
		t.Errorf("--workspace nope: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	lines := `{"type":"cio:identify","payload":{"identifiers":{"id":"a"}}}
{"type":"cio:identify","payload":{"v":1,"workspace":"nope","payload":{"identifiers":{"id":"b"}}}}`
	r = cli(t, env, lines, "enqueue", "--file", "-")
	if r.code != 1 || !strings.Contains(r.stderr, `line 2: cio:identify: invalid field "workspace": "nope"`) {
		t.Errorf("--file with an envelope naming nope: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := queued(t, db); n != 0 {
		t.Fatalf("%d tasks enqueued", n)
	}

	for _, w := range []string{"eu-shop", "default", ""} {
		if r := cli(t, env, payload, "enqueue", "cio:identify", "--workspace", w); r.code != 0 {
			t.Errorf("--workspace %q: exit %d, stderr:\n%s", w, r.code, r.stderr)
		}
	}
	// Without the file, any well-formed name is accepted (the workers' list is unknown here).
	if r := cli(t, map[string]string{"REDIS_URL": db.URL()}, payload, "enqueue", "cio:identify", "--workspace", "nope"); r.code != 0 {
		t.Errorf("without the file: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	// A file that cannot be read is a configuration error naming it.
	r = cli(t, map[string]string{"REDIS_URL": db.URL(), "CIOQ_WORKSPACES_FILE": "/nonexistent/ws.json"}, payload, "enqueue", "cio:identify")
	if r.code != 2 || !strings.Contains(r.stderr, "CIOQ_WORKSPACES_FILE") {
		t.Errorf("missing file: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
