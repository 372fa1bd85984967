package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// The delivery invariants of the package documentation that depend on who
// decides a task's fate, the worker or asynq (deadline.go): a dead letter
// exists only for a task that left asynq's queues undelivered, and asynq
// never dead-letters a task on its own.

// watchDeadLetters polls the store's size until the test ends and returns
// the largest it saw: a dead letter that exists only for a moment counts.
func watchDeadLetters(t *testing.T, dlq *DeadLetters) func() int64 {
	t.Helper()
	var most atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if n, err := dlq.Count(context.Background()); err == nil && n > most.Load() {
				most.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); wg.Wait() }) }
	t.Cleanup(halt)
	return func() int64 { halt(); return most.Load() }
}

// TestHangDecidedByHandlerNotAsynq (item 1): the first request hangs until
// the attempt's deadline, the next ones succeed. The task's retry window
// has passed and its budget is one retry, so the hang spends it and the
// retry delivers the task: one delivery, and never a dead letter. (When
// asynq acted on the deadline itself, it retried the task while the
// handler, returning later, dead-lettered it: a record of a delivered task,
// which a retry from the store would send again.)
func TestHangDecidedByHandlerNotAsynq(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		unbatched(c)
		c.Now = func() time.Time { return time.Now().Add(25 * time.Hour) } // the retry window has passed
	})
	h.dumpOnFailure(t)
	ctx := context.Background()
	most := watchDeadLetters(t, h.w.DLQ())
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Hang: true, Times: 1})
	rc, err := h.prod.Identify(ctx, identify("u-hang"), producer.Timeout(time.Second), producer.MaxRetry(1))
	if err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 20*time.Second, "a 200 for u-hang", func(s *sandbox.Server) bool { return lastStatus(s, "/customers/u-hang") == 200 })
	eventually(t, 10*time.Second, "task done", func() bool { return h.done(rc.TaskID) })
	h.w.Shutdown() // every attempt's handler has returned
	if reqs := requestsTo(h.sb, sandbox.GroupTrack, "/customers/u-hang"); len(reqs) != 2 || reqs[0].Status != 0 || reqs[1].Status != 200 {
		t.Errorf("requests %v, want the hang then one 200", statuses(reqs))
	}
	if n := most(); n != 0 {
		t.Errorf("a dead letter of a delivered task was present (%d)", n)
	}
}

