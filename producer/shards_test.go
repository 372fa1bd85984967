package producer_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/sequence"
	"github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestShardsOne: one shard (the default, or WithShards(1)) keeps the plain
// queue names; a count outside 1 to MaxShards is refused.
func TestShardsOne(t *testing.T) {
	db := testredis.New(t)
	for _, opts := range [][]producer.Option{nil, {producer.WithShards(1)}} {
		c := producer.NewFromRedis(db.Client, opts...)
		r, err := c.Track(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "ev"}})
		if err != nil || r.Queue != tasks.QueueDefault {
			t.Fatalf("receipt %+v, %v: want queue %q", r, err, tasks.QueueDefault)
		}
	}
	for _, n := range []int{-1, 17} {
		if err := producer.CheckShards(n); err == nil {
			t.Errorf("CheckShards(%d) = nil", n)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("WithShards(%d) did not panic", n)
				}
			}()
			producer.NewFromRedis(db.Client, producer.WithShards(n))
		}()
	}
	if err := producer.CheckShards(3); err != nil {
		t.Errorf("CheckShards(3) = %v", err)
	}
}

// TestShardsPick: with 3 shards a person's tasks all go to one shard
// (typed, raw, batched), a keyed task's repeat goes where the first went
// (and is a duplicate), tasks with neither go round robin over all three,
// prepared tasks (the relay) are routed too, and the ordering stamp
// records the shard the task is in.
func TestShardsPick(t *testing.T) {
	db := testredis.New(t)
	c := producer.NewFromRedis(db.Client, producer.WithShards(3), producer.WithOrdering())
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	names := shard.Names(tasks.QueueDefault, 3)
	isShard := func(q string) bool {
		for _, n := range names {
			if q == n {
				return true
			}
		}
		return false
	}

	// A person: every task in one shard; different people spread out.
	byPerson := map[string]bool{}
	for i := 0; i < 30; i++ {
		id := customerio.Identifiers{ID: fmt.Sprintf("user-%d", i)}
		var qs []string
		for j := 0; j < 3; j++ {
			r, err := c.Track(ctx, tasks.Track{Identifiers: id, Event: customerio.Event{Name: "ev"}})
			if err != nil {
				t.Fatal(err)
			}
			qs = append(qs, r.Queue)
		}
		raw, err := c.EnqueueRaw(ctx, tasks.TypeIdentify, json.RawMessage(fmt.Sprintf(`{"identifiers":{"id":"user-%d"}}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, raw.Queue)
		b, err := c.EnqueueBatch(ctx, []tasks.Payload{tasks.Identify{Identifiers: id}, tasks.Identify{Identifiers: id}})
		if err != nil || len(b.Tasks) != 1 {
			t.Fatalf("batch: %+v, %v", b, err)
		}
		qs = append(qs, b.Tasks[0].Queue)
		for _, q := range qs {
			if q != qs[0] || !isShard(q) {
				t.Fatalf("user-%d's tasks went to %v, want one shard of %v", i, qs, names)
			}
		}
		byPerson[qs[0]] = true
		if i == 0 {
			// The stamp names the shard the task is in.
			key, _ := producer.OrderKey(tasks.Track{Identifiers: id})
			state, err := db.Client.HGetAll(ctx, keys.SeqState("", key)).Result()
			if err != nil {
				t.Fatal(err)
			}
			h, ok := sequence.ParseHolder(state["1"])
			if !ok || h.Queue != qs[0] {
				t.Errorf("number 1 is held by %+v, want a task in %s", h, qs[0])
			}
			if _, err := insp.GetTaskInfo(h.Queue, h.TaskID); err != nil {
				t.Errorf("the stamped task %s is not in %s: %v", h.TaskID, h.Queue, err)
			}
		}
	}
	if len(byPerson) != 3 {
		t.Errorf("30 people used shards %v, want all 3", byPerson)
	}

	// Neither person nor key (a transactional send to an address):
	// round robin.
	rr := map[string]int{}
	for i := 0; i < 6; i++ {
		r, err := c.SendEmail(ctx, tasks.SendEmail{To: "ada@example.com", SendOptions: customerio.SendOptions{
			TransactionalMessageID: "welcome", Identifiers: &customerio.Identifiers{Email: "ada@example.com"}}})
		if err != nil {
			t.Fatal(err)
		}
		rr[r.Queue]++
	}
	for _, n := range shard.Names(tasks.QueueCritical, 3) {
		if rr[n] != 2 {
			t.Errorf("6 sends over the critical shards: %v, want 2 in each", rr)
		}
	}

	// A key: the repeat lands on the same shard and is a duplicate.
	send := tasks.SendEmail{To: "ada@example.com", SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome",
		Identifiers: &customerio.Identifiers{Email: "ada@example.com"}}}
	a, err := c.SendEmail(ctx, send, producer.IdempotencyKey("order-1:welcome"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.SendEmail(ctx, send, producer.IdempotencyKey("order-1:welcome"))
	if err != nil || !b.Duplicate || b.Queue != a.Queue || b.TaskID != a.TaskID {
		t.Fatalf("repeat of a key: %+v, %v; first %+v", b, err, a)
	}

	// Prepared (the outbox relay): routed by key, a repeat a duplicate.
	prep := producer.NewPreparer()
	p, err := prep.Prepare(send, producer.IdempotencyKey("order-2:welcome"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Queue != tasks.QueueCritical {
		t.Fatalf("Prepare chose %q, want the logical queue", p.Queue)
	}
	pa, err := c.EnqueuePrepared(ctx, p)
	if err != nil || shard.Logical(pa.Queue) != tasks.QueueCritical || pa.Queue == tasks.QueueCritical {
		t.Fatalf("EnqueuePrepared: %+v, %v: want a critical shard", pa, err)
	}
	pb, err := c.EnqueuePrepared(ctx, p)
	if err != nil || !pb.Duplicate || pb.Queue != pa.Queue {
		t.Fatalf("EnqueuePrepared again: %+v, %v; first %+v", pb, err, pa)
	}
	// Nothing in the plain queues.
	for _, q := range []string{tasks.QueueDefault, tasks.QueueCritical} {
		if n, _ := db.Client.LLen(ctx, keys.AsynqPending(q)).Result(); n != 0 {
			t.Errorf("%d tasks in the plain queue %s", n, q)
		}
	}
}
