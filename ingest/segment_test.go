package ingest

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/tasks"
)

const ts0 = "2026-01-02T03:04:05.678Z"

var ts0Unix = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix()

// mixedBatch is a Segment batch of 100 messages of every type, with and
// without userId:
//
//	20 identify userId u0..u19 (email, plan, createdAt)
//	 5 identify userId u20..u24 + anonymousId anon-id-N
//	 5 identify anonymousId only
//	20 track userId u0..u19 "Order Completed"
//	10 track anonymousId only anon-tN
//	10 page: u0..u4 and anon-pN
//	10 screen: u5..u9 and anon-sN
//	10 group: u0..u9 into acme/globex
//	 5 alias: legacy-N into u20..u24
//	 5 track userId u10..u14 + anonymousId "Signed Up"
func mixedBatch() []map[string]any {
	var b []map[string]any
	n := 0
	add := func(m map[string]any) {
		m["messageId"] = fmt.Sprintf("msg-%03d", n)
		m["timestamp"] = ts0
		n++
		b = append(b, m)
	}
	for i := 0; i < 20; i++ {
		add(map[string]any{"type": "identify", "userId": fmt.Sprintf("u%d", i),
			"traits": map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "plan": "pro", "createdAt": "2025-12-31T00:00:00Z"}})
	}
	for i := 20; i < 25; i++ {
		add(map[string]any{"type": "identify", "userId": fmt.Sprintf("u%d", i), "anonymousId": fmt.Sprintf("anon-id-%d", i),
			"traits": map[string]any{"plan": "free"}})
	}
	for i := 0; i < 5; i++ {
		add(map[string]any{"type": "identify", "anonymousId": fmt.Sprintf("anon-only-%d", i), "traits": map[string]any{"x": 1}})
	}
	for i := 0; i < 20; i++ {
		add(map[string]any{"type": "track", "userId": fmt.Sprintf("u%d", i), "event": "Order Completed",
			"properties": map[string]any{"total": 10 + i}})
	}
	for i := 0; i < 10; i++ {
		add(map[string]any{"type": "track", "anonymousId": fmt.Sprintf("anon-t%d", i), "event": "Viewed Pricing"})
	}
	for i := 0; i < 10; i++ {
		m := map[string]any{"type": "page", "name": "Pricing", "properties": map[string]any{"url": fmt.Sprintf("https://example.com/p/%d", i)}}
		if i < 5 {
			m["userId"] = fmt.Sprintf("u%d", i)
		} else {
			m["anonymousId"] = fmt.Sprintf("anon-p%d", i)
		}
		add(m)
	}
	for i := 0; i < 10; i++ {
		m := map[string]any{"type": "screen", "name": fmt.Sprintf("Screen %d", i)}
		if i < 5 {
			m["userId"] = fmt.Sprintf("u%d", i+5)
		} else {
			m["anonymousId"] = fmt.Sprintf("anon-s%d", i)
		}
		add(m)
	}
	for i := 0; i < 10; i++ {
		g := "acme"
		if i%2 == 1 {
			g = "globex"
		}
		add(map[string]any{"type": "group", "userId": fmt.Sprintf("u%d", i), "groupId": g,
			"traits": map[string]any{"name": g + " Inc", "objectTypeId": "1", "relationshipAttributes": map[string]any{"role": "member"}}})
	}
	for i := 0; i < 5; i++ {
		add(map[string]any{"type": "alias", "userId": fmt.Sprintf("u%d", 20+i), "previousId": fmt.Sprintf("legacy-%d", i)})
	}
	for i := 0; i < 5; i++ {
		add(map[string]any{"type": "track", "userId": fmt.Sprintf("u%d", 10+i), "anonymousId": fmt.Sprintf("anon-su%d", i), "event": "Signed Up"})
	}
	return b
}

