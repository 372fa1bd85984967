package worker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// TestMultiMsgPrefix: the message asynq writes for a cio:batch task starts
// with multiMsgPrefix; one of another type does not.
func TestMultiMsgPrefix(t *testing.T) {
	h := newHarness(t, nil, true)
	t.Parallel()
	ctx := context.Background()
	ids := enqueueBatch(t, h, []tasks.Payload{ev("prefix", 0), ev("prefix", 1)})
	if len(ids) != 1 {
		t.Fatalf("%d tasks, want 1", len(ids))
	}
	msg, err := h.db.Client.HGet(ctx, keys.AsynqTask(tasks.QueueDefault, ids[0]), "msg").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !isMultiMsg(msg) {
		t.Errorf("a cio:batch task's message starts %q, want %q", msg[:min(len(msg), 16)], multiMsgPrefix)
	}
	rec, err := h.prod.Enqueue(ctx, ev("prefix", 2))
	if err != nil {
		t.Fatal(err)
	}
	msg, err = h.db.Client.HGet(ctx, keys.AsynqTask(rec.Queue, rec.TaskID), "msg").Result()
	if err != nil {
		t.Fatal(err)
	}
	if isMultiMsg(msg) {
		t.Errorf("a %s task's message taken for a cio:batch one", tasks.TypeTrack)
	}
}

// enqueueTyped puts n tasks of type typ in queue q, ids prefix0, prefix1...
func enqueueTyped(t *testing.T, h *harness, q, typ, prefix string, n int) []string {
	t.Helper()
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	var ids []string
	for i := range n {
		id := prefix + strconv.Itoa(i)
		if _, err := ac.Enqueue(asynq.NewTask(typ, []byte("{}")), asynq.Queue(q), asynq.TaskID(id)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestDequeueBoundsBatchTasks: a hook bounded to 2 cio:batch tasks takes
// (and keeps) 2 from a queue of them, then stops at the third at the head
// of that queue while another queue's tasks are still handed out; a
// released one lets the next cio:batch task be taken; one that finished
// without a release (no longer leased in Redis) is released by the hook's
// own look in Redis.
func TestDequeueBoundsBatchTasks(t *testing.T) {
	h := newHarness(t, nil, true)
	t.Parallel()
	ctx := context.Background()
	r := newHookRig(t, h, map[string]int{"qa": 1, "qb": 1}, 8)
	r.hook.multiMost = 2
	batches := enqueueTyped(t, h, "qa", tasks.TypeBatch, "b", 4)
	plain := enqueueTyped(t, h, "qb", tasks.TypeTrack, "p", 2)

	take := func(q string) string {
		t.Helper()
		msg, err := r.dequeue(t, q)
		if err != nil {
			t.Fatalf("dequeue %s: %v", q, err)
		}
		return msg
	}
	held := func() int {
		r.hook.mu.Lock()
		defer r.hook.mu.Unlock()
		return r.hook.multiMost - r.hook.multiRoom()
	}
	if msg := take("qa"); !strings.Contains(msg, batches[0]) {
		t.Fatalf("first dequeue: not %s", batches[0])
	}
	if k := r.kept(); len(k) != 1 || k[0].id != batches[1] {
		t.Fatalf("kept %v, want only %s (the bound is 2)", k, batches[1])
	}
	if n := h.db.Client.LLen(ctx, keys.AsynqPending("qa")).Val(); n != 2 {
		t.Errorf("%d cio:batch tasks left pending, want 2", n)
	}
	if msg := take("qa"); !strings.Contains(msg, batches[1]) {
		t.Fatalf("second dequeue: not the kept %s", batches[1])
	}
	// Bounded: qa's head is a cio:batch task, qb's tasks flow.
	for i := range 2 {
		if msg := take("qa"); !strings.Contains(msg, plain[i]) {
			t.Fatalf("bounded dequeue %d: not %s", i, plain[i])
		}
	}
	if _, err := r.dequeue(t, "qa"); err == nil {
		t.Fatal("a bounded hook handed out a third cio:batch task")
	}
	if n := held(); n != 2 {
		t.Fatalf("%d cio:batch tasks held, want 2", n)
	}

	r.hook.releaseMulti(batches[0])
	if msg := take("qa"); !strings.Contains(msg, batches[2]) {
		t.Fatalf("after a release: not %s", batches[2])
	}
	if _, err := r.dequeue(t, "qa"); err == nil {
		t.Fatal("a bounded hook handed out a third cio:batch task after one release")
	}

	// batches[1] finishes without a release (as asynq fails a task whose
	// deadline passed before it started it: Retry takes its lease).
	if err := h.db.Client.ZRem(ctx, keys.AsynqLease("qa"), batches[1]).Err(); err != nil {
		t.Fatal(err)
	}
	r.hook.mu.Lock()
	r.hook.checked = time.Time{}
	r.hook.mu.Unlock()
	if msg := take("qa"); !strings.Contains(msg, batches[3]) {
		t.Fatalf("after a task left its lease: not %s", batches[3])
	}
	if n := held(); n != 2 {
		t.Errorf("%d cio:batch tasks held, want 2 (%s and %s)", n, batches[2], batches[3])
	}
	r.hook.mu.Lock()
	peak := r.hook.multiPeak
	r.hook.mu.Unlock()
	if peak != 2 {
		t.Errorf("peak %d cio:batch tasks held, want 2", peak)
	}
}

// TestWorkerBoundsBatchTasks: at concurrency 50, with 60 cio:batch tasks
// in the queue, the worker holds at most its cio:batch slots + 2 of them
// at once (the hook's own count, and the tasks active in Redis, which
// include the prefetched ones), and every operation of every task reaches
// Customer.io once.
func TestWorkerBoundsBatchTasks(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Concurrency = 50 }, true)
	h.dumpOnFailure(t)
	t.Parallel()
	const nTasks, perTask = 60, 20
	var ids []string
	for i := range nTasks {
		var ops []tasks.Payload
		for j := range perTask {
			ops = append(ops, ev("bound-"+strconv.Itoa(i)+"-"+strconv.Itoa(j), j))
		}
		ids = append(ids, enqueueBatch(t, h, ops)...)
	}
	if len(ids) != nTasks {
		t.Fatalf("%d tasks, want %d", len(ids), nTasks)
	}
	h.start(t)
	bound := multiTasksAtOnce(h.cfg.Batching.MaxInFlight) + multiExtra
	ctx := context.Background()
	most := int64(0)
	eventually(t, 60*time.Second, "every cio:batch task done", func() bool {
		most = max(most, h.db.Client.LLen(ctx, keys.AsynqActive(tasks.QueueDefault)).Val())
		for _, id := range ids {
			if !h.done(id) {
				return false
			}
		}
		return true
	})
	if most > int64(bound) {
		t.Errorf("%d cio:batch tasks active at once, want at most %d", most, bound)
	}
	h.w.dequeue.mu.Lock()
	peak, held := h.w.dequeue.multiPeak, len(h.w.dequeue.held)
	h.w.dequeue.mu.Unlock()
	if peak > bound || peak < 1 {
		t.Errorf("the hook held at most %d cio:batch tasks at once, want 1..%d", peak, bound)
	}
	if held != 0 {
		t.Errorf("%d cio:batch tasks still held once all are done", held)
	}
	for i := range nTasks {
		for j := range perTask {
			pid := "bound-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
			if evs := h.sb.Events(pid); len(evs) != 1 {
				t.Fatalf("%s: %d events, want 1", pid, len(evs))
			}
		}
	}
}
