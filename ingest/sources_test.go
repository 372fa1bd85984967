package ingest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/tasks"
)

// *ops.Metrics is the metrics hook the binary passes.
var _ Metrics = (*ops.Metrics)(nil)

func TestMParticle(t *testing.T) {
	e := newEnv(t, nil, nil)
	ms := float64(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	batches := []any{
		map[string]any{
			"mpid": 8675309, "source_request_id": "req-1",
			"user_identities": map[string]any{"customer_id": "mp-1", "email": "mp1@example.com"},
			"user_attributes": map[string]any{"$FirstName": "Ada", "plan": "pro"},
			"events": []any{
				map[string]any{"event_type": "custom_event", "data": map[string]any{"event_name": "  Added To Cart ", "source_message_id": "sm-1",
					"timestamp_unixtime_ms": ms, "custom_attributes": map[string]any{"sku": "A1"}}},
				map[string]any{"event_type": "screen_view", "data": map[string]any{"screen_name": "Product Detail", "source_message_id": "sm-2"}},
				map[string]any{"event_type": "user_attribute_change", "data": map[string]any{"user_attribute_name": "tier", "new": "gold", "source_message_id": "sm-3"}},
				map[string]any{"event_type": "session_start", "data": map[string]any{}},
			},
		},
		map[string]any{ // email only: identified by email (email_fallback)
			"user_identities": []any{map[string]any{"identity_type": "email", "identity": "only@example.com"}},
			"events":          []any{map[string]any{"event_type": "custom_event", "data": map[string]any{"event_name": "Opened"}}},
		},
		map[string]any{ // neither: skipped and counted
			"mpid": 1, "user_identities": map[string]any{},
			"events": []any{map[string]any{"event_type": "custom_event", "data": map[string]any{"event_name": "Lost"}},
				map[string]any{"event_type": "custom_event", "data": map[string]any{"event_name": "Lost2"}}},
		},
	}
	r := e.do(req{path: "/v1/mparticle", key: keyMP, body: batches})
	if r.status != http.StatusAccepted || r.num("skipped_users") != 1 || r.num("skipped_events") != 2 || r.num("ignored_events") != 1 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	eqCounts(t, "tasks", e.taskCounts(), map[string]int{tasks.TypeIdentify: 3, tasks.TypeTrack: 3})
	// The same batches on the per-source path: events with a
	// source_message_id and the keyed attributes are repeats.
	r = e.do(req{path: "/v1/mparticle/mp", key: keyMP, body: batches})
	if r.status != http.StatusAccepted || r.num("duplicates") != 4 || r.num("enqueued") != 2 {
		t.Fatalf("repeat: %d %s", r.status, r.raw)
	}
	e.startWorker()
	e.waitDrained()
	p, ok := e.sb.Person("mp-1")
	if !ok || p.Attributes["first_name"] != "Ada" || p.Attributes["plan"] != "pro" || p.Attributes["tier"] != "gold" {
		t.Fatalf("mp-1 = %+v", p)
	}
	evs := e.sb.Events("mp-1")
	if len(evs) != 2 {
		t.Fatalf("events = %+v", evs)
	}
	if evs[0].Name != "Added_To_Cart" || evs[0].Timestamp != int64(ms/1000) || evs[0].Data["sku"] != "A1" {
		t.Errorf("custom event = %+v", evs[0])
	}
	if evs[1].Name != "Product_Detail" || evs[1].Type != "screen" {
		t.Errorf("screen view = %+v", evs[1])
	}
	if evs := e.sb.Events("only@example.com"); len(evs) != 2 { // sent twice, no message id
		t.Errorf("email-identified events = %+v", evs)
	}
	for _, pp := range e.sb.People() {
		for _, ev := range pp.Events {
			if strings.HasPrefix(ev.Name, "Lost") {
				t.Errorf("event of a user without identity delivered")
			}
		}
	}
}

func TestCustomSource(t *testing.T) {
	e := newEnv(t, nil, nil)
	body := []any{
		map[string]any{"webhook_id": "wh-1", "topic": "orders/create", "created_at": "2026-02-03T04:05:06+01:00",
			"customer": map[string]any{"id": 42, "email": "c42@example.com", "plan": "gold"},
			"order":    map[string]any{"total": 12.5, "items": []any{map[string]any{"name": "Widget"}}}},
		map[string]any{"customer": map[string]any{"email": "noid@example.com", "plan": "basic"}},
	}
	r := e.do(req{path: "/v1/custom/shop", key: keyCustom, body: body})
	if r.status != http.StatusAccepted || r.num("enqueued") != 3 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	eqCounts(t, "tasks", e.taskCounts(), map[string]int{tasks.TypeIdentify: 2, tasks.TypeTrack: 1})
	// A single object, signed instead of keyed, is accepted too; a repeat of
	// wh-1 is a duplicate.
	r = e.do(req{path: "/v1/custom/shop", key: keyCustom, body: body[0]})
	if r.status != http.StatusAccepted || r.num("duplicates") != 2 {
		t.Fatalf("repeat: %d %s", r.status, r.raw)
	}
	e.startWorker()
	e.waitDrained()
	p, ok := e.sb.Person("42")
	if !ok || p.Attributes["plan"] != "gold" || p.Attributes["first_item"] != "Widget" {
		t.Fatalf("person 42 = %+v", p)
	}
	evs := e.sb.Events("42")
	if len(evs) != 1 || evs[0].Name != "orders/create" || evs[0].Timestamp != time.Date(2026, 2, 3, 3, 5, 6, 0, time.UTC).Unix() || evs[0].Data["total"] == nil {
		t.Errorf("event = %+v", evs)
	}
	if q, ok := e.sb.Person("noid@example.com"); !ok || q.Attributes["plan"] != "basic" {
		t.Errorf("email-identified person = %+v %v", q, ok)
	}
}

func TestCustomSourcePipelines(t *testing.T) {
	fc := testConfig()
	fc.Sources = append(fc.Sources, SourceConfig{Name: "crm", Kind: KindCustom, Mode: ModePipelines, SharedSecret: "crm-secret",
		Mappings: &Mappings{UserID: "uid", Event: "what", MessageID: "id", Timestamp: "at", CustomAttributes: map[string]string{"tier": "t"}}})
	e := newEnv(t, fc, nil)
	b := bodyBytes(map[string]any{"uid": "p-1", "what": "Renewed", "t": 3, "id": "crm-1", "at": time.Now().Unix()})
	r := e.do(req{path: "/v1/custom/crm", body: b, headers: map[string]string{"X-Signature": sign("crm-secret", b)}})
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	eqCounts(t, "tasks", e.taskCounts(), map[string]int{tasks.TypeCDPIdentify: 1, tasks.TypeCDPTrack: 1})
	e.startWorker()
	e.waitSandbox("2 Pipelines messages", func(s *sandbox.Server) bool { return len(s.CDPMessages()) == 2 })
}

func TestGenericTasks(t *testing.T) {
	e := newEnv(t, nil, nil)
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := []any{
		map[string]any{"type": tasks.TypeSendEmail, "idempotency_key": "reset:abc",
			"payload": map[string]any{"transactional_message_id": "password_reset", "to": "g@example.com", "identifiers": map[string]any{"id": "g1"}}},
		map[string]any{"type": tasks.TypeIdentify, "workspace": "eu", "queue": "bulk",
			"payload": map[string]any{"identifiers": map[string]any{"id": "g1"}, "attributes": map[string]any{"plan": "pro"}}},
		map[string]any{"type": tasks.TypeTrack, "process_at": at,
			"payload": map[string]any{"identifiers": map[string]any{"id": "g1"}, "name": "later"}},
	}
	r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: body})
	rc, _ := r.body["receipts"].([]any)
	if r.status != http.StatusAccepted || len(rc) != 3 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	keyID, err := e.prod.TaskIDForKey(context.Background(), "reset:abc") // the key's hash, never the key
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ id, queue, typ string }{{keyID, "critical", tasks.TypeSendEmail}, {"", "bulk", tasks.TypeIdentify}, {"", "default", tasks.TypeTrack}}
	for i, w := range want {
		got := rc[i].(map[string]any)
		if (w.id != "" && got["task_id"] != w.id) || got["task_id"] == "" || got["queue"] != w.queue || got["type"] != w.typ || got["duplicate"] != false {
			t.Errorf("receipt %d = %v", i, got)
		}
	}
	if ti, err := e.insp.GetTaskInfo("default", rc[2].(map[string]any)["task_id"].(string)); err != nil || ti.State.String() != "scheduled" {
		t.Errorf("process_at: %+v %v", ti, err)
	}
	// The keyed send again: a duplicate with the first task's receipt.
	r = e.do(req{path: "/v1/tasks", bearer: taskToken, body: body[0]})
	rc, _ = r.body["receipts"].([]any)
	if r.status != http.StatusAccepted || len(rc) != 1 || rc[0].(map[string]any)["duplicate"] != true || rc[0].(map[string]any)["task_id"] != keyID {
		t.Fatalf("repeat: %d %s", r.status, r.raw)
	}
	e.startWorker()
	e.waitSandbox("the email and the identify", func(s *sandbox.Server) bool {
		p, _ := s.Person("g1")
		return len(s.Deliveries()) == 1 && p.Attributes["plan"] == "pro"
	})
	if e.metrics.get("backend/accepted") != 2 {
		t.Errorf("metrics = %v", e.metrics.n)
	}
}

