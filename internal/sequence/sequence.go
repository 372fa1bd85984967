// Package sequence is the producer's half of per-person ordering, shared by
// the producer (producer.WithOrdering) and the worker (a dead letter
// retried with DeadLetters.Retry takes a new place): it gives a task the
// person's next sequence number and records, in the person's state
// (keys.SeqState), which task holds it. The worker's ordering gate reads
// that record to learn whether a task's predecessor is still queued.
//
// A number is taken before the task is enqueued (the number is part of
// the task's bytes), in one script with the record of the task id that
// will hold it. The enqueue itself cannot join that script: asynq's keys
// live in the queue's Redis Cluster slot, the person's in another. So a
// number can name a task that is not in Redis (yet): its enqueue is under
// way, failed, or was refused as a duplicate of an idempotency key. The
// last case is known for sure and recorded at once (Void); the worker
// waits Ordering.MaxWait from the stamp for the others.
package sequence

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
)

// TTL is how long a person's counter and state live after their last use
// (a stamp, a worker's gate or a finished task).
const TTL = 7 * 24 * time.Hour

// stampScript takes the next number. KEYS: counter, state. ARGV: queue,
// task id, ttl (s). A counter that is gone (expired, evicted) while the
// state lives restarts above every number the state knows, finished or
// held, so new tasks never reuse a number still queued or pass as already
// finished. Returns the number.
var stampScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then
  local top = tonumber(redis.call("HGET", KEYS[2], "done") or "0") or 0
  for _, f in ipairs(redis.call("HKEYS", KEYS[2])) do
    local s = tonumber(f)
    if s and s > top then top = s end
  end
  redis.call("SET", KEYS[1], top)
end
local n = redis.call("INCR", KEYS[1])
local t = redis.call("TIME")
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call("HSET", KEYS[2], n, ARGV[1] .. " " .. now .. " " .. ARGV[2])
redis.call("EXPIRE", KEYS[1], ARGV[3])
redis.call("EXPIRE", KEYS[2], ARGV[3])
return n
`)

// voidScript marks a number as held by no task. KEYS: state. ARGV: number.
// A state that is gone stays gone.
var voidScript = redis.NewScript(`
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1 then
  redis.call("HSET", KEYS[1], ARGV[1], "")
end
return 1
`)

// Stamp takes the person's next sequence number for the task taskID, to be
// enqueued in queue, and records which task holds it. workspace and
// orderKey name the person (producer.OrderKey).
func Stamp(ctx context.Context, rdb redis.Scripter, workspace, orderKey, queue, taskID string) (int64, error) {
	return stampScript.Run(ctx, rdb, []string{keys.Seq(workspace, orderKey), keys.SeqState(workspace, orderKey)},
		queue, taskID, int64(TTL/time.Second)).Int64()
}

// Void records that number seq is held by no task: its enqueue was refused
// because a task with the same id (idempotency key) is already queued, so
// the person's next task need not wait for it.
func Void(ctx context.Context, rdb redis.Scripter, workspace, orderKey string, seq int64) error {
	return voidScript.Run(ctx, rdb, []string{keys.SeqState(workspace, orderKey)}, seq).Err()
}

// Holder is the record of the task holding a number.
type Holder struct {
	// Void: no task holds the number (Void).
	Void bool
	// Queue and TaskID name the asynq task.
	Queue, TaskID string
	// Stamped is when the number was taken (Redis's clock).
	Stamped time.Time
}

// ParseHolder reads a number's record as the stamp script writes it; false
// when s is not one.
func ParseHolder(s string) (Holder, bool) {
	if s == "" {
		return Holder{Void: true}, true
	}
	q, rest, ok := strings.Cut(s, " ")
	if !ok {
		return Holder{}, false
	}
	ms, id, ok := strings.Cut(rest, " ")
	if !ok || q == "" || id == "" {
		return Holder{}, false
	}
	at, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return Holder{}, false
	}
	return Holder{Queue: q, TaskID: id, Stamped: time.UnixMilli(at)}, true
}
