package worker

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/tasks"
)

// testClock is a hand-stepped clock for the sandbox (Config.Now).
var tctx = context.Background()

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClockedHarness is newHarness with a sandbox on a hand-stepped clock.
func newClockedHarness(t *testing.T, mod func(*Config)) (*harness, *testClock) {
	t.Helper()
	ck := &testClock{t: time.Unix(1_767_222_000, 0)}
	h := newHarnessWith(t, harnessOptions{Config: mod, Sandbox: &sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1, Now: ck.Now}})
	h.dumpOnFailure(t)
	return h, ck
}

type rescueCounter struct {
	NopObserver
	n atomic.Int64
}

func (r *rescueCounter) AnonymousRescued(string, string) { r.n.Add(1) }

// TestAnonymousMergeRescue: an anonymous event delivered more than five
// minutes after the identify that merged its visitor is orphaned by
// Customer.io (the sandbox enforces the window); with the worker's merge
// record (the default) it lands on the person, with the same event id,
// and the rescue is counted (the on-time event's too: every event of a
// merged visitor goes as the person's).
func TestAnonymousMergeRescue(t *testing.T) {
	t.Parallel()
	const anon, eventID = "anon-late-1", "01JGZ8V4Q6W5M3K2J1N0P9R8S7"
	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		rescue bool
	}{{"without the merge record", -1, false}, {"with it", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &rescueCounter{}
			h, ck := newClockedHarness(t, func(c *Config) { c.AnonymousMergeTTL, c.Observer = tc.ttl, obs })
			mrc, err := h.prod.MergeAnonymous(tctx, tasks.MergeAnonymous{Identifiers: customerio.Identifiers{ID: "user-9"}, AnonymousID: anon})
			if err != nil {
				t.Fatal(err)
			}
			waitSandbox(t, h.sb, 10*time.Second, "the merge", func(s *sandbox.Server) bool { _, ok := s.Person("user-9"); return ok })
			// Its record is written when the delivery returns, before asynq
			// marks the task done.
			eventually(t, 10*time.Second, "the merge done", func() bool { return h.done(mrc.TaskID) })
			// In the window an anonymous event still merges, with or without.
			if _, err := h.prod.TrackAnonymous(tctx, tasks.TrackAnonymous{AnonymousID: anon, Name: "on_time", ID: "01JGZ8V4Q6W5M3K2J1N0P9R8S6"}); err != nil {
				t.Fatal(err)
			}
			waitSandbox(t, h.sb, 10*time.Second, "the on-time event", func(s *sandbox.Server) bool { return len(s.Events("user-9")) == 1 })

			ck.Add(5*time.Minute + time.Second) // a backlog: the next event arrives late
			if _, err := h.prod.TrackAnonymous(tctx, tasks.TrackAnonymous{AnonymousID: anon, Name: "late", ID: eventID, Data: map[string]any{"page": "/pricing"}}); err != nil {
				t.Fatal(err)
			}
			if !tc.rescue {
				waitSandbox(t, h.sb, 10*time.Second, "the orphaned event", func(s *sandbox.Server) bool { return len(s.AnonymousEvents(anon)) == 1 })
				ev := h.sb.AnonymousEvents(anon)[0]
				if !ev.Orphaned || ev.ID != eventID || len(h.sb.Events("user-9")) != 1 {
					t.Errorf("event %+v, person's events %d: want it orphaned", ev, len(h.sb.Events("user-9")))
				}
				return
			}
			waitSandbox(t, h.sb, 10*time.Second, "the rescued event", func(s *sandbox.Server) bool { return len(s.Events("user-9")) == 2 })
			ev := h.sb.Events("user-9")[1]
			if ev.Name != "late" || ev.ID != eventID || ev.Data["page"] != "/pricing" || len(h.sb.AnonymousEvents(anon)) != 0 {
				t.Errorf("person's event %+v (anonymous left: %d): want the late event, same id", ev, len(h.sb.AnonymousEvents(anon)))
			}
			// Both events went as the person's (the record exists once the
			// merge is done, in the window or not); each is counted after
			// its request returns, which may be after the sandbox has it.
			eventually(t, 10*time.Second, "both rescues counted", func() bool { return obs.n.Load() >= 2 })
			if n := obs.n.Load(); n != 2 {
				t.Errorf("rescues counted: %d, want 2", n)
			}
		})
	}
}