// TestGzipAndWriteKeyScope: gzip bodies are accepted, a messageId is
// deduplicated per source (not across sources), and the default content
// type with charset is fine.
func TestGzipAndWriteKeyScope(t *testing.T) {
	e := newEnv(t, nil, nil)
	m := map[string]any{"userId": "z1", "event": "E", "messageId": "same-id"}
	r := e.do(req{path: "/v1/track", key: keyTrack, gzip: true, body: m, headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}})
	if r.status != 200 || r.num("enqueued") != 1 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	r = e.do(req{path: "/v1/track", key: keyRudder, body: m})
	if r.status != 200 || r.num("enqueued") != 1 {
		t.Fatalf("other source, same messageId: %d %s", r.status, r.raw)
	}
	r = e.do(req{path: "/v1/sources/web/track", key: keyTrack, body: m})
	if r.status != 200 || r.num("duplicates") != 1 {
		t.Fatalf("same source, same messageId: %d %s", r.status, r.raw)
	}
	// A messageId that is a ULID is the event id itself.
	const ulidID = "01HZY8V4Q6W5M3K2J1N0P9R8S7"
	if got := eventID("web", ulidID); got != ulidID {
		t.Errorf("eventID(ULID) = %s", got)
	}
	if a, b := eventID("web", "x"), eventID("web", "x"); a != b || len(a) != 26 || a == eventID("rudder", "x") {
		t.Errorf("derived ids: %s %s", a, b)
	}
}
