package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// orderObs records the ordering gate's waits (snoozes, by task type and
// time) and give-ups.
type orderObs struct {
	NopObserver
	mu      sync.Mutex
	snoozes map[string][]time.Time
	gaveUp  int
}

func (o *orderObs) Retried(typ string, reason RetryReason, _ int) {
	if reason != RetrySnoozed {
		return
	}
	o.mu.Lock()
	o.snoozes[typ] = append(o.snoozes[typ], time.Now())
	o.mu.Unlock()
}

func (o *orderObs) OrderingWait(_ string, _ time.Duration, gaveUp bool) {
	if gaveUp {
		o.mu.Lock()
		o.gaveUp++
		o.mu.Unlock()
	}
}

// snoozedSince counts the snoozes of tasks of type typ reported after t.
func (o *orderObs) snoozedSince(typ string, t time.Time) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, at := range o.snoozes[typ] {
		if at.After(t) {
			n++
		}
	}
	return n
}

func (o *orderObs) gaveUps() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gaveUp
}

// orderedHarness is a harness (not started) whose default workspace is
// ordered with maxWait, without batching or rate limits (so every snooze
// is the ordering gate's and every event its own request), and a producer
// with ordering.
func orderedHarness(t *testing.T, maxWait time.Duration) (*harness, *orderObs, *producer.Client) {
	t.Helper()
	obs := &orderObs{snoozes: map[string][]time.Time{}}
	h := newHarness(t, func(c *Config) {
		c.Observer = obs
		c.Batching.Off = true
		c.RateLimits.Off = true
		c.Ordering = Ordering{Workspaces: map[string]bool{"": true}, MaxWait: maxWait, Poll: 50 * time.Millisecond}
	}, true)
	h.dumpOnFailure(t)
	return h, obs, producer.NewFromRedis(h.db.Client, producer.WithOrdering())
}

// ordEvent is event number i of person "ord".
func ordEvent(i int) tasks.Track {
	return tasks.Track{Identifiers: customerio.Identifiers{ID: "ord"}, Event: customerio.Event{Name: "e", Data: map[string]any{"i": i}}}
}

// ordKey is person "ord"'s order key.
func ordKey(t *testing.T) string {
	k, ok := producer.OrderKey(ordEvent(0))
	if !ok {
		t.Fatal("no order key")
	}
	return k
}

