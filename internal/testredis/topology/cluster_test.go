package topology_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/redisack"
	"github.com/cioq/cioq/internal/testredis/topology"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
	"github.com/cioq/cioq/worker/ratelimit"
)

// shared is the Cluster the cluster tests share (started by the first,
// stopped by TestMain): each test empties it first.
var shared struct {
	once sync.Once
	c    *topology.Cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
	os.Exit(code)
}

// cluster returns the shared Cluster, emptied.
func cluster(t *testing.T) *topology.Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = topology.NewCluster() })
	if errors.Is(shared.err, topology.ErrNoRedis) {
		t.Skip(shared.err.Error())
	}
	if shared.err != nil {
		t.Fatalf("topology: %v", shared.err)
	}
	if err := shared.c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return shared.c
}

// TestClusterDeadLetters: on a Cluster (with replicated acknowledgements,
// so the dead letter's MULTI/EXEC waits on its node), a send Customer.io
// refuses is dead-lettered, listed, and retried into a new task that is
// delivered; the store is empty after.
func TestClusterDeadLetters(t *testing.T) {
	c := cluster(t)
	sb := sandbox.NewTestServer(t)
	sb.AddFault(sandbox.GroupApp, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"bad template"}}`, Times: 1})
	w := startWorker(t, c.URL(), sb, func(cfg *worker.Config) { cfg.Replicas, cfg.ReplicaTimeout = 1, time.Second })
	p, err := producer.New(c.URL(), producer.WithReplicas(1, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	rc, err := p.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome",
		Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "dl@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	dlq := w.DLQ()
	var page *worker.Page
	eventually(t, "the dead letter", func() bool {
		page, err = dlq.List(ctx, worker.Filter{})
		return err == nil && len(page.Items) == 1
	})
	if d := page.Items[0]; d.ID != rc.TaskID || d.Class != worker.DeadLetterPermanent || d.Status != 400 {
		t.Fatalf("dead letter %+v", d)
	}
	cc := c.Client()
	defer cc.Close()
	info, err := dlq.Retry(ctx, rc.TaskID, asynq.NewClientFromRedisClient(cc))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := sb.WaitFor(wctx, func(s *sandbox.Server) bool { return len(s.Deliveries()) == 1 }); err != nil {
		t.Fatalf("the retried send (%s): %v", info.ID, err)
	}
	if n, err := dlq.Count(ctx); err != nil || n != 0 {
		t.Errorf("dead letters after the retry: %d, %v", n, err)
	}
}

// TestClusterRateLimit: the limiter's scripts (position and 429 state, one
// hash tag) run on a Cluster: slots come 100 ms apart at 10/s, and a 429
// halves the rate.
func TestClusterRateLimit(t *testing.T) {
	c := cluster(t)
	cc := c.Client()
	defer cc.Close()
	now := time.Unix(1_800_000_000, 0)
	l := ratelimit.New(cc, ratelimit.Config{Now: func() time.Time { return now }})
	lim := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 1}
	ctx := context.Background()
	key := ratelimit.Key("eu-shop", ratelimit.APITrack)
	// The slots are placed on Redis's clock: a later reservation's delay
	// is shorter by the time that passed since the first one.
	start := time.Now()
	for i := 0; i < 3; i++ {
		r, err := l.Reserve(ctx, key, lim, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		passed := time.Since(start)
		if want := time.Duration(i) * 100 * time.Millisecond; !r.Allowed || r.Delay < want-passed-time.Millisecond || r.Delay > want+time.Millisecond {
			t.Errorf("reservation %d: %+v, want a delay of %s", i, r, want)
		}
	}
	if err := l.Throttled(ctx, key); err != nil {
		t.Fatal(err)
	}
	if f, err := l.EffectiveRate(ctx, key); err != nil || f > 0.51 {
		t.Errorf("effective rate after a 429: %v, %v; want 0.5", f, err)
	}
}

// TestClusterOrdering: per-person ordering on a Cluster (the sequence
// counter and the done marker live in other slots than the queue): a
// person's events, made due in reverse, are delivered in enqueue order.
func TestClusterOrdering(t *testing.T) {
	c := cluster(t)
	sb := sandbox.NewTestServer(t)
	p, err := producer.New(c.URL(), producer.WithOrdering(), producer.WithReplicas(1, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	const n = 8
	for i := 0; i < n; i++ {
		if _, err := p.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "ord"},
			Event: customerio.Event{Name: "e", Data: map[string]any{"i": i}}}, producer.ProcessIn(time.Duration(n-i)*150*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	startWorker(t, c.URL(), sb, func(cfg *worker.Config) {
		cfg.Ordering.Workspaces = map[string]bool{"": true}
		cfg.Ordering.Poll = 50 * time.Millisecond
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sb.WaitFor(wctx, func(s *sandbox.Server) bool { return len(s.Events("ord")) >= n }); err != nil {
		t.Fatalf("ordered events: %v (%d)", err, len(sb.Events("ord")))
	}
	for i, e := range sb.Events("ord") {
		if fmt.Sprint(e.Data["i"]) != strconv.Itoa(i) {
			t.Errorf("event %d is %v: out of order", i, e.Data["i"])
		}
	}
}

// TestClusterIdempotencyKeys: on a Cluster two producers share the
// deployment's key secret, so one key is one task id: the second enqueue
// is a duplicate (confirmed on the queue's node with replicated
// acknowledgements), and the event is delivered once.
func TestClusterIdempotencyKeys(t *testing.T) {
	c := cluster(t)
	sb := sandbox.NewTestServer(t)
	a, err := producer.New(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := producer.New(c.URL(), producer.WithReplicas(1, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	ev := tasks.Track{Identifiers: customerio.Identifiers{ID: "key-person"}, Event: customerio.Event{Name: "signed_up"}}
	first, err := a.Track(ctx, ev, producer.IdempotencyKey("signup:key-person"))
	if err != nil || first.Duplicate {
		t.Fatalf("first: %+v, %v", first, err)
	}
	second, err := b.Track(ctx, ev, producer.IdempotencyKey("signup:key-person"))
	if err != nil || !second.Duplicate || second.TaskID != first.TaskID {
		t.Fatalf("second: %+v, %v; want a duplicate of %s", second, err, first.TaskID)
	}
	startWorker(t, c.URL(), sb, nil)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := sb.WaitFor(wctx, func(s *sandbox.Server) bool { return len(s.Events("key-person")) > 0 }); err != nil {
		t.Fatal(err)
	}
	if third, err := a.Track(ctx, ev, producer.IdempotencyKey("signup:key-person")); err != nil || !third.Duplicate {
		t.Fatalf("after delivery: %+v, %v; want a duplicate (the task is retained)", third, err)
	}
	if n := len(sb.Events("key-person")); n != 1 {
		t.Errorf("%d events delivered, want 1", n)
	}
}

// TestClusterWaitOnTheWritesNode: WAIT goes to the node that took the
// write. With the replica of one master paused, writes to that master's
// slots are not confirmed; writes to the other masters are.
func TestClusterWaitOnTheWritesNode(t *testing.T) {
	c := cluster(t)
	cc := c.Client()
	defer cc.Close()
	if err := redisack.Install(cc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A key of each master, found by its slot.
	keyOf := map[string]string{}
	for i := 0; len(keyOf) < 3 && i < 1000; i++ {
		k := "k" + strconv.Itoa(i)
		m, err := cc.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := keyOf[m.Options().Addr]; !ok {
			keyOf[m.Options().Addr] = k
		}
	}
	paused := c.Replicas[0]
	if err := paused.Pause(); err != nil {
		t.Fatal(err)
	}
	defer paused.Resume()
	for i, m := range c.Masters {
		actx := redisack.With(ctx, redisack.Settings{Replicas: 1, Timeout: 300 * time.Millisecond})
		err := cc.Set(actx, keyOf[m.Addr], "v", time.Minute).Err()
		if i == 0 && !errors.Is(err, redisack.ErrNotReplicated) {
			t.Errorf("write to %s, whose replica is paused: %v, want ErrNotReplicated", m.Addr, err)
		}
		if i != 0 && err != nil {
			t.Errorf("write to %s: %v", m.Addr, err)
		}
	}
}

// eventually polls cond every 50 ms, failing after 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterFailover is TestSentinelFailover on a Cluster of its own: the
// replica of the master that holds queue default takes over with CLUSTER
// FAILOVER FORCE (not waiting for the master, as when it dies) while events
// are enqueued. With replicated acknowledgements (one replica per master:
// every replica) every acknowledged event is delivered, none twice:
// asserted; without, what the failover lost is reported.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes several seconds")
	}
	for _, n := range []int{1, 0} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			c := topology.StartCluster(t)
			r := failoverRunOn(t, c.URL(), n, 300, func(ctx context.Context) (string, string, error) {
				return c.Failover(ctx, "asynq:{"+tasks.QueueDefault+"}:pending")
			})
			t.Logf("replicas=%d: %d events enqueued, %d acknowledged, %d delivered, %d lost, %d delivered twice; %d enqueue errors (%d not replicated)",
				n, r.enqueued, r.acknowledged, r.delivered, r.lost, r.twice, r.errors, r.notReplicated)
			if n == 1 && (r.lost != 0 || r.twice != 0 || r.acknowledged != r.enqueued) {
				t.Errorf("with replicated acknowledgements: %d of %d acknowledged, %d lost, %d twice; want all, none, none", r.acknowledged, r.enqueued, r.lost, r.twice)
			}
		})
	}
}
