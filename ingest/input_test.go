package ingest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// TestInvalidUTF8Refused: a body whose strings are not UTF-8 is refused on
// every path with 400 invalid_utf8 naming the field as written, before
// encoding/json could replace the bytes by U+FFFD (two different invalid
// ids would have become one person), and nothing is enqueued.
func TestInvalidUTF8Refused(t *testing.T) {
	e := newEnv(t, nil, nil)
	const bad = "u\xff\xfe\xc31"
	track := `{"userId":"` + bad + `","event":"E"}`
	batch := `{"batch":[{"type":"track","userId":"a","event":"E"},{"type":"identify","userId":"b","traits":{"plan":"` + bad + `"}}]}`
	hookBody := []byte(`{"type":"track","userId":"` + bad + `","event":"E"}`)
	mp := `{"user_identities":{"customer_id":"m1"},"events":[{"event_type":"custom_event","data":{"event_name":"E","custom_attributes":{"sku":"` + bad + `"}}}]}`
	custom := `[{"customer":{"id":"c1"},"topic":"t"},{"customer":{"id":"c2","plan":"` + bad + `"},"topic":"t"}]`
	task := `{"type":"cio:track","payload":{"identifiers":{"id":"` + bad + `"},"name":"ev"}}`
	for _, c := range []struct {
		name  string
		r     req
		field string
	}{
		{"track", req{path: "/v1/track", key: keyTrack, body: track}, "userId"},
		{"track, another invalid id", req{path: "/v1/track", key: keyTrack, body: "{\"userId\":\"u\xfe1\",\"event\":\"E\"}"}, "userId"},
		{"short alias /v1/t", req{path: "/v1/t", key: keyTrack, body: track}, "userId"},
		{"identify, a trait", req{path: "/v1/identify", key: keyTrack, body: `{"userId":"u","traits":{"name":"` + bad + `"}}`}, "traits.name"},
		{"page, a key", req{path: "/v1/page", key: keyTrack, body: "{\"userId\":\"u\",\"properties\":{\"url\":\"/\",\"\xff\":1}}"}, "properties"},
		{"lone surrogate escape", req{path: "/v1/track", key: keyTrack, body: `{"userId":"u\ud800","event":"E"}`}, "userId"},
		{"batch", req{path: "/v1/batch", key: keyTrack, body: batch}, "batch[1].traits.plan"},
		{"batch, gzip", req{path: "/v1/b", key: keyTrack, body: batch, gzip: true}, "batch[1].traits.plan"},
		{"pipelines source", req{path: "/v1/track", key: keyPipelines, body: track}, "userId"},
		{"rudderstack", req{path: "/v1/batch", key: keyRudder, body: batch}, "batch[1].traits.plan"},
		{"named source", req{path: "/v1/sources/web/track", key: keyTrack, body: track}, "userId"},
		{"named source by type", req{path: "/v1/sources/web", key: keyTrack, body: batch}, "batch[1].traits.plan"},
		{"signed webhook", req{path: "/v1/sources/hook", body: hookBody, headers: map[string]string{"X-Signature": sign(hookSecret, hookBody)}}, "userId"},
		{"mparticle", req{path: "/v1/mparticle", key: keyMP, body: mp}, "events[0].data.custom_attributes.sku"},
		{"mparticle named", req{path: "/v1/mparticle/mp", key: keyMP, body: "[" + mp + "]"}, "[0].events[0].data.custom_attributes.sku"},
		{"custom", req{path: "/v1/custom/shop", key: keyCustom, body: custom}, "[1].customer.plan"},
		{"tasks", req{path: "/v1/tasks", bearer: taskToken, body: task}, "payload.identifiers.id"},
		{"tasks array", req{path: "/v1/tasks", bearer: taskToken, body: `[{"type":"cio:identify","payload":{"identifiers":{"id":"a"}}},` + task + `]`}, "[1].payload.identifiers.id"},
		{"tasks key", req{path: "/v1/tasks", bearer: taskToken, body: `{"type":"cio:identify","idempotency_key":"k` + bad + `","payload":{"identifiers":{"id":"a"}}}`}, "idempotency_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.r)
			if r.status != 400 || r.errCode() != "invalid_utf8" || r.errField() != c.field {
				t.Fatalf("got %d %q field %q, want 400 invalid_utf8 field %q: %s", r.status, r.errCode(), r.errField(), c.field, r.raw)
			}
			if !strings.Contains(r.raw, "not valid UTF-8") || strings.Contains(r.raw, "\uFFFD") {
				t.Errorf("message: %s", r.raw)
			}
			if n := e.totalTasks(); n != 0 {
				t.Fatalf("%d tasks enqueued", n)
			}
		})
	}
	// Valid text (U+FFFD and escaped emoji included) passes.
	r := e.do(req{path: "/v1/track", key: keyTrack, body: `{"userId":"u-\ud83d\ude00","event":"E \uFFFD","properties":{"s":"café"}}`})
	if r.status != 200 {
		t.Errorf("valid text: %d %s", r.status, r.raw)
	}
}

