package worker

import (
	"context"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/tasks"
)

// TestEveryTaskType sends every task type producer → Redis → worker →
// sandbox and checks the sandbox's state shows its effect, once through
// Track v2 batches (the default) and once one request per task (v1 and
// /api/v2/entity, CIOQ_BATCH=off).
func TestEveryTaskType(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		mod  func(*Config)
	}{{"batched", nil}, {"unbatched", unbatched}} {
		t.Run(mode.name, func(t *testing.T) { testEveryTaskType(t, mode.mod) })
	}
}

func testEveryTaskType(t *testing.T, mod func(*Config)) {
	h := newHarness(t, mod)
	h.dumpOnFailure(t)
	ctx := context.Background()
	p := h.prod
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	id := func(s string) customerio.Identifiers { return customerio.Identifiers{ID: s} }

	// Stage 1: create people, objects, events; sends; broadcasts; CDP.
	must(p.Identify(ctx, tasks.Identify{Identifiers: id("u1"), Attributes: map[string]any{"plan": "pro", "email": "u1@example.com"}}))
	for _, u := range []string{"u2", "u3"} {
		must(p.Identify(ctx, tasks.Identify{Identifiers: id(u), Attributes: map[string]any{"n": 1}}))
	}
	must(p.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{Email: "u4@example.com"}}))
	must(p.Track(ctx, tasks.Track{Identifiers: id("u1"), Event: customerio.Event{Name: "order_completed", Data: map[string]any{"total": 5}}}))
	must(p.TrackAnonymous(ctx, tasks.TrackAnonymous{AnonymousID: "anon-1", Name: "/pricing", Type: customerio.EventTypePage}))
	must(p.AddDevice(ctx, tasks.DeviceAdd{Identifiers: id("u1"), Device: customerio.Device{ID: "tok-1", Platform: "ios"}}))
	must(p.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: map[string]any{"name": "Acme"}}))
	must(p.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "gone", Attributes: map[string]any{"name": "Gone"}}))
	must(p.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"}))
	must(p.SendPush(ctx, tasks.SendPush{SendOptions: customerio.SendOptions{TransactionalMessageID: "12", Identifiers: &customerio.Identifiers{ID: "u1"}}}))
	must(p.SendSMS(ctx, tasks.SendSMS{SendOptions: customerio.SendOptions{TransactionalMessageID: "code", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "+15555550100"}))
	must(p.SendInApp(ctx, tasks.SendInApp{SendOptions: customerio.SendOptions{TransactionalMessageID: "7", Identifiers: &customerio.Identifiers{ID: "u1"}}}))
	must(p.SendInbox(ctx, tasks.SendInbox{SendOptions: customerio.SendOptions{TransactionalMessageID: "8", Identifiers: &customerio.Identifiers{ID: "u1"}}}))
	must(p.SendWhatsApp(ctx, tasks.SendWhatsApp{SendOptions: customerio.SendOptions{TransactionalMessageID: "wa", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "+15555550100"}))
	must(p.TriggerBroadcast(ctx, tasks.BroadcastTrigger{BroadcastID: 3, TriggerBroadcastRequest: customerio.TriggerBroadcastRequest{Data: map[string]any{"headline": "sale"}}}))
	must(p.CDPIdentify(ctx, tasks.CDPIdentify{UserID: "c1", Traits: map[string]any{"plan": "pro"}}))
	must(p.CDPTrack(ctx, tasks.CDPTrack{UserID: "c1", Event: "Order Completed"}))
	must(p.CDPPage(ctx, tasks.CDPPage{AnonymousID: "anon-c", Name: "Pricing"}))
	must(p.CDPScreen(ctx, tasks.CDPScreen{UserID: "c1", Name: "Checkout"}))
	must(p.CDPGroup(ctx, tasks.CDPGroup{UserID: "c1", GroupID: "acme"}))
	must(p.CDPAlias(ctx, tasks.CDPAlias{PreviousID: "anon-c", UserID: "c1"}))

	waitSandbox(t, h.sb, 60*time.Second, "stage 1 effects", func(s *sandbox.Server) bool {
		u1, ok := s.Person("u1")
		if !ok || u1.Attributes["plan"] != "pro" || len(u1.Devices) != 1 {
			return false
		}
		if len(s.Events("u1")) != 1 || len(s.AnonymousEvents("anon-1")) != 1 {
			return false
		}
		if _, ok := s.Object("1", "acme"); !ok {
			return false
		}
		if _, ok := s.Person("u4@example.com"); !ok {
			return false
		}
		return len(s.Deliveries()) == 6 && len(s.Triggers()) == 1 && len(s.CDPMessages()) == 6
	})
	chans := map[string]bool{}
	for _, d := range h.sb.Deliveries() {
		chans[d.Channel] = true
	}
	for _, c := range []string{"email", "push", "sms", "in_app", "inbox_message", "whatsapp"} {
		if !chans[c] {
			t.Errorf("no %s delivery recorded: %v", c, chans)
		}
	}

	// Stage 2: relationships, the anonymous merge, deletes, suppressions, a
	// manual segment (its people exist now: unknown ids are ignored).
	must(p.AddToSegment(ctx, tasks.SegmentAdd{SegmentID: 7, IDs: []string{"u1", "u2"}}))
	must(p.Relate(ctx, tasks.Relate{Identifiers: id("u1"), ObjectTypeID: "1", ObjectID: "acme"}))
	must(p.Relate(ctx, tasks.Relate{Identifiers: id("u3"), ObjectTypeID: "1", ObjectID: "acme"}))
	must(p.MergeAnonymous(ctx, tasks.MergeAnonymous{Identifiers: id("u1"), AnonymousID: "anon-1"}))
	must(p.Suppress(ctx, tasks.Suppress{Identifiers: customerio.Identifiers{Email: "u4@example.com"}}))
	must(p.DeleteDevice(ctx, tasks.DeviceDelete{Identifiers: id("u1"), Device: tasks.DeviceRef{ID: "tok-1"}}))
	must(p.DeleteObject(ctx, tasks.ObjectDelete{ObjectTypeID: "1", ObjectID: "gone"}))
	waitSandbox(t, h.sb, 60*time.Second, "stage 2 effects", func(s *sandbox.Server) bool {
		if len(s.Relationships("u1")) != 1 {
			return false
		}
		if ev := s.Events("u1"); len(ev) != 2 { // its own event + the merged anonymous page view
			return false
		}
		if len(s.Suppressions()) != 1 {
			return false
		}
		if _, ok := s.Object("1", "gone"); ok {
			return false
		}
		if u1, _ := s.Person("u1"); len(u1.Devices) != 0 {
			return false
		}
		m, _ := s.SegmentMembers(7)
		return len(m) == 2
	})

	// Stage 3: undo a suppression and a relationship, leave the segment,
	// delete u3. Tasks of one stage run concurrently and in no set order, so
	// no stage holds two tasks whose effects depend on each other's order (a
	// relate after a delete recreates the person; a segment add before the
	// person exists is ignored; a merge before a segment removal brings the
	// membership back).
	must(p.Delete(ctx, tasks.Delete{Identifiers: id("u3")}))
	must(p.RemoveFromSegment(ctx, tasks.SegmentRemove{SegmentID: 7, IDs: []string{"u1"}}))
	must(p.Unsuppress(ctx, tasks.Unsuppress{Identifiers: customerio.Identifiers{Email: "u4@example.com"}}))
	must(p.Unrelate(ctx, tasks.Unrelate{Identifiers: id("u1"), ObjectTypeID: "1", ObjectID: "acme"}))
	waitSandbox(t, h.sb, 60*time.Second, "stage 3 effects", func(s *sandbox.Server) bool {
		_, u3 := s.Person("u3")
		m, _ := s.SegmentMembers(7)
		return !u3 && len(m) == 1 && m[0].ID == "u2" &&
			len(s.Suppressions()) == 0 && len(s.Relationships("u1")) == 0
	})

	// Stage 4: merge u2 into u1; u2's segment membership moves to u1.
	must(p.MergePeople(ctx, tasks.MergePeople{Primary: id("u1"), Secondary: id("u2")}))
	waitSandbox(t, h.sb, 60*time.Second, "stage 4 effects", func(s *sandbox.Server) bool {
		_, u2 := s.Person("u2")
		m, _ := s.SegmentMembers(7)
		return !u2 && len(s.Merges()) == 1 && len(m) == 1 && m[0].ID == "u1"
	})
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		p, _ := h.w.DLQ().List(ctx, Filter{})
		for _, d := range p.Items {
			t.Errorf("dead letter %s %s: %s %d %s", d.Type, d.Class, d.Error, d.Status, d.Message)
		}
	}
	if err := h.w.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}
	v1 := len(h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, PathContains: "/api/v1/customers/"}))
	batches := len(h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, PathContains: "/api/v2/batch"}))
	if batched := mod == nil; batched && (batches == 0 || v1 != 0) || !batched && (batches != 0 || v1 == 0) {
		t.Errorf("%d v1 person requests and %d batch requests: wrong path for this mode", v1, batches)
	}
}
