package worker

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// hookRig is a Redis client with the dequeue hook on it, counting the
// dequeue scripts that reach Redis, and asynq's own dequeue call.
type hookRig struct {
	rdb   *redis.Client
	hook  *dequeueHook
	count *scriptCounter
}

func newHookRig(t *testing.T, h *harness, weights map[string]int, concurrency int) *hookRig {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: h.db.Client.Options().Addr, DB: h.db.Client.Options().DB})
	t.Cleanup(func() { rdb.Close() })
	r := &hookRig{rdb: rdb, hook: installDequeueHook(rdb, weights, concurrency, 0), count: &scriptCounter{}}
	rdb.AddHook(r.count)
	return r
}

// dequeue runs asynq's dequeue script for queue q, as asynq's RDB does.
func (r *hookRig) dequeue(t *testing.T, q string) (string, error) {
	t.Helper()
	lease := time.Now().Add(30 * time.Second).Unix()
	return asynqDequeueScript(t).Run(context.Background(), r.rdb,
		[]string{keys.AsynqPending(q), keys.AsynqPaused(q), keys.AsynqActive(q), keys.AsynqLease(q)},
		lease, keys.AsynqTaskPrefix(q)).Text()
}

func (r *hookRig) kept() []keptMsg {
	r.hook.mu.Lock()
	defer r.hook.mu.Unlock()
	return slices.Clone(r.hook.kept)
}

