package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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

// ev is a track event of person pid carrying its number i.
func ev(pid string, i int) *tasks.Track {
	return &tasks.Track{Identifiers: customerio.Identifiers{ID: pid}, Event: customerio.Event{Name: "e", Data: map[string]any{"i": i}}}
}

// enqueueBatch enqueues ops with producer.EnqueueBatch and returns the
// ids of its tasks.
func enqueueBatch(t *testing.T, h *harness, ops []tasks.Payload) []string {
	t.Helper()
	rec, err := h.prod.EnqueueBatch(context.Background(), ops)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rec.Tasks {
		ids = append(ids, r.TaskID)
	}
	return ids
}

// drained waits until no task is pending, active, scheduled or retrying.
func drained(t *testing.T, h *harness, d time.Duration) {
	t.Helper()
	eventually(t, d, "queues drained", func() bool {
		qi, err := h.insp.GetQueueInfo(tasks.QueueDefault)
		return err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Retry == 0 && qi.Scheduled == 0
	})
}

// TestBatchTaskDeliversEveryOperation: 1,200 operations of several types
// go into three cio:batch tasks and reach Customer.io in a handful of v2
// batch requests (not one request or one task each); every person,
// event and object arrives, nothing is dead-lettered, and no progress
// record is left behind.
func TestBatchTaskDeliversEveryOperation(t *testing.T) {
	h := newHarness(t, nil, true)
	h.dumpOnFailure(t)
	var ops []tasks.Payload
	for i := 0; i < 400; i++ {
		pid := "all-" + strconv.Itoa(i)
		ops = append(ops, &tasks.Identify{Identifiers: customerio.Identifiers{ID: pid}, Attributes: map[string]any{"n": i}}, ev(pid, i),
			&tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "co-" + strconv.Itoa(i), Attributes: map[string]any{"n": i}})
	}
	ids := enqueueBatch(t, h, ops)
	if len(ids) != 3 {
		t.Fatalf("%d tasks for 1200 operations, want 3 of at most 500", len(ids))
	}
	h.start(t)
	drained(t, h, 30*time.Second)
	for i := 0; i < 400; i++ {
		pid := "all-" + strconv.Itoa(i)
		if p, ok := h.sb.Person(pid); !ok || fmt.Sprint(p.Attributes["n"]) != strconv.Itoa(i) {
			t.Fatalf("%s: %+v, %v", pid, p, ok)
		}
		if evs := h.sb.Events(pid); len(evs) != 1 {
			t.Fatalf("%s: %d events, want 1", pid, len(evs))
		}
		if _, ok := h.sb.Object("1", "co-"+strconv.Itoa(i)); !ok {
			t.Fatalf("object co-%d missing", i)
		}
	}
	if n := len(batchRequests(h.sb)); n > 12 {
		t.Errorf("%d batch requests for 1200 operations", n)
	}
	if n := len(h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, PathContains: "/api/v1/"})); n != 0 {
		t.Errorf("%d Track v1 requests, want none", n)
	}
	if c, _ := h.w.DLQ().Count(context.Background()); c != 0 {
		t.Errorf("%d dead letters", c)
	}
	for _, id := range ids {
		if ti := h.taskInfo(id); ti != nil && ti.State != asynq.TaskStateCompleted {
			t.Errorf("task %s %s", id, ti.State)
		}
		if n, _ := h.db.Client.Exists(context.Background(), keys.BatchProgress(id, 0)).Result(); n != 0 {
			t.Errorf("progress record of %s left", id)
		}
	}
}

