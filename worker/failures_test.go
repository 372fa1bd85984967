package worker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

func identify(id string) tasks.Identify {
	return tasks.Identify{Identifiers: customerio.Identifiers{ID: id}, Attributes: map[string]any{"plan": "pro"}}
}

// unbatched sends one request per task (these tests check v1 requests).
func unbatched(c *Config) { c.Batching.Off = true }

func requestsTo(sb *sandbox.Server, g sandbox.Group, path string) []sandbox.Request {
	return sb.Requests(sandbox.RequestFilter{Group: g, PathContains: path})
}

// lastStatus is the status of the last recorded Track request whose path
// contains path (0 if none).
func lastStatus(sb *sandbox.Server, path string) int {
	reqs := requestsTo(sb, sandbox.GroupTrack, path)
	if len(reqs) == 0 {
		return 0
	}
	return reqs[len(reqs)-1].Status
}

func TestTransient503TwiceThenDelivered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, Times: 2})
	rc, err := h.prod.Identify(ctx, identify("u503"))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the recorded request, not the person: the sandbox applies a
	// request's effect before it records the request.
	waitSandbox(t, h.sb, 15*time.Second, "a 200 for u503", func(s *sandbox.Server) bool { return lastStatus(s, "/customers/u503") == 200 })
	reqs := requestsTo(h.sb, sandbox.GroupTrack, "/customers/u503")
	if len(reqs) != 3 || reqs[0].Status != 503 || reqs[1].Status != 503 || reqs[2].Status != 200 {
		t.Errorf("requests: %d %v", len(reqs), statuses(reqs))
	}
	eventually(t, 5*time.Second, "task done", func() bool { return h.done(rc.TaskID) })
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("dead letters: %d", n)
	}
}

func statuses(reqs []sandbox.Request) []int {
	var s []int
	for _, r := range reqs {
		s = append(s, r.Status)
	}
	return s
}

func TestThrottled429HonoursRetryAfterWithoutSpendingBudget(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 429, RetryAfter: "2", Times: 1})
	rc, err := h.prod.Identify(ctx, identify("u429"))
	if err != nil {
		t.Fatal(err)
	}
	// While the task waits for its retry, asynq's counter is untouched.
	eventually(t, 5*time.Second, "task in retry state", func() bool {
		ti := h.taskInfo(rc.TaskID)
		return ti != nil && ti.State == asynq.TaskStateRetry
	})
	if ti := h.taskInfo(rc.TaskID); ti == nil || ti.Retried != 0 {
		t.Errorf("Retried = %+v, want 0", ti)
	}
	waitSandbox(t, h.sb, 10*time.Second, "a 200 for u429", func(s *sandbox.Server) bool { return lastStatus(s, "/customers/u429") == 200 })
	reqs := requestsTo(h.sb, sandbox.GroupTrack, "/customers/u429")
	if len(reqs) != 2 || reqs[0].Status != 429 {
		t.Fatalf("requests: %v", statuses(reqs))
	}
	answered := reqs[0].Time.Add(reqs[0].Duration)
	if gap := reqs[1].Time.Sub(answered); gap < 2*time.Second {
		t.Errorf("retried %s after the 429, want ≥ 2s", gap)
	} else {
		t.Logf("retried %s after the 429 (Retry-After: 2)", gap)
	}
}

