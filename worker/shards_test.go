package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestPlanShards: each logical queue becomes its n shards with the
// logical queue's weight (so the ratios between logical queues hold); one
// shard is the plain names.
func TestPlanShards(t *testing.T) {
	w := DefaultQueues()
	if got := planShards(w, 1); len(got) != 3 || got["critical"] != 6 || got["default"] != 3 || got["bulk"] != 1 {
		t.Fatalf("planShards(n=1) = %v, want the plain queues", got)
	}
	got := planShards(w, 3)
	if len(got) != 9 {
		t.Fatalf("planShards(n=3) = %v, want 9 queues", got)
	}
	sum := map[string]int{}
	for q, weight := range got {
		sum[shard.Logical(q)] += weight
	}
	if sum["critical"] != 18 || sum["default"] != 9 || sum["bulk"] != 3 {
		t.Errorf("logical weights %v, want 6:3:1 (×3)", sum)
	}
	if err := checkShards(17); err == nil {
		t.Error("checkShards(17) = nil")
	}
	if _, err := New(Config{Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, Shards: -1}); err == nil {
		t.Error("New accepted Shards -1")
	}
}

// shardedHarness is a harness whose producer and worker use n shards
// (the worker not started).
func shardedHarness(t *testing.T, n int) *harness {
	h := newHarness(t, func(c *Config) { c.Shards = n }, true)
	h.prod = producer.NewFromRedis(h.db.Client, producer.WithShards(n))
	return h
}

// enqueueMix enqueues identifies of people u<from>..u<to-1> (batchable:
// through cio:batch tasks when batching is on) and one transactional send
// each, and returns how many sends.
func enqueueMix(t *testing.T, p *producer.Client, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		id := customerio.Identifiers{ID: fmt.Sprintf("u%d", i)}
		if _, err := p.Identify(ctx, tasks.Identify{Identifiers: id, Attributes: map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.SendEmail(ctx, tasks.SendEmail{To: fmt.Sprintf("u%d@example.com", i), SendOptions: customerio.SendOptions{
			TransactionalMessageID: "welcome", Identifiers: &id}}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitPeople(t *testing.T, sb *sandbox.Server, people, sends int) {
	t.Helper()
	waitSandbox(t, sb, 60*time.Second, fmt.Sprintf("%d people and %d sends", people, sends), func(s *sandbox.Server) bool {
		return len(s.People()) == people && len(s.Deliveries()) == sends
	})
}

// TestShardsDeliver: with 3 shards the producer spreads the tasks over
// every shard of each queue, and a worker given the same count delivers
// them all.
func TestShardsDeliver(t *testing.T) {
	t.Parallel()
	h := shardedHarness(t, 3)
	h.dumpOnFailure(t)
	enqueueMix(t, h.prod, 0, 30)
	for _, q := range append(shard.Names(tasks.QueueDefault, 3), shard.Names(tasks.QueueCritical, 3)...) {
		if n, err := queueHolds(context.Background(), h.db.Client, q); err != nil || n == 0 {
			t.Errorf("shard %s holds %d tasks (%v), want some", q, n, err)
		}
	}
	h.start(t)
	waitPeople(t, h.sb, 30, 30)
	// The one-round-trip dequeue (dequeue.go) served the shards.
	if h.w.dequeue == nil || len(h.w.dequeue.queues) != 9 {
		t.Fatalf("dequeue hook %+v, want one over the 9 shards", h.w.dequeue)
	}
	h.w.dequeue.mu.Lock()
	runs := h.w.dequeue.runs
	h.w.dequeue.mu.Unlock()
	if runs == 0 {
		t.Error("the combined dequeue script never ran")
	}
	for q := range h.w.cfg.Queues {
		if _, _, ok := shard.Parse(q); !ok {
			t.Errorf("the worker serves %q, not a shard", q)
		}
	}
}

// TestShardsChangeLosesNothing: tasks enqueued under one shard count are
// delivered by a worker started with another, both ways (3 → 1 and
// 1 → 3), while new tasks go to the new count's queues; a worker that
// started before the old count's tasks arrived reports them as unserved.
func TestShardsChangeLosesNothing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ from, to int }{{3, 1}, {1, 3}} {
		t.Run(fmt.Sprintf("%d-to-%d", c.from, c.to), func(t *testing.T) {
			h := shardedHarness(t, c.to)
			h.dumpOnFailure(t)
			old := producer.NewFromRedis(h.db.Client, producer.WithShards(c.from))
			enqueueMix(t, old, 0, 20)     // before the change
			enqueueMix(t, h.prod, 20, 30) // after it
			h.start(t)
			waitPeople(t, h.sb, 30, 30)
			if len(h.w.cfg.Queues) <= 3*c.to {
				t.Errorf("the worker serves %v: want its %d queues and the old count's", h.w.cfg.Queues, 3*c.to)
			}

			// A task enqueued under the old count after the worker started,
			// in a queue (bulk) whose old names held nothing then: it
			// waits, is reported, and a worker started later delivers it.
			ctx := context.Background()
			r, err := old.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "late"}}, producer.Queue(tasks.QueueBulk))
			if err != nil {
				t.Fatal(err)
			}
			un, err := h.w.Unserved(ctx)
			if err != nil || len(un) != 1 || un[r.Queue] != 1 {
				t.Fatalf("Unserved = %v, %v; want 1 task in %s", un, err, r.Queue)
			}
			h.w.Shutdown()
			h.start(t) // the restart
			waitSandbox(t, h.sb, 30*time.Second, "the late task", func(s *sandbox.Server) bool {
				_, ok := s.Person("late")
				return ok
			})
			if un, err := h.w.Unserved(ctx); err != nil || len(un) != 0 {
				t.Errorf("Unserved after the restart = %v, %v", un, err)
			}
		})
	}
}

