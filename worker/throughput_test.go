package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker/ratelimit"
)

// recObserver records what the throughput tests look at.
type recObserver struct {
	NopObserver
	mu          sync.Mutex
	responses   map[string]int // api/statusClass
	waits       int
	rescheduled int
	orderWaits  int
	gaveUp      int
}

func newRecObserver() *recObserver { return &recObserver{responses: map[string]int{}} }

func (o *recObserver) Response(api, class string, _ time.Duration) {
	o.mu.Lock()
	o.responses[api+"/"+class]++
	o.mu.Unlock()
}

func (o *recObserver) RateLimitWait(_, _ string, _ time.Duration, rescheduled bool) {
	o.mu.Lock()
	o.waits++
	if rescheduled {
		o.rescheduled++
	}
	o.mu.Unlock()
}

func (o *recObserver) OrderingWait(_ string, _ time.Duration, gaveUp bool) {
	o.mu.Lock()
	o.orderWaits++
	if gaveUp {
		o.gaveUp++
	}
	o.mu.Unlock()
}

func (o *recObserver) get(f func(*recObserver) int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return f(o)
}

func batchRequests(sb *sandbox.Server) []sandbox.Request {
	return requestsTo(sb, sandbox.GroupTrack, "/api/v2/batch")
}

// batchItems decodes a recorded batch request body.
func batchItems(t *testing.T, r sandbox.Request) []customerio.Operation {
	t.Helper()
	var b struct {
		Batch []customerio.Operation `json:"batch"`
	}
	if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
		t.Fatalf("batch body: %v", err)
	}
	return b.Batch
}

func TestOperationOfEveryBatchableType(t *testing.T) {
	payloads := []tasks.Payload{
		&tasks.Identify{Identifiers: customerio.Identifiers{ID: "p"}, Attributes: map[string]any{"a": 1}},
		&tasks.Track{Identifiers: customerio.Identifiers{Email: "p@x.io"}, Event: customerio.Event{Name: "/home", Type: customerio.EventTypePage, ID: "01HZY8V4Q6W5M3K2J1N0P9R8S7", Timestamp: 1700000000, Data: map[string]any{"k": "v"}}},
		&tasks.MergeAnonymous{Identifiers: customerio.Identifiers{ID: "p"}, AnonymousID: "anon", Attributes: map[string]any{"a": 1}},
		&tasks.MergePeople{Primary: customerio.Identifiers{ID: "p"}, Secondary: customerio.Identifiers{Email: "q@x.io"}},
		&tasks.Delete{Identifiers: customerio.Identifiers{ID: "p"}},
		&tasks.Suppress{Identifiers: customerio.Identifiers{ID: "p"}},
		&tasks.Unsuppress{Identifiers: customerio.Identifiers{ID: "p"}},
		&tasks.DeviceAdd{Identifiers: customerio.Identifiers{ID: "p"}, Device: customerio.Device{ID: "tok", Platform: "ios", LastUsed: 1700000000}},
		&tasks.DeviceDelete{Identifiers: customerio.Identifiers{ID: "p"}, Device: tasks.DeviceRef{ID: "tok"}},
		&tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: map[string]any{"n": "Acme"}},
		&tasks.ObjectDelete{ObjectTypeID: "1", ObjectID: "acme"},
		&tasks.Relate{Identifiers: customerio.Identifiers{ID: "p"}, ObjectTypeID: "1", ObjectID: "acme"},
		&tasks.Unrelate{Identifiers: customerio.Identifiers{ID: "p"}, ObjectTypeID: "1", ObjectID: "acme"},
	}
	want := []string{
		`{"type":"person","action":"identify","identifiers":{"id":"p"},"attributes":{"a":1}}`,
		`{"type":"person","action":"page","identifiers":{"email":"p@x.io"},"name":"/home","id":"01HZY8V4Q6W5M3K2J1N0P9R8S7","timestamp":1700000000,"attributes":{"k":"v"}}`,
		`{"type":"person","action":"identify","identifiers":{"id":"p"},"attributes":{"a":1,"anonymous_id":"anon"}}`,
		`{"type":"person","action":"merge","primary":{"id":"p"},"secondary":{"email":"q@x.io"}}`,
		`{"type":"person","action":"delete","identifiers":{"id":"p"}}`,
		`{"type":"person","action":"suppress","identifiers":{"id":"p"}}`,
		`{"type":"person","action":"unsuppress","identifiers":{"id":"p"}}`,
		`{"type":"person","action":"add_device","identifiers":{"id":"p"},"device":{"token":"tok","platform":"ios","last_used":1700000000}}`,
		`{"type":"person","action":"delete_device","identifiers":{"id":"p"},"device":{"token":"tok"}}`,
	}
	if len(payloads) != len(BatchableTypes) {
		t.Fatalf("%d payloads for %d batchable types", len(payloads), len(BatchableTypes))
	}
	for i, p := range payloads {
		if p.TaskType() != BatchableTypes[i] {
			t.Errorf("payload %d is %s, want %s", i, p.TaskType(), BatchableTypes[i])
		}
		op, ok := Operation(&Task{ID: "t", Type: p.TaskType(), Envelope: &tasks.Envelope{}, Payload: p})
		if !ok {
			t.Errorf("%s: no operation", p.TaskType())
			continue
		}
		if err := op.Validate(); err != nil {
			t.Errorf("%s: invalid operation: %v", p.TaskType(), err)
		}
		if i < len(want) {
			b, _ := json.Marshal(op)
			if string(b) != want[i] {
				t.Errorf("%s:\n got %s\nwant %s", p.TaskType(), b, want[i])
			}
		}
	}
	if _, ok := Operation(&Task{Type: tasks.TypeSendEmail, Envelope: &tasks.Envelope{}, Payload: &tasks.SendEmail{}}); ok {
		t.Error("a transactional send has no v2 operation")
	}
}

