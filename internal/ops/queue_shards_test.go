package ops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/internal/testredis"
)

// TestLogicalQueues: the queue gauges speak of logical queues: the three
// shards of "default" and its plain name (an earlier shard count) are one
// "default", summed, with the oldest latency and cioq_queue_shards 4.
func TestLogicalQueues(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	task := asynq.NewTask("cio:track", envelope(`{"name":"x"}`))
	for i, q := range append(shard.Names("default", 3), "default", "bulk") {
		for j := 0; j <= i; j++ {
			if _, err := client.EnqueueContext(ctx, task, asynq.Queue(q)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := client.EnqueueContext(ctx, task, asynq.Queue(shard.Name("default", 1, 3)), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := insp.PauseQueue(shard.Name("default", 2, 3)); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP cioq_queue_tasks Tasks in the queue by state (completed: kept for retention).
# TYPE cioq_queue_tasks gauge
cioq_queue_tasks{queue="bulk",state="active"} 0
cioq_queue_tasks{queue="bulk",state="aggregating"} 0
cioq_queue_tasks{queue="bulk",state="archived"} 0
cioq_queue_tasks{queue="bulk",state="completed"} 0
cioq_queue_tasks{queue="bulk",state="pending"} 5
cioq_queue_tasks{queue="bulk",state="retry"} 0
cioq_queue_tasks{queue="bulk",state="scheduled"} 0
cioq_queue_tasks{queue="default",state="active"} 0
cioq_queue_tasks{queue="default",state="aggregating"} 0
cioq_queue_tasks{queue="default",state="archived"} 0
cioq_queue_tasks{queue="default",state="completed"} 0
cioq_queue_tasks{queue="default",state="pending"} 10
cioq_queue_tasks{queue="default",state="retry"} 0
cioq_queue_tasks{queue="default",state="scheduled"} 1
# HELP cioq_queue_paused 1 when the queue is paused.
# TYPE cioq_queue_paused gauge
cioq_queue_paused{queue="bulk"} 0
cioq_queue_paused{queue="default"} 1
# HELP cioq_queue_shards asynq queues the logical queue is made of (CIOQ_QUEUE_SHARDS, and those of an earlier count still listed).
# TYPE cioq_queue_shards gauge
cioq_queue_shards{queue="bulk"} 1
cioq_queue_shards{queue="default"} 4
`
	if err := gatherAndCompare(collectorGatherer(t, NewQueueCollector(insp, nil)), strings.NewReader(want),
		"cioq_queue_tasks", "cioq_queue_paused", "cioq_queue_shards"); err != nil {
		t.Error(err)
	}
}