// TestDeleteLeavesLiveTask (item 1): deleting or purging a dead letter
// whose task id is still a live asynq task (scheduled, pending) removes
// the record only; the task stays to be delivered. An archived task's
// entry goes with its record.
func TestDeleteLeavesLiveTask(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOptions{NoStart: true})
	ctx := context.Background()
	dlq := NewDeadLetters(h.db.Client, h.insp)
	scheduled, err := h.prod.Identify(ctx, identify("later"), producer.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := h.prod.Identify(ctx, identify("parked"), producer.Queue("parked")) // no worker serves it
	if err != nil {
		t.Fatal(err)
	}
	archived, err := h.prod.Identify(ctx, identify("gone"), producer.Queue("parked"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.insp.ArchiveTask("parked", archived.TaskID); err != nil {
		t.Fatal(err)
	}
	for _, rc := range []producer.Receipt{scheduled, pending, archived} {
		if err := dlq.Add(ctx, &DeadLetter{ID: rc.TaskID, Type: rc.Type, Queue: rc.Queue, Class: DeadLetterExhausted}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dlq.Delete(ctx, scheduled.TaskID); err != nil {
		t.Fatal(err)
	}
	if n, err := dlq.Purge(ctx, Filter{Queue: "parked"}); err != nil || n != 2 {
		t.Fatalf("purged %d (%v), want 2", n, err)
	}
	if n, _ := dlq.Count(ctx); n != 0 {
		t.Errorf("%d records left", n)
	}
	for _, c := range []struct {
		rc    producer.Receipt
		state asynq.TaskState
	}{{scheduled, asynq.TaskStateScheduled}, {pending, asynq.TaskStatePending}} {
		if ti, err := h.insp.GetTaskInfo(c.rc.Queue, c.rc.TaskID); err != nil || ti.State != c.state {
			t.Errorf("%s task after its dead letter was deleted: %+v %v", c.state, ti, err)
		}
	}
	if _, err := h.insp.GetTaskInfo("parked", archived.TaskID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("archived task after its dead letter was purged: %v", err)
	}
}

// TestHangThen429KeptInRetryWindow (item 2): with a budget of one retry, a
// hang (spending it) then a 429 (which never spends it, nor dead-letters)
// is delivered after the 429's Retry-After, well inside the retry window.
// (asynq counting the hang on top of the worker made the 429 land on an
// "exhausted" task: dead-lettered 2 s after enqueue.)
func TestHangThen429KeptInRetryWindow(t *testing.T) {
	h := newHarness(t, unbatched)
	h.dumpOnFailure(t)
	ctx := context.Background()
	most := watchDeadLetters(t, h.w.DLQ())
	h.sb.AddFault(sandbox.GroupTrack, sandbox.Fault{Hang: true, Times: 1})
	h.sb.AddFault(sandbox.GroupTrack, sandbox.Fault{Status: 429, RetryAfter: "2", Times: 1})
	if _, err := h.prod.Identify(ctx, identify("u-h429"), producer.Timeout(time.Second), producer.MaxRetry(1)); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 20*time.Second, "a 200 for u-h429", func(s *sandbox.Server) bool { return lastStatus(s, "/customers/u-h429") == 200 })
	h.w.Shutdown()
	reqs := requestsTo(h.sb, sandbox.GroupTrack, "/customers/u-h429")
	if len(reqs) != 3 || reqs[0].Status != 0 || reqs[1].Status != 429 || reqs[2].Status != 200 {
		t.Fatalf("requests %v, want hang, 429, 200", statuses(reqs))
	}
	if gap := reqs[2].Time.Sub(reqs[1].Time.Add(reqs[1].Duration)); gap < 2*time.Second {
		t.Errorf("retried %s after the 429, want ≥ its Retry-After (2 s)", gap)
	}
	if n := most(); n != 0 {
		t.Errorf("dead-lettered (%d) inside its retry window", n)
	}
}

// TestBackoffGrowsPastBudget (item 2): a task whose one retry is spent
// keeps retrying inside its retry window, and asynq's retried count, which
// the backoff follows (retryDelay), keeps growing: the attempt log numbers
// the four failures 1 to 4. (With the count frozen at the budget, the
// backoff stayed at its first step, retrying every second or less for 24 h.)
func TestBackoffGrowsPastBudget(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched, true)
	h.dumpOnFailure(t)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, Times: 4})
	rc, err := h.prod.Identify(ctx, identify("u-grow"), producer.MaxRetry(1))
	if err != nil {
		t.Fatal(err)
	}
	ti := h.taskInfo(rc.TaskID)
	if ti == nil {
		t.Fatal("task not enqueued")
	}
	env, _, err := tasks.Decode(ti.Type, ti.Payload)
	if err != nil {
		t.Fatal(err)
	}
	h.start(t)
	waitSandbox(t, h.sb, 30*time.Second, "a 200 for u-grow", func(s *sandbox.Server) bool { return lastStatus(s, "/customers/u-grow") == 200 })
	log, _, err := h.w.DLQ().attempts(ctx, attemptsKey(rc.TaskID, env.EnqueuedAt))
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, f := range log {
		nums = append(nums, f.Attempt)
	}
	if fmt.Sprint(nums) != "[1 2 3 4]" {
		t.Errorf("attempt numbers %v, want [1 2 3 4] (asynq's retried count frozen?)", nums)
	}
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// blockFirst is a middleware that holds the first attempt of the person
// id's task, ignoring its context, until release is closed, then fails it:
// asynq reaches the task's deadline while the handler is still running.
func blockFirst(id string, release <-chan struct{}, held chan<- struct{}) func(asynq.Handler) asynq.Handler {
	var n atomic.Int32
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, at *asynq.Task) error {
			if dt, ok := Decoded(ctx); ok {
				if p, ok := dt.Payload.(*tasks.Identify); ok && p.Identifiers.ID == id && n.Add(1) == 1 {
					held <- struct{}{}
					<-release
					return errors.New("released after asynq's deadline")
				}
			}
			return next.ProcessTask(ctx, at)
		})
	}
}