// TestBatchTaskRefusedOperationIsItsOwnDeadLetter: Customer.io refuses one
// operation of a cio:batch task for good (its object already has 300
// attributes: a 207 naming it). That operation becomes a dead letter of
// its own type, with its own payload, under ItemID; the others are
// delivered and the task is done. Retrying the dead letter enqueues that
// operation alone, as a task of its type.
func TestBatchTaskRefusedOperationIsItsOwnDeadLetter(t *testing.T) {
	h := newHarness(t, nil, true)
	h.dumpOnFailure(t)
	ctx := context.Background()
	fullObject(t, h, "full")
	ops := []tasks.Payload{
		&tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "ok-0", Attributes: map[string]any{"name": "a"}},
		&tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "full", Attributes: map[string]any{"one_too_many": "x"}},
		&tasks.Identify{Identifiers: customerio.Identifiers{ID: "refused-p"}, Attributes: map[string]any{"plan": "pro"}},
		ev("refused-p", 7),
	}
	ids := enqueueBatch(t, h, ops)
	if len(ids) != 1 {
		t.Fatalf("%d tasks, want 1", len(ids))
	}
	h.start(t)
	drained(t, h, 30*time.Second)
	if reqs := batchRequests(h.sb); len(reqs) == 0 || reqs[0].Status != 207 {
		t.Fatalf("batch requests %v, want a 207 first", statuses(reqs))
	}
	id := ItemID(ids[0], 1)
	d, err := h.w.DLQ().Get(ctx, id)
	if err != nil {
		t.Fatalf("dead letter %s: %v", id, err)
	}
	if d.Type != tasks.TypeObjectUpsert || d.Class != DeadLetterPermanent || d.Status != 400 || !strings.Contains(d.Message, "300 attributes") {
		t.Errorf("dead letter %s: %s %s", describeDL(d), d.Type, d.Class)
	}
	env, p, err := tasks.Decode(d.Type, d.Payload)
	if err != nil {
		t.Fatalf("dead letter payload: %v", err)
	}
	if o := p.(*tasks.ObjectUpsert); o.ObjectID != "full" || o.Attributes["one_too_many"] != "x" || env.Workspace != "" {
		t.Errorf("dead letter payload %+v", o)
	}
	if c, _ := h.w.DLQ().Count(ctx); c != 1 {
		t.Errorf("%d dead letters, want only the refused operation's", c)
	}
	if o, ok := h.sb.Object("1", "ok-0"); !ok || o.Attributes["name"] != "a" {
		t.Errorf("ok-0 not delivered")
	}
	if p, ok := h.sb.Person("refused-p"); !ok || p.Attributes["plan"] != "pro" || len(h.sb.Events("refused-p")) != 1 {
		t.Errorf("refused-p not delivered: %+v", p)
	}
	if !h.done(ids[0]) {
		t.Errorf("batch task not done")
	}

	// Retried alone: a cio:object_upsert task of its own.
	info, err := h.w.DLQ().Retry(ctx, id, asynq.NewClientFromRedisClient(h.db.Client))
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != tasks.TypeObjectUpsert {
		t.Errorf("retried as %s, want %s", info.Type, tasks.TypeObjectUpsert)
	}
	eventually(t, 20*time.Second, "the retried operation dead-lettered again, alone", func() bool {
		d, _ := h.w.DLQ().Get(ctx, info.ID)
		return d != nil && d.Class == DeadLetterPermanent
	})
}

// TestBatchTaskTransientRetriesOnlyWhatWasNotAccepted: a cio:batch task's
// ten events go out in three requests (four operations at most each); the
// second answers 503. The task is retried, and the retry sends the four
// events of that request only, not the six Customer.io accepted: each of
// those appears in exactly one request.
func TestBatchTaskTransientRetriesOnlyWhatWasNotAccepted(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Batching.MaxOps, c.Batching.MaxInFlight, c.Batching.Linger = 4, 1, -1
	}, true)
	h.dumpOnFailure(t)
	var ops []tasks.Payload
	for i := 0; i < 10; i++ {
		ops = append(ops, ev("tr-"+strconv.Itoa(i), i))
	}
	ids := enqueueBatch(t, h, ops)
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int32
	w.batchHook = func([]json.RawMessage) {
		if sent.Add(1) == 2 {
			h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, PathPrefix: "/api/v2/batch", Times: 1})
		}
	}
	var progressSeen atomic.Bool
	w.returned = func(tk *Task, err error) {
		if err != nil && tk.Type == tasks.TypeBatch {
			n, _ := h.db.Client.Exists(context.Background(), keys.BatchProgress(tk.ID, tk.Envelope.EnqueuedAt)).Result()
			progressSeen.Store(n == 1)
		}
	}
	h.w = w
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	drained(t, h, 30*time.Second)
	reqs := batchRequests(h.sb)
	if len(reqs) != 4 || reqs[1].Status != 503 {
		t.Fatalf("batch requests %v, want 4 with the second a 503", statuses(reqs))
	}
	perEvent := map[string]int{}
	for _, r := range reqs {
		for _, op := range batchItems(t, r) {
			perEvent[op.Identifiers.ID]++
		}
	}
	failed := map[string]bool{}
	for _, op := range batchItems(t, reqs[1]) {
		failed[op.Identifiers.ID] = true
	}
	if retry := batchItems(t, reqs[3]); len(retry) != len(failed) {
		t.Errorf("the retry sent %d operations, want the %d of the failed request", len(retry), len(failed))
	}
	for i := 0; i < 10; i++ {
		pid := "tr-" + strconv.Itoa(i)
		want := 1
		if failed[pid] {
			want = 2
		}
		if perEvent[pid] != want {
			t.Errorf("%s sent %d times, want %d", pid, perEvent[pid], want)
		}
		if n := len(h.sb.Events(pid)); n != 1 {
			t.Errorf("%s: %d events stored", pid, n)
		}
	}
	if !progressSeen.Load() {
		t.Error("no progress record while the task waited for its retry")
	}
	if n, _ := h.db.Client.Exists(context.Background(), keys.BatchProgress(ids[0], 0)).Result(); n != 0 {
		t.Error("progress record left after the task was done")
	}
	if c, _ := h.w.DLQ().Count(context.Background()); c != 0 {
		t.Errorf("%d dead letters", c)
	}
}