func TestSegmentBatchTrackMode(t *testing.T) {
	e := newEnv(t, nil, nil)
	batch := mixedBatch()
	if len(batch) != 100 {
		t.Fatalf("batch has %d messages", len(batch))
	}
	r := e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch, "context": map[string]any{"library": map[string]any{"name": "analytics-go"}}}})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if r.num("received") != 100 || r.num("enqueued") != 105 || r.num("duplicates") != 0 || r.num("skipped") != 5 {
		t.Errorf("response = %s", r.raw)
	}
	eqCounts(t, "tasks in Redis", e.taskCounts(), map[string]int{
		tasks.TypeIdentify: 20, tasks.TypeMergeAnonymous: 5, tasks.TypeTrack: 35, tasks.TypeTrackAnonymous: 20,
		tasks.TypeObjectUpsert: 10, tasks.TypeRelate: 10, tasks.TypeMergePeople: 5,
	})

	e.startWorker()
	e.waitDrained()
	s := e.sb
	for i := 0; i < 20; i++ {
		p, ok := s.Person(fmt.Sprintf("u%d", i))
		if !ok {
			t.Fatalf("u%d not created", i)
		}
		if p.Email != fmt.Sprintf("u%d@example.com", i) && p.Attributes["email"] != fmt.Sprintf("u%d@example.com", i) {
			t.Errorf("u%d email = %q / %v", i, p.Email, p.Attributes["email"])
		}
		if p.Attributes["plan"] != "pro" {
			t.Errorf("u%d plan = %v", i, p.Attributes["plan"])
		}
		if got := fmt.Sprint(p.Attributes["created_at"]); got != fmt.Sprint(time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC).Unix()) {
			t.Errorf("u%d created_at = %v", i, p.Attributes["created_at"])
		}
	}
	// Events: order for everyone, pages for u0..u4, screens for u5..u9,
	// Signed Up for u10..u14.
	personEvents := 0
	for i := 0; i < 20; i++ {
		evs := s.Events(fmt.Sprintf("u%d", i))
		personEvents += len(evs)
		want := 1
		if i < 15 {
			want = 2
		}
		if len(evs) != want {
			t.Errorf("u%d has %d events, want %d: %+v", i, len(evs), want, evs)
		}
		for _, ev := range evs {
			if ev.Timestamp != ts0Unix {
				t.Errorf("u%d event %q timestamp %d, want %d", i, ev.Name, ev.Timestamp, ts0Unix)
			}
			if len(ev.ID) != 26 {
				t.Errorf("u%d event %q id %q is not a ULID", i, ev.Name, ev.ID)
			}
			switch {
			case i < 5 && ev.Type == "page":
				if ev.Name != fmt.Sprintf("https://example.com/p/%d", i) {
					t.Errorf("page name %q", ev.Name)
				}
			case i >= 5 && i < 10 && ev.Type == "screen":
				if ev.Name != fmt.Sprintf("Screen %d", i-5) {
					t.Errorf("screen name %q", ev.Name)
				}
			case ev.Type != "event" && ev.Type != "":
				t.Errorf("u%d unexpected event type %q", i, ev.Type)
			}
		}
	}
	if personEvents != 35 {
		t.Errorf("person events = %d, want 35", personEvents)
	}
	// The first order event's id is the one derived from its messageId.
	if evs := s.Events("u0"); len(evs) > 0 {
		found := false
		for _, ev := range evs {
			if ev.Name == "Order Completed" && ev.ID == eventID("web", "msg-030") {
				found = true
			}
		}
		if !found {
			t.Errorf("u0's order event does not carry the id derived from msg-030: %+v", evs)
		}
	}
	anon := 0
	for i := 0; i < 10; i++ {
		anon += len(s.AnonymousEvents(fmt.Sprintf("anon-t%d", i)))
	}
	for i := 5; i < 10; i++ {
		anon += len(s.AnonymousEvents(fmt.Sprintf("anon-p%d", i))) + len(s.AnonymousEvents(fmt.Sprintf("anon-s%d", i)))
	}
	if anon != 20 {
		t.Errorf("anonymous events = %d, want 20", anon)
	}
	for _, g := range []string{"acme", "globex"} {
		o, ok := s.Object("1", g)
		if !ok || o.Attributes["name"] != g+" Inc" {
			t.Errorf("object %s = %+v, %v", g, o, ok)
		}
	}
	rels := s.Relationships("")
	if len(rels) != 10 {
		t.Errorf("relationships = %d, want 10", len(rels))
	}
	for _, rl := range rels {
		if rl.Attributes["role"] != "member" {
			t.Errorf("relationship attributes = %v", rl.Attributes)
		}
	}
	merges := s.Merges()
	if len(merges) != 5 {
		t.Fatalf("merges = %d, want 5", len(merges))
	}
	for i, m := range merges {
		if m.Primary["id"] != fmt.Sprintf("u%d", 20+i) || m.Secondary["id"] != fmt.Sprintf("legacy-%d", i) {
			t.Errorf("merge %d = %v ← %v", i, m.Primary, m.Secondary)
		}
	}
	for i := 20; i < 25; i++ {
		p, ok := s.Person(fmt.Sprintf("u%d", i))
		if !ok || p.Attributes["anonymous_id"] != fmt.Sprintf("anon-id-%d", i) {
			t.Errorf("u%d (merge_anonymous) = %+v", i, p)
		}
	}
	if len(s.CDPMessages()) != 0 {
		t.Errorf("track mode sent %d Pipelines messages", len(s.CDPMessages()))
	}
	if got := e.metrics.get("web/accepted"); got != 1 {
		t.Errorf("metrics web/accepted = %d", got)
	}

	// The same batch again: every task is a repeat.
	r = e.do(req{path: "/v1/b", key: keyTrack, body: map[string]any{"batch": batch}})
	if r.status != http.StatusOK || r.num("enqueued") != 0 || r.num("duplicates") != 105 {
		t.Errorf("repeat: %d %s", r.status, r.raw)
	}
	if n := e.totalTasks(); n != 0 {
		t.Errorf("repeat enqueued %d tasks", n)
	}
}

