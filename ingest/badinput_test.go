package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/tasks"
)

// TestBadInput: every refusal is a 4xx JSON error naming the problem, and
// nothing is enqueued (one bad item refuses the whole request).
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil, nil)
	good := map[string]any{"type": "track", "userId": "u1", "event": "E", "messageId": "ok-1"}
	big := strings.Repeat("x", MaxEventBytes)
	hugeBatch := make([]map[string]any, 0, 40)
	for i := 0; i < 40; i++ {
		hugeBatch = append(hugeBatch, map[string]any{"type": "track", "userId": "u", "event": "E", "properties": map[string]any{"p": strings.Repeat("y", 15000)}})
	}
	signed := bodyBytes(good)
	cases := []struct {
		name   string
		r      req
		status int
		code   string
		field  string
	}{
		{"malformed JSON", req{path: "/v1/track", key: keyTrack, body: `{"userId": "u1", "event": `}, 400, "malformed_json", ""},
		{"not an object", req{path: "/v1/track", key: keyTrack, body: `[1,2]`}, 400, "malformed_json", ""},
		{"unknown type in batch", req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": []any{good, map[string]any{"type": "purchase", "userId": "u"}}}}, 400, "unknown_type", "batch[1].type"},
		{"missing type in batch", req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": []any{good, map[string]any{"userId": "u"}}}}, 400, "missing_type", "batch[1].type"},
		{"type mismatch", req{path: "/v1/identify", key: keyTrack, body: good}, 400, "type_mismatch", "type"},
		{"no userId nor anonymousId", req{path: "/v1/track", key: keyTrack, body: map[string]any{"event": "E"}}, 400, "missing_identity", "userId"},
		{"no identity in 3rd batch item", req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": []any{good, good, map[string]any{"type": "identify", "traits": map[string]any{}}}}}, 400, "missing_identity", "batch[2].userId"},
		{"alias without previousId", req{path: "/v1/alias", key: keyTrack, body: map[string]any{"userId": "u"}}, 400, "missing_identity", "previousId"},
		{"track without event", req{path: "/v1/track", key: keyTrack, body: map[string]any{"userId": "u"}}, 400, "invalid", "event"},
		{"group without groupId", req{path: "/v1/group", key: keyTrack, body: map[string]any{"userId": "u"}}, 400, "invalid", "groupId"},
		{"page without url", req{path: "/v1/page", key: keyTrack, body: map[string]any{"userId": "u"}}, 400, "invalid", "properties.url"},
		{"bad timestamp", req{path: "/v1/track", key: keyTrack, body: map[string]any{"userId": "u", "event": "E", "timestamp": "yesterday"}}, 400, "invalid_timestamp", "timestamp"},
		{"bad createdAt", req{path: "/v1/identify", key: keyTrack, body: map[string]any{"userId": "u", "traits": map[string]any{"createdAt": "soon"}}}, 400, "invalid_timestamp", "traits.createdAt"},
		{"traits not an object", req{path: "/v1/identify", key: keyTrack, body: map[string]any{"userId": "u", "traits": "x"}}, 400, "invalid", "traits"},
		{"userId too long (Customer.io limit)", req{path: "/v1/identify", key: keyTrack, body: map[string]any{"userId": strings.Repeat("u", 151)}}, 400, "invalid", "userId"},
		{"event name too long", req{path: "/v1/track", key: keyTrack, body: map[string]any{"userId": "u", "event": strings.Repeat("e", 101)}}, 400, "invalid", "event"},
		{"semantic event without userId", req{path: "/v1/track", key: keyTrack, body: map[string]any{"anonymousId": "a", "event": "User Deleted"}}, 400, "missing_identity", "userId"},
		{"device event without token", req{path: "/v1/track", key: keyTrack, body: map[string]any{"userId": "u", "event": "Device Created or Updated"}}, 400, "invalid", "context.device.token"},
		{"empty batch", req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": []any{}}}, 400, "invalid", "batch"},
		{"pipelines: missing identity", req{path: "/v1/batch", key: keyPipelines, body: map[string]any{"batch": []any{good, map[string]any{"type": "page"}}}}, 400, "missing_identity", "batch[1].userId"},
		{"no credentials", req{path: "/v1/track", body: good}, 401, "unauthorized", ""},
		{"wrong write key", req{path: "/v1/track", key: "nope", body: good}, 401, "unauthorized", ""},
		{"unknown named source", req{path: "/v1/sources/nobody/track", key: keyTrack, body: good}, 401, "unauthorized", ""},
		{"bad signature", req{path: "/v1/sources/hook", body: signed, headers: map[string]string{"X-Signature": sign("wrong", signed)}}, 401, "unauthorized", ""},
		{"signature not hex", req{path: "/v1/sources/hook", body: signed, headers: map[string]string{"X-Signature": "zz"}}, 401, "unauthorized", ""},
		{"signature of another body", req{path: "/v1/sources/hook", body: signed, headers: map[string]string{"X-Signature": sign(hookSecret, []byte("{}"))}}, 401, "unauthorized", ""},
		{"mparticle key on segment endpoint", req{path: "/v1/track", key: keyMP, body: good}, 403, "wrong_endpoint", ""},
		{"segment key on mparticle endpoint", req{path: "/v1/mparticle", key: keyTrack, body: map[string]any{}}, 403, "wrong_endpoint", ""},
		{"oversize event", req{path: "/v1/track", key: keyTrack, body: map[string]any{"userId": "u", "event": "E", "properties": map[string]any{"p": big}}}, 413, "event_too_large", ""},
		{"oversize batch item", req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": []any{good, map[string]any{"type": "track", "userId": "u", "event": "E", "properties": map[string]any{"p": big}}}}}, 413, "event_too_large", "batch[1]"},
		{"oversize body", req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": hugeBatch}}, 413, "body_too_large", ""},
		{"oversize after gzip", req{path: "/v1/batch", key: keyTrack, gzip: true, body: map[string]any{"batch": hugeBatch}}, 413, "body_too_large", ""},
		{"not gzip", req{path: "/v1/track", key: keyTrack, body: good, headers: map[string]string{"Content-Encoding": "gzip"}}, 400, "bad_gzip", "Content-Encoding"},
		{"wrong content type", req{path: "/v1/track", key: keyTrack, body: good, headers: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type", "Content-Type"},
		{"form content type", req{path: "/v1/tasks", bearer: taskToken, body: good, headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", "Content-Type"},
		{"no content type", req{path: "/v1/track", key: keyTrack, body: good, headers: map[string]string{"Content-Type": ""}}, 415, "unsupported_media_type", "Content-Type"},
		{"brotli", req{path: "/v1/track", key: keyTrack, body: good, headers: map[string]string{"Content-Encoding": "br"}}, 415, "unsupported_encoding", "Content-Encoding"},
		{"tasks: no token", req{path: "/v1/tasks", body: map[string]any{"type": tasks.TypeIdentify}}, 401, "unauthorized", ""},
		{"tasks: write key is not a token", req{path: "/v1/tasks", key: keyTrack, body: map[string]any{"type": tasks.TypeIdentify}}, 401, "unauthorized", ""},
		{"tasks: unknown type", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": "cio:nope", "payload": map[string]any{}}}, 400, "unknown_type", "type"},
		{"tasks: unknown field", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{}, "priority": 1}}, 400, "unknown_field", "priority"},
		{"tasks: invalid payload", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{}}}}, 400, "invalid", "payload.identifiers"},
		{"tasks: 2nd of array invalid", req{path: "/v1/tasks", bearer: taskToken, body: []any{
			map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}},
			map[string]any{"type": tasks.TypeSendEmail, "payload": map[string]any{"transactional_message_id": "x"}}}}, 400, "invalid", "[1].payload.to"},
		{"tasks: bad key", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "idempotency_key": "has space"}}, 400, "invalid", "idempotency_key"},
		{"tasks: bad queue", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "queue": "a b"}}, 400, "invalid", "queue"},
		{"tasks: key too long", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "idempotency_key": strings.Repeat("k", 201)}}, 400, "invalid", "idempotency_key"},
		{"tasks: non-ASCII key", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "idempotency_key": "clé"}}, 400, "invalid", "idempotency_key"},
		{"tasks: queue too long", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "queue": strings.Repeat("q", 65)}}, 400, "invalid", "queue"},
		{"tasks: 3rd of array has a bad queue", req{path: "/v1/tasks", bearer: taskToken, body: []any{
			map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "queue": "bulk"},
			map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "idempotency_key": "ok:1"},
			map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "queue": "a/b"}}}, 400, "invalid", "[2].queue"},
		{"tasks: bad workspace", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "workspace": "EU!"}}, 400, "invalid", "workspace"},
		{"tasks: bad process_at", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}, "process_at": "later"}}, 400, "invalid", "process_at"},
		{"tasks: expired envelope", req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeSendEmail, "payload": map[string]any{"v": 1, "expires_at": 1000, "payload": map[string]any{"transactional_message_id": "x", "to": "a@example.com"}}}}, 400, "invalid", "payload.expires_at"},
		{"custom: no identity", req{path: "/v1/custom/shop", key: keyCustom, body: []any{map[string]any{"customer": map[string]any{"id": "c1"}}, map[string]any{"customer": map[string]any{}}}}, 400, "missing_identity", "[1].customer.id"},
		{"custom: wrong key", req{path: "/v1/custom/shop", key: keyTrack, body: map[string]any{}}, 401, "unauthorized", ""},
		{"mparticle: custom event without name", req{path: "/v1/mparticle", key: keyMP, body: map[string]any{"user_identities": map[string]any{"customer_id": "m"}, "events": []any{map[string]any{"event_type": "custom_event", "data": map[string]any{}}}}}, 400, "invalid", "events[0].data.event_name"},
		{"unknown endpoint", req{path: "/v1/nope", key: keyTrack, body: good}, 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.r)
			if r.status != c.status || r.errCode() != c.code || r.errField() != c.field {
				t.Errorf("got %d %q field %q, want %d %q field %q: %s", r.status, r.errCode(), r.errField(), c.status, c.code, c.field, r.raw)
			}
			eo, _ := r.body["error"].(map[string]any)
			if msg, _ := eo["message"].(string); msg == "" {
				t.Errorf("no message: %s", r.raw)
			}
			if leak := contains(r.raw, keyTrack, keyMP, keyCustom, hookSecret, taskToken, "@example.com", `"u1"`, "c1"); leak != "" {
				t.Errorf("response leaks %q: %s", leak, r.raw)
			}
			if n := e.totalTasks(); n != 0 {
				t.Fatalf("%d tasks enqueued", n)
			}
		})
	}
	if e.metrics.get("web/invalid") == 0 || e.metrics.get("unknown/unauthorized") == 0 || e.metrics.get("web/too_large") == 0 || e.metrics.get("web/unsupported_media_type") == 0 {
		t.Errorf("metrics = %v", e.metrics.n)
	}
}

