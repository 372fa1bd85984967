package ingest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/status"
)

// TestStatusEndpoint: GET /v1/status/{task_id} answers a task's timeline
// to a /v1/tasks token, the same 401 as /v1/tasks without one, and 404
// for a task Redis holds nothing of.
func TestStatusEndpoint(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.startWorker()
	r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": "cio:send_email",
		"payload": map[string]any{"transactional_message_id": "welcome", "to": "ada@example.com", "identifiers": map[string]any{"id": "u1"}}}})
	if r.status != 202 {
		t.Fatalf("enqueue: %d %s", r.status, r.raw)
	}
	id := r.body["receipts"].([]any)[0].(map[string]any)["task_id"].(string)
	e.waitSandbox("the send", func(s *sandbox.Server) bool { return len(s.Deliveries()) == 1 })

	get := func(path, token string) (int, string) {
		hr, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		if token != "" {
			hr.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var tl status.Timeline
	for i := 0; i < 200; i++ {
		code, body := get("/v1/status/"+id, taskToken)
		if code != 200 {
			tl, err := e.prod.Status(context.Background(), id)
			t.Fatalf("status of %s: %d %s (%+v %v)", id, code, body, tl, err)
		}
		if err := json.Unmarshal([]byte(body), &tl); err != nil {
			t.Fatal(err)
		}
		if tl.State == status.KindAccepted {
			break
		}
	}
	if tl.State != status.KindAccepted || tl.TaskID != id || tl.Type != "cio:send_email" || !strings.HasPrefix(tl.Delivery, "delivery:") {
		t.Errorf("timeline %+v", tl)
	}
	_, noTok := get("/v1/status/"+id, "")
	code, wrong := get("/v1/status/"+id, "wrong")
	_, tasksNoTok := http.Post(e.url+"/v1/tasks", "application/json", strings.NewReader("{}"))
	if code != 401 || noTok != wrong || tasksNoTok != nil {
		t.Errorf("unauthenticated: %d %q vs %q", code, wrong, noTok)
	}
	if code, body := get("/v1/status/no-such-task", taskToken); code != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("unknown task: %d %s", code, body)
	}
}