func TestSegmentBatchPipelinesMode(t *testing.T) {
	e := newEnv(t, nil, nil)
	batch := mixedBatch()
	// Segment fields customerio.PipelinesMessage does not name must reach
	// Customer.io too.
	for i, m := range batch {
		m["sentAt"] = "2026-01-02T03:04:06.000Z"
		m["originalTimestamp"] = "2026-01-02T03:04:04.000Z"
		m["channel"] = "server"
		m["version"] = 2
		m["_metadata"] = map[string]any{"n": i}
	}
	r := e.do(req{path: "/v1/batch", key: keyPipelines, gzip: true, body: map[string]any{"batch": batch,
		"context": map[string]any{"library": map[string]any{"name": "analytics-node"}}}})
	if r.status != http.StatusOK || r.num("enqueued") != 100 || r.num("skipped") != 0 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	eqCounts(t, "tasks in Redis", e.taskCounts(), map[string]int{
		tasks.TypeCDPIdentify: 30, tasks.TypeCDPTrack: 35, tasks.TypeCDPPage: 10, tasks.TypeCDPScreen: 10,
		tasks.TypeCDPGroup: 10, tasks.TypeCDPAlias: 5,
	})
	e.startWorker()
	e.waitSandbox("100 Pipelines messages", func(s *sandbox.Server) bool { return len(s.CDPMessages()) == 100 })
	byType := map[string]int{}
	for i, m := range e.sb.CDPMessages() {
		byType[m.Type]++
		if m.Problem != "" || (!m.Applied && (m.Type != "identify" || m.Body["userId"] != nil)) {
			t.Errorf("message %d (%s) not applied: %s", i, m.Type, m.Problem)
		}
		if m.Body["messageId"] == nil || m.Body["timestamp"] != ts0 {
			t.Errorf("message %d lost messageId or timestamp: %v", i, m.Body)
		}
		if m.Body["sentAt"] != "2026-01-02T03:04:06.000Z" || m.Body["originalTimestamp"] != "2026-01-02T03:04:04.000Z" ||
			m.Body["channel"] != "server" || m.Body["version"] != int64(2) {
			t.Errorf("message %d lost Segment fields: %v", i, m.Body)
		}
		if md, _ := m.Body["_metadata"].(map[string]any); md == nil || md["n"] == nil {
			t.Errorf("message %d lost _metadata: %v", i, m.Body)
		}
		ctx, _ := m.Body["context"].(map[string]any)
		lib, _ := ctx["library"].(map[string]any)
		if lib["name"] != "analytics-node" {
			t.Errorf("message %d lost the batch context: %v", i, m.Body["context"])
		}
	}
	eqCounts(t, "Pipelines calls", byType, map[string]int{"identify": 30, "track": 35, "page": 10, "screen": 10, "group": 10, "alias": 5})
	if len(e.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack})) != 0 {
		t.Errorf("pipelines mode called the Track API")
	}
}