// rawBatch enqueues a cio:batch task of items as another producer could
// (an asynq client, no validation of the operations), with cioq's retry
// budget.
func rawBatch(t *testing.T, h *harness, items ...tasks.BatchItem) string {
	t.Helper()
	return rawBatchTask(t, h, tasks.Meta{}, tasks.DefaultMaxRetry, items...)
}

func rawBatchTask(t *testing.T, h *harness, meta tasks.Meta, budget int, items ...tasks.BatchItem) string {
	t.Helper()
	b, err := tasks.EncodeBatch(items, meta)
	if err != nil {
		t.Fatal(err)
	}
	info, err := asynq.NewClientFromRedisClient(h.db.Client).Enqueue(
		asynq.NewTaskWithHeaders(tasks.TypeBatch, b, map[string]string{tasks.HeaderRetryBudget: strconv.Itoa(budget)}),
		asynq.Queue(tasks.QueueDefault), asynq.MaxRetry(tasks.AsynqMaxRetry))
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// TestBatchTaskOversizeOperationGoesAlone: an identify too large for a v2
// batch item (over 32,000 bytes encoded, which Track v1 takes) in a
// cio:batch task goes alone through Track v1; the task's other operations
// go in a batch. (producer.EnqueueBatch puts such an operation in a task
// of its own; a task from elsewhere may hold one.)
func TestBatchTaskOversizeOperationGoesAlone(t *testing.T) {
	h := newHarness(t, nil, true)
	h.dumpOnFailure(t)
	big := map[string]any{}
	for i := 0; i < 40; i++ {
		big[fmt.Sprintf("attr_%02d", i)] = strings.Repeat("x", 900)
	}
	bigRaw, _ := json.Marshal(tasks.Identify{Identifiers: customerio.Identifiers{ID: "big"}, Attributes: big})
	small, _ := json.Marshal(ev("small", 1))
	id := rawBatch(t, h, tasks.BatchItem{Type: tasks.TypeTrack, Payload: small}, tasks.BatchItem{Type: tasks.TypeIdentify, Payload: bigRaw})
	h.start(t)
	drained(t, h, 30*time.Second)
	v1 := h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, PathContains: "/api/v1/customers/big"})
	if len(v1) != 1 || v1[0].Status != 200 {
		t.Fatalf("v1 identify of the large operation: %v", statuses(v1))
	}
	if p, ok := h.sb.Person("big"); !ok || len(p.Attributes) < 40 {
		t.Errorf("big: %d attributes", len(p.Attributes))
	}
	reqs := batchRequests(h.sb)
	if len(reqs) != 1 || len(batchItems(t, reqs[0])) != 1 {
		t.Errorf("batch requests %v, want one holding the small event only", statuses(reqs))
	}
	if len(h.sb.Events("small")) != 1 || !h.done(id) {
		t.Error("small event not delivered or task not done")
	}

	// The producer puts such an operation in a task of its own.
	rec, err := h.prod.EnqueueBatch(context.Background(), []tasks.Payload{ev("small2", 1),
		&tasks.Identify{Identifiers: customerio.Identifiers{ID: "big2"}, Attributes: big}, ev("small2", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Tasks) != 2 || rec.Placed[1].Index != -1 || rec.Tasks[rec.Placed[1].Task].Type != tasks.TypeIdentify ||
		rec.Tasks[rec.Placed[0].Task].Operations != 2 {
		t.Errorf("receipt %+v", rec)
	}
}

// TestBatchTaskOperationsOfOnePersonInOrder: a person's operations in one
// cio:batch task go out in successive requests (each once the one before
// was answered), the events that follow one another together, while the
// other people's go in the first.
func TestBatchTaskOperationsOfOnePersonInOrder(t *testing.T) {
	h := newHarness(t, nil, true)
	ops := []tasks.Payload{
		&tasks.Identify{Identifiers: customerio.Identifiers{ID: "ord"}, Attributes: map[string]any{"step": 1}},
		ev("other-1", 1),
		ev("ord", 2),
		ev("other-2", 1),
		ev("ord", 3),
		&tasks.Identify{Identifiers: customerio.Identifiers{ID: "ord"}, Attributes: map[string]any{"step": 3}},
	}
	enqueueBatch(t, h, ops)
	h.start(t)
	drained(t, h, 30*time.Second)
	reqs := batchRequests(h.sb)
	if len(reqs) != 3 {
		t.Fatalf("%d batch requests, want 3", len(reqs))
	}
	var got [][]string
	for _, r := range reqs {
		var in []string
		for _, op := range batchItems(t, r) {
			in = append(in, op.Identifiers.ID+"/"+string(op.Action))
		}
		got = append(got, in)
	}
	want := fmt.Sprint([][]string{{"ord/identify", "other-1/event", "other-2/event"}, {"ord/event", "ord/event"}, {"ord/identify"}})
	if fmt.Sprint(got) != want {
		t.Errorf("requests %v, want %v", got, want)
	}
	if p, _ := h.sb.Person("ord"); fmt.Sprint(p.Attributes["step"]) != "3" {
		t.Errorf("ord's step %v, want 3 (the last identify last)", p.Attributes["step"])
	}
}

// TestBatchTaskExhaustedDeadLettersWhatIsLeftOneByOne: a cio:batch task
// whose retry budget and window are used up (a budget of 0, enqueued 25 h
// ago) and whose request fails with a 503: each of its operations is
// dead-lettered alone as exhausted, and the task is done.
func TestBatchTaskExhaustedDeadLettersWhatIsLeftOneByOne(t *testing.T) {
	h := newHarness(t, nil, true)
	ctx := context.Background()
	items := []tasks.BatchItem{}
	for i := 0; i < 3; i++ {
		b, _ := json.Marshal(ev("ex-"+strconv.Itoa(i), i).WithEventID("01HZY8V4Q6W5M3K2J1N0P9R8S" + strconv.Itoa(i)))
		items = append(items, tasks.BatchItem{Type: tasks.TypeTrack, Payload: b})
	}
	id := rawBatchTask(t, h, tasks.Meta{EnqueuedAt: time.Now().Add(-25 * time.Hour)}, 0, items...)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, PathPrefix: "/api/v2/batch"})
	h.start(t)
	eventually(t, 20*time.Second, "three dead letters", func() bool { c, _ := h.w.DLQ().Count(ctx); return c == 3 })
	for i := 0; i < 3; i++ {
		d, err := h.w.DLQ().Get(ctx, ItemID(id, i))
		if err != nil || d.Type != tasks.TypeTrack || d.Class != DeadLetterExhausted || d.Status != 503 {
			t.Errorf("operation %d: %s", i, describeDL(d))
		}
	}
	eventually(t, 10*time.Second, "task done", func() bool { return h.done(id) })
}