// TestDLQShards: dead letters of shards are listed by their logical queue,
// and a retry goes to the logical queue's shard under the store's count.
func TestDLQShards(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	ctx := context.Background()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	s := NewDeadLetters(db.Client, insp)
	three := shard.Names(tasks.QueueDefault, 3)
	for i, q := range append(three, tasks.QueueDefault, tasks.QueueBulk) {
		if err := s.Add(ctx, &DeadLetter{ID: fmt.Sprintf("d%d", i), Type: tasks.TypeIdentify, Queue: q, Class: DeadLetterPermanent,
			Payload: []byte(`{"v":1,"payload":{"identifiers":{"id":"x"}}}`), LastFailedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	pg, err := s.List(ctx, Filter{Queue: tasks.QueueDefault})
	if err != nil || len(pg.Items) != 4 {
		t.Fatalf("List(default) = %d items (%v), want the 3 shards' and the plain queue's", len(pg.Items), err)
	}
	if pg, _ := s.List(ctx, Filter{Queue: three[1]}); len(pg.Items) != 1 || pg.Items[0].Queue != three[1] {
		t.Errorf("List(%s) = %v, want its one", three[1], pg.Items)
	}
	ac := asynq.NewClientFromRedisClient(db.Client)
	// Back to one shard: every retry goes to the plain queue.
	info, err := s.Retry(ctx, "d0", ac)
	if err != nil || info.Queue != tasks.QueueDefault {
		t.Fatalf("Retry without shards: %+v, %v; want queue default", info, err)
	}
	s.SetShards(3)
	info, err = s.Retry(ctx, "d3", ac)
	if err != nil || shard.Logical(info.Queue) != tasks.QueueDefault || info.Queue == tasks.QueueDefault {
		t.Fatalf("Retry with 3 shards: %+v, %v; want a default shard", info, err)
	}
	if n, err := s.Purge(ctx, Filter{Queue: tasks.QueueDefault}); err != nil || n != 2 {
		t.Errorf("Purge(default) = %d, %v; want the 2 left", n, err)
	}
	if c, _ := s.Count(ctx); c != 1 {
		t.Errorf("%d dead letters left, want bulk's", c)
	}
}