// deliveredOrder lists the i of every event of person "ord" Customer.io
// accepted, in arrival order, repeats included.
func deliveredOrder(sb *sandbox.Server) []int {
	var out []int
	for _, r := range sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, Method: "POST", PathContains: "/customers/ord/events", Order: sandbox.OrderOldest}) {
		if r.Status < 200 || r.Status > 299 {
			continue
		}
		var b struct {
			Data struct {
				I int `json:"i"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(r.Body), &b) == nil {
			out = append(out, b.Data.I)
		}
	}
	return out
}

func waitDelivered(t *testing.T, h *harness, want ...int) {
	t.Helper()
	waitSandbox(t, h.sb, 30*time.Second, "events "+fmtInts(want),
		func(sb *sandbox.Server) bool { return len(deliveredOrder(sb)) >= len(want) })
	if got := deliveredOrder(h.sb); !slices.Equal(got, want) {
		t.Fatalf("delivered in the order %v, want %v", got, want)
	}
}

func fmtInts(v []int) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// deliverThree enqueues events 0, 1 and 2 of person "ord" and waits until
// they were delivered and acknowledged (recorded as finished first).
func deliverThree(t *testing.T, h *harness, prod *producer.Client) {
	t.Helper()
	var last producer.Receipt
	for i := 0; i < 3; i++ {
		r, err := prod.Track(context.Background(), ordEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	waitDelivered(t, h, 0, 1, 2)
	eventually(t, 10*time.Second, "the last event acknowledged", func() bool { return h.done(last.TaskID) })
}

// awaitSnoozes waits until tasks of type typ were snoozed n times after t.
func awaitSnoozes(t *testing.T, obs *orderObs, typ string, since time.Time, n int) {
	t.Helper()
	eventually(t, 30*time.Second, "the ordering gate to snooze the waiting task", func() bool { return obs.snoozedSince(typ, since) >= n })
}

// TestOrderingDuplicateTakesNoPlace: an enqueue refused as a duplicate of
// its idempotency key does not leave a gap in the person's sequence, so
// the task after it does not wait for a number no task holds. MaxWait is an
// hour: the next task is delivered because nothing is missing, not after
// a bound. (Before: the duplicate took number 2 and B, number 3, waited
// out MaxWait for it.)
func TestOrderingDuplicateTakesNoPlace(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Hour)
	ctx := context.Background()
	if _, err := prod.Track(ctx, ordEvent(0), producer.IdempotencyKey("ord-a")); err != nil {
		t.Fatal(err)
	}
	dup, err := prod.Track(ctx, ordEvent(0), producer.IdempotencyKey("ord-a"))
	if err != nil || !dup.Duplicate {
		t.Fatalf("second enqueue of the key: %+v, %v; want a duplicate", dup, err)
	}
	if _, err := prod.Track(ctx, ordEvent(1)); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	waitDelivered(t, h, 0, 1)
	if g := obs.gaveUps(); g != 0 {
		t.Errorf("%d give-ups: the duplicate's number was waited for or skipped", g)
	}
}

// TestOrderingWaitsForAQueuedPredecessor: a predecessor that is still in
// the queue (here scheduled for later) is waited for past MaxWait (1 s);
// the successor is delivered after it, once it ran. (Before: the successor
// gave up after MaxWait and overtook it.)
func TestOrderingWaitsForAQueuedPredecessor(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Second)
	ctx := context.Background()
	a, err := prod.Track(ctx, ordEvent(0), producer.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	enqueued := time.Now()
	if _, err := prod.Track(ctx, ordEvent(1)); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	// Snoozed twice after three times MaxWait: it did not give up.
	awaitSnoozes(t, obs, tasks.TypeTrack, enqueued.Add(3*time.Second), 2)
	if got := deliveredOrder(h.sb); len(got) != 0 {
		t.Fatalf("delivered %v while the person's first task is still scheduled", got)
	}
	if err := h.insp.RunTask(a.Queue, a.TaskID); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, h, 0, 1)
	if g := obs.gaveUps(); g != 0 {
		t.Errorf("%d give-ups", g)
	}
}

// TestOrderingGoesOnWhenThePredecessorIsGone: a predecessor archived
// without being recorded as finished (as a worker without ordering leaves a
// dead letter) is gone, and its successor is delivered at once although
// MaxWait is an hour; the skip is reported. (Before: it waited out MaxWait.)
func TestOrderingGoesOnWhenThePredecessorIsGone(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Hour)
	ctx := context.Background()
	a, err := prod.Track(ctx, ordEvent(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.insp.ArchiveTask(a.Queue, a.TaskID); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Track(ctx, ordEvent(1)); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	waitDelivered(t, h, 1)
	if g := obs.gaveUps(); g != 1 {
		t.Errorf("%d give-ups reported, want 1", g)
	}
}

// TestOrderingWaitsForTheAcknowledgement: a worker records a task as
// finished before asynq acknowledges it; one that crashes in between
// leaves the task queued (asynq's recoverer retries it) although it is
// recorded as finished. Its successor must wait for that second delivery.
// The test makes that state: A is delivered (recorded finished), then A's
// task, same id and bytes, is put back in the queue, scheduled for later.
// (Before: B went ahead at once.)
func TestOrderingWaitsForTheAcknowledgement(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Second)
	ctx := context.Background()
	a, err := prod.Track(ctx, ordEvent(0))
	if err != nil {
		t.Fatal(err)
	}
	ti, err := h.insp.GetTaskInfo(a.Queue, a.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	h.start(t)
	waitDelivered(t, h, 0)
	eventually(t, 10*time.Second, "A acknowledged", func() bool { return h.done(a.TaskID) })
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	if _, err := ac.Enqueue(asynq.NewTask(ti.Type, ti.Payload), asynq.TaskID(a.TaskID), asynq.Queue(a.Queue), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	enqueued := time.Now()
	if _, err := prod.Track(ctx, ordEvent(1)); err != nil {
		t.Fatal(err)
	}
	awaitSnoozes(t, obs, tasks.TypeTrack, enqueued, 2)
	if got := deliveredOrder(h.sb); len(got) != 1 {
		t.Fatalf("delivered %v while A is queued again", got)
	}
	if err := h.insp.RunTask(a.Queue, a.TaskID); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, h, 0, 0, 1)
}

// TestOrderingRetriedDeadLetterTakesANewPlace: a dead letter retried with
// DeadLetters.Retry gets a new number at the end of its person's sequence,
// so it waits for the person's task enqueued before the retry (here
// scheduled for later) instead of passing at once with its old, finished
// number. (Before: it kept number 1 and overtook C.)
func TestOrderingRetriedDeadLetterTakesANewPlace(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Second)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 400, Times: 1})
	h.start(t)
	a, err := prod.Track(ctx, ordEvent(0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "A dead-lettered", func() bool {
		ti := h.taskInfo(a.TaskID)
		_, err := h.w.DLQ().Get(ctx, a.TaskID)
		return err == nil && ti != nil && ti.State == asynq.TaskStateArchived
	})
	c, err := prod.Track(ctx, ordEvent(1), producer.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	retried := time.Now()
	info, err := h.w.DLQ().Retry(ctx, a.TaskID, ac)
	if err != nil {
		t.Fatal(err)
	}
	if env, _, err := tasks.Decode(info.Type, info.Payload); err != nil || env.Seq != 3 {
		t.Errorf("the retried task's envelope: %v, want number 3", describeSeq(env, err))
	}
	awaitSnoozes(t, obs, tasks.TypeTrack, retried, 2)
	if got := deliveredOrder(h.sb); len(got) != 0 {
		t.Fatalf("delivered %v while C, enqueued before the retry, is scheduled", got)
	}
	if err := h.insp.RunTask(c.Queue, c.TaskID); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, h, 1, 0)
	if g := obs.gaveUps(); g != 0 {
		t.Errorf("%d give-ups", g)
	}
}

// TestOrderingLostDoneRecord: a person whose record of finished tasks was
// lost (evicted) goes on at once, MaxWait being an hour: first the done
// hash the gate used alone, then the person's state. (Before: losing the
// done hash cost (seq-1) × MaxWait.)
func TestOrderingLostDoneRecord(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Hour)
	ctx := context.Background()
	h.start(t)
	deliverThree(t, h, prod)
	key := ordKey(t)
	if err := h.db.Client.Del(ctx, DoneKey("", key)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Track(ctx, ordEvent(3)); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, h, 0, 1, 2, 3)
	if err := h.db.Client.Del(ctx, keys.SeqState("", key)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Track(ctx, ordEvent(4)); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, h, 0, 1, 2, 3, 4)
	if g := obs.gaveUps(); g != 0 {
		t.Errorf("%d give-ups", g)
	}
}

// TestOrderingGateRefreshesExpiry: a person whose tasks only wait (no task
// finishes, none is enqueued: e.g. a predecessor kept for missing
// credentials) keeps its ordering records: every gate run sets their
// expiry to 7 days again. (Before: only finishing or giving up did, so
// after a week the records expired.)
func TestOrderingGateRefreshesExpiry(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Second)
	ctx := context.Background()
	h.start(t)
	if _, err := prod.Track(ctx, ordEvent(0)); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, h, 0)
	if _, err := prod.Track(ctx, ordEvent(1), producer.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := prod.Track(ctx, ordEvent(2)); err != nil {
		t.Fatal(err)
	}
	awaitSnoozes(t, obs, tasks.TypeTrack, start, 1)
	key := ordKey(t)
	records := []string{DoneKey("", key), keys.Seq("", key), keys.SeqState("", key)}
	for _, k := range records {
		if err := h.db.Client.Expire(ctx, k, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Two more snoozes: the second attempt's gate ran after the expiry
	// was cut.
	awaitSnoozes(t, obs, tasks.TypeTrack, time.Now(), 2)
	for _, k := range records {
		if ttl, err := h.db.Client.TTL(ctx, k).Result(); err != nil || ttl < 24*time.Hour {
			t.Errorf("%s expires in %v (%v), want about 7 days", k, ttl, err)
		}
	}
}

// TestOrderingCounterRestartsFromDone: a person's sequence counter that
// expired (or was evicted) while the record of finished tasks lives
// restarts above it, so the person's next tasks are ordered after those
// finished instead of passing as already done. (Before: it restarted at 1.)
func TestOrderingCounterRestartsFromDone(t *testing.T) {
	t.Parallel()
	h, obs, prod := orderedHarness(t, time.Hour)
	ctx := context.Background()
	h.start(t)
	deliverThree(t, h, prod)
	if err := h.db.Client.Del(ctx, keys.Seq("", ordKey(t))).Err(); err != nil {
		t.Fatal(err)
	}
	d, err := prod.Track(ctx, ordEvent(3), producer.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Track(ctx, ordEvent(4)); err != nil {
		t.Fatal(err)
	}
	ti, err := h.insp.GetTaskInfo(d.Queue, d.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if env, _, err := tasks.Decode(ti.Type, ti.Payload); err != nil || env.Seq != 4 {
		t.Fatalf("the next task's envelope: %v, want number 4", describeSeq(env, err))
	}
	// And the task after it waits for it.
	awaitSnoozes(t, obs, tasks.TypeTrack, time.Now(), 1)
	if err := h.insp.RunTask(d.Queue, d.TaskID); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, h, 0, 1, 2, 3, 4)
}

// describeSeq says which number an envelope holds, for failure messages.
func describeSeq(env *tasks.Envelope, err error) string {
	if err != nil || env == nil {
		return fmt.Sprintf("undecodable (%v)", err)
	}
	return fmt.Sprintf("number %d", env.Seq)
}

// TestOrderingChainDoesNotStall: 20 queued events of one person, with
// 10 ms of latency each, are delivered in order, each as soon as the one
// before it is done: no task is rescheduled to wait (each waits in the
// worker while its predecessor runs, and is woken when it finishes). On
// main every task the gate held longer than Poll was rescheduled for a
// second or more.
func TestOrderingChainDoesNotStall(t *testing.T) {
	h, obs, prod := orderedHarness(t, time.Hour)
	h.cfg.Ordering.ActiveWait = 20 * time.Second
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Latency: 10 * time.Millisecond})
	var want []int
	for i := 0; i < 20; i++ {
		if _, err := prod.Track(context.Background(), ordEvent(i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, i)
	}
	start := time.Now()
	h.start(t)
	waitDelivered(t, h, want...)
	t.Logf("20 events delivered in order in %s", time.Since(start).Round(time.Millisecond))
	if n := obs.snoozedSince(tasks.TypeTrack, start); n != 0 {
		t.Errorf("%d waits rescheduled, want none", n)
	}
}

// rescheduledPair enqueues two ordered events of one person and runs a
// worker until both are in asynq's retry set: event 0 for a 503 with
// Retry-After 60, event 1 waiting for event 0. It stops that worker and
// returns the events' ids, a reader of their states and a worker that is
// not started (nothing runs the tasks).
func rescheduledPair(t *testing.T) (h *harness, w *Worker, r0, r1 string, state func(id string) asynq.TaskState) {
	h, obs, prod := orderedHarness(t, time.Hour)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, RetryAfter: "60", Times: 1})
	var ids [2]string
	for i := range ids {
		res, err := prod.Track(context.Background(), ordEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.TaskID
	}
	start := time.Now()
	h.start(t)
	awaitSnoozes(t, obs, tasks.TypeTrack, start, 1)
	state = func(id string) asynq.TaskState {
		if ti := h.taskInfo(id); ti != nil {
			return ti.State
		}
		return 0
	}
	eventually(t, 10*time.Second, "both retrying", func() bool {
		return state(ids[0]) == asynq.TaskStateRetry && state(ids[1]) == asynq.TaskStateRetry
	})
	h.w.Shutdown()
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return h, w, ids[0], ids[1], state
}

// TestOrderingWakesTheRescheduledSuccessor: event 1 waits for event 0,
// which is retrying after a 503 with Retry-After 60, so event 1 is
// rescheduled. Event 0's finish runs event 1 at once (wakeSuccessor moves
// it from asynq's retry set to pending) rather than after its delay; a
// task retrying for a failure of its own is not woken.
func TestOrderingWakesTheRescheduledSuccessor(t *testing.T) {
	_, w, r0, r1, state := rescheduledPair(t)
	key := ordKey(t)
	w.wakeSuccessor(context.Background(), "", key, 1) // event 0: retrying for its own 503
	if s := state(r0); s != asynq.TaskStateRetry {
		t.Errorf("event 0 (its own failure) is %v, want still retrying", s)
	}
	w.wakeSuccessor(context.Background(), "", key, 2) // event 1: waiting for event 0
	if s := state(r1); s != asynq.TaskStatePending {
		t.Errorf("event 1 is %v after its predecessor finished, want pending", s)
	}
}

// TestOrderingWakesASuccessorOnItsWayBack: event 1 gave up waiting for
// event 0 a moment before event 0 finished, and asynq has not moved it to
// its retry set yet when event 0's finish looks: it is still running. The
// finish looks again shortly, and runs it once it is there, instead of
// leaving it to wait out its delay (a lost wake-up stood a person's tasks
// still for 1-3 s in `cioq bench`'s ordered chain, one run in eight).
func TestOrderingWakesASuccessorOnItsWayBack(t *testing.T) {
	h, w, _, r1, state := rescheduledPair(t)
	// Event 1 as it is for a moment after its handler gave up: running.
	hash := keys.AsynqTask(tasks.QueueDefault, r1)
	ctx := context.Background()
	if err := h.db.Client.HSet(ctx, hash, "state", "active").Err(); err != nil {
		t.Fatal(err)
	}
	w.wakeSuccessor(ctx, "", ordKey(t), 2) // event 0 finished
	if s := state(r1); s != asynq.TaskStateActive {
		t.Fatalf("event 1 is %v, want still running", s)
	}
	// asynq moves it to its retry set.
	if err := h.db.Client.HSet(ctx, hash, "state", "retry").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "event 1 run after all", func() bool { return state(r1) == asynq.TaskStatePending })
}