func TestPermanent400DeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"attribute name cannot be longer than 150 bytes"}}`})
	rc, err := h.prod.Identify(ctx, identify("u400"))
	if err != nil {
		t.Fatal(err)
	}
	var d *DeadLetter
	eventually(t, 10*time.Second, "dead letter", func() bool { d, _ = h.w.DLQ().Get(ctx, rc.TaskID); return d != nil })
	if d.Class != DeadLetterPermanent || d.Status != 400 || !strings.Contains(d.Message, "cannot be longer than 150 bytes") || d.Attempts != 1 || d.Type != tasks.TypeIdentify || d.Queue != "default" {
		t.Errorf("dead letter %+v", d)
	}
	if n := len(requestsTo(h.sb, sandbox.GroupTrack, "/customers/u400")); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	eventually(t, 5*time.Second, "archived by asynq", func() bool {
		ti := h.taskInfo(rc.TaskID)
		return ti != nil && ti.State == asynq.TaskStateArchived
	})
}

func TestAuth401KeepsTaskAndRecovers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		bad := c.Workspaces[""]
		bad.TrackAPIKey = "wrong-key"
		c.Workspaces = map[string]customerio.Config{"": bad}
		c.AuthRetryDelay = time.Second
		c.Batching.Off = true
	})
	ctx := context.Background()
	rc, err := h.prod.Identify(ctx, identify("u401"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "unhealthy", func() bool { return h.w.Health() != nil })
	herr := h.w.Health().Error()
	if !strings.Contains(herr, "track") || !strings.Contains(herr, "default") || strings.Contains(herr, "wrong-key") {
		t.Errorf("Health = %q", herr)
	}
	eventually(t, 10*time.Second, "a second 401", func() bool { return len(requestsTo(h.sb, sandbox.GroupTrack, "/customers/u401")) >= 2 })
	if ti := h.taskInfo(rc.TaskID); ti == nil || ti.Retried != 0 {
		t.Errorf("task %+v: want kept with Retried 0", ti)
	}
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("dead letters: %d", n)
	}
	// Fix the key: the kept task is delivered and the worker is healthy.
	if err := h.w.SetWorkspace("", sandboxConfig(h.url)); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "person u401", func(s *sandbox.Server) bool { _, ok := s.Person("u401"); return ok })
	eventually(t, 5*time.Second, "healthy", func() bool { return h.w.Health() == nil })
}

func TestMissingCredentialsKeepTask(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		cc := c.Workspaces[""]
		cc.AppAPIKey = "" // Track configured, App not
		c.Workspaces = map[string]customerio.Config{"": cc}
		c.AuthRetryDelay = time.Second
	})
	ctx := context.Background()
	rc, err := h.prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "1", Identifiers: &customerio.Identifiers{ID: "x"}}, To: "x@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.prod.Identify(ctx, identify("other"), producer.Workspace("nowhere")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "unhealthy for app and workspace nowhere", func() bool {
		err := h.w.Health()
		return err != nil && strings.Contains(err.Error(), "app API") && strings.Contains(err.Error(), `"nowhere"`)
	})
	if ti := h.taskInfo(rc.TaskID); ti == nil || ti.Retried != 0 || ti.State == asynq.TaskStateArchived {
		t.Errorf("task %+v: want kept", ti)
	}
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("dead letters: %d", n)
	}
}

func TestGarbagePayloadDeadLettered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	defer ac.Close()
	var ids []string
	for _, tc := range []struct {
		typ string
		b   []byte
	}{
		{tasks.TypeTrack, []byte{0xde, 0xad, 0xbe, 0xef}},
		{tasks.TypeIdentify, []byte(`{"v":1,"payload":{"identifiers":{}}}`)}, // decodes, does not validate
		{"cio:no_such_type", []byte(`{}`)},
	} {
		info, err := ac.Enqueue(asynq.NewTask(tc.typ, tc.b), asynq.Queue("default"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	for _, id := range ids {
		var d *DeadLetter
		eventually(t, 10*time.Second, "dead letter "+id, func() bool { d, _ = h.w.DLQ().Get(ctx, id); return d != nil })
		if d.Class != DeadLetterInvalid || d.Error == "" {
			t.Errorf("dead letter %+v", d)
		}
	}
	if st := h.sb.Stats(); st.Total != 0 {
		t.Errorf("sandbox saw %d requests", st.Total)
	}
	if _, err := h.prod.Identify(ctx, identify("after-garbage")); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "worker still delivers", func(s *sandbox.Server) bool { _, ok := s.Person("after-garbage"); return ok })
	if err := h.w.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}
}

func TestExpiredSendNeverSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	b, err := tasks.Encode(&tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "reset", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"},
		tasks.Meta{ExpiresAt: time.Now().Add(-time.Minute), EnqueuedAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	defer ac.Close()
	info, err := ac.Enqueue(asynq.NewTask(tasks.TypeSendEmail, b), asynq.Queue(tasks.QueueCritical))
	if err != nil {
		t.Fatal(err)
	}
	var d *DeadLetter
	eventually(t, 10*time.Second, "dead letter", func() bool { d, _ = h.w.DLQ().Get(ctx, info.ID); return d != nil })
	if d.Class != DeadLetterExpired {
		t.Errorf("class %s", d.Class)
	}
	if st := h.sb.Stats(); st.Total != 0 || len(h.sb.Deliveries()) != 0 {
		t.Errorf("sandbox saw %d requests", st.Total)
	}
}

// An expired send in the store is refused by Retry as it is (it would be
// dead-lettered again at once); given a new expiry it is sent.
func TestExpiredDeadLetterRetriedWithNewExpiryIsSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	b, err := tasks.Encode(&tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "reset", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"},
		tasks.Meta{ExpiresAt: time.Now().Add(-time.Minute), EnqueuedAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	defer ac.Close()
	info, err := ac.Enqueue(asynq.NewTask(tasks.TypeSendEmail, b), asynq.Queue(tasks.QueueCritical))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "dead letter", func() bool { d, _ := h.w.DLQ().Get(ctx, info.ID); return d != nil })
	var ee *ExpiredError
	if _, err := h.w.DLQ().Retry(ctx, info.ID, ac); !errors.As(err, &ee) {
		t.Fatalf("Retry = %v, want an *ExpiredError", err)
	}
	retried, err := h.w.DLQ().Retry(ctx, info.ID, ac, RetryExpiresIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "the send", func(s *sandbox.Server) bool { return len(s.Deliveries()) == 1 })
	eventually(t, 5*time.Second, "task done", func() bool { return h.done(retried.ID) })
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("%d dead letters after the retry was sent", n)
	}
}

func TestIdempotencyKeyDeliversOnce(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOptions{NoStart: true}) // the worker starts after both enqueues
	ctx := context.Background()
	send := tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "receipt", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"}
	// The same key twice while the first task is still pending.
	r1, err := h.prod.SendEmail(ctx, send, producer.IdempotencyKey("order-42-receipt"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := h.prod.SendEmail(ctx, send, producer.IdempotencyKey("order-42-receipt"))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Duplicate || !r2.Duplicate || r2.TaskID != r1.TaskID {
		t.Errorf("enqueues while pending: %+v then %+v", r1, r2)
	}
	h.start(t)
	waitSandbox(t, h.sb, 10*time.Second, "delivery", func(s *sandbox.Server) bool { return len(s.Deliveries()) == 1 })
	eventually(t, 10*time.Second, "task done", func() bool { return h.done(r1.TaskID) })
	// And again after the task completed (within the idempotency window).
	r3, err := h.prod.SendEmail(ctx, send, producer.IdempotencyKey("order-42-receipt"))
	if err != nil {
		t.Fatal(err)
	}
	if !r3.Duplicate || r3.TaskID != r1.TaskID {
		t.Errorf("enqueue after completion: %+v", r3)
	}
	// Another key is another send.
	if _, err := h.prod.SendEmail(ctx, send, producer.IdempotencyKey("order-43-receipt")); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "second delivery", func(s *sandbox.Server) bool { return len(s.Deliveries()) == 2 })
	if n := len(h.sb.Deliveries()); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
}

// TestSendRecordSkipsResend runs a send whose success was already recorded
// (as after a crash between Customer.io accepting it and asynq's ack): the
// worker succeeds without calling Customer.io, even once the send has
// expired (it was sent, so it is not dead-lettered as "not sent"). A
// record of an earlier task that used the same idempotency key (another
// enqueue time) does not stop a new send.
func TestSendRecordSkipsResend(t *testing.T) {
	t.Parallel()
	// The worker's clock runs two hours ahead, so a send that expires in
	// one hour has expired by the time the worker sees it.
	h := newHarness(t, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } }, true)
	ctx := context.Background()
	send := tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "x", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"}
	var ids []string // of the tasks keyed already-sent, sent-then-expired and key-reused
	for _, opts := range [][]producer.EnqueueOption{
		{producer.IdempotencyKey("already-sent")},
		{producer.IdempotencyKey("sent-then-expired"), producer.ExpiresIn(time.Hour)},
		{producer.IdempotencyKey("key-reused")},
	} {
		r, err := h.prod.SendEmail(ctx, send, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.TaskID)
	}
	for _, id := range ids[:2] {
		if err := h.db.Client.Set(ctx, h.sentKeyOf(t, id), "delivery:abc", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The record an earlier task with the key "key-reused" left behind.
	if err := h.db.Client.Set(ctx, "cioq:sent:"+ids[2]+":1000", "delivery:old", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	for _, id := range ids {
		eventually(t, 10*time.Second, id+" done", func() bool { return h.done(id) })
	}
	if n := len(h.sb.Deliveries()); n != 1 {
		t.Errorf("sandbox delivered %d sends, want 1 (only key-reused)", n)
	}
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
	// And a real send leaves a record behind.
	r, err := h.prod.SendEmail(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	var key string
	eventually(t, 10*time.Second, "send record", func() bool {
		keys, _ := h.db.Client.Keys(ctx, "cioq:sent:"+r.TaskID+":*").Result()
		if len(keys) != 1 {
			return false
		}
		key = keys[0]
		v, _ := h.db.Client.Get(ctx, key).Result()
		return strings.HasPrefix(v, "delivery:")
	})
	if ttl := h.db.Client.TTL(ctx, key).Val(); ttl < 6*24*time.Hour {
		t.Errorf("record TTL %s", ttl)
	}
}

// sentKeyOf is the send record key of a task still in Redis.
func (h *harness) sentKeyOf(t *testing.T, id string) string {
	t.Helper()
	ti := h.taskInfo(id)
	if ti == nil {
		t.Fatalf("task %s not found", id)
	}
	env, _, err := tasks.Decode(ti.Type, ti.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return sentKey(&Task{ID: id, Envelope: env})
}

func TestPanicIsTransient(t *testing.T) {
	t.Parallel()
	var panics atomic.Int32
	h := newHarness(t, func(c *Config) {
		c.Middleware = []func(asynq.Handler) asynq.Handler{func(next asynq.Handler) asynq.Handler {
			return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
				if panics.Add(1) == 1 {
					panic("boom")
				}
				return next.ProcessTask(ctx, t)
			})
		}}
	})
	if _, err := h.prod.Identify(context.Background(), identify("u-panic")); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "person", func(s *sandbox.Server) bool { _, ok := s.Person("u-panic"); return ok })
	if panics.Load() != 2 {
		t.Errorf("middleware ran %d times", panics.Load())
	}
}

// TestRetriedDeadLetterFailingAgainKeepsBothErrors: a dead letter retried
// with DeadLetters.Retry becomes a new task; when that fails permanently
// again, its record holds the first failure and the second.
func TestRetriedDeadLetterFailingAgainKeepsBothErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"first refusal"}}`})
	rc, err := h.prod.Identify(ctx, identify("u-twice"))
	if err != nil {
		t.Fatal(err)
	}
	var first *DeadLetter
	eventually(t, 10*time.Second, "first dead letter", func() bool { first, _ = h.w.DLQ().Get(ctx, rc.TaskID); return first != nil })

	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 422, Body: `{"meta":{"error":"second refusal"}}`})
	client := asynq.NewClientFromRedisClient(h.db.Client)
	info, err := h.w.DLQ().Retry(ctx, rc.TaskID, client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.w.DLQ().Get(ctx, rc.TaskID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old dead letter still there after Retry: %v", err)
	}
	var second *DeadLetter
	eventually(t, 10*time.Second, "second dead letter", func() bool { second, _ = h.w.DLQ().Get(ctx, info.ID); return second != nil })

	if second.RetriedFrom != rc.TaskID {
		t.Errorf("RetriedFrom = %q, want %q", second.RetriedFrom, rc.TaskID)
	}
	if !second.FirstFailedAt.Equal(first.FirstFailedAt) {
		t.Errorf("FirstFailedAt = %v, want the first failure's %v", second.FirstFailedAt, first.FirstFailedAt)
	}
	if len(second.History) != 2 {
		t.Fatalf("history has %d failures, want 2: %+v", len(second.History), second.History)
	}
	if h0, h1 := second.History[0], second.History[1]; h0.Status != 400 || !strings.Contains(h0.Message, "first refusal") ||
		h1.Status != 422 || !strings.Contains(h1.Message, "second refusal") {
		t.Errorf("history = %+v", second.History)
	}
	if second.Status != 422 || second.Class != DeadLetterPermanent {
		t.Errorf("latest failure: status %d class %s", second.Status, second.Class)
	}
	if n, _ := h.w.DLQ().Count(ctx); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}