// TestMethodNotAllowed: a GET on an endpoint is a JSON 405.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil, nil)
	resp, err := http.Get(e.url + "/v1/track")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /v1/track = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestRedisDown: a producer whose Redis is a closed port answers 503 and
// accepts nothing.
func TestRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := newEnv(t, nil, func(*testredis.DB) redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
		t.Cleanup(func() { rdb.Close() })
		return rdb
	})
	for _, r := range []req{
		{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": mixedBatch()[:10]}},
		{path: "/v1/identify", key: keyPipelines, body: map[string]any{"userId": "u"}},
		{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}}},
	} {
		got := e.do(r)
		acc, ok := got.body["accepted"].([]any)
		part, pok := got.body["partial"].([]any)
		if got.status != http.StatusServiceUnavailable || got.errCode() != "unavailable" || !ok || len(acc) != 0 || !pok || len(part) != 0 {
			t.Errorf("%s: %d %s", r.path, got.status, got.raw)
		}
		if strings.Contains(got.raw, addr) {
			t.Errorf("response names the Redis address: %s", got.raw)
		}
	}
	if n := e.totalTasks(); n != 0 {
		t.Errorf("%d tasks in Redis", n)
	}
	if e.metrics.get("web/unavailable") != 1 || e.metrics.get("backend/unavailable") != 1 {
		t.Errorf("metrics = %v", e.metrics.n)
	}
}

