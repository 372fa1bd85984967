package ingest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// newContractsEnv is newEnv with a producer checking the seed's rows: a
// template and the variables it needs, declared attribute types (one
// refused, one coerced).
func newContractsEnv(t *testing.T) *env {
	t.Helper()
	f, err := contracts.Parse([]byte(`{"workspaces": {"default": {
	  "transactional": {"strict_ids": true, "messages": [{"id": 7, "trigger": "password_reset", "channel": "email",
	    "variables": {"reset_link": {"type": "string"}}}]},
	  "attributes": {"people": {"attributes": {
	    "churn_risk_score": {"type": "number"},
	    "total_revenue": {"type": "number", "policy": "coerce"}}},
	    "objects": {"1": {"attributes": {"mrr": {"type": "number"}}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := contracts.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: testredis.New(t), metrics: &countingMetrics{}}
	e.prod = producer.NewFromRedis(e.db.Client, producer.WithContracts(set))
	e.insp = asynq.NewInspectorFromRedisClient(e.db.Client)
	srv, err := New(Config{Producer: e.prod, File: testConfig(), Metrics: e.metrics, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// TestContractsAtIngest: each row of the seed's table is refused by each
// front door, naming the field as the request named it, and nothing of
// the request is enqueued (not even its valid messages); a coerced
// attribute is enqueued coerced.
func TestContractsAtIngest(t *testing.T) {
	e := newContractsEnv(t)
	reset := func(data map[string]any) map[string]any {
		return map[string]any{"type": tasks.TypeSendEmail, "payload": map[string]any{
			"transactional_message_id": "password_reset", "to": "ada@example.com", "identifiers": map[string]any{"id": "u1"}, "message_data": data}}
	}
	unknown := reset(map[string]any{"reset_link": "x"})
	unknown["payload"].(map[string]any)["transactional_message_id"] = 99
	cases := []struct {
		name  string
		r     req
		field string
		text  string
	}{
		{"invalid template, /v1/tasks", req{path: "/v1/tasks", bearer: taskToken, body: unknown},
			"payload.transactional_message_id", "(strict_ids), got 99"},
		{"missing required data, /v1/tasks batch", req{path: "/v1/tasks", bearer: taskToken, body: []any{reset(map[string]any{"reset_link": "x"}), reset(nil)}},
			"[1].payload.message_data.reset_link", `required by template "password_reset" (id 7), missing`},
		{"segment attribute type, Segment identify (Track mode)", req{path: "/v1/identify", key: keyTrack, body: map[string]any{"userId": "u1", "traits": map[string]any{"churn_risk_score": "0.8"}}},
			"traits.churn_risk_score", "declared a number (people attributes), got a string"},
		{"segment attribute type, Segment batch: the valid message is not enqueued either", req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": []any{
			map[string]any{"type": "identify", "userId": "u0", "traits": map[string]any{"churn_risk_score": 0.5}},
			map[string]any{"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": map[string]any{"churn_risk_score": "high"}}}}},
			"batch[1].traits.churn_risk_score", "declared a number"},
		{"segment attribute type, Segment identify (Pipelines mode)", req{path: "/v1/identify", key: keyPipelines, body: map[string]any{"userId": "u1", "traits": map[string]any{"churn_risk_score": true}}},
			"traits.churn_risk_score", "got a boolean"},
		{"object attribute type, Segment group", req{path: "/v1/group", key: keyTrack, body: map[string]any{"userId": "u1", "groupId": "acme", "traits": map[string]any{"mrr": "4200"}}},
			"traits.mrr", "declared a number (object type 1 attributes), got a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.r)
			if r.status != 400 || r.errField() != tc.field {
				t.Fatalf("status %d field %q, want 400 naming %q: %s", r.status, r.errField(), tc.field, r.raw)
			}
			if msg, _ := r.body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, tc.text) {
				t.Errorf("message %q does not say %q", msg, tc.text)
			}
			if n := e.totalTasks(); n != 0 {
				t.Errorf("%d task(s) enqueued", n)
			}
		})
	}

	r := e.do(req{path: "/v1/identify", key: keyTrack, body: map[string]any{"userId": "u2", "traits": map[string]any{"total_revenue": "1000"}}})
	if r.status != 200 {
		t.Fatalf("coerced identify: %d %s", r.status, r.raw)
	}
	infos, err := e.insp.ListPendingTasks(tasks.QueueDefault)
	if err != nil || len(infos) != 1 {
		t.Fatalf("pending %v %v", infos, err)
	}
	_, p, err := tasks.Decode(infos[0].Type, infos[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*tasks.Identify).Attributes["total_revenue"]; got != 1000.0 {
		t.Errorf("enqueued total_revenue = %#v, want the number", got)
	}
}