// TestTasksTypeErrors: a wrong JSON type in a /v1/tasks request, in the
// request or in its payload, is a 400 naming the field as written, with
// what was expected and what was found, and the same reason the CLI and
// the worker give (tasks.Decode's).
func TestTasksTypeErrors(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, c := range []struct {
		name, body, field, msg string
	}{
		{"timestamp", `{"type":"cio:track","payload":{"identifiers":{"id":"u"},"name":"ev","timestamp":1.5}}`,
			"payload.timestamp", `cio:track: invalid field "payload.timestamp": must be an integer, got 1.5`},
		{"message id", `{"type":"cio:send_email","payload":{"transactional_message_id":{"a":1},"to":"ada@example.com"}}`,
			"payload.transactional_message_id", `cio:send_email: invalid field "payload.transactional_message_id": must be a number or a string, got an object`},
		{"message data", `{"type":"cio:send_email","payload":{"transactional_message_id":1,"message_data":[1],"to":"ada@example.com"}}`,
			"payload.message_data", `cio:send_email: invalid field "payload.message_data": must be an object, got an array`},
		{"in an array of tasks", `[{"type":"cio:identify","payload":{"identifiers":{"id":"u"}}},{"type":"cio:broadcast_trigger","payload":{"broadcast_id":1,"per_user_data":[{"id":"a"},{"id":5}]}}]`,
			"[1].payload.per_user_data[1].id", `cio:broadcast_trigger: invalid field "[1].payload.per_user_data[1].id": must be a string, got a number`},
		{"in an envelope", `{"type":"cio:track","payload":{"v":1,"payload":{"identifiers":{"id":"u"},"name":{}}}}`,
			"payload.payload.name", `cio:track: invalid field "payload.payload.name": must be a string, got an object`},
		{"request field", `[{"type":"cio:identify","payload":{}},{"type":5,"payload":{}}]`,
			"[1].type", `invalid field "[1].type": must be a string, got a number`},
		{"request field, one task", `{"type":"cio:identify","workspace":["eu"],"payload":{}}`,
			"workspace", `invalid field "workspace": must be a string, got an array`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: c.body})
			eo, _ := r.body["error"].(map[string]any)
			if r.status != 400 || r.errCode() != "invalid" || r.errField() != c.field || eo["message"] != c.msg {
				t.Errorf("got %d %q field %q message %q, want 400 invalid %q %q", r.status, r.errCode(), r.errField(), eo["message"], c.field, c.msg)
			}
			if strings.Contains(r.raw, "ada@example.com") || strings.Contains(r.raw, "SendOptions") || strings.Contains(r.raw, "Event.") {
				t.Errorf("response leaks: %s", r.raw)
			}
		})
	}
	if n := e.totalTasks(); n != 0 {
		t.Errorf("%d tasks enqueued", n)
	}
}

