package ingest

import (
	"testing"

	"github.com/cioq/cioq/tasks"
)

// TestTraceparentHeader: a request's traceparent header (and tracestate)
// goes into the envelope of every task it enqueues, so the worker's spans
// continue the sender's trace; a malformed one is ignored.
func TestTraceparentHeader(t *testing.T) {
	e := newEnv(t, nil, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct{ header, want string }{{tp, tp}, {"garbage", ""}} {
		r := e.do(req{path: "/v1/tasks", bearer: taskToken, headers: map[string]string{"traceparent": tc.header, "tracestate": "rojo=1"},
			body: map[string]any{"type": "cio:identify", "payload": map[string]any{"identifiers": map[string]any{"id": "u1"}}}})
		if r.status != 202 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		id := r.body["receipts"].([]any)[0].(map[string]any)["task_id"].(string)
		info, err := e.insp.GetTaskInfo("default", id)
		if err != nil {
			t.Fatal(err)
		}
		env, _, err := tasks.Decode(info.Type, info.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if env.TraceParent != tc.want || (tc.want != "" && env.TraceState != "rojo=1") {
			t.Errorf("header %q: envelope traceparent %q tracestate %q", tc.header, env.TraceParent, env.TraceState)
		}
	}
}