// failHook makes a Redis command fail when it carries marker, while on.
type failHook struct {
	marker string
	on     atomic.Bool
}

func (h *failHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.on.Load() {
			for _, a := range cmd.Args() {
				var b []byte
				switch v := a.(type) {
				case string:
					b = []byte(v)
				case []byte:
					b = v
				}
				if bytes.Contains(b, []byte(h.marker)) {
					err := errors.New("injected: connection reset")
					cmd.SetErr(err)
					return err
				}
			}
		}
		return next(ctx, cmd)
	}
}

// TestBatchNthItemFails: a batch of an identify and 300 group messages
// (601 tasks' worth: an object upsert and a relate each) goes into two
// cio:batch tasks, 500 operations and 101; Redis fails on the second.
// The 503 lists exactly the messages whose every operation is in the
// first task as accepted, and the message split between the two (its
// upsert in the first, its relate in the second) as partial. A retry of
// the whole batch enqueues only the messages not accepted (each accepted
// one has its dedupe record); the partial message is enqueued whole
// again (its upsert twice: idempotent).
func TestBatchNthItemFails(t *testing.T) {
	hook := &failHook{marker: "FAIL-HERE"}
	e := newEnv(t, nil, hooked(t, hook))

	batch := []map[string]any{{"type": "identify", "userId": "u-first", "messageId": "m-first", "traits": map[string]any{"plan": "pro"}}}
	for i := 0; i < 300; i++ {
		batch = append(batch, map[string]any{"type": "group", "userId": fmt.Sprintf("u%d", i), "groupId": "g",
			"messageId": fmt.Sprintf("m-%d", i), "traits": map[string]any{"n": i}})
	}
	// A relate of the second task carries the marker.
	batch[261]["traits"] = map[string]any{"n": 260, "relationshipAttributes": map[string]any{"tag": "FAIL-HERE"}}
	hook.on.Store(true)
	r := e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if r.status != http.StatusServiceUnavailable || r.errCode() != "unavailable" {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	acc, _ := r.body["accepted"].([]any)
	if len(acc) != 250 {
		t.Fatalf("accepted %d items, want 250: %s", len(acc), r.raw)
	}
	for i, a := range acc {
		if int(a.(float64)) != i {
			t.Fatalf("accepted = %v", acc)
		}
	}
	wantPartial := []any{map[string]any{"index": 250.0,
		"queued": []any{tasks.TypeObjectUpsert}, "missing": []any{tasks.TypeRelate}}}
	if !reflect.DeepEqual(r.body["partial"], wantPartial) {
		t.Errorf("partial = %v, want %v", r.body["partial"], wantPartial)
	}
	eqCounts(t, "after the failure", e.taskCounts(), map[string]int{tasks.TypeIdentify: 1, tasks.TypeObjectUpsert: 250, tasks.TypeRelate: 249})

	hook.on.Store(false)
	r = e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if r.status != http.StatusOK || r.num("enqueued") != 102 || r.num("duplicates") != 499 {
		t.Fatalf("retry: %d %s", r.status, r.raw)
	}
	eqCounts(t, "after the retry", e.taskCounts(), map[string]int{tasks.TypeIdentify: 1, tasks.TypeObjectUpsert: 301, tasks.TypeRelate: 300})
	r = e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if r.status != http.StatusOK || r.num("enqueued") != 0 || r.num("duplicates") != 601 {
		t.Fatalf("again: %d %s", r.status, r.raw)
	}
}

// TestBatchFailsOnFirstTask: the messages of a batch share a cio:batch
// task; when Redis fails on it, none of them holds anything: none is
// accepted or partial.
func TestBatchFailsOnFirstTask(t *testing.T) {
	hook := &failHook{marker: "FAIL-HERE"}
	hook.on.Store(true)
	e := newEnv(t, nil, hooked(t, hook))
	batch := []map[string]any{
		{"type": "group", "userId": "u0", "groupId": "g", "messageId": "m-0"},
		{"type": "group", "userId": "u1", "groupId": "g", "messageId": "m-1", "traits": map[string]any{"tag": "FAIL-HERE"}},
		{"type": "group", "userId": "u2", "groupId": "g", "messageId": "m-2"},
	}
	r := e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if !reflect.DeepEqual(r.body["accepted"], []any{}) || !reflect.DeepEqual(r.body["partial"], []any{}) {
		t.Errorf("accepted = %v, partial = %v; want none of either", r.body["accepted"], r.body["partial"])
	}
	eqCounts(t, "after the failure", e.taskCounts(), map[string]int{})
}

// TestBatchOfMessagesIsFewTasks: a Segment batch of 200 track messages is
// queued as one cio:batch task, not 200. Sent again as if concurrently
// with itself (the first request's dedupe records not written yet), it
// finds the first one's task by the task's key (a digest of the messages'
// keys) and enqueues nothing.
func TestBatchOfMessagesIsFewTasks(t *testing.T) {
	e := newEnv(t, nil, nil)
	var batch []map[string]any
	for i := 0; i < 200; i++ {
		batch = append(batch, map[string]any{"type": "track", "userId": fmt.Sprintf("u%d", i), "event": "e", "messageId": fmt.Sprintf("t-%d", i)})
	}
	r := e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if r.status != http.StatusOK || r.num("enqueued") != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if n := e.rawTaskCount(); n != 1 {
		t.Errorf("%d tasks in Redis, want 1 cio:batch task", n)
	}
	eqCounts(t, "operations", e.taskCounts(), map[string]int{tasks.TypeTrack: 200})
	recs, err := e.db.Client.Keys(context.Background(), keys.IngestSeen("*", "*")).Result()
	if err != nil || len(recs) != 200 {
		t.Fatalf("%d dedupe records (%v)", len(recs), err)
	}
	e.db.Client.Del(context.Background(), recs...)
	r = e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if r.status != http.StatusOK || r.num("enqueued") != 0 || r.num("duplicates") != 200 {
		t.Fatalf("repeat: %d %s", r.status, r.raw)
	}
	if n := e.rawTaskCount(); n != 1 {
		t.Errorf("%d tasks in Redis after the repeat, want 1", n)
	}
}

// TestTasksNthFails: the generic endpoint lists the receipts of the tasks
// Redis holds when a later one fails.
func TestTasksNthFails(t *testing.T) {
	hook := &failHook{marker: "FAIL-HERE"}
	hook.on.Store(true)
	e := newEnv(t, nil, hooked(t, hook))
	var body []any
	for i := 0; i < 5; i++ {
		attrs := map[string]any{"n": i}
		if i == 3 {
			attrs["x"] = "FAIL-HERE"
		}
		body = append(body, map[string]any{"type": tasks.TypeIdentify, "idempotency_key": fmt.Sprintf("k-%d", i),
			"payload": map[string]any{"identifiers": map[string]any{"id": fmt.Sprintf("u%d", i)}, "attributes": attrs}})
	}
	r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: body})
	rc, _ := r.body["receipts"].([]any)
	acc, _ := r.body["accepted"].([]any)
	if r.status != 503 || len(rc) != 3 || len(acc) != 3 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	id0, err := e.prod.TaskIDForKey(context.Background(), "k-0")
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := rc[0].(map[string]any); first["task_id"] != id0 || first["type"] != tasks.TypeIdentify || first["queue"] != "default" {
		t.Errorf("receipt = %v", first)
	}
	if n := e.totalTasks(); n != 3 {
		t.Errorf("%d tasks in Redis, want 3", n)
	}
}