// TestTasksTiming: /v1/tasks takes process_in/process_at and
// expires_in/expires_at with the CLI's rules (producer.Timing): a delay
// schedules the task, an expiry goes into its envelope and a worker that
// sees it late dead-letters it as expired, unsent; bad values are a 400
// naming the field.
func TestTasksTiming(t *testing.T) {
	e := newEnv(t, nil, nil)
	send := func(extra map[string]any) map[string]any {
		m := map[string]any{"type": tasks.TypeSendEmail, "payload": map[string]any{
			"transactional_message_id": "password_reset", "to": "r@example.com", "identifiers": map[string]any{"id": "r1"}}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	now := time.Now()
	future := now.Add(3 * time.Hour).Unix()
	r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: []any{
		send(map[string]any{"idempotency_key": "reset:in", "expires_in": "1h"}),
		send(map[string]any{"idempotency_key": "reset:secs", "expires_in": 1800}),
		send(map[string]any{"idempotency_key": "reset:at", "expires_at": future}),
		send(map[string]any{"idempotency_key": "later:in", "process_in": "10m", "expires_in": "2h"}),
		send(map[string]any{"idempotency_key": "later:secs", "process_in": 600}),
		send(map[string]any{"idempotency_key": "later:at", "process_at": now.Add(time.Hour).UTC().Format(time.RFC3339), "expires_at": now.Add(2 * time.Hour).UTC().Format(time.RFC3339)}),
	}})
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	after := time.Now()
	for _, c := range []struct {
		id                 string
		expiresMin, expMax time.Time // zero: no expiry
		scheduled          time.Duration
	}{
		{"reset:in", now.Add(time.Hour), after.Add(time.Hour), 0},
		{"reset:secs", now.Add(30 * time.Minute), after.Add(30 * time.Minute), 0},
		{"reset:at", time.Unix(future, 0), time.Unix(future, 0), 0},
		{"later:in", now.Add(2 * time.Hour), after.Add(2 * time.Hour), 10 * time.Minute},
		{"later:secs", time.Time{}, time.Time{}, 10 * time.Minute},
		{"later:at", now.Add(2 * time.Hour), after.Add(2 * time.Hour), time.Hour},
	} {
		id, err := e.prod.TaskIDForKey(context.Background(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		ti, err := e.insp.GetTaskInfo("critical", id)
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		env, _, err := tasks.Decode(ti.Type, ti.Payload)
		if err != nil {
			t.Fatal(err)
		}
		exp, has := env.Expiry()
		switch {
		case c.expiresMin.IsZero() && has:
			t.Errorf("%s: expires at %v, want no expiry", c.id, exp)
		case !c.expiresMin.IsZero() && (!has || exp.Before(c.expiresMin.Truncate(time.Second)) || exp.After(c.expMax)):
			t.Errorf("%s: expires at %v (%v), want between %v and %v", c.id, exp, has, c.expiresMin, c.expMax)
		}
		if c.scheduled == 0 {
			if ti.State != asynq.TaskStatePending {
				t.Errorf("%s: state %v, want pending", c.id, ti.State)
			}
		} else if ti.State != asynq.TaskStateScheduled || ti.NextProcessAt.Before(now.Add(c.scheduled).Truncate(time.Second)) || ti.NextProcessAt.After(after.Add(c.scheduled)) {
			t.Errorf("%s: state %v at %v, want scheduled in %v", c.id, ti.State, ti.NextProcessAt, c.scheduled)
		}
	}

	// Bad values: 400 naming the field, nothing enqueued.
	before := e.totalTasks()
	for _, c := range []struct {
		name  string
		extra map[string]any
		field string
		many  bool
	}{
		{"negative delay", map[string]any{"process_in": "-5m"}, "process_in", false},
		{"negative delay in seconds", map[string]any{"process_in": -300}, "process_in", false},
		{"zero expiry", map[string]any{"expires_in": "0s"}, "expires_in", false},
		{"negative expiry", map[string]any{"expires_in": -60}, "expires_in", false},
		{"unparseable delay", map[string]any{"process_in": "soon"}, "process_in", false},
		{"unparseable expiry", map[string]any{"expires_in": "an hour"}, "expires_in", false},
		{"unparseable expiry time", map[string]any{"expires_at": "tomorrow"}, "expires_at", false},
		{"unparseable process time", map[string]any{"process_at": "later"}, "process_at", false},
		{"empty", map[string]any{"expires_in": ""}, "expires_in", false},
		{"an object", map[string]any{"expires_at": map[string]any{}}, "expires_at", false},
		{"both expiries", map[string]any{"expires_in": "1h", "expires_at": future}, "expires_at", false},
		{"both delays", map[string]any{"process_in": "1m", "process_at": future}, "process_at", false},
		{"expiry past", map[string]any{"expires_at": now.Add(-time.Minute).Unix()}, "expires_at", false},
		{"expires before processing", map[string]any{"process_in": "2h", "expires_in": "1h"}, "expires_in", false},
		{"expires at before processing", map[string]any{"process_at": future, "expires_at": future - 60}, "expires_at", false},
		{"envelope expiry before processing", map[string]any{"process_in": "2h", "payload": map[string]any{"v": 1, "expires_at": now.Add(time.Hour).Unix(),
			"payload": map[string]any{"transactional_message_id": "x", "to": "r@example.com"}}}, "payload.expires_at", false},
		{"second of two", map[string]any{"expires_in": "-1h"}, "[1].expires_in", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body any = send(c.extra)
			if c.many {
				body = []any{send(nil), send(c.extra)}
			}
			r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: body})
			if r.status != 400 || r.errCode() != "invalid" || r.errField() != c.field {
				t.Errorf("got %d %q field %q, want 400 invalid %q: %s", r.status, r.errCode(), r.errField(), c.field, r.raw)
			}
		})
	}
	if n := e.totalTasks(); n != before {
		t.Errorf("%d tasks enqueued by invalid requests", n-before)
	}

	// A worker that sees the pending sends two hours late (its clock):
	// the two that expire within two hours are dead-lettered as
	// expired, the one expiring in three is delivered.
	w, err := worker.New(worker.Config{Redis: e.db.ConnOpt(), Workspaces: map[string]customerio.Config{"": testsupport.SandboxConfig(e.sbURL)},
		Concurrency: 1, Logger: testLogger(), Now: func() time.Time { return time.Now().Add(2 * time.Hour) }, ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	e.waitSandbox("the send that has not expired", func(s *sandbox.Server) bool { return len(s.Deliveries()) == 1 })
	for _, key := range []string{"reset:in", "reset:secs"} {
		id, err := e.prod.TaskIDForKey(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		var d *worker.DeadLetter
		deadline := time.Now().Add(30 * time.Second)
		for d == nil && time.Now().Before(deadline) {
			d, _ = w.DLQ().Get(context.Background(), id)
			time.Sleep(20 * time.Millisecond)
		}
		if d == nil || d.Class != worker.DeadLetterExpired {
			t.Errorf("%s: dead letter %+v, want class expired", key, d)
		}
	}
	if n := len(e.sb.Deliveries()); n != 1 {
		t.Errorf("%d sends delivered, want 1 (the expired ones never)", n)
	}
}