// enqueueIdentifies enqueues n identifies of people prefix0..prefix<n-1>.
func enqueueIdentifies(t *testing.T, h *harness, prefix string, n int) map[string]string {
	t.Helper()
	ids := map[string]string{} // person -> task id
	for i := 0; i < n; i++ {
		pid := fmt.Sprintf("%s%d", prefix, i)
		rc, err := h.prod.Identify(context.Background(), identify(pid))
		if err != nil {
			t.Fatal(err)
		}
		ids[pid] = rc.TaskID
	}
	return ids
}

func TestBatch207DeadLettersOnlyTheNamedItems(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Batching.Linger = 100 * time.Millisecond; c.Concurrency = 20 }, true)
	ids := enqueueIdentifies(t, h, "b207-", 10)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 207, PathPrefix: "/api/v2/batch", Times: 1,
		Body: `{"errors":[{"batch_index":1,"reason":"invalid","field":"attributes","message":"Attribute value too long"},{"batch_index":3,"reason":"invalid","message":"bad"}]}`})
	h.start(t)
	ctx := context.Background()
	eventually(t, 15*time.Second, "every task finished", func() bool {
		n, _ := h.w.DLQ().Count(ctx)
		done := 0
		for _, id := range ids {
			if h.done(id) {
				done++
			}
		}
		return int(n)+done == len(ids)
	})
	reqs := batchRequests(h.sb)
	if len(reqs) == 0 || reqs[0].Status != 207 {
		t.Fatalf("batch requests %v", statuses(reqs))
	}
	first := batchItems(t, reqs[0])
	if len(first) < 4 {
		t.Fatalf("first batch carried %d items; want ≥ 4", len(first))
	}
	failed := map[string]bool{first[1].Identifiers.ID: true, first[3].Identifiers.ID: true}
	for pid, id := range ids {
		d, _ := h.w.DLQ().Get(ctx, id)
		if failed[pid] {
			if d == nil || d.Class != DeadLetterPermanent || d.Status != 400 {
				t.Errorf("%s: dead letter %+v, want permanent 400", pid, d)
			}
		} else if d != nil {
			t.Errorf("%s dead-lettered (%s), but its item was accepted", pid, d.Error)
		}
	}
	if st := h.w.BatchStats(); st.ItemErrors != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestBatchWhole503RetriesEveryTaskOnce(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Batching.Linger = 50 * time.Millisecond; c.Concurrency = 50 }, true)
	const n = 40
	enqueueEvents(t, h, "b503", n)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, PathPrefix: "/api/v2/batch", Times: 1})
	h.start(t)
	waitSandbox(t, h.sb, 20*time.Second, "all events", func(s *sandbox.Server) bool { return len(s.Events("b503")) >= n })
	eventually(t, 10*time.Second, "queue drained", func() bool {
		qi, err := h.insp.GetQueueInfo(tasks.QueueDefault)
		return err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Retry == 0
	})
	checkAllOnce(t, h, "b503", n)
	reqs := batchRequests(h.sb)
	if reqs[0].Status != 503 {
		t.Errorf("first batch %d, want the injected 503", reqs[0].Status)
	}
	t.Logf("%d events in %d batch requests (first failed with %d items)", n, len(reqs), len(batchItems(t, reqs[0])))
}

