package worker

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
)

// Defaults of Ordering's zero fields.
const (
	DefaultOrderingMaxWait = 30 * time.Second
	DefaultOrderingPoll    = 200 * time.Millisecond
	orderingTTL            = 7 * 24 * time.Hour
)

// Ordering makes the tasks of one person reach Customer.io in the order
// they were enqueued, in the workspaces listed, across any number of
// workers. It needs a producer created with producer.WithOrdering, which
// stamps each person-scoped task with the person's next sequence number
// (an order key and seq in the envelope).
//
// A worker delivers task n of a person only once task n-1 finished
// (delivered or dead-lettered): it records each finished seq in Redis
// (cioq:done:<workspace>:<key>, only ever raised). A task whose predecessor
// has not finished waits up to Poll in the worker, then is rescheduled
// without spending its retry budget. Other people are never blocked. When a
// person's sequence has not advanced for MaxWait (the predecessor was
// deleted, dead-lettered by a worker without ordering, or keeps failing),
// the waiting task skips one missing seq, is logged and reported to the
// Observer (OrderingWait with gaveUp) and is delivered; a gap of k missing
// tasks costs at most k·MaxWait.
type Ordering struct {
	// Workspaces lists the ordered workspaces ("" = the default one).
	// Tasks of other workspaces are delivered as they come, even if stamped.
	Workspaces map[string]bool
	// MaxWait bounds how long a person's sequence may stall before a
	// waiting task gives up on its predecessor (default 30 s).
	MaxWait time.Duration
	// Poll is how long a task waits in the worker for its predecessor
	// before it is rescheduled (default 200 ms).
	Poll time.Duration
}

// DoneKey is the Redis key recording the highest finished seq of a person.
func DoneKey(workspace, orderKey string) string {
	return keys.Done(workspace, orderKey)
}

// gateScript decides whether task seq may go. KEYS: done hash. ARGV: seq,
// max wait (ms), enqueued_at (ms, 0 = unknown), ttl (s). Returns {go 0|1,
// done, gave_up 0|1}.
var gateScript = redis.NewScript(`
local t = redis.call("TIME")
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local d = redis.call("HMGET", KEYS[1], "seq", "at")
local done = tonumber(d[1] or "0")
local at = tonumber(d[2] or "0")
local seq = tonumber(ARGV[1])
if done >= seq - 1 then return {1, done, 0} end
local since = at
local enq = tonumber(ARGV[3])
if enq > since then since = enq end
if now - since >= tonumber(ARGV[2]) then
  done = done + 1
  redis.call("HSET", KEYS[1], "seq", done, "at", now)
  redis.call("EXPIRE", KEYS[1], ARGV[4])
  if done >= seq - 1 then return {1, done, 1} end
  return {0, done, 1}
end
return {0, done, 0}
`)

// advanceScript raises the finished seq. KEYS: done hash. ARGV: seq, ttl (s).
var advanceScript = redis.NewScript(`
local t = redis.call("TIME")
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local cur = tonumber(redis.call("HGET", KEYS[1], "seq") or "0")
if tonumber(ARGV[1]) > cur then
  redis.call("HSET", KEYS[1], "seq", ARGV[1], "at", now)
end
redis.call("EXPIRE", KEYS[1], ARGV[2])
return 1
`)

func (w *Worker) ordered(t *Task) bool {
	return t.Envelope != nil && t.Envelope.Seq > 0 && t.Envelope.OrderKey != "" &&
		w.cfg.Ordering.Workspaces[t.Envelope.Workspace]
}

// orderGate returns nil when t may be delivered now, or a RetryLater error.
func (w *Worker) orderGate(ctx context.Context, t *Task) error {
	env := t.Envelope
	key := DoneKey(env.Workspace, env.OrderKey)
	start := time.Now()
	deadline := start.Add(w.cfg.Ordering.Poll)
	gaveUpLogged := false
	for {
		v, err := gateScript.Run(ctx, w.rdb, []string{key}, env.Seq,
			w.cfg.Ordering.MaxWait.Milliseconds(), env.EnqueuedAt, int64(orderingTTL/time.Second)).Int64Slice()
		if err != nil {
			return &retryError{err: err, class: RetryTransient, delay: time.Second, spend: false, reason: "ordering state unavailable"}
		}
		if v[2] == 1 && !gaveUpLogged {
			gaveUpLogged = true
			waited := time.Duration(0)
			if enq, ok := env.Enqueued(); ok {
				waited = w.cfg.Now().Sub(enq)
			}
			w.obs.OrderingWait(env.Workspace, waited, true)
			w.log.Warn("ordering: a person's earlier task did not finish in time; skipping it",
				"type", t.Type, "task_id", t.ID, "workspace", displayWS(env.Workspace), "seq", env.Seq,
				"skipped_seq", v[1], "max_wait", w.cfg.Ordering.MaxWait)
		}
		if v[0] == 1 {
			if waited := time.Since(start); waited > 0 && (v[2] == 0) {
				var sinceEnq time.Duration
				if enq, ok := env.Enqueued(); ok {
					sinceEnq = w.cfg.Now().Sub(enq)
				}
				if waited > 5*time.Millisecond || sinceEnq > time.Second {
					w.obs.OrderingWait(env.Workspace, sinceEnq, false)
				}
			}
			return nil
		}
		if time.Now().After(deadline) {
			return RetryLater(time.Second, errWaitingForPredecessor)
		}
		select {
		case <-ctx.Done():
			return RetryLater(time.Second, errWaitingForPredecessor)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var errWaitingForPredecessor = errors.New("ordering: waiting for the person's earlier task")

// orderDone records that t finished (delivered or dead-lettered).
func (w *Worker) orderDone(ctx context.Context, t *Task) {
	env := t.Envelope
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := advanceScript.Run(wctx, w.rdb, []string{DoneKey(env.Workspace, env.OrderKey)}, env.Seq, int64(orderingTTL/time.Second)).Err(); err != nil {
		w.log.Warn("ordering: could not record a finished task; the person's next task waits up to max_wait",
			"type", t.Type, "task_id", t.ID, "seq", env.Seq, "error", err.Error())
	}
}