// enqueueRaw puts n tasks of payload size bytes in queue q, ids prefix0...
func enqueueRaw(t *testing.T, h *harness, q, prefix string, n, size int) []string {
	t.Helper()
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	var ids []string
	for i := range n {
		id := prefix + string(rune('a'+i))
		if _, err := ac.Enqueue(asynq.NewTask("t", bytes.Repeat([]byte("x"), size)), asynq.Queue(q), asynq.TaskID(id)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestDequeueMultiBudget: one run takes up to the concurrency's worth of
// small tasks, in queue order, each active and leased as asynq's own
// dequeue leaves it, and hands out the kept ones without a round trip;
// tasks of 100 KB (a cio:batch task of 500 operations) are taken one per
// run, so a worker never holds more than the message budget of them
// beyond what its handlers hold.
func TestDequeueMultiBudget(t *testing.T) {
	h := newHarness(t, nil, true)
	ctx := context.Background()
	r := newHookRig(t, h, map[string]int{"qa": 1, "qb": 1}, 3)
	small := enqueueRaw(t, h, "qa", "s", 5, 100)

	var got []string
	for range 5 {
		msg, err := r.dequeue(t, "qb")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msg)
		if len(got) == 1 {
			// The first run took 3 (the concurrency): all active and
			// leased, 2 kept.
			for _, id := range small[:3] {
				if st := h.db.Client.HGet(ctx, keys.AsynqTask("qa", id), "state").Val(); st != "active" {
					t.Errorf("task %s state %q after the first run, want active", id, st)
				}
				if _, err := h.db.Client.ZScore(ctx, keys.AsynqLease("qa"), id).Result(); err != nil {
					t.Errorf("task %s has no lease after the first run: %v", id, err)
				}
				if h.db.Client.HExists(ctx, keys.AsynqTask("qa", id), "pending_since").Val() {
					t.Errorf("task %s keeps pending_since (asynq's dequeue deletes it)", id)
				}
			}
			if k := r.kept(); len(k) != 2 || k[0].id != small[1] || k[1].id != small[2] {
				t.Errorf("kept %v after the first run, want %v", k, small[1:3])
			}
		}
	}
	for i, msg := range got { // in queue order
		if !strings.Contains(msg, small[i]) {
			t.Errorf("dequeue %d handed out %q, want task %s", i, msg, small[i])
		}
	}
	if n := r.count.dequeues.Load(); n != 2 {
		t.Errorf("%d round trips for 5 small tasks at concurrency 3, want 2", n)
	}
	if n := h.db.Client.LLen(ctx, keys.AsynqActive("qa")).Val(); n != 5 {
		t.Errorf("%d tasks active, want 5", n)
	}

	large := enqueueRaw(t, h, "qa", "L", 3, 100<<10)
	r.count.dequeues.Store(0)
	for i := range 3 {
		msg, err := r.dequeue(t, "qa")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(msg, large[i]) {
			t.Errorf("large dequeue %d: not task %s", i, large[i])
		}
		if k := r.kept(); len(k) != 0 {
			t.Errorf("%d large tasks kept beside the one handed out, want 0", len(k))
		}
	}
	if n := r.count.dequeues.Load(); n != 3 {
		t.Errorf("%d round trips for 3 tasks of 100 KB, want 3 (one each)", n)
	}
}

// TestDequeuePrefetchRelease: a kept task handed out late gets its lease
// renewed to asynq's new one first; one whose lease asynq's recoverer
// has taken meanwhile is skipped; one kept past its lease period is put
// back in its queue (pending, no lease); the next kept task is handed
// out.
func TestDequeuePrefetchRelease(t *testing.T) {
	h := newHarness(t, nil, true)
	ctx := context.Background()
	r := newHookRig(t, h, map[string]int{"qa": 1}, 8)
	ids := enqueueRaw(t, h, "qa", "r", 4, 10)
	if _, err := r.dequeue(t, "qa"); err != nil {
		t.Fatal(err)
	}
	// The kept tasks taken long ago: the first (r-b) past its lease
	// period, the second (r-c) recovered since, the third (r-d) late.
	r.hook.mu.Lock()
	for i := range r.hook.kept {
		r.hook.kept[i].at = time.Now().Add(-2 * prefetchRelease)
	}
	r.hook.kept[0].at = time.Now().Add(-prefetchDrop - time.Second)
	r.hook.mu.Unlock()
	stale := ids[1]
	staleLease := h.db.Client.ZScore(ctx, keys.AsynqLease("qa"), stale).Val()
	ids = append(ids[:1], ids[2:]...)
	h.db.Client.ZRem(ctx, keys.AsynqLease("qa"), ids[1])
	h.db.Client.ZAdd(ctx, keys.AsynqLease("qa"), redis.Z{Score: 1, Member: ids[2]})

	msg, err := r.dequeue(t, "qa")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, ids[2]) {
		t.Errorf("handed out %q, want %s (%s was recovered)", msg, ids[2], ids[1])
	}
	if s := h.db.Client.ZScore(ctx, keys.AsynqLease("qa"), ids[2]).Val(); s < float64(time.Now().Unix()) {
		t.Errorf("lease of the late task %v, want renewed to asynq's (in the future)", s)
	}
	if _, err := h.db.Client.ZScore(ctx, keys.AsynqLease("qa"), ids[1]).Result(); err != redis.Nil {
		t.Errorf("the recovered task got a lease again: %v", err)
	}
	if _, err := h.db.Client.ZScore(ctx, keys.AsynqLease("qa"), stale).Result(); err != redis.Nil {
		t.Errorf("the task kept past its lease period (lease %v) still has a lease: %v", staleLease, err)
	}
	if st := h.db.Client.HGet(ctx, keys.AsynqTaskPrefix("qa")+stale, "state").Val(); st != "pending" {
		t.Errorf("the task kept past its lease period is %q, want put back pending", st)
	}
	if pend := h.db.Client.LRange(ctx, keys.AsynqPending("qa"), 0, -1).Val(); !slices.Contains(pend, stale) {
		t.Errorf("pending %v, want the task kept past its lease period %s back in it", pend, stale)
	}
	if act := h.db.Client.LRange(ctx, keys.AsynqActive("qa"), 0, -1).Val(); slices.Contains(act, stale) {
		t.Errorf("active %v still holds the task put back %s", act, stale)
	}
	if k := r.kept(); len(k) != 0 {
		t.Errorf("kept %d after handing out the last, want 0", len(k))
	}
}

// TestDequeueShutdownRequeues: Shutdown puts the kept tasks back at the
// head of their queue, in order, pending and without a lease, and the
// next dequeue (by asynq alone) takes them first.
func TestDequeueShutdownRequeues(t *testing.T) {
	h := newHarness(t, nil, true)
	ctx := context.Background()
	r := newHookRig(t, h, map[string]int{"qa": 1, "qb": 1}, 4)
	ids := enqueueRaw(t, h, "qa", "q", 6, 10)
	if _, err := r.dequeue(t, "qa"); err != nil {
		t.Fatal(err)
	}
	if err := r.hook.requeue(ctx, r.rdb); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[1:4] {
		if st := h.db.Client.HGet(ctx, keys.AsynqTask("qa", id), "state").Val(); st != "pending" {
			t.Errorf("task %s state %q after the requeue, want pending", id, st)
		}
		if _, err := h.db.Client.ZScore(ctx, keys.AsynqLease("qa"), id).Result(); err != redis.Nil {
			t.Errorf("task %s keeps a lease: %v", id, err)
		}
	}
	if got := h.db.Client.LRange(ctx, keys.AsynqActive("qa"), 0, -1).Val(); !slices.Equal(got, ids[:1]) {
		t.Errorf("active %v, want only the handed-out %v", got, ids[:1])
	}
	// asynq's own script, without the hook, takes from the list's tail.
	plain := redis.NewClient(&redis.Options{Addr: h.db.Client.Options().Addr, DB: h.db.Client.Options().DB})
	defer plain.Close()
	for _, want := range ids[1:] {
		msg, err := asynqDequeueScript(t).Run(ctx, plain,
			[]string{keys.AsynqPending("qa"), keys.AsynqPaused("qa"), keys.AsynqActive("qa"), keys.AsynqLease("qa")},
			time.Now().Add(30*time.Second).Unix(), keys.AsynqTaskPrefix("qa")).Text()
		if err != nil || !strings.Contains(msg, want) {
			t.Fatalf("dequeue after the requeue: %q %v, want task %s", msg, err, want)
		}
	}
	// After requeue the hook keeps nothing.
	enqueueRaw(t, h, "qa", "z", 3, 10)
	if _, err := r.dequeue(t, "qa"); err != nil {
		t.Fatal(err)
	}
	if k := r.kept(); len(k) != 0 {
		t.Errorf("kept %d tasks after the requeue, want none", len(k))
	}
}

// TestDequeuePrefetchCrashLosesNothing: a worker that dies holding
// prefetched tasks (and one its handler had) leaves them active and
// leased; once the leases have expired (set to the past here, as a minute
// would), a new worker's asynq recoverer retries them and every event is
// delivered.
func TestDequeuePrefetchCrashLosesNothing(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Batching.Off = true
		c.RateLimits.Off = true
	}, true)
	ctx := context.Background()
	const n = 5
	for i := range n {
		if _, err := h.prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "crash"}, Event: customerio.Event{Name: "e" + string(rune('0'+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	// The dead worker's hook: one task handed out, the rest kept, then
	// nothing (no requeue).
	r := newHookRig(t, h, map[string]int{tasks.QueueDefault: 1}, 8)
	if _, err := r.dequeue(t, tasks.QueueDefault); err != nil {
		t.Fatal(err)
	}
	if k := r.kept(); len(k) != n-1 {
		t.Fatalf("kept %d, want %d", len(k), n-1)
	}
	if got := h.db.Client.ZCard(ctx, keys.AsynqLease(tasks.QueueDefault)).Val(); got != n {
		t.Fatalf("%d leased, want %d", got, n)
	}
	if got := h.db.Client.LLen(ctx, keys.AsynqPending(tasks.QueueDefault)).Val(); got != 0 {
		t.Fatalf("%d pending, want 0", got)
	}
	// A minute later: every lease long expired.
	ids := h.db.Client.ZRange(ctx, keys.AsynqLease(tasks.QueueDefault), 0, -1).Val()
	for _, id := range ids {
		h.db.Client.ZAdd(ctx, keys.AsynqLease(tasks.QueueDefault), redis.Z{Score: float64(time.Now().Add(-2 * time.Minute).Unix()), Member: id})
	}

	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var delivered atomic.Int64
	w.returned = func(_ *Task, err error) {
		if err == nil {
			delivered.Add(1)
		}
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	eventually(t, 60*time.Second, "every prefetched task delivered after the crash", func() bool { return delivered.Load() == n })
	names := map[string]bool{}
	for _, rq := range h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack}) {
		names[rq.Body] = true
	}
	if len(names) != n {
		t.Errorf("sandbox received %d distinct events, want %d", len(names), n)
	}
}
