package status_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/status"
)

// TestOutOfOrderAndDuplicates: the events of one delivery, posted in every
// order (some before the worker recorded the acceptance, each twice), make
// one timeline: each event once, in time order, and the state the latest
// and highest ranked says (clicked, not the delivered that came last).
func TestOutOfOrderAndDuplicates(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		h := newHarness(t)
		ctx := context.Background()
		base := time.Now().Truncate(time.Second)
		at := func(s int) int64 { return base.Add(time.Duration(s) * time.Second).Unix() }
		bodies := [][]byte{
			event("e-sent", "sent", "dlv-7", at(1), nil),
			event("e-delivered", "delivered", "dlv-7", at(2), nil),
			event("e-opened", "opened", "dlv-7", at(3), nil),
			event("e-clicked", "clicked", "dlv-7", at(4), map[string]any{"href": "https://example.com/reset?t=secret"}),
		}
		r := rand.New(rand.NewPCG(seed, 0))
		order := append(append([][]byte{}, bodies...), bodies...)
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		task := status.Task{ID: "task-1", EnqueuedAt: base.UnixMilli(), Type: "cio:send_email", Queue: "critical", Template: "3"}
		half := len(order) / 2
		for i, b := range order {
			if i == half {
				if err := h.store.Accepted(ctx, task, "delivery:dlv-7", 1, 0); err != nil {
					t.Fatal(err)
				}
			}
			if code, resp := h.post(t, status.WebhookPath, signingKey, time.Now().Unix(), b); code != 200 {
				t.Fatalf("%d %s", code, resp)
			}
		}
		tl, err := h.store.Lookup(ctx, "task-1", status.LookupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range tl.Entries {
			kinds = append(kinds, e.Kind)
		}
		want := "enqueued accepted sent delivered opened clicked"
		if strings.Join(kinds, " ") != want {
			t.Errorf("seed %d: entries %v, want %s", seed, kinds, want)
		}
		if tl.State != "clicked" || !tl.Final || tl.Delivery != "delivery:dlv-7" || tl.Template != "3" {
			t.Errorf("seed %d: state %q final %v delivery %q template %q", seed, tl.State, tl.Final, tl.Delivery, tl.Template)
		}
		for _, e := range tl.Entries {
			if e.Href != "" || e.Recipient != "" || e.CustomerID != "" {
				t.Errorf("identifiers shown without ShowIdentifiers: %+v", e)
			}
		}
		if tl.Counts["delivered"] != 1 || tl.Counts["clicked"] != 1 {
			t.Errorf("counts %v", tl.Counts)
		}
		full, _ := h.store.Lookup(ctx, "task-1", status.LookupOptions{ShowIdentifiers: true})
		if last := full.Entries[len(full.Entries)-1]; last.Href == "" || last.Recipient != "ada@example.com" {
			t.Errorf("ShowIdentifiers: %+v", last)
		}
	}
}