func TestBatchPanicIsRecoveredAndTasksRetried(t *testing.T) {
	h := newHarness(t, nil, true)
	const n = 20
	enqueueEvents(t, h, "bpanic", n)
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	w.batchHook = func([]json.RawMessage) { once.Do(func() { panic("boom in the batch path") }) }
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	h.w = w
	t.Cleanup(w.Shutdown)
	waitSandbox(t, h.sb, 20*time.Second, "all events", func(s *sandbox.Server) bool { return len(s.Events("bpanic")) >= n })
	eventually(t, 10*time.Second, "queue drained", func() bool {
		qi, err := h.insp.GetQueueInfo(tasks.QueueDefault)
		return err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Retry == 0
	})
	checkAllOnce(t, h, "bpanic", n)
	if st := h.w.BatchStats(); st.Panics != 1 {
		t.Errorf("stats %+v, want 1 panic", st)
	}
}

func TestBatchingUnderLoadCoalesces(t *testing.T) {
	obs := newRecObserver()
	// A 50 ms linger (default 5 ms) so that coalescing does not depend on
	// how fast a busy machine dequeues: even at a few hundred tasks a second
	// each batch waits long enough to collect several operations.
	h := newHarness(t, func(c *Config) {
		c.Concurrency = 100
		c.Observer = obs
		c.Batching.Linger = 50 * time.Millisecond
	}, true)
	const n = 500
	enqueueEvents(t, h, "bload", n)
	h.start(t)
	waitSandbox(t, h.sb, 30*time.Second, "all events", func(s *sandbox.Server) bool { return len(s.Events("bload")) >= n })
	st := h.w.BatchStats()
	if st.Ops < n || st.Batches >= n/5 {
		t.Errorf("stats %+v: want far fewer requests than operations", st)
	}
	eventually(t, 5*time.Second, "one response per batch request", func() bool {
		return obs.get(func(o *recObserver) int { return o.responses["track/2xx"] }) == int(h.w.BatchStats().Batches)
	})
	t.Logf("%d ops in %d requests (%.1f per request)", st.Ops, st.Batches, st.OpsPerBatch())
}