// TestSingleEndpoints sends one message to every single-call endpoint and
// its short alias, and a webhook-style message to /v1/sources/{source}.
func TestSingleEndpoints(t *testing.T) {
	e := newEnv(t, nil, nil)
	msgs := map[string]map[string]any{
		"identify": {"userId": "s1", "traits": map[string]any{"email": "s1@example.com"}},
		"track":    {"userId": "s1", "event": "Clicked"},
		"page":     {"userId": "s1", "properties": map[string]any{"path": "/home"}},
		"screen":   {"anonymousId": "a-s", "name": "Home"},
		"group":    {"userId": "s1", "groupId": "g1", "traits": map[string]any{"objectTypeId": 2, "name": "G"}},
		"alias":    {"userId": "s1", "previousId": "old-s1"},
	}
	want := map[string]string{"identify": tasks.TypeIdentify, "track": tasks.TypeTrack, "page": tasks.TypeTrack,
		"screen": tasks.TypeTrackAnonymous, "group": tasks.TypeObjectUpsert, "alias": tasks.TypeMergePeople}
	for _, long := range []bool{true, false} {
		for call, m := range msgs {
			path := "/v1/" + call
			if !long {
				path = "/v1/" + call[:1]
			}
			before := e.taskCounts()
			r := e.do(req{path: path, key: keyTrack, body: m})
			if r.status != http.StatusOK {
				t.Errorf("%s: %d %s", path, r.status, r.raw)
				continue
			}
			after := e.taskCounts()
			if after[want[call]] <= before[want[call]] {
				t.Errorf("%s: no %s task enqueued", path, want[call])
			}
		}
	}
	// Pipelines mode on a short path, and RudderStack on the long one.
	r := e.do(req{path: "/v1/t", key: keyPipelines, body: map[string]any{"userId": "p1", "event": "E", "messageId": "m-1"}})
	if r.status != http.StatusOK || e.taskCounts()[tasks.TypeCDPTrack] != 1 {
		t.Errorf("pipelines /v1/t: %d %s", r.status, r.raw)
	}
	r = e.do(req{path: "/v1/identify", key: keyRudder, body: map[string]any{"userId": "r1", "type": "identify", "channel": "server"}})
	if r.status != http.StatusOK {
		t.Errorf("rudderstack identify: %d %s", r.status, r.raw)
	}
	// Webhook destination: named source, signed body, type in the body.
	body := bodyBytes(map[string]any{"type": "track", "userId": "h1", "event": "Hooked", "messageId": "hm-1",
		"sentAt": time.Now().UTC().Format(time.RFC3339)})
	r = e.do(req{path: "/v1/sources/hook", body: body, headers: map[string]string{"X-Signature": sign(hookSecret, body)}})
	if r.status != http.StatusOK || r.num("enqueued") != 1 {
		t.Errorf("webhook: %d %s", r.status, r.raw)
	}
	e.startWorker()
	e.waitDrained()
	if p, ok := e.sb.Person("s1"); !ok || p.Attributes["email"] != "s1@example.com" && p.Email != "s1@example.com" {
		t.Errorf("s1 = %+v", p)
	}
	if _, ok := e.sb.Object("2", "g1"); !ok {
		t.Errorf("object 2/g1 missing (objectTypeId given as a number)")
	}
	if evs := e.sb.Events("h1"); len(evs) != 1 || evs[0].Name != "Hooked" || evs[0].ID != eventID("hook", "hm-1") {
		t.Errorf("webhook event = %+v", evs)
	}
	if evs := e.sb.AnonymousEvents("a-s"); len(evs) != 2 || evs[0].Type != "screen" || evs[0].Name != "Home" {
		t.Errorf("anonymous screen = %+v", evs)
	}
}