// TestBatchTaskInvalidOperationIsItsOwnDeadLetter: an operation that does
// not validate (from another producer) is dead-lettered alone as invalid,
// without calling Customer.io; the others are delivered.
func TestBatchTaskInvalidOperationIsItsOwnDeadLetter(t *testing.T) {
	h := newHarness(t, nil, true)
	good, _ := json.Marshal(ev("inv-ok", 1))
	id := rawBatch(t, h, tasks.BatchItem{Type: tasks.TypeTrack, Payload: good},
		tasks.BatchItem{Type: tasks.TypeTrack, Payload: json.RawMessage(`{"identifiers":{"id":"inv-bad"},"name":""}`)})
	h.start(t)
	drained(t, h, 20*time.Second)
	d, err := h.w.DLQ().Get(context.Background(), ItemID(id, 1))
	if err != nil || d.Class != DeadLetterInvalid || !strings.Contains(d.Error, "name: must not be blank") {
		t.Errorf("dead letter %s", describeDL(d))
	}
	if len(h.sb.Events("inv-ok")) != 1 {
		t.Error("the valid operation was not delivered")
	}
	if _, ok := h.sb.Person("inv-bad"); ok {
		t.Error("the invalid operation reached Customer.io")
	}
}

// TestBatchTaskCrashMidBatchLosesNothing: a worker process is killed
// (SIGKILL) while it delivers cio:batch tasks; another worker finishes
// them once asynq recovers them. Every event is stored exactly once
// (Customer.io drops an event it has seen, by id): none is lost, and none
// is sent again under another id, both for events the producer gave ids
// and for events enqueued without one (the worker derives theirs from the
// task id and the operation's place, ItemID).
func TestBatchTaskCrashMidBatchLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~60-90 s (asynq's 30 s lease + 30 s recovery cutoff, checked every minute)")
	}
	h := newHarness(t, nil, true)
	const n = 2000
	var ops []tasks.Payload
	for i := 0; i < n/2; i++ {
		ops = append(ops, ev("bcrash", i))
	}
	if _, err := h.prod.EnqueueBatch(context.Background(), ops, producer.BatchSize(100)); err != nil {
		t.Fatal(err)
	}
	for k := n / 2; k < n; k += 100 {
		var items []tasks.BatchItem
		for i := k; i < k+100; i++ {
			b, _ := json.Marshal(ev("bcrash", i)) // no id
			items = append(items, tasks.BatchItem{Type: tasks.TypeTrack, Payload: b})
		}
		rawBatch(t, h, items...)
	}
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Latency: 300 * time.Millisecond})
	cmd := startHelper(t, h)
	waitSandbox(t, h.sb, 30*time.Second, "first deliveries", func(s *sandbox.Server) bool { return len(s.Events("bcrash")) >= 100 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killedAt := len(h.sb.Events("bcrash"))
	if killedAt == n {
		t.Fatal("everything was delivered before the kill; slow the sandbox down")
	}
	t.Logf("killed after %d of %d events stored", killedAt, n)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Latency: 20 * time.Millisecond})
	h.start(t)
	waitSandbox(t, h.sb, 150*time.Second, "all events", func(s *sandbox.Server) bool { return len(s.Events("bcrash")) >= n })
	drained(t, h, 30*time.Second)
	checkAllOnce(t, h, "bcrash", n)
}