// TestAsynqDeadlineRecordedWhereItHappens (item 6): an attempt that
// outlives asynq's deadline for it. A task the producer enqueued (a cioq
// budget, here none left) is retried by asynq, never archived, and
// delivered by its next attempt without a dead letter. A task without a
// cioq budget (asynq MaxRetry 0, as an older producer enqueued it) is
// archived by asynq on its own, and its dead letter is in the store by the
// time it is archived: no reconcile needed (the reconciler here runs once,
// at start).
func TestAsynqDeadlineRecordedWhereItHappens(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{}, 2)
	h := newHarness(t, func(c *Config) {
		unbatched(c)
		c.ReconcileInterval = time.Hour
		c.Middleware = []func(asynq.Handler) asynq.Handler{blockFirst("u-budget", release, held), blockFirst("u-legacy", release, held)}
	}, true)
	returned := make(chan string, 16)
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.returned = func(t *Task, _ error) { returned <- t.ID }
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	h.w = w
	t.Cleanup(w.Shutdown)
	h.dumpOnFailure(t)
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	ctx := context.Background()

	rc, err := h.prod.Identify(ctx, identify("u-budget"), producer.Timeout(time.Second), producer.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	<-held
	waitSandbox(t, h.sb, 20*time.Second, "a 200 for u-budget", func(s *sandbox.Server) bool { return lastStatus(s, "/customers/u-budget") == 200 })
	eventually(t, 10*time.Second, "u-budget done", func() bool { return h.done(rc.TaskID) })
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("%d dead letters of a task asynq retried and delivered", n)
	}

	ac := asynq.NewClientFromRedisClient(h.db.Client)
	defer ac.Close()
	b, err := tasks.Encode(&tasks.Identify{Identifiers: customerio.Identifiers{ID: "u-legacy"}}, tasks.Meta{EnqueuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	info, err := ac.Enqueue(asynq.NewTask(tasks.TypeIdentify, b), asynq.Queue(tasks.QueueDefault), asynq.MaxRetry(0), asynq.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	<-held
	eventually(t, 10*time.Second, "u-legacy archived by asynq", func() bool {
		ti := h.taskInfo(info.ID)
		return ti != nil && ti.State == asynq.TaskStateArchived
	})
	d, err := h.w.DLQ().Get(ctx, info.ID)
	if err != nil {
		t.Fatalf("archived by asynq, and no dead letter: %v", err)
	}
	if d.Class != DeadLetterExhausted || d.Attempts != 1 || d.AttemptsAllowed() != 1 {
		t.Errorf("dead letter %+v", d)
	}
	close(release)
	// Both held attempts return (decided after asynq's deadline): u-budget's
	// second one, then its first, and u-legacy's.
	for seen := map[string]int{}; seen[rc.TaskID] < 2 || seen[info.ID] < 1; {
		seen[<-returned]++
	}
	store := h.w.DLQ()
	if d2, err := store.Get(ctx, info.ID); err != nil || d2.Error != d.Error {
		t.Errorf("after the late attempt returned: %+v %v", d2, err)
	}
	if n, _ := store.Count(ctx); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
	if reqs := requestsTo(h.sb, sandbox.GroupTrack, "/customers/u-legacy"); len(reqs) != 0 {
		t.Errorf("u-legacy requests %v", statuses(reqs))
	}
}

// TestReconcileTrimmedMidScan (item 6): asynq trims the oldest entries of
// a queue's archive (deleting their data) while the reconciler goes through
// it; every entry still there is copied. (Paging by offset from the front
// skipped as many entries as were trimmed.)
func TestReconcileTrimmedMidScan(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOptions{NoStart: true})
	ctx := context.Background()
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	defer ac.Close()
	const n, trim = 1200, 100
	for i := 0; i < n; i++ {
		if _, err := ac.Enqueue(asynq.NewTask(tasks.TypeIdentify, []byte(fmt.Sprintf(`{"identifiers":{"id":"a%d"}}`, i))), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.insp.ArchiveAllPendingTasks("default"); err != nil {
		t.Fatal(err)
	}
	dlq := NewDeadLetters(h.db.Client, h.insp)
	trimmed := false
	dlq.reconcileHook = func(q string, done int) {
		if trimmed {
			return
		}
		trimmed = true
		// What asynq's archive script does once a queue's archive is full.
		ids, err := h.db.Client.ZRange(ctx, keys.AsynqArchived(q), 0, trim-1).Result()
		if err != nil {
			t.Error(err)
			return
		}
		for _, id := range ids {
			h.db.Client.ZRem(ctx, keys.AsynqArchived(q), id)
			h.db.Client.Del(ctx, keys.AsynqTask(q, id))
		}
	}
	copied, err := dlq.Reconcile(ctx, []string{"default"})
	if err != nil {
		t.Fatal(err)
	}
	if !trimmed {
		t.Fatal("the reconciler went through the archive in one piece: nothing trimmed mid-scan")
	}
	left, err := h.db.Client.ZRange(ctx, keys.AsynqArchived("default"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	have, err := dlq.has(ctx, left)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, ok := range have {
		if !ok {
			missing++
		}
	}
	if missing != 0 || len(left) != n-trim {
		t.Errorf("%d of the %d entries left in the archive have no dead letter (copied %d)", missing, len(left), copied)
	}
}
