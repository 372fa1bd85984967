package producer_test

import (
	"strconv"
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

// BenchmarkEnqueueIdempotencyKey is BenchmarkEnqueue with a fresh
// idempotency key per task: the task id derived from the key, and asynq's
// retention of the completed task.
func BenchmarkEnqueueIdempotencyKey(b *testing.B) {
	db := testredis.New(b)
	c := producer.NewFromRedis(db.Client)
	p := benchTrack()
	keys := make([]string, 0, 1<<16)
	for i := range cap(keys) {
		keys = append(keys, "order-"+strconv.Itoa(i)+":confirmation")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)] + ":" + strconv.Itoa(i/len(keys))
		i++
		if _, err := c.Track(ctx, p, producer.IdempotencyKey(k)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueDuplicateKey enqueues one idempotency key again and
// again: every enqueue after the first is refused as a duplicate.
func BenchmarkEnqueueDuplicateKey(b *testing.B) {
	db := testredis.New(b)
	c := producer.NewFromRedis(db.Client)
	p := benchTrack()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Track(ctx, p, producer.IdempotencyKey("order-12345:confirmation")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTaskIDForKey is the CPU cost of deriving a task id from an
// idempotency key (HMAC-SHA256 and base32), the secret already known.
func BenchmarkTaskIDForKey(b *testing.B) {
	db := testredis.New(b)
	c := producer.NewFromRedis(db.Client, producer.WithKeySecret("bench-secret-0123456789abcdef0123456789"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.TaskIDForKey(ctx, "order-12345:confirmation"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueContracts is the cost of contract checks per enqueue:
// the same send (a template with its variables) and identify (declared
// attribute types, one coerced) enqueued without and with a contracts
// file (compare the two sub-benchmarks of each: the goal is a ratio of at
// least 0.9).
func BenchmarkEnqueueContracts(b *testing.B) {
	send := tasks.SendEmail{To: "ada@example.com", SendOptions: customerio.SendOptions{
		TransactionalMessageID: "password_reset", Identifiers: &customerio.Identifiers{ID: "user-123"},
		MessageData: map[string]any{"reset_link": "https://app.example.com/reset?token=abc123", "expiry_hours": 1}}}
	identify := tasks.Identify{Identifiers: customerio.Identifiers{ID: "user-123"}, Attributes: map[string]any{
		"email": "ada@example.com", "total_revenue": "1000", "churn_risk_score": 0.2, "plan": "pro", "order_count": 12}}
	for _, tc := range []struct {
		name string
		p    tasks.Payload
	}{{"send", send}, {"identify", identify}} {
		for _, with := range []bool{false, true} {
			name := tc.name + "/without"
			var opts []producer.Option
			if with {
				name = tc.name + "/with"
				opts = append(opts, producer.WithContracts(seedSet(b)))
			}
			b.Run(name, func(b *testing.B) {
				db := testredis.New(b)
				c := producer.NewFromRedis(db.Client, opts...)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Enqueue(ctx, tc.p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