// TestAssignRounds: a person's operations go in their order, one round
// after another, except that consecutive events share a round; the same
// string as an id and as an email names two people; keyless operations
// all go first.
func TestAssignRounds(t *testing.T) {
	mk := func(kind keyKind, key string, event bool) *multiItem {
		mi := &multiItem{kind: kind, key: key}
		if event {
			mi.flags |= flagEvent
		}
		return mi
	}
	live := []*multiItem{
		mk(keyID, "a", false),    // 0
		mk(keyEmail, "a", false), // 0: another person
		mk(keyID, "a", true),     // 1
		mk(keyNone, "", false),   // 0
		mk(keyID, "a", true),     // 1: follows an event
		mk(keyID, "b", true),     // 0
		mk(keyID, "a", false),    // 2
		mk(keyID, "a", true),     // 3
		mk(keyEmail, "a", false), // 1
	}
	if n := assignRounds(live); n != 4 {
		t.Errorf("%d rounds, want 4", n)
	}
	var got []int32
	for _, mi := range live {
		got = append(got, mi.round)
	}
	if want := []int32{0, 0, 1, 0, 1, 0, 2, 3, 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rounds %v, want %v", got, want)
	}
	if n := assignRounds([]*multiItem{mk(keyNone, "", false)}); n != 0 {
		t.Errorf("%d rounds for keyless operations, want 0 (one round, all at once)", n)
	}
}