// TestSlowClient: a client that sends its headers and then trickles the
// body is cut off by the read timeout (408, counted as a timeout), while
// another client is served. Nothing here depends on how fast the machine
// is: the slow request is held at the handler's door until the other
// client has its answer, so that answer certainly came while the slow
// client was connected, mid-request; its read deadline, set when its
// request began, keeps running meanwhile and ends its body read.
func TestSlowClient(t *testing.T) {
	e := newEnv(t, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()

	slowIn := make(chan struct{})   // the slow request reached the handler
	fastDone := make(chan struct{}) // the other client has its answer
	slowDone := make(chan struct{}) // the slow request's handler returned
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RemoteAddr != slow.LocalAddr().String() {
			e.srv.ServeHTTP(w, r)
			return
		}
		defer close(slowDone)
		close(slowIn)
		<-fastDone
		e.srv.ServeHTTP(w, r)
	})
	hs := NewHTTPServer("127.0.0.1:0", h)
	if hs.ReadTimeout == 0 || hs.ReadHeaderTimeout == 0 || hs.WriteTimeout == 0 || hs.IdleTimeout == 0 || hs.MaxHeaderBytes == 0 {
		t.Fatalf("NewHTTPServer leaves a timeout unset: %+v", hs)
	}
	hs.ReadTimeout = time.Second
	hs.ReadHeaderTimeout = time.Second
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	fmt.Fprintf(slow, "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", basic(keyTrack))
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the slow client: one byte every 100 ms, never the whole body
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := slow.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	<-slowIn

	// Another client is served while the slow one is connected. (A server
	// that could not would leave this request hanging: the client's
	// timeout reports it instead of the test's.)
	b := bodyBytes(map[string]any{"userId": "fast", "event": "E"})
	hr, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/v1/track", bytes.NewReader(b))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", basic(keyTrack))
	fast := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	defer fast.CloseIdleConnections()
	resp, err := fast.Do(hr)
	close(fastDone)
	if err != nil {
		t.Fatalf("fast client not served while the slow one is connected: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("fast client: %d", resp.StatusCode)
	}

	// The slow one is cut off: its connection ends (the deadline below only
	// keeps a broken server from hanging the test), and whatever it
	// received is a 408.
	slow.SetReadDeadline(time.Now().Add(time.Minute))
	got, err := io.ReadAll(slow)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the slow client's connection was never cut off (got %q)", got)
	}
	t.Logf("slow client cut off with %q (%v)", firstLine(got), err)
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
		t.Errorf("slow client got %q", got)
	}
	<-slowDone
	if n := e.metrics.get("web/timeout"); n != 1 {
		t.Errorf("web/timeout = %d, want 1 (the slow client's)", n)
	}
	if n := e.metrics.get("web/accepted"); n != 1 {
		t.Errorf("web/accepted = %d, want 1 (the fast client's)", n)
	}
	if n := e.totalTasks(); n != 1 {
		t.Errorf("%d tasks, want 1 (the fast client's)", n)
	}
}

// hooked makes a client on the test's database with hook installed.
func hooked(t *testing.T, hook redis.Hook) func(*testredis.DB) redis.UniversalClient {
	return func(db *testredis.DB) redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: db.Addr, DB: db.Index})
		rdb.AddHook(hook)
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}
