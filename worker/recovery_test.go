package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker/ratelimit"
)

// pullObserver counts recovery pulls.
type pullObserver struct {
	NopObserver
	mu     sync.Mutex
	pulls  int
	pulled int
}

func (o *pullObserver) RecoveryPulled(_, _ string, n int) {
	o.mu.Lock()
	o.pulls++
	o.pulled += n
	o.mu.Unlock()
}

func (o *pullObserver) get() (pulls, pulled int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pulls, o.pulled
}

// outage503 is a Track or App outage whose every answer asks for a retry in
// 10 minutes: without a pull, the tasks it fails wait that long, exactly.
var outage503 = sandbox.Fault{Status: 503, RetryAfter: "600"}

// retryScores returns the retry times (unix s) asynq holds for ids.
func retryScores(t *testing.T, rdb redis.UniversalClient, queue string, ids ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, id := range ids {
		if s, err := rdb.ZScore(context.Background(), keys.AsynqRetry(queue), id).Result(); err == nil {
			out[id] = s
		}
	}
	return out
}

// waitRetrying waits until every id is in its queue's retry set.
func waitRetrying(t *testing.T, h *harness, queue string, ids ...string) {
	t.Helper()
	eventually(t, 15*time.Second, "tasks in the retry set", func() bool {
		return len(retryScores(t, h.db.Client, queue, ids...)) == len(ids)
	})
}

func identifyIDs(t *testing.T, p *producer.Client, prefix string, n int, opts ...producer.EnqueueOption) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		rc, err := p.Identify(context.Background(), identify(prefix+string(rune('a'+i))), opts...)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.TaskID)
	}
	return ids
}

// TestRecoveryPullsOnlyThatWorkspaceAndAPI: when the default workspace's
// Track API recovers, its retrying tasks are delivered at once; workspace
// b's Track tasks (still failing) and the default workspace's App tasks
// keep their retry times.
func TestRecoveryPullsOnlyThatWorkspaceAndAPI(t *testing.T) {
	t.Parallel()
	sbB, urlB := newSandbox(t)
	h := newHarness(t, func(c *Config) {
		c.Workspaces["b"] = sandboxConfig(urlB)
	}, true)
	h.dumpOnFailure(t)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, outage503)
	h.sb.SetFault(sandbox.GroupApp, outage503)
	sbB.SetFault(sandbox.GroupTrack, outage503)
	a := identifyIDs(t, h.prod, "ws-a-", 5)
	b := identifyIDs(t, h.prod, "ws-b-", 5, producer.Workspace("b"))
	rc, err := h.prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "1", Identifiers: &customerio.Identifiers{ID: "x"}}, To: "x@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	send := rc.TaskID
	h.start(t)
	waitRetrying(t, h, tasks.QueueDefault, append(a, b...)...)
	waitRetrying(t, h, tasks.QueueCritical, send)
	before := retryScores(t, h.db.Client, tasks.QueueDefault, b...)
	sendBefore := retryScores(t, h.db.Client, tasks.QueueCritical, send)[send]

	h.sb.ClearFault(sandbox.GroupTrack)
	if _, err := h.prod.Identify(ctx, identify("ws-a-fresh")); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 30*time.Second, "the default workspace's retrying identifies", func(s *sandbox.Server) bool {
		return len(s.People()) == 6
	})
	after := retryScores(t, h.db.Client, tasks.QueueDefault, b...)
	if len(after) != len(b) {
		t.Fatalf("workspace b: %d of %d tasks still in the retry set", len(after), len(b))
	}
	for id, s := range before {
		if after[id] != s {
			t.Errorf("workspace b task %s re-scheduled from %v to %v", id, s, after[id])
		}
	}
	if s := retryScores(t, h.db.Client, tasks.QueueCritical, send)[send]; s != sendBefore {
		t.Errorf("App task re-scheduled from %v to %v", sendBefore, s)
	}
	if n := len(sbB.People()); n != 0 {
		t.Errorf("workspace b's sandbox stored %d people", n)
	}
}

// TestRecoveryKeepsRetryAfterOf429: a task throttled with a 429 keeps its
// Retry-After through a recovery; the 503s are pulled forward.
func TestRecoveryKeepsRetryAfterOf429(t *testing.T) {
	t.Parallel()
	// Without rate limits: the limiter would otherwise hold every Track
	// request for the 429's Retry-After, the fresh one too.
	h := newHarness(t, func(c *Config) { c.Batching.Off = true; c.RateLimits.Off = true }, true)
	h.dumpOnFailure(t)
	ctx := context.Background()
	// The throttled tasks first fail with a 503 (so they are indexed), then
	// with a 429 asking for 10 minutes.
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, RetryAfter: "1"})
	throttled := identifyIDs(t, h.prod, "throttled-", 3)
	h.start(t)
	waitRetrying(t, h, tasks.QueueDefault, throttled...)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 429, RetryAfter: "600"})
	eventually(t, 15*time.Second, "the throttled tasks waiting 10 minutes", func() bool {
		s := retryScores(t, h.db.Client, tasks.QueueDefault, throttled...)
		for _, id := range throttled {
			if s[id] < float64(time.Now().Add(5*time.Minute).Unix()) {
				return false
			}
		}
		return true
	})
	h.sb.SetFault(sandbox.GroupTrack, outage503)
	failed := identifyIDs(t, h.prod, "failed-", 3)
	waitRetrying(t, h, tasks.QueueDefault, failed...)
	before := retryScores(t, h.db.Client, tasks.QueueDefault, throttled...)

	h.sb.ClearFault(sandbox.GroupTrack)
	if _, err := h.prod.Identify(ctx, identify("fresh")); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 30*time.Second, "the 503'd identifies", func(s *sandbox.Server) bool {
		for _, p := range []string{"failed-a", "failed-b", "failed-c", "fresh"} {
			if _, ok := s.Person(p); !ok {
				return false
			}
		}
		return true
	})
	after := retryScores(t, h.db.Client, tasks.QueueDefault, throttled...)
	for id, s := range before {
		if after[id] != s {
			t.Errorf("throttled task %s re-scheduled from %v to %v", id, s, after[id])
		}
	}
}