// TestSemanticEvents turns Customer.io's semantic events into their tasks
// and checks their effect.
func TestSemanticEvents(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.startWorker()
	post := func(m map[string]any) {
		t.Helper()
		if r := e.do(req{path: "/v1/track", key: keyTrack, body: m}); r.status != http.StatusOK {
			t.Fatalf("%v: %d %s", m["event"], r.status, r.raw)
		}
	}
	for _, u := range []string{"d1", "d2", "d3"} {
		if r := e.do(req{path: "/v1/identify", key: keyTrack, body: map[string]any{"userId": u, "traits": map[string]any{"email": u + "@example.com"}}}); r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	if r := e.do(req{path: "/v1/group", key: keyTrack, body: map[string]any{"userId": "d1", "groupId": "co"}}); r.status != 200 {
		t.Fatal(r.raw)
	}
	if r := e.do(req{path: "/v1/group", key: keyTrack, body: map[string]any{"anonymousId": "x", "groupId": "gone"}}); r.status != 200 || r.num("enqueued") != 1 {
		t.Fatal(r.raw)
	}
	post(map[string]any{"userId": "d1", "event": "Device Created or Updated",
		"context": map[string]any{"device": map[string]any{"token": "tok-1", "type": "ios"}, "app": map[string]any{"version": "1.2"}}})
	e.waitSandbox("device and relationship", func(s *sandbox.Server) bool {
		p, _ := s.Person("d1")
		_, gone := s.Object("1", "gone")
		return len(p.Devices) == 1 && len(s.Relationships("d1")) == 1 && gone
	})
	if p, _ := e.sb.Person("d1"); p.Devices[0].Platform != "ios" {
		t.Errorf("device = %+v", p.Devices[0])
	}
	post(map[string]any{"userId": "d1", "event": "Device Deleted", "context": map[string]any{"device": map[string]any{"token": "tok-1"}}})
	post(map[string]any{"userId": "d1", "event": "Relationship Deleted", "properties": map[string]any{"objectId": "co"}})
	post(map[string]any{"anonymousId": "placeholder", "event": "Object Deleted", "properties": map[string]any{"objectId": "gone", "objectTypeId": "1"}})
	post(map[string]any{"userId": "d2", "event": "User Deleted"})
	post(map[string]any{"userId": "d3", "event": "User Suppressed"})
	e.waitSandbox("semantic effects", func(s *sandbox.Server) bool {
		p, _ := s.Person("d1")
		_, d2 := s.Person("d2")
		_, gone := s.Object("1", "gone")
		return len(p.Devices) == 0 && len(s.Relationships("d1")) == 0 && !gone && !d2 && len(s.Suppressions()) == 1
	})
	post(map[string]any{"userId": "d3", "event": "User Unsuppressed"})
	e.waitSandbox("unsuppressed", func(s *sandbox.Server) bool { return len(s.Suppressions()) == 0 })
	if n := len(e.sb.Events("d1")); n != 0 {
		t.Errorf("semantic events were also tracked as events: %d", n)
	}
}
