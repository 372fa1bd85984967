package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/tasks"
)

// The payloads below are as large as enqueue accepts and larger than one
// Track v2 batch item (32,000 bytes encoded). Each must reach the sandbox
// whole, batched (the default) or not; the sandbox enforces Customer.io's
// documented limits, so a request Customer.io would refuse fails the test.

// bigAttrs returns n attributes <prefix>000.. of size bytes each.
func bigAttrs(prefix string, n, size int) map[string]any {
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("%s%03d", prefix, i)] = strings.Repeat(string(rune('a'+i%26)), size)
	}
	return m
}

var batchModes = []struct {
	name string
	mod  func(*Config)
}{{"batched", nil}, {"unbatched", unbatched}}

// waitDone waits until every task id left Redis as delivered, failing with
// what the dead letter store holds.
func waitDone(t *testing.T, h *harness, ids ...string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 30*time.Second, "tasks delivered", func() bool {
		if n, _ := h.w.DLQ().Count(ctx); n != 0 {
			pg, _ := h.w.DLQ().List(ctx, Filter{})
			for _, d := range pg.Items {
				t.Errorf("dead letter %s %s status %d: %s", d.Type, d.Class, d.Status, d.Error)
			}
			t.FailNow()
		}
		for _, id := range ids {
			if !h.done(id) {
				return false
			}
		}
		return true
	})
}

// TestLargeEventDeliveredThroughV1 is the reproduction: an event of
// 50,000 bytes of data (Track allows 100,000) enqueued as the CLI does. It
// is too large for a batch item, so even with batching on it goes alone to
// POST /api/v1/customers/{id}/events and arrives with all its data.
func TestLargeEventDeliveredThroughV1(t *testing.T) {
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.mod)
			h.dumpOnFailure(t)
			ctx := context.Background()
			payload, _ := json.Marshal(map[string]any{"identifiers": map[string]any{"id": "q-big"}, "name": "big_event",
				"data": map[string]any{"blob": strings.Repeat("x", 50_000)}})
			rc, err := h.prod.EnqueueRaw(ctx, tasks.TypeTrack, payload)
			if err != nil {
				t.Fatal(err)
			}
			// A small event of the same person still goes in a batch.
			small, err := h.prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "q-big"}, Event: customerio.Event{Name: "small"}})
			if err != nil {
				t.Fatal(err)
			}
			waitSandbox(t, h.sb, 30*time.Second, "both events", func(s *sandbox.Server) bool { return len(s.Events("q-big")) == 2 })
			// Both tasks done: the sandbox records a request after its
			// handler stored the event, so only an answered request is
			// surely in the request log.
			waitDone(t, h, rc.TaskID, small.TaskID)
			var big *sandbox.Event
			for _, e := range h.sb.Events("q-big") {
				if e.Name == "big_event" {
					big = &e
				}
			}
			if big == nil || big.Data["blob"] != strings.Repeat("x", 50_000) {
				t.Fatalf("the big event arrived without its data: %+v", big)
			}
			v1 := h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, Method: "POST", PathContains: "/api/v1/customers/q-big/events"})
			if len(v1) == 0 || v1[0].Status != 200 {
				t.Fatalf("v1 event requests %v, want one answered 200", statuses(v1))
			}
			if mode.mod == nil {
				if len(v1) != 1 {
					t.Errorf("%d v1 event requests, want 1 (only the big one)", len(v1))
				}
				if len(batchRequests(h.sb)) == 0 {
					t.Error("the small event was not batched")
				}
				if st := h.w.BatchStats(); st.ItemErrors != 0 {
					t.Errorf("batch stats %+v", st)
				}
			}
		})
	}
}

