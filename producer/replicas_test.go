package producer_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/testredis/topology"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// fifoClient is a go-redis client of addr whose pool hands out the
// connection idle longest, warmed to several connections: consecutive
// commands then run on different connections, so a WAIT not sent on its
// write's connection would show.
func fifoClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, PoolFIFO: true})
	t.Cleanup(func() { c.Close() })
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Ping(context.Background()) }()
	}
	wg.Wait()
	return c
}

// TestWithReplicas: with WithReplicas(1, …) an enqueue returns once the
// replica has the task; while the replica is paused it fails with
// ErrNotReplicated, the master holding the task all the same; a retry
// under the same idempotency key is not acknowledged as a duplicate until
// the first task is replicated; ordering sequence numbers wait the same
// way.
func TestWithReplicas(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	rdb := fifoClient(t, r.Master.Addr)
	// A generous timeout while the replica is up (a busy machine's replica
	// may take a while to acknowledge), a short one while it is paused.
	up := producer.NewFromRedis(rdb, producer.WithReplicas(1, 2*time.Second))
	c := producer.NewFromRedis(rdb, producer.WithReplicas(1, 300*time.Millisecond))
	ordered := producer.NewFromRedis(rdb, producer.WithReplicas(1, 300*time.Millisecond), producer.WithOrdering())
	rep := r.Replicas[0].Client()
	defer rep.Close()
	repInsp := asynq.NewInspectorFromRedisClient(rep)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	ev := benchTrack()

	// Replica up: acknowledged means the replica holds the task now.
	rc, err := up.Track(ctx, ev, producer.IdempotencyKey("first"))
	if err != nil {
		t.Fatalf("enqueue with the replica up: %v", err)
	}
	if _, err := repInsp.GetTaskInfo(rc.Queue, rc.TaskID); err != nil {
		t.Fatalf("the replica does not hold the acknowledged task: %v", err)
	}

	// c reads the key secret and asynq's client registers the queue while
	// the replica is up (both are writes that would wait like the rest).
	if _, err := c.Track(ctx, ev, producer.IdempotencyKey("warm-up")); err != nil {
		t.Fatal(err)
	}
	if err := r.Replicas[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer r.Replicas[0].Resume()
	_, err = c.Track(ctx, ev, producer.IdempotencyKey("second"))
	if !errors.Is(err, producer.ErrNotReplicated) {
		t.Fatalf("enqueue with the replica paused: %v, want ErrNotReplicated", err)
	}
	id, err := c.TaskIDForKey(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := insp.GetTaskInfo(tasks.QueueDefault, id); err != nil {
		t.Fatalf("the master does not hold the unconfirmed task: %v", err)
	}
	// The retry finds the key taken, but the first task is not confirmed:
	// no "duplicate" acknowledgement yet.
	if rc, err := c.Track(ctx, ev, producer.IdempotencyKey("second")); !errors.Is(err, producer.ErrNotReplicated) {
		t.Fatalf("retry with the replica paused: %+v, %v; want ErrNotReplicated", rc, err)
	}
	// Even a duplicate of a task replicated long ago is not confirmed
	// while no replica answers.
	if _, err := c.Track(ctx, ev, producer.IdempotencyKey("first")); !errors.Is(err, producer.ErrNotReplicated) {
		t.Fatalf("duplicate with the replica paused: %v; want ErrNotReplicated", err)
	}
	// So is an ordering sequence number (cioq:seq): the enqueue stops
	// there, before the task.
	before, _ := insp.GetQueueInfo(tasks.QueueDefault)
	if _, err := ordered.Identify(ctx, tasks.Identify{Identifiers: ev.Identifiers}); !errors.Is(err, producer.ErrNotReplicated) || !strings.Contains(err.Error(), "ordering sequence") {
		t.Fatalf("ordered enqueue with the replica paused: %v; want ErrNotReplicated of the ordering sequence", err)
	}
	if after, _ := insp.GetQueueInfo(tasks.QueueDefault); after.Size != before.Size {
		t.Fatalf("the ordered enqueue whose sequence number is unconfirmed enqueued a task (%d → %d)", before.Size, after.Size)
	}

	if err := r.Replicas[0].Resume(); err != nil {
		t.Fatal(err)
	}
	rc, err = up.Track(ctx, ev, producer.IdempotencyKey("second"))
	if err != nil || !rc.Duplicate {
		t.Fatalf("retry with the replica back: %+v, %v; want a duplicate", rc, err)
	}
	if _, err := repInsp.GetTaskInfo(rc.Queue, rc.TaskID); err != nil {
		t.Fatalf("the replica does not hold the task confirmed as duplicate: %v", err)
	}

	// Without the option nothing waits.
	plain := producer.NewFromRedis(rdb)
	r.Replicas[0].Pause()
	if _, err := plain.Track(ctx, ev); err != nil {
		t.Fatalf("without WithReplicas, replica paused: %v", err)
	}
}

// TestWithReplicasChecks: invalid settings are refused.
func TestWithReplicasChecks(t *testing.T) {
	if producer.CheckReplicas(-1, 0) == nil || producer.CheckReplicas(1, -time.Second) == nil {
		t.Fatal("CheckReplicas accepted a negative setting")
	}
	if err := producer.CheckReplicas(2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // read timeout 3 s
	defer rdb.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("NewFromRedis accepted a WAIT timeout the client's read timeout cannot wait for")
		}
	}()
	producer.NewFromRedis(rdb, producer.WithReplicas(1, 5*time.Second))
}

// TestNewRaisesReadTimeout: New gives its client the read timeout a long
// WAIT needs.
func TestNewRaisesReadTimeout(t *testing.T) {
	c, err := producer.New("redis://127.0.0.1:1/0", producer.WithReplicas(1, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// BenchmarkEnqueueReplicas is BenchmarkEnqueue on a master with one
// replica (both on this machine), without and with WithReplicas(1, 1s):
// the cost of waiting for the replica, from one goroutine and from eight
// (parallel: 4 per CPU on two).
func BenchmarkEnqueueReplicas(b *testing.B) {
	r := topology.StartReplicated(b, 1)
	for _, n := range []int{0, 1} {
		c, err := producer.New(r.URL(), producer.WithReplicas(n, time.Second))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		p := benchTrack()
		name := fmt.Sprintf("replicas=%d", n)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Track(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.SetParallelism(8 / max(1, runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Track(ctx, p); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
