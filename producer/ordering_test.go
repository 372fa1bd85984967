package producer_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/sequence"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestOrderingRecordsHolders: WithOrdering stamps a person's tasks 1, 2,
// 3… and records, per number, the task id that holds it (the id the task
// is enqueued under, typed or raw); an enqueue refused as a duplicate of
// its idempotency key leaves its number held by no task, so workers do not
// wait for it. (Before: the duplicate's number named nothing a worker
// could tell from a task still to come.)
func TestOrderingRecordsHolders(t *testing.T) {
	db := testredis.New(t)
	c := producer.NewFromRedis(db.Client, producer.WithOrdering())
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	ev := tasks.Track{Identifiers: person, Event: customerio.Event{Name: "ev"}}
	a, err := c.Track(ctx, ev, producer.IdempotencyKey("ord-a"))
	if err != nil {
		t.Fatal(err)
	}
	dup, err := c.Track(ctx, ev, producer.IdempotencyKey("ord-a"))
	if err != nil || !dup.Duplicate {
		t.Fatalf("duplicate: %+v, %v", dup, err)
	}
	b, err := c.Track(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.EnqueueRaw(ctx, tasks.TypeIdentify, json.RawMessage(`{"identifiers":{"id":"user-123"}}`))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := producer.OrderKey(ev)
	state, err := db.Client.HGetAll(ctx, keys.SeqState("", key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]producer.Receipt{"1": a, "3": b, "4": raw} {
		h, ok := sequence.ParseHolder(state[f])
		if _, present := state[f]; !present || !ok || h.Void || h.TaskID != want.TaskID || h.Queue != want.Queue {
			t.Errorf("number %s is held by %+v, want task %s in %s", f, h, want.TaskID, want.Queue)
		}
		if _, env, _ := stored(t, insp, want); env.OrderKey != key || strconv.FormatInt(env.Seq, 10) != f {
			t.Errorf("task %s carries number %d, want %s", want.TaskID, env.Seq, f)
		}
	}
	if rec, present := state["2"]; !present || rec != "" {
		t.Errorf("the duplicate's number 2 is recorded as %q (present %v), want held by no task (\"\")", rec, present)
	}
}