// TestRecoveryPulledOnceByAProcessThatSawNoFailure: worker 1 sees the
// outage and stops; worker 2 and worker 3, started after it, never saw a
// failure. The first success ends the run recorded in Redis: exactly one of
// them pulls the tasks forward.
func TestRecoveryPulledOnceByAProcessThatSawNoFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.Batching.Off = true
		c.Recovery.MinInterval = time.Millisecond // only the run marker makes it once
	}, true)
	h.dumpOnFailure(t)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, outage503)
	ids := identifyIDs(t, h.prod, "p-", 6)
	o1 := &pullObserver{}
	h.cfg.Observer = o1
	h.start(t)
	waitRetrying(t, h, tasks.QueueDefault, ids...)
	h.w.Shutdown()
	h.sb.ClearFault(sandbox.GroupTrack)

	obs := []*pullObserver{{}, {}}
	var ws []*Worker
	for _, o := range obs {
		cfg := h.cfg
		cfg.Observer = o
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Shutdown)
		ws = append(ws, w)
	}
	for i := 0; i < 10; i++ {
		if _, err := h.prod.Identify(ctx, identify("fresh-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	waitSandbox(t, h.sb, 30*time.Second, "the retrying identifies", func(s *sandbox.Server) bool {
		return len(s.People()) == 16
	})
	for _, w := range ws {
		w.Shutdown() // waits for the pull goroutine (and its observer call)
	}
	p1, _ := o1.get()
	p2, n2 := obs[0].get()
	p3, n3 := obs[1].get()
	if p1 != 0 || p2+p3 != 1 || n2+n3 != len(ids) {
		t.Errorf("pulls: worker 1 %d, worker 2 %d (%d tasks), worker 3 %d (%d tasks); want one pull of %d tasks by worker 2 or 3",
			p1, p2, n2, p3, n3, len(ids))
	}
}

// TestRecoveryPullIsPaced: pulled tasks are spread at the rate limiter's
// pace (here 10 per second: one every 100 ms), oldest failure first.
func TestRecoveryPullIsPaced(t *testing.T) {
	h := newHarness(t, unbatched, true)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, outage503)
	ids := identifyIDs(t, h.prod, "paced-", 8)
	h.start(t)
	waitRetrying(t, h, tasks.QueueDefault, ids...)
	h.w.Shutdown()

	cfg := h.cfg
	cfg.RateLimits.Default.Track = ratelimit.PerSecond(10)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown) // never started: no forwarder moves the tasks
	start := float64(time.Now().UnixMilli()) / 1000
	if n := w.pullForward(ctx, "", customerio.APITrack); n != len(ids) {
		t.Fatalf("pulled %d, want %d", n, len(ids))
	}
	zs, err := h.db.Client.ZRangeWithScores(ctx, keys.AsynqRetry(tasks.QueueDefault), 0, -1).Result()
	if err != nil || len(zs) != len(ids) {
		t.Fatalf("retry set %v (%v)", zs, err)
	}
	if zs[0].Score < start-0.01 || zs[0].Score > start+1 {
		t.Errorf("first pulled task due at %.3f, want now (%.3f)", zs[0].Score, start)
	}
	for i := 1; i < len(zs); i++ {
		if d := zs[i].Score - zs[i-1].Score; d < 0.099 || d > 0.101 {
			t.Errorf("tasks %d and %d are %.3f s apart, want 0.1", i-1, i, d)
		}
	}
	if n, _ := h.db.Client.Exists(ctx, keys.Retrying(tasks.QueueDefault, "", string(customerio.APITrack))).Result(); n != 0 {
		t.Error("the retrying index is not empty after the pull")
	}
}

// TestRecoveryOffLeavesBackoff: with Recovery.Off the tasks keep their
// retry times and nothing is indexed.
func TestRecoveryOffLeavesBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Batching.Off = true; c.Recovery.Off = true }, true)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, outage503)
	ids := identifyIDs(t, h.prod, "off-", 3)
	h.start(t)
	waitRetrying(t, h, tasks.QueueDefault, ids...)
	before := retryScores(t, h.db.Client, tasks.QueueDefault, ids...)
	h.sb.ClearFault(sandbox.GroupTrack)
	if _, err := h.prod.Identify(ctx, identify("off-fresh")); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "the fresh identify", func(s *sandbox.Server) bool {
		_, ok := s.Person("off-fresh")
		return ok
	})
	if after := retryScores(t, h.db.Client, tasks.QueueDefault, ids...); len(after) != len(ids) {
		t.Errorf("retry set changed: %v → %v", before, after)
	}
	if n, _ := h.db.Client.Exists(ctx, keys.Retrying(tasks.QueueDefault, "", string(customerio.APITrack)), keys.RecoveryRun("", string(customerio.APITrack))).Result(); n != 0 {
		t.Errorf("%d recovery keys written with Recovery.Off", n)
	}
}