// maxInWindow is the most requests that arrived within any window d.
func maxInWindow(reqs []sandbox.Request, d time.Duration) int {
	best := 0
	j := 0
	for i := range reqs {
		for reqs[i].Time.Sub(reqs[j].Time) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func TestRateLimitSharedByWorkers(t *testing.T) {
	obs := newRecObserver()
	lim := ratelimit.Limit{Rate: 20, Period: time.Second, Burst: 1}
	h := newHarness(t, func(c *Config) {
		c.Batching.Off = true
		c.Observer = obs
		c.RateLimits.Default.Track = lim
	}, true)
	const n = 60
	ids := enqueueIdentifies(t, h, "rl-", n)
	h.start(t)
	h2, err := New(h.cfg) // a second worker on the same Redis
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Start(); err != nil {
		t.Fatal(err)
	}
	defer h2.Shutdown()
	start := time.Now()
	eventually(t, 20*time.Second, "all delivered", func() bool {
		for _, id := range ids {
			if !h.done(id) {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	reqs := requestsTo(h.sb, sandbox.GroupTrack, "/customers/")
	if len(reqs) != n {
		t.Errorf("%d requests, want %d", len(reqs), n)
	}
	// Arrival times at the sandbox carry the scheduling jitter of a busy
	// machine on top of the limiter's grants, so a one-second window may
	// hold a few more than the rate; two workers with a limiter each would
	// put about twice the rate in it. The total time is the sharp check:
	// a busy machine can only make it longer, and n requests at the shared
	// rate take (n-burst)/rate (2.95 s here), half that with two limiters.
	if m := maxInWindow(reqs, time.Second); m > lim.Rate+lim.Rate/2 {
		t.Errorf("%d requests within one second, limit %d", m, lim.Rate)
	}
	if floor := time.Duration(n-lim.Burst) * time.Second / time.Duration(lim.Rate) * 9 / 10; took < floor {
		t.Errorf("%d requests at %d/s took %s, want at least %s", n, lim.Rate, took, floor)
	}
	if obs.get(func(o *recObserver) int { return o.waits }) == 0 {
		t.Error("no rate-limit wait observed")
	}
	if st := h.sb.Stats(); st.TooManyRequests != 0 {
		t.Errorf("%d 429s", st.TooManyRequests)
	}
	t.Logf("%d requests by 2 workers in %s, max %d in any second", len(reqs), took.Round(time.Millisecond), maxInWindow(reqs, time.Second))
}

func TestRateLimitLongWaitReschedulesWithoutSpending(t *testing.T) {
	obs := newRecObserver()
	h := newHarness(t, func(c *Config) {
		c.Batching.Off = true
		c.Observer = obs
		c.RateLimits.Default.Track = ratelimit.Limit{Rate: 1, Period: 3 * time.Second, Burst: 1}
	})
	ids := enqueueIdentifies(t, h, "slow-", 2)
	eventually(t, 10*time.Second, "both delivered", func() bool {
		return h.done(ids["slow-0"]) && h.done(ids["slow-1"])
	})
	if obs.get(func(o *recObserver) int { return o.rescheduled }) == 0 {
		t.Error("no task was rescheduled for the limiter")
	}
	reqs := requestsTo(h.sb, sandbox.GroupTrack, "/customers/slow-")
	if len(reqs) != 2 || reqs[1].Time.Sub(reqs[0].Time) < 2900*time.Millisecond {
		t.Errorf("requests %d, gap %v", len(reqs), reqs[len(reqs)-1].Time.Sub(reqs[0].Time))
	}
}

func TestThrottled429SlowsTheLimiterAndIsReportedAs429(t *testing.T) {
	obs := newRecObserver()
	h := newHarness(t, func(c *Config) { c.Observer = obs; c.Batching.Off = true })
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 429, RetryAfter: "1", Times: 1})
	ids := enqueueIdentifies(t, h, "t429-", 1)
	eventually(t, 10*time.Second, "delivered", func() bool { return h.done(ids["t429-0"]) })
	if got := obs.get(func(o *recObserver) int { return o.responses["track/429"] }); got != 1 {
		t.Errorf("responses %v, want one track/429", obs.responses)
	}
	f, err := ratelimit.New(h.db.Client, ratelimit.Config{}).EffectiveRate(context.Background(), ratelimit.Key("", ratelimit.APITrack))
	if err != nil || f >= 1 {
		t.Errorf("effective rate %v (%v), want < 1 after a 429", f, err)
	}
}

func TestOrderingPerPerson(t *testing.T) {
	obs := newRecObserver()
	h := newHarness(t, func(c *Config) {
		c.Observer = obs
		c.Concurrency = 10
		c.Ordering.Workspaces = map[string]bool{"": true}
		c.Ordering.Poll = 50 * time.Millisecond
	}, true)
	prod := producer.NewFromRedis(h.db.Client, producer.WithOrdering())
	ctx := context.Background()
	const n = 12
	// Person "ord" first gets an identify, then events; each later task is
	// made due earlier than the one before it, so the queue hands them to
	// the workers in reverse.
	if _, err := prod.Identify(ctx, identify("ord"), producer.ProcessIn(time.Duration(n+1)*150*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "ord"},
			Event: customerio.Event{Name: "e", Data: map[string]any{"i": i}}}, producer.ProcessIn(time.Duration(n-i)*150*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	// Another person, not waiting for anyone.
	for i := 0; i < 5; i++ {
		if _, err := prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "free"}, Event: customerio.Event{Name: "e"}}); err != nil {
			t.Fatal(err)
		}
	}
	h.start(t)
	h2, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Start(); err != nil {
		t.Fatal(err)
	}
	defer h2.Shutdown()
	start := time.Now()
	waitSandbox(t, h.sb, 10*time.Second, "the other person", func(s *sandbox.Server) bool { return len(s.Events("free")) == 5 })
	if _, ok := h.sb.Person("ord"); ok && len(h.sb.Events("ord")) == n {
		t.Error("the other person was delivered only after the ordered one")
	}
	t.Logf("other person delivered after %s", time.Since(start).Round(time.Millisecond))
	waitSandbox(t, h.sb, 60*time.Second, "ordered events", func(s *sandbox.Server) bool { return len(s.Events("ord")) >= n })
	p, _ := h.sb.Person("ord")
	evs := h.sb.Events("ord")
	for i, e := range evs {
		if fmt.Sprint(e.Data["i"]) != strconv.Itoa(i) {
			t.Errorf("event %d is %v: out of order", i, e.Data["i"])
		}
		if e.ReceivedAt.Before(p.CreatedAt) && !p.CreatedAt.IsZero() {
			t.Errorf("event %d stored before the identify", i)
		}
	}
	if g := obs.get(func(o *recObserver) int { return o.gaveUp }); g != 0 {
		t.Errorf("%d ordering give-ups", g)
	}
	t.Logf("%d ordered events in %s", len(evs), time.Since(start).Round(time.Millisecond))
}

// TestOrderingStuckPredecessorDoesNotBlockForever: a predecessor deleted
// right after it was enqueued looks like one whose enqueue is still under
// way (its number is taken before the enqueue), so its successor waits
// MaxWait from the stamp, then goes ahead and reports the skip.
func TestOrderingStuckPredecessorDoesNotBlockForever(t *testing.T) {
	obs := newRecObserver()
	h := newHarness(t, func(c *Config) {
		c.Observer = obs
		c.Ordering.Workspaces = map[string]bool{"": true}
		c.Ordering.MaxWait = 2 * time.Second
	}, true)
	prod := producer.NewFromRedis(h.db.Client, producer.WithOrdering())
	ctx := context.Background()
	first, err := prod.Identify(ctx, identify("stuck"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.insp.DeleteTask(first.Queue, first.TaskID); err != nil { // seq 1 is gone
		t.Fatal(err)
	}
	if _, err := prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "stuck"}, Event: customerio.Event{Name: "after"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.start(t)
	waitSandbox(t, h.sb, 15*time.Second, "the event", func(s *sandbox.Server) bool { return len(s.Events("stuck")) == 1 })
	if took := time.Since(start); took < time.Second {
		t.Errorf("delivered after %s: it did not wait for its predecessor", took)
	}
	if g := obs.get(func(o *recObserver) int { return o.gaveUp }); g != 1 {
		t.Errorf("%d give-ups observed, want 1", g)
	}
}