// TestAnonymousMergeRescuePipelines: a Pipelines identify with userId and
// anonymousId is remembered too, and a later anonymous Pipelines track of
// that visitor is delivered with the userId.
func TestAnonymousMergeRescuePipelines(t *testing.T) {
	t.Parallel()
	h, _ := newClockedHarness(t, nil)
	rc, err := h.prod.Enqueue(tctx, tasks.CDPIdentify{UserID: "user-7", AnonymousID: "anon-cdp"})
	if err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "the identify", func(s *sandbox.Server) bool { _, ok := s.Person("user-7"); return ok })
	// The merge is recorded once the identify's delivery returned, before
	// asynq marks it done: wait for that, not only for the sandbox.
	eventually(t, 10*time.Second, "the identify done", func() bool { return h.done(rc.TaskID) })
	if _, err := h.prod.Enqueue(tctx, tasks.CDPTrack{AnonymousID: "anon-cdp", Event: "Viewed"}); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "the track", func(s *sandbox.Server) bool { return len(s.CDPMessages()) == 2 })
	if m := h.sb.CDPMessages()[1]; m.Body["userId"] != "user-7" || m.Body["anonymousId"] != "anon-cdp" {
		t.Errorf("track delivered as %v: want userId user-7 and the anonymousId kept", m.Body)
	}
}

// TestContractsRecheckedAtDelivery: a task enqueued before its contract
// existed is judged by the contract in force when it is delivered: a send
// missing a template's variable is dead-lettered as invalid with the
// reason and never sent; an attribute the contract coerces is delivered
// coerced.
func TestContractsRecheckedAtDelivery(t *testing.T) {
	t.Parallel()
	f, err := contracts.Parse([]byte(`{"workspaces": {"default": {
	  "transactional": {"messages": [{"id": 1, "trigger": "password_reset", "variables": {"reset_link": {}}}]},
	  "attributes": {"people": {"attributes": {"total_revenue": {"type": "number", "policy": "coerce"}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := contracts.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Contracts = set }, true)
	h.dumpOnFailure(t)
	// Enqueued by a producer that has no contracts (enqueued before the
	// contract was written).
	send, err := h.prod.SendEmail(tctx, tasks.SendEmail{To: "ada@example.com", SendOptions: customerio.SendOptions{
		TransactionalMessageID: "password_reset", Identifiers: &customerio.Identifiers{ID: "user-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.prod.Identify(tctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "user-1"}, Attributes: map[string]any{"total_revenue": "1000"}}); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	var d *DeadLetter
	eventually(t, 10*time.Second, "the dead letter", func() bool { d, _ = h.w.DLQ().Get(tctx, send.TaskID); return d != nil })
	if d.Class != DeadLetterInvalid || !strings.Contains(d.Error, `message_data.reset_link: required by template "password_reset" (id 1), missing`) {
		t.Errorf("dead letter %s: %q", d.Class, d.Error)
	}
	waitSandbox(t, h.sb, 10*time.Second, "the identify", func(s *sandbox.Server) bool { _, ok := s.Person("user-1"); return ok })
	p, _ := h.sb.Person("user-1")
	if v, ok := p.Attributes["total_revenue"].(int64); !ok || v != 1000 {
		t.Errorf("total_revenue = %#v (%T), want the number 1000", p.Attributes["total_revenue"], p.Attributes["total_revenue"])
	}
	if n := len(h.sb.Deliveries()); n != 0 {
		t.Errorf("%d transactional sends reached Customer.io", n)
	}
}
