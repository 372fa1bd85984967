package topology_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/internal/testredis/topology"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// testLogger discards logs unless CIOQ_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CIOQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// sandboxWorkspace is the default workspace's configuration for the sandbox.
func sandboxWorkspace(sb *sandbox.Running) customerio.Config {
	return customerio.Config{
		SiteID: sandbox.DefaultSiteID, TrackAPIKey: sandbox.DefaultTrackAPIKey,
		AppAPIKey: sandbox.DefaultAppAPIKey, PipelinesWriteKey: sandbox.DefaultPipelinesWriteKey,
		TrackURL: sb.TrackURL(), AppURL: sb.AppURL(), PipelinesURL: sb.PipelinesURL(),
		Timeout: 5 * time.Second,
	}
}

// redisOpt parses url.
func redisOpt(t testing.TB, url string) asynq.RedisConnOpt {
	t.Helper()
	conn, err := redisconf.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// startWorker starts a worker on url delivering to sb, stopped at the end.
func startWorker(t *testing.T, url string, sb *sandbox.Running, mod func(*worker.Config)) *worker.Worker {
	t.Helper()
	cfg := worker.Config{
		Redis:         redisOpt(t, url),
		Workspaces:    map[string]customerio.Config{"": sandboxWorkspace(sb)},
		Concurrency:   20,
		Backoff:       worker.BackoffConfig{Base: 100 * time.Millisecond, Cap: time.Second},
		Logger:        testLogger(),
		ProbeInterval: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w
}

// failoverRun is what one run of enqueues through a failover measured.
type failoverRun struct {
	enqueued, acknowledged, delivered, lost, twice int
	errors, notReplicated                          int
}

// TestSentinelFailover enqueues events steadily (50 a second, each under an
// idempotency key, retried until acknowledged) into a Sentinel group (a
// master, two replicas) while SENTINEL FAILOVER promotes a replica, with a
// worker delivering them to the sandbox over HTTP, and logs how many were
// acknowledged, delivered, lost and delivered twice under two event ids.
//
// With replicated acknowledgements for both replicas (producer and worker)
// every acknowledged event is delivered, none twice: asserted. With one of
// the two, the replica that was not promoted can confirm writes the old
// master takes after the promotion and then drop them when it follows the
// new master; with none, the old master's writes in that window are
// acknowledged and lost; with min-replicas-to-write 1 instead, the old
// master refuses writes once no replica follows it (NOREPLICAS), but
// accepts them while the other replica still does. Those three are
// reported, not asserted (their losses depend on timing).
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes several seconds")
	}
	for _, v := range []struct {
		name        string
		replicas    int
		minReplicas int // min-replicas-to-write on every data node
	}{
		{"replicas=2", 2, 0},
		{"replicas=1", 1, 0},
		{"replicas=0", 0, 0},
		{"min-replicas-to-write=1", 0, 1},
	} {
		t.Run(v.name, func(t *testing.T) {
			r := sentinelRun(t, v.replicas, v.minReplicas, 400)
			t.Logf("%s: %d events enqueued, %d acknowledged, %d delivered, %d lost, %d delivered twice; %d enqueue errors (%d not replicated)",
				v.name, r.enqueued, r.acknowledged, r.delivered, r.lost, r.twice, r.errors, r.notReplicated)
			if v.replicas == 2 && (r.lost != 0 || r.twice != 0 || r.acknowledged != r.enqueued) {
				t.Errorf("with replicated acknowledgements: %d of %d acknowledged, %d lost, %d twice; want all, none, none", r.acknowledged, r.enqueued, r.lost, r.twice)
			}
		})
	}
}

