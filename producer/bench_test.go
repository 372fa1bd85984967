package producer_test

import (
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

func benchTrack() tasks.Track {
	return tasks.Track{
		Identifiers: customerio.Identifiers{ID: "user-123"},
		Event: customerio.Event{Name: "order_completed", Data: map[string]any{
			"order_id": "ORD-12345", "total": 59.98, "currency": "USD", "items": 3,
		}},
	}
}

// BenchmarkEnqueue is the producer's typed path: validation, ULID, envelope.
func BenchmarkEnqueue(b *testing.B) {
	db := testredis.New(b)
	c := producer.NewFromRedis(db.Client)
	p := benchTrack()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Track(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawAsynqEnqueue enqueues the same bytes straight through
// asynq.Client, the baseline BenchmarkEnqueue is compared with.
func BenchmarkRawAsynqEnqueue(b *testing.B) {
	db := testredis.New(b)
	ac := asynq.NewClientFromRedisClient(db.Client)
	p := benchTrack()
	p.ID = "01HZY8V4Q6W5M3K2J1N0P9R8S7"
	payload, err := tasks.Encode(p, tasks.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ac.EnqueueContext(ctx, asynq.NewTask(tasks.TypeTrack, payload), asynq.Queue(tasks.QueueDefault)); err != nil {
			b.Fatal(err)
		}
	}
}