// TestLargeIdentifyDelivered: an identify of 300 attributes of 1,000 bytes
// (~350 KB), a merge_anonymous of 299 and a device of 300 attribute values
// of 1,000 bytes each go to Track v1 alone (one request each: their v1
// limits are 300 attributes of 1,000 bytes, with no size limit of the
// body), and the sandbox holds every attribute.
func TestLargeIdentifyDelivered(t *testing.T) {
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.mod)
			h.dumpOnFailure(t)
			ctx := context.Background()
			attrs := bigAttrs("a", 300, 1000)
			r1, err := h.prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "big-1"}, Attributes: attrs})
			if err != nil {
				t.Fatal(err)
			}
			merge := bigAttrs("m", 299, 1000)
			r2, err := h.prod.MergeAnonymous(ctx, tasks.MergeAnonymous{Identifiers: customerio.Identifiers{Email: "big-2@example.com"}, AnonymousID: "anon-big", Attributes: merge})
			if err != nil {
				t.Fatal(err)
			}
			dev := map[string]string{}
			for k := range bigAttrs("d", 300, 0) {
				dev[k] = strings.Repeat("d", 1000)
			}
			r3, err := h.prod.AddDevice(ctx, tasks.DeviceAdd{Identifiers: customerio.Identifiers{ID: "big-3"}, Device: customerio.Device{ID: "tok-big", Platform: "android", Attributes: dev}})
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, h, r1.TaskID, r2.TaskID, r3.TaskID)
			p, ok := h.sb.Person("big-1")
			if !ok || len(p.Attributes) != 300 {
				t.Fatalf("big-1 has %d attributes, want 300", len(p.Attributes))
			}
			for k, v := range attrs {
				if p.Attributes[k] != v {
					t.Fatalf("attribute %s arrived as %.20v", k, p.Attributes[k])
				}
			}
			p2, ok := h.sb.Person("big-2@example.com")
			if !ok || len(p2.Attributes) != 300 || p2.Attributes["anonymous_id"] != "anon-big" || p2.Attributes["m298"] != merge["m298"] {
				t.Fatalf("big-2 has %d attributes", len(p2.Attributes))
			}
			p3, ok := h.sb.Person("big-3")
			if !ok || len(p3.Devices) != 1 || len(p3.Devices[0].Attributes) != 300 {
				t.Fatalf("big-3 devices %d", len(p3.Devices))
			}
			if n := len(h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, Method: "PUT", PathContains: "/api/v1/customers/"})); n != 3 {
				t.Errorf("%d v1 PUT requests, want 3 (one per task)", n)
			}
		})
	}
}

// TestLargeObjectAndRelationshipSplit: an object upsert and a relationship
// with 95 attributes of 1,000 bytes (~96 KB, under the 100 KB that an object
// or relationship may hold) have no Track v1 endpoint: each is delivered as
// several Track v2 operations, every one under 32,000 bytes, and the
// sandbox ends with every attribute.
func TestLargeObjectAndRelationshipSplit(t *testing.T) {
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.mod)
			h.dumpOnFailure(t)
			ctx := context.Background()
			oattrs := bigAttrs("o", 95, 1000)
			r1, err := h.prod.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "big-co", Attributes: oattrs})
			if err != nil {
				t.Fatal(err)
			}
			rattrs := bigAttrs("r", 95, 1000)
			r2, err := h.prod.Relate(ctx, tasks.Relate{Identifiers: customerio.Identifiers{ID: "member"}, ObjectTypeID: "1", ObjectID: "big-co", RelationshipAttributes: rattrs})
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, h, r1.TaskID, r2.TaskID)
			o, ok := h.sb.Object("1", "big-co")
			if !ok || len(o.Attributes) != 95 {
				t.Fatalf("object has %d attributes, want 95", len(o.Attributes))
			}
			for k, v := range oattrs {
				if o.Attributes[k] != v {
					t.Fatalf("object attribute %s arrived as %.20v", k, o.Attributes[k])
				}
			}
			rels := h.sb.Relationships("member")
			if len(rels) != 1 || len(rels[0].Attributes) != 95 || rels[0].Attributes["r094"] != rattrs["r094"] {
				t.Fatalf("relationships %d", len(rels))
			}
			if mode.mod != nil {
				// 4 parts each, one /api/v2/entity request per part.
				ents := requestsTo(h.sb, sandbox.GroupTrack, "/api/v2/entity")
				if len(ents) != 8 {
					t.Errorf("%d entity requests %v, want 8", len(ents), statuses(ents))
				}
				for _, r := range ents {
					if len(r.Body) >= customerio.MaxEntityBytes || r.Status != 200 {
						t.Errorf("entity request of %d bytes answered %d", len(r.Body), r.Status)
					}
				}
				return
			}
			if st := h.w.BatchStats(); st.Ops != 8 || st.ItemErrors != 0 {
				t.Errorf("batch stats %+v, want 8 operations and no item errors", st)
			}
		})
	}
}

