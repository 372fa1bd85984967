package ingest

import (
	"strings"
	"testing"
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
