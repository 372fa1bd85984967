package worker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/tasks"
)

// TestStatusTimeline: a send that fails twice (503) and is then accepted
// has a timeline of enqueued, two failed attempts with their status, and
// the acceptance with the sandbox's delivery id, which links the delivery
// to the task; a send refused for good (a 400) ends dead-lettered with
// Customer.io's message; a task of another API writes no timeline.
func TestStatusTimeline(t *testing.T) {
	h := newHarness(t, nil)
	h.dumpOnFailure(t)
	ctx := context.Background()
	store := status.NewStore(h.db.Client, status.Options{})

	h.sb.AddFault(sandbox.GroupApp, sandbox.Fault{Status: 503, Times: 2, PathPrefix: "/v1/send/email"})
	r, err := h.prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "password_reset",
		Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 30*time.Second, "the send", func(s *sandbox.Server) bool { return len(s.Deliveries()) == 1 })
	var tl *status.Timeline
	eventually(t, 10*time.Second, "the acceptance in the timeline", func() bool {
		tl, err = store.Lookup(ctx, r.TaskID, status.LookupOptions{})
		return err == nil && tl.State == status.KindAccepted
	})
	did := h.sb.Deliveries()[0].DeliveryID
	var kinds []string
	for _, e := range tl.Entries {
		kinds = append(kinds, e.Kind)
	}
	if len(tl.Entries) != 4 || tl.Entries[1].Status != 503 || tl.Entries[2].Attempt != 2 || tl.Entries[3].Attempt != 3 {
		t.Fatalf("entries %v: %+v", kinds, tl.Entries)
	}
	if tl.Delivery != "delivery:"+did || tl.Template != "password_reset" || tl.Type != tasks.TypeSendEmail || tl.Queue != "critical" || tl.EnqueuedAt.IsZero() {
		t.Errorf("timeline %+v", tl)
	}
	link, err := store.DeliveryLink(ctx, "", "delivery:"+did)
	if err != nil || link.TaskID != r.TaskID || link.Template != "password_reset" {
		t.Errorf("delivery link %+v, %v", link, err)
	}

	// A permanent refusal.
	h.sb.AddFault(sandbox.GroupApp, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"template not found"}}`, Times: 1, PathPrefix: "/v1/send/sms"})
	r2, err := h.prod.SendSMS(ctx, tasks.SendSMS{SendOptions: customerio.SendOptions{TransactionalMessageID: "missing",
		Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "+15555550100"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the dead letter in the timeline", func() bool {
		tl, err = store.Lookup(ctx, r2.TaskID, status.LookupOptions{})
		return err == nil && tl.State == status.KindDeadLettered
	})
	if tl.Reason != "template not found" || !tl.Final || tl.Template != "missing" {
		t.Errorf("dead letter timeline %+v", tl)
	}

	// Another API: no record (Lookup reads asynq's, while it has one).
	r3, err := h.prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "u9"}, Attributes: map[string]any{"a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the identify", func() bool { return h.done(r3.TaskID) })
	if n, _ := h.db.Client.Exists(ctx, keys.StatusTask(r3.TaskID)).Result(); n != 0 {
		t.Errorf("an identify wrote a timeline")
	}

	// A broadcast trigger: its trigger id is the reference.
	r4, err := h.prod.TriggerBroadcast(ctx, tasks.BroadcastTrigger{BroadcastID: 3})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the trigger's acceptance", func() bool {
		tl, err = store.Lookup(ctx, r4.TaskID, status.LookupOptions{})
		return err == nil && tl.State == status.KindAccepted
	})
	if tl.Delivery != "trigger:1" || tl.Template != "broadcast:3" {
		t.Errorf("trigger timeline %+v", tl)
	}
}

// TestStatusFallbackPoll: with the fallback poll on and no reporting
// webhook, an accepted send is read back with GET /v1/messages/{id}: a
// bounce address ends bounced with the sandbox's reason, another one
// delivered, both through the App API (counted among its responses), and
// both leave the poll's queue.
func TestStatusFallbackPoll(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Status.PollAfter = 10 * time.Millisecond
		c.Status.PollInterval = 50 * time.Millisecond
	})
	h.dumpOnFailure(t)
	ctx := context.Background()
	store := status.NewStore(h.db.Client, status.Options{})
	send := func(to string) string {
		r, err := h.prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome",
			Identifiers: &customerio.Identifiers{Email: to}}, To: to})
		if err != nil {
			t.Fatal(err)
		}
		return r.TaskID
	}
	bounced, delivered := send("bounce@example.com"), send("ada@example.com")
	var tl *status.Timeline
	var err error
	eventually(t, 20*time.Second, "the bounce found by the poll", func() bool {
		tl, err = store.Lookup(ctx, bounced, status.LookupOptions{})
		return err == nil && tl.State == status.MetricBounced
	})
	if tl.Reason != sandbox.BounceReason || !tl.Final {
		t.Errorf("bounced timeline: %+v", tl)
	}
	for _, e := range tl.Entries[2:] {
		if e.Source != "poll" {
			t.Errorf("entry %+v not from the poll", e)
		}
	}
	eventually(t, 20*time.Second, "the delivery found by the poll", func() bool {
		tl, err = store.Lookup(ctx, delivered, status.LookupOptions{})
		return err == nil && tl.State == status.MetricDelivered
	})
	eventually(t, 10*time.Second, "the poll's queue empty", func() bool {
		n, _ := h.db.Client.ZCard(ctx, keys.StatusPending("")).Result()
		return n == 0
	})
	polls := h.sb.Requests(sandbox.RequestFilter{Method: "GET", PathContains: "/v1/messages/"})
	if len(polls) < 2 {
		t.Errorf("%d GET /v1/messages requests", len(polls))
	}
}

// TestStatusFromReportingWebhooks: the sandbox posts signed reporting
// webhooks, duplicated and out of order, to a receiver on a real HTTP
// server; every send ends with one correct timeline: delivered, bounced
// (a bounce address) or failed with the reason: a password reset whose
// message_data lacks the reset_link its template uses is accepted by the
// sandbox (as by Customer.io), fails to render, and its "failed" webhook
// carries the Liquid error as failure_message, which the timeline (what
// `cioq status` and GET /v1/status show) ends with.
func TestStatusFromReportingWebhooks(t *testing.T) {
	h := newHarness(t, nil)
	h.dumpOnFailure(t)
	ctx := context.Background()
	store := status.NewStore(h.db.Client, status.Options{})
	rc, err := status.NewReceiver(status.ReceiverConfig{Store: store, SigningKeys: map[string]string{"": "wh-key"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rc.Mount(mux)
	hooks := httptest.NewServer(mux)
	t.Cleanup(hooks.Close)
	// A second sandbox, configured to report, replaces the harness's.
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1,
		Webhooks: sandbox.Webhooks{URL: hooks.URL + status.WebhookPath, SigningKey: "wh-key", Duplicate: true, Reorder: true}})
	sbs := httptest.NewServer(sb)
	t.Cleanup(func() { sbs.Close(); sb.Close() })
	if err := h.w.SetWorkspace("", sandboxConfig(sbs.URL)); err != nil {
		t.Fatal(err)
	}

	send := func(tmpl, to string, data map[string]any) string {
		r, err := h.prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: customerio.MessageID(tmpl),
			Identifiers: &customerio.Identifiers{ID: "user-" + to}, MessageData: data}, To: to})
		if err != nil {
			t.Fatal(err)
		}
		return r.TaskID
	}
	cases := []struct {
		id, state, reason string
		kinds             string
	}{
		{send("welcome", "ada@example.com", nil), "delivered", "", "enqueued accepted sent delivered"},
		{send("welcome", "bounce@example.com", nil), "bounced", sandbox.BounceReason, "enqueued accepted sent bounced"},
		{send("password_reset", "bob@example.com", nil), "failed", "Liquid error: undefined variable in {{ trigger.reset_link }}", "enqueued accepted failed"},
	}
	for _, c := range cases {
		var tl *status.Timeline
		eventually(t, 20*time.Second, "the "+c.state+" send's timeline", func() bool {
			tl, err = store.Lookup(ctx, c.id, status.LookupOptions{})
			return err == nil && tl.State == c.state && len(tl.Entries) == len(strings.Fields(c.kinds))
		})
		var kinds []string
		for _, e := range tl.Entries {
			kinds = append(kinds, e.Kind)
		}
		if strings.Join(kinds, " ") != c.kinds || !strings.HasPrefix(tl.Reason, c.reason) || (c.reason == "") != (tl.Reason == "") || !tl.Final {
			t.Errorf("%s: entries %v, reason %q, final %v", c.state, kinds, tl.Reason, tl.Final)
		}
	}
	if st := sb.WebhookStats(); st.Queued != 5 {
		t.Errorf("webhook stats %+v", st)
	}
}

// reportingSandbox replaces the harness's sandbox by one that posts signed
// reporting webhooks to a receiver on a real HTTP server, and returns it.
func reportingSandbox(t *testing.T, h *harness, store *status.Store, hooks sandbox.Webhooks) *sandbox.Server {
	t.Helper()
	rc, err := status.NewReceiver(status.ReceiverConfig{Store: store, SigningKeys: map[string]string{"": "wh-key"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rc.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	hooks.URL, hooks.SigningKey = srv.URL+status.WebhookPath, "wh-key"
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, Webhooks: hooks})
	sbs := httptest.NewServer(sb)
	t.Cleanup(func() { sbs.Close(); sb.Close() })
	if err := h.w.SetWorkspace("", sandboxConfig(sbs.URL)); err != nil {
		t.Fatal(err)
	}
	return sb
}

// TestStatusBroadcastTrigger: a broadcast trigger task naming two people
// (one with a bounce address) and one nobody: the sandbox sends the
// broadcast's two emails and posts their reporting webhooks (with
// broadcast_id and trigger_id, duplicated and reordered) to the receiver;
// the trigger task's timeline ends with each message's events, counted per
// metric, the state the most serious of them (bounced, with the reason),
// and no person data unless asked for.
func TestStatusBroadcastTrigger(t *testing.T) {
	h := newHarness(t, nil)
	h.dumpOnFailure(t)
	ctx := context.Background()
	store := status.NewStore(h.db.Client, status.Options{})
	sb := reportingSandbox(t, h, store, sandbox.Webhooks{Duplicate: true, Reorder: true})

	for id, email := range map[string]string{"bc-1": "ada@example.com", "bc-2": "bounce@example.com"} {
		r, err := h.prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: id}, Attributes: map[string]any{"email": email}})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the identify of "+id, func() bool { return h.done(r.TaskID) })
	}
	r, err := h.prod.TriggerBroadcast(ctx, tasks.BroadcastTrigger{BroadcastID: 3,
		TriggerBroadcastRequest: customerio.TriggerBroadcastRequest{IDs: []string{"bc-1", "bc-2", "nobody"}, IDIgnoreMissing: true}})
	if err != nil {
		t.Fatal(err)
	}
	var tl *status.Timeline
	eventually(t, 20*time.Second, "the trigger's four message events on its timeline", func() bool {
		tl, err = store.Lookup(ctx, r.TaskID, status.LookupOptions{})
		return err == nil && len(tl.Entries) == 6
	})
	trs := sb.Triggers()
	if len(trs) != 1 || len(trs[0].Messages) != 2 {
		t.Fatalf("sandbox triggers %+v", trs)
	}
	var kinds []string
	for _, e := range tl.Entries {
		kinds = append(kinds, e.Kind)
		if e.Recipient != "" || e.CustomerID != "" {
			t.Errorf("person data without ShowIdentifiers: %+v", e)
		}
	}
	if strings.Join(kinds[:2], " ") != "enqueued accepted" {
		t.Errorf("entries %v", kinds)
	}
	perMessage := map[string]int{}
	for _, e := range tl.Entries[2:] {
		perMessage[e.Delivery]++
	}
	for _, m := range trs[0].Messages {
		if perMessage["delivery:"+m.DeliveryID] != 2 {
			t.Errorf("message %s has %d entries, want 2 (sent and its outcome): %v", m.DeliveryID, perMessage["delivery:"+m.DeliveryID], perMessage)
		}
	}
	if tl.Delivery != fmt.Sprintf("trigger:%d", trs[0].ID) || tl.Template != "broadcast:3" || tl.State != status.MetricBounced ||
		tl.Reason != sandbox.BounceReason || !tl.Final {
		t.Errorf("timeline %+v", tl)
	}
	if tl.Counts["sent"] != 2 || tl.Counts["delivered"] != 1 || tl.Counts["bounced"] != 1 {
		t.Errorf("counts %v (%s)", tl.Counts, tl.CountsText())
	}
	full, err := store.Lookup(ctx, r.TaskID, status.LookupOptions{ShowIdentifiers: true})
	if err != nil {
		t.Fatal(err)
	}
	shown := false
	for _, e := range full.Entries {
		shown = shown || e.Recipient != "" || e.CustomerID != ""
	}
	if !shown {
		t.Errorf("ShowIdentifiers shows no recipient: %+v", full.Entries)
	}
	if st := sb.WebhookStats(); st.Queued != 4 {
		t.Errorf("webhook stats %+v", st)
	}
}

// TestStatusFallbackPollTrigger: with the fallback poll on and no reporting
// webhooks, an accepted broadcast trigger is read back with GET
// /v1/campaigns/{broadcast}/triggers/{trigger} (and its errors) through the
// App API: the timeline says processed, with how many recipients it could
// not reach (not who), and the trigger leaves the poll's queue.
func TestStatusFallbackPollTrigger(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Status.PollAfter = 10 * time.Millisecond
		c.Status.PollInterval = 50 * time.Millisecond
	})
	h.dumpOnFailure(t)
	ctx := context.Background()
	store := status.NewStore(h.db.Client, status.Options{})
	r, err := h.prod.TriggerBroadcast(ctx, tasks.BroadcastTrigger{BroadcastID: 5,
		TriggerBroadcastRequest: customerio.TriggerBroadcastRequest{IDs: []string{"missing-1", "missing-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	var tl *status.Timeline
	eventually(t, 20*time.Second, "the trigger found processed by the poll", func() bool {
		tl, err = store.Lookup(ctx, r.TaskID, status.LookupOptions{})
		return err == nil && tl.State == status.KindProcessed
	})
	last := tl.Entries[len(tl.Entries)-1]
	if last.Kind != status.KindProcessed || last.Source != "poll" || !strings.HasPrefix(last.Message, "2 recipient errors") || strings.Contains(last.Message, "missing-1") {
		t.Errorf("processed entry %+v", last)
	}
	eventually(t, 10*time.Second, "the poll's queue empty", func() bool {
		n, _ := h.db.Client.ZCard(ctx, keys.StatusPending("")).Result()
		return n == 0
	})
	for _, p := range []string{"/v1/campaigns/5/triggers/1", "/v1/campaigns/5/triggers/1/errors"} {
		if reqs := h.sb.Requests(sandbox.RequestFilter{Method: "GET", PathContains: p}); len(reqs) == 0 {
			t.Errorf("no GET %s", p)
		}
	}
}

// TestStatusDeadLetterRemovedWhenAsynqRetried: a send refused for good
// (a 400) is dead-lettered by the handler, whose decision then reaches
// asynq only after the task's deadline (the attempt is held past it), so
// asynq retries the task on its own and its error handler removes the dead
// letter; the retry is accepted. The timeline keeps the dead_lettered
// entry, retracts it with dead_letter_removed, and ends accepted, not
// dead-lettered.
func TestStatusDeadLetterRemovedWhenAsynqRetried(t *testing.T) {
	h := newHarness(t, nil, true)
	h.dumpOnFailure(t)
	ctx := context.Background()
	store := status.NewStore(h.db.Client, status.Options{})
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var first sync.Once
	w.returned = func(tk *Task, err error) {
		if isDeadLettered(err) {
			first.Do(func() { <-release }) // past asynq's deadline for the attempt
		}
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	h.w = w
	t.Cleanup(w.Shutdown)
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	h.sb.AddFault(sandbox.GroupApp, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"template not found"}}`, Times: 1, PathPrefix: "/v1/send/email"})
	r, err := h.prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome",
		Identifiers: &customerio.Identifiers{ID: "u-dl"}}, To: "u-dl@example.com"}, producer.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var tl *status.Timeline
	eventually(t, 20*time.Second, "the dead letter's removal in the timeline", func() bool {
		tl, err = store.Lookup(ctx, r.TaskID, status.LookupOptions{})
		if err != nil {
			return false
		}
		for _, e := range tl.Entries {
			if e.Kind == status.KindDeadLetterRemoved {
				return true
			}
		}
		return false
	})
	if tl.State == status.KindDeadLettered || tl.Final {
		t.Errorf("after the removal the state is %q (final %v)", tl.State, tl.Final)
	}
	close(release)
	eventually(t, 20*time.Second, "the retry accepted", func() bool {
		tl, err = store.Lookup(ctx, r.TaskID, status.LookupOptions{})
		return err == nil && tl.State == status.KindAccepted
	})
	var kinds []string
	for _, e := range tl.Entries {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); got != "enqueued dead_lettered dead_letter_removed accepted" {
		t.Errorf("entries %s", got)
	}
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("%d dead letters of a task asynq retried and delivered", n)
	}
}