// TestBounceAndFailureWin: a bounce after "delivered" decides the state
// whatever the order; a failure keeps Customer.io's reason, with the
// recipient's address removed unless identifiers are shown.
func TestBounceAndFailureWin(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now().Unix()
	task := status.Task{ID: "t-bounce", EnqueuedAt: time.Now().UnixMilli(), Type: "cio:send_email", Template: "3"}
	if err := h.store.Accepted(ctx, task, "delivery:dlv-b", 1, 0); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{
		event("b-2", "bounced", "dlv-b", now-5, map[string]any{"failure_message": "550 5.1.1 <bounce@example.com>: mailbox unavailable"}),
		event("b-1", "delivered", "dlv-b", now-1, nil),
	} {
		h.post(t, status.WebhookPath, signingKey, now, b)
	}
	tl, err := h.store.Lookup(ctx, "t-bounce", status.LookupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tl.State != "bounced" || !strings.Contains(tl.Reason, "mailbox unavailable") || strings.Contains(tl.Reason, "bounce@example.com") {
		t.Errorf("state %q reason %q", tl.State, tl.Reason)
	}
	full, _ := h.store.Lookup(ctx, "t-bounce", status.LookupOptions{ShowIdentifiers: true})
	if !strings.Contains(full.Reason, "bounce@example.com") {
		t.Errorf("ShowIdentifiers reason %q", full.Reason)
	}
	if h.c.get(h.c.outcomes, "default|cio:send_email|3|bounced") != 1 || h.c.get(h.c.outcomes, "default|cio:send_email|3|accepted") != 1 {
		t.Errorf("outcomes %v", h.c.outcomes)
	}
	if len(h.c.delivered) != 1 {
		t.Errorf("delivered latency observed %d times", len(h.c.delivered))
	}
}

// TestTimelineOfAttempts: failed attempts, then the acceptance; a new task
// under the same id (a key used again) replaces the record.
func TestTimelineOfAttempts(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	enq := time.Now().Add(-time.Hour)
	task := status.Task{ID: "t-2", EnqueuedAt: enq.UnixMilli(), Type: "cio:send_sms", Queue: "critical", Template: "login_code"}
	for i := 1; i <= 2; i++ {
		if err := h.store.Attempt(ctx, task, status.Entry{Attempt: i, Class: "transient", Status: 503, Message: "Service Unavailable"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.store.Accepted(ctx, task, "delivery:d-2", 3, 0); err != nil {
		t.Fatal(err)
	}
	tl, err := h.store.Lookup(ctx, "t-2", status.LookupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Entries) != 4 || tl.State != "accepted" || tl.Final || tl.Entries[1].Status != 503 || tl.Entries[3].Attempt != 3 {
		t.Fatalf("timeline %+v", tl)
	}
	task.EnqueuedAt = time.Now().UnixMilli()
	if err := h.store.DeadLettered(ctx, task, status.Entry{Class: "permanent", Status: 400, Message: "bad"}); err != nil {
		t.Fatal(err)
	}
	tl, _ = h.store.Lookup(ctx, "t-2", status.LookupOptions{})
	if len(tl.Entries) != 2 || tl.State != "dead_lettered" || tl.Reason != "bad" || tl.Delivery != "" {
		t.Errorf("after a new task under the id: %+v", tl)
	}
	if _, err := h.store.Lookup(ctx, "nothing", status.LookupOptions{}); !errors.Is(err, status.ErrNotFound) {
		t.Errorf("unknown task: %v", err)
	}
}

// TestDeadLetterRemovedRetracts: a dead_lettered entry followed by a
// dead_letter_removed no longer decides the state (asynq's retry, then
// the acceptance, does); a dead letter written after the removal counts
// again; each is counted as an outcome.
func TestDeadLetterRemovedRetracts(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Minute)
	task := status.Task{ID: "t-dl", EnqueuedAt: base.UnixMilli(), Type: "cio:send_email", Queue: "critical", Template: "welcome"}
	if err := h.store.DeadLettered(ctx, task, status.Entry{At: base.Add(time.Second), Class: "permanent", Status: 400, Message: "bad"}); err != nil {
		t.Fatal(err)
	}
	if err := h.store.DeadLetterRemoved(ctx, task, status.Entry{At: base.Add(2 * time.Second), Message: "asynq retries the task"}); err != nil {
		t.Fatal(err)
	}
	tl, err := h.store.Lookup(ctx, "t-dl", status.LookupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Entries) != 3 || tl.Entries[2].Kind != status.KindDeadLetterRemoved || tl.State == status.KindDeadLettered || tl.Final || tl.Reason != "" {
		t.Fatalf("after the removal: %+v", tl)
	}
	if err := h.store.Accepted(ctx, task, "delivery:d-dl", 2, 0); err != nil {
		t.Fatal(err)
	}
	if tl, _ = h.store.Lookup(ctx, "t-dl", status.LookupOptions{}); tl.State != status.KindAccepted {
		t.Errorf("after the retry's acceptance: %+v", tl)
	}
	if err := h.store.DeadLettered(ctx, task, status.Entry{Class: "permanent", Status: 400, Message: "bad again"}); err != nil {
		t.Fatal(err)
	}
	if tl, _ = h.store.Lookup(ctx, "t-dl", status.LookupOptions{}); tl.State != status.KindDeadLettered || tl.Reason != "bad again" {
		t.Errorf("a later dead letter: %+v", tl)
	}
	if h.c.outcomes["default|cio:send_email|welcome|dead_letter_removed"] != 1 || h.c.outcomes["default|cio:send_email|welcome|dead_lettered"] != 2 {
		t.Errorf("outcomes %v", h.c.outcomes)
	}
}

// TestRecordSize measures what one send costs in Redis: its task record
// and its delivery's record with sent and delivered, then with 10 more
// events (the figures quoted in the package documentation).
func TestRecordSize(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	task := status.Task{ID: "01JDX3Q4Z8K6V5M2N1P0R9S8T7", EnqueuedAt: time.Now().UnixMilli(), Type: "cio:send_email", Queue: "critical", Template: "password_reset"}
	if err := h.store.Accepted(ctx, task, "delivery:RAECAAFwnUSneIa-ZNbh2EWBNKLHyFPH4g==", 1, 0); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	for _, m := range []string{"sent", "delivered"} {
		h.post(t, status.WebhookPath, signingKey, now, event("evt-"+m+"-01JDX3Q4Z8K6V5M2N1P0R9S8T7", m, "RAECAAFwnUSneIa-ZNbh2EWBNKLHyFPH4g==", now, nil))
	}
	size := func() int64 {
		var total int64
		for _, k := range []string{keys.StatusTask(task.ID), keys.StatusDelivery("", "delivery:RAECAAFwnUSneIa-ZNbh2EWBNKLHyFPH4g==")} {
			n, err := h.db.Client.MemoryUsage(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		return total
	}
	base := size()
	for _, k := range []string{keys.StatusTask(task.ID), keys.StatusDelivery("", "delivery:RAECAAFwnUSneIa-ZNbh2EWBNKLHyFPH4g==")} {
		// Values of at most 64 bytes keep Redis's compact encoding.
		if enc, _ := h.db.Client.ObjectEncoding(ctx, k).Result(); enc != "listpack" {
			t.Errorf("%s: encoding %s, want listpack", k, enc)
		}
	}
	for i := 0; i < 10; i++ {
		h.post(t, status.WebhookPath, signingKey, now, event("evt-open-"+string(rune('a'+i))+"-01JDX3Q4Z8K6V5M2N1P0R9S8T7", "opened", "RAECAAFwnUSneIa-ZNbh2EWBNKLHyFPH4g==", now, nil))
	}
	more := size()
	t.Logf("one accepted, sent and delivered send: %d bytes; each further event: %d bytes", base, (more-base)/10)
	if base > 1024 || (more-base)/10 > 128 {
		t.Errorf("records larger than documented: %d bytes, %d per event", base, (more-base)/10)
	}
}

// TestReportedEventsFollowTheAcceptance: Customer.io's events of a message
// stamped before cioq recorded its acceptance (another clock, or a
// broadcast whose messages went out before the trigger's answer reached
// the worker) are placed after the acceptance, in their own order.
func TestReportedEventsFollowTheAcceptance(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now().Unix()
	task := status.Task{ID: "t-early", EnqueuedAt: time.Now().Add(-10 * time.Second).UnixMilli(), Type: "cio:send_email", Template: "3"}
	if err := h.store.Accepted(ctx, task, "delivery:dlv-e", 1, 0); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{
		event("e-2", "delivered", "dlv-e", now-2, nil),
		event("e-1", "sent", "dlv-e", now-3, nil),
	} {
		if code, resp := h.post(t, status.WebhookPath, signingKey, now, b); code != 200 {
			t.Fatalf("%d %s", code, resp)
		}
	}
	tl, err := h.store.Lookup(ctx, "t-early", status.LookupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range tl.Entries {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); got != "enqueued accepted sent delivered" {
		t.Errorf("entries %q, want enqueued accepted sent delivered", got)
	}
	if tl.State != "delivered" {
		t.Errorf("state %q", tl.State)
	}
}