// TestSplitPartRefusedDeadLettersTask: Customer.io refusing one part of a
// split upsert dead-letters the task, with Customer.io's reason, though the
// other parts were accepted.
func TestSplitPartRefusedDeadLettersTask(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Batching.Linger = 50 * time.Millisecond }, true)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 207, PathPrefix: "/api/v2/batch", Times: 1,
		Body: `{"errors":[{"batch_index":0,"reason":"invalid","field":"attributes","message":"Attribute value too long"}]}`})
	rc, err := h.prod.UpsertObject(context.Background(), tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "refused", Attributes: bigAttrs("o", 95, 1000)})
	if err != nil {
		t.Fatal(err)
	}
	h.start(t)
	ctx := context.Background()
	var d *DeadLetter
	eventually(t, 20*time.Second, "the task dead-lettered", func() bool {
		d, _ = h.w.DLQ().Get(ctx, rc.TaskID)
		return d != nil
	})
	if d.Class != DeadLetterPermanent || d.Status != 400 || !strings.Contains(d.Error, "Attribute value too long") || !strings.Contains(d.Error, "part ") {
		t.Errorf("dead letter %s %d %q, want permanent 400 naming the part and Customer.io's message", d.Class, d.Status, d.Error)
	}
	if reqs := batchRequests(h.sb); len(reqs) == 0 || reqs[0].Status != 207 {
		t.Errorf("batch requests %v", statuses(reqs))
	}
}

// TestSplitPartTransientRetriesTask: a transient failure of some parts of a
// split upsert retries the task, which then sends every part again (those
// already accepted too: attributes merge) and is delivered whole.
func TestSplitPartTransientRetriesTask(t *testing.T) {
	for _, mode := range batchModes {
		t.Run(mode.name, func(t *testing.T) {
			mod := mode.mod
			if mod == nil {
				// Two parts per batch request: the 4 parts go in 2 requests,
				// one of which fails while the other is accepted.
				mod = func(c *Config) { c.Batching.MaxOps = 2; c.Batching.Linger = 50 * time.Millisecond }
			}
			h := newHarness(t, mod, true)
			h.dumpOnFailure(t)
			h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, Times: 1})
			attrs := bigAttrs("o", 95, 1000)
			rc, err := h.prod.UpsertObject(context.Background(), tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "retried", Attributes: attrs})
			if err != nil {
				t.Fatal(err)
			}
			h.start(t)
			waitDone(t, h, rc.TaskID)
			o, ok := h.sb.Object("1", "retried")
			if !ok || len(o.Attributes) != 95 {
				t.Fatalf("object has %d attributes, want 95", len(o.Attributes))
			}
			reqs := h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack})
			failed := 0
			for _, r := range reqs {
				if r.Status == 503 {
					failed++
				}
			}
			if failed != 1 {
				t.Errorf("%d requests failed with 503, want the one injected", failed)
			}
			if mode.mod != nil {
				// Part 1 failed, then the retry sent all 4.
				if n := len(requestsTo(h.sb, sandbox.GroupTrack, "/api/v2/entity")); n != 5 {
					t.Errorf("%d entity requests, want 5", n)
				}
				return
			}
			// 4 parts sent, 2 of them refused with the request; the retry
			// sent all 4 again.
			if st := h.w.BatchStats(); st.Ops != 8 || st.RequestErrors != 1 {
				t.Errorf("batch stats %+v, want 8 operations sent and 1 failed request", st)
			}
		})
	}
}