// sentinelRun runs total enqueues through a failover with the given
// replicas setting (and min-replicas-to-write on every data node).
func sentinelRun(t *testing.T, replicas, minReplicas, total int) failoverRun {
	s := topology.StartSentinel(t)
	if minReplicas > 0 {
		for _, n := range s.Data {
			c := n.Client()
			err := c.ConfigSet(context.Background(), "min-replicas-to-write", strconv.Itoa(minReplicas)).Err()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return failoverRunOn(t, s.URL(), replicas, total, func(ctx context.Context) (string, string, error) { return s.Failover(ctx) })
}

// failoverRunOn enqueues total events at 50 a second into url, each under
// an idempotency key and retried until acknowledged (for at most 20 s),
// with a worker delivering them to a sandbox, producer and worker waiting
// for replicas replicas; failover runs after a fifth of them. It returns
// what was acknowledged, delivered, lost and delivered twice (under two
// event ids) once every acknowledged task is delivered or gone.
func failoverRunOn(t *testing.T, url string, replicas, total int, failover func(context.Context) (old, promoted string, err error)) failoverRun {
	sb := sandbox.NewTestServer(t)
	const timeout = 500 * time.Millisecond
	startWorker(t, url, sb, func(c *worker.Config) { c.Replicas, c.ReplicaTimeout = replicas, timeout })
	p, err := producer.New(url, producer.WithReplicas(replicas, timeout))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()

	var run failoverRun
	acked := map[int]bool{}
	failed := make(chan error, 1)
	var failing sync.WaitGroup
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < total; i++ {
		<-tick.C
		if i == total/5 {
			failing.Add(1)
			go func() {
				defer failing.Done()
				old, promoted, err := failover(ctx)
				if err != nil {
					failed <- err
					return
				}
				t.Logf("failover at event %d: %s → %s", i, old, promoted)
			}()
		}
		run.enqueued++
		ev := tasks.Track{Identifiers: customerio.Identifiers{ID: fmt.Sprintf("p%d", i%20)},
			Event: customerio.Event{Name: "tick", Data: map[string]any{"n": i}}}
		key := producer.IdempotencyKey(fmt.Sprintf("tick-%d", i))
		deadline := time.Now().Add(20 * time.Second)
		for {
			actx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := p.Track(actx, ev, key)
			cancel()
			if err == nil {
				run.acknowledged++
				acked[i] = true
				break
			}
			run.errors++
			if errors.Is(err, producer.ErrNotReplicated) {
				run.notReplicated++
			}
			if time.Now().After(deadline) {
				t.Logf("event %d not acknowledged within 20 s: %v", i, err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	failing.Wait()
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}

	// Wait until every acknowledged event is delivered or its task is gone
	// from the (new) master: such a task never will be (lost). A task
	// still there (pending, retrying, or active with a lease the failover
	// left behind) may yet be.
	seen := func() (delivered map[int]map[string]bool) {
		delivered = map[int]map[string]bool{}
		for pi := 0; pi < 20; pi++ {
			for _, e := range sb.Events(fmt.Sprintf("p%d", pi)) {
				n, err := strconv.Atoi(fmt.Sprint(e.Data["n"])) // a json.Number
				if err != nil {
					continue
				}
				if delivered[n] == nil {
					delivered[n] = map[string]bool{}
				}
				delivered[n][e.ID] = true
			}
		}
		return delivered
	}
	insp := asynq.NewInspector(redisOpt(t, url))
	defer insp.Close()
	ids := map[int]string{}
	for i := range acked {
		if ids[i], err = p.TaskIDForKey(ctx, fmt.Sprintf("tick-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	settled := func() bool {
		d := seen()
		for i := range acked {
			if d[i] != nil {
				continue
			}
			if ti, err := insp.GetTaskInfo(tasks.QueueDefault, ids[i]); err == nil && ti.State != asynq.TaskStateCompleted {
				return false
			}
		}
		return true
	}
	// Redis gives no signal when a task is gone: poll (the sandbox and the
	// master) every 100 ms.
	for deadline := time.Now().Add(90 * time.Second); !settled(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			d := seen()
			for i := range acked {
				if d[i] == nil {
					if ti, err := insp.GetTaskInfo(tasks.QueueDefault, ids[i]); err == nil {
						t.Logf("event %d: task %s, retried %d, last error %q", i, ti.State, ti.Retried, ti.LastErr)
					}
				}
			}
			t.Fatal("acknowledged tasks neither delivered nor gone from the master after 90 s")
		}
	}
	d := seen()
	for i := range acked {
		if d[i] == nil {
			run.lost++
		}
	}
	for _, ids := range d {
		run.delivered++
		if len(ids) > 1 {
			run.twice++
		}
	}
	return run
}
