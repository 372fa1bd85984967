package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/sequence"
	"github.com/cioq/cioq/tasks"
)

// Defaults of Ordering's zero fields.
const (
	DefaultOrderingMaxWait = 30 * time.Second
	DefaultOrderingPoll    = 200 * time.Millisecond
	DefaultOrderingActive  = 2 * time.Second
	orderingTTL            = sequence.TTL
	// orderingChunk is how many earlier numbers the gate reads per round
	// trip (it reads more only when those are all gone).
	orderingChunk = 64
)

// Ordering makes the tasks of one person reach Customer.io in the order
// they were enqueued, in the workspaces listed, across any number of
// workers. It needs a producer created with producer.WithOrdering, which
// stamps each person-scoped task with the person's next sequence number
// (an order key and seq in the envelope) and records which task id holds
// each number.
//
// A worker delivers task n of a person only once every earlier task of the
// person has finished (delivered or dead-lettered) or left the queue
// otherwise. It records the highest finished number in Redis
// (cioq:{cioq:seq:<workspace>:<key>}:state, with a copy in
// cioq:done:<workspace>:<key>), and for the numbers above it looks up the
// task that holds each in asynq: a task that is pending, active (also
// with an expired lease, until asynq's recoverer retries it), scheduled or
// waiting for a retry is still to come, and n waits for it however long it
// takes; a task that was deleted, archived or completed without being
// recorded as finished is gone, and n goes ahead at once without it. The
// task that recorded the highest finished number is looked up too, so a
// worker that crashed after recording it and before asynq acknowledged it
// (the task is then delivered again) is not overtaken. A waiting task
// waits up to Poll in the worker, then is rescheduled without spending its
// retry budget. Other people are never blocked. A task that goes ahead
// without some of its predecessors is logged and reported to the Observer
// (OrderingWait with gaveUp).
//
// Time decides only where Redis cannot: the number is taken just before
// the task is enqueued (Redis Cluster cannot do both in one step), so a
// number whose task is not in Redis may still be on its way; it is
// skipped once MaxWait has passed since it was taken (its producer failed
// or gave up). Likewise a number of which no record exists (stamped by a
// producer of an earlier version, or its record was lost) is skipped once
// the person's sequence has not moved for MaxWait, all such numbers at
// once. A duplicate enqueue (idempotency key) is recorded as holding no
// task and never waited for.
type Ordering struct {
	// Workspaces lists the ordered workspaces ("" = the default one).
	// Tasks of other workspaces are delivered as they come, even if stamped.
	Workspaces map[string]bool
	// MaxWait is how long a task waits for an earlier number that no task
	// in Redis holds: one taken by a producer that has not enqueued its
	// task (yet), or one of which no record exists (default 30 s). A
	// predecessor that is still queued is waited for regardless.
	MaxWait time.Duration
	// Poll is how long a task waits in the worker for a predecessor that
	// is queued but not running before it is rescheduled (default 200 ms).
	Poll time.Duration
	// ActiveWait is how long a task waits in the worker for a predecessor
	// that is running (being delivered, or itself waiting in a worker for
	// the one before it) before it is rescheduled (default 2 s): such a
	// predecessor is done in moments, and the task goes as soon as it is.
	ActiveWait time.Duration
}

// DoneKey is the Redis key of the copy of the highest finished seq of a
// person (see keys.Done).
func DoneKey(workspace, orderKey string) string {
	return keys.Done(workspace, orderKey)
}

// gateScript reads a person's state for task hi+1 and refreshes the
// expiry of the state and the counter. KEYS: state, counter. ARGV: hi (the
// highest earlier number), count, ttl (s). Returns {now ms, done, at, lo,
// record(lo), ..., record(hi)}: the records of the count numbers up to hi,
// none below done (done and at nil when the state has none).
var gateScript = redis.NewScript(`
local t = redis.call("TIME")
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call("EXPIRE", KEYS[1], ARGV[3])
redis.call("EXPIRE", KEYS[2], ARGV[3])
local d = redis.call("HMGET", KEYS[1], "done", "at")
local done = tonumber(d[1] or "0") or 0
local hi = tonumber(ARGV[1])
local lo = hi - tonumber(ARGV[2]) + 1
if lo < done then lo = done end
if lo < 1 then lo = 1 end
local out = {now, d[1], d[2], lo}
if hi >= lo then
  local f = {}
  for s = lo, hi do f[#f + 1] = s end
  local v = redis.call("HMGET", KEYS[1], unpack(f))
  for i = 1, #v do out[#out + 1] = v[i] end
end
return out
`)

// doneScript reads the copy of a person's highest finished seq and
// refreshes its expiry. KEYS: done hash. ARGV: ttl (s). Returns {seq, at}.
var doneScript = redis.NewScript(`
redis.call("EXPIRE", KEYS[1], ARGV[1])
return redis.call("HMGET", KEYS[1], "seq", "at")
`)

// finishScript raises a person's highest finished number and forgets the
// records below it (the record of done itself is kept: the next task looks
// its task up). KEYS: state, counter. ARGV: seq, ttl (s). Returns the
// number before.
var finishScript = redis.NewScript(`
local t = redis.call("TIME")
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local cur = tonumber(redis.call("HGET", KEYS[1], "done") or "0") or 0
local seq = tonumber(ARGV[1])
if seq > cur then
  redis.call("HSET", KEYS[1], "done", seq, "at", now)
  if seq - cur <= 512 then
    for s = cur, seq - 1 do redis.call("HDEL", KEYS[1], s) end
  else
    for _, f in ipairs(redis.call("HKEYS", KEYS[1])) do
      local s = tonumber(f)
      if s and s < seq then redis.call("HDEL", KEYS[1], f) end
    end
  end
end
redis.call("EXPIRE", KEYS[1], ARGV[2])
redis.call("EXPIRE", KEYS[2], ARGV[2])
return cur
`)

// advanceScript raises the copy of the finished seq. KEYS: done hash.
// ARGV: seq, ttl (s).
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

// scriptCall is one script run of runScripts.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// runScripts runs the calls in one round trip (EVALSHA in a pipeline; the
// keys of different calls may live in different Cluster slots), loading
// the scripts once if Redis does not know them yet.
func runScripts(ctx context.Context, rdb redis.UniversalClient, calls ...scriptCall) ([]*redis.Cmd, error) {
	for attempt := 0; ; attempt++ {
		cmds := make([]*redis.Cmd, len(calls))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
			}
			return nil
		})
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			for _, c := range calls {
				if lerr := c.script.Load(ctx, rdb).Err(); lerr != nil {
					return nil, lerr
				}
			}
			continue
		}
		return cmds, err
	}
}

func (w *Worker) ordered(t *Task) bool {
	return t.Envelope != nil && t.Envelope.Seq > 0 && validOrderKey(t.Envelope.OrderKey) &&
		w.cfg.Ordering.Workspaces[t.Envelope.Workspace]
}

// validOrderKey reports whether k is an order key as the producer makes
// them (hex): anything else could not be a Redis Cluster hash tag.
func validOrderKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// orderVerdict is the gate's decision on a task's predecessors.
type orderVerdict struct {
	pass bool
	// skipped counts the earlier numbers the task goes ahead without: their
	// tasks left the queue without being recorded as finished, or no
	// record of them was found for MaxWait (unknown).
	skipped int
	unknown bool
	// done is the highest finished number the gate saw.
	done int64
	// until, when the task waits for a predecessor that is scheduled or
	// retrying, is when asynq runs that one next: no use looking again
	// before.
	until time.Time
	// active: the predecessor waited for is running.
	active bool
}

// orderGate returns nil when t may be delivered now, or a RetryLater error.
// While it waits it looks again every orderingRecheck, and at once (then
// at short intervals, for asynq's acknowledgement) when a task of the same
// person finishes in this process.
func (w *Worker) orderGate(ctx context.Context, t *Task) error {
	env := t.Envelope
	start := time.Now()
	seen := map[string]bool{} // predecessors found to hold their number
	wake := w.orderWaiter(env.Workspace, env.OrderKey)
	defer w.orderUnwait(env.Workspace, env.OrderKey, wake)
	var soon []time.Duration // quick re-checks after a wake
	for {
		v, err := w.orderCheck(ctx, t, seen)
		if err != nil {
			return &retryError{err: err, class: RetryTransient, delay: time.Second, spend: false, reason: "ordering state unavailable"}
		}
		if v.pass {
			var sinceEnq time.Duration
			if enq, ok := env.Enqueued(); ok {
				sinceEnq = w.cfg.Now().Sub(enq)
			}
			if v.skipped > 0 {
				w.obs.OrderingWait(env.Workspace, sinceEnq, true)
				msg := "ordering: going ahead without a person's earlier tasks that left the queue unfinished (deleted, archived or never enqueued)"
				if v.unknown {
					msg = "ordering: going ahead without a person's earlier tasks of which no record was found within max_wait"
				}
				w.log.Warn(msg, "type", t.Type, "task_id", t.ID, "workspace", displayWS(env.Workspace), "seq", env.Seq,
					"skipped", v.skipped, "finished_seq", v.done, "max_wait", w.cfg.Ordering.MaxWait)
			} else if waited := time.Since(start); waited > 5*time.Millisecond || sinceEnq > time.Second {
				w.obs.OrderingWait(env.Workspace, sinceEnq, false)
			}
			return nil
		}
		limit := w.cfg.Ordering.Poll
		if v.active {
			limit = max(limit, w.cfg.Ordering.ActiveWait)
		}
		deadline := start.Add(limit)
		if time.Now().After(deadline) || v.until.After(deadline) {
			// Rescheduled (back in a second or two, to notice a
			// predecessor that left the queue); the predecessor's finish
			// runs it at once (wakeSuccessor).
			return RetryLater(time.Second, errWaitingForPredecessor)
		}
		next := orderingRecheck
		if len(soon) > 0 {
			next, soon = soon[0], soon[1:]
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return RetryLater(time.Second, errWaitingForPredecessor)
		case <-wake.ch:
			timer.Stop()
			wake = w.orderRewait(env.Workspace, env.OrderKey, wake)
			// The task that finished is acknowledged by asynq a moment
			// after it recorded its finish: look now, then shortly after.
			soon = []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond}
		case <-timer.C:
		}
	}
}

// orderingRecheck is how often a waiting task looks at its predecessors
// when nothing in this process tells it one finished.
const orderingRecheck = 20 * time.Millisecond

// orderWake is a person's wake-up in this process: ch is closed when a
// task of the person finishes here.
type orderWake struct {
	ch      chan struct{}
	waiters int
}

func orderWakeKey(ws, key string) string { return ws + "\x00" + key }

// orderWaiter registers a waiter for the person's wake-up.
func (w *Worker) orderWaiter(ws, key string) *orderWake {
	w.orderMu.Lock()
	defer w.orderMu.Unlock()
	if w.orderWakes == nil {
		w.orderWakes = map[string]*orderWake{}
	}
	k := orderWakeKey(ws, key)
	ow := w.orderWakes[k]
	if ow == nil {
		ow = &orderWake{ch: make(chan struct{})}
		w.orderWakes[k] = ow
	}
	ow.waiters++
	return ow
}

// orderUnwait unregisters a waiter.
func (w *Worker) orderUnwait(ws, key string, ow *orderWake) {
	w.orderMu.Lock()
	defer w.orderMu.Unlock()
	ow.waiters--
	k := orderWakeKey(ws, key)
	if ow.waiters <= 0 && w.orderWakes[k] == ow {
		delete(w.orderWakes, k)
	}
}

// orderRewait trades a fired wake-up for the person's current one.
func (w *Worker) orderRewait(ws, key string, ow *orderWake) *orderWake {
	w.orderUnwait(ws, key, ow)
	return w.orderWaiter(ws, key)
}

// orderWakeUp wakes the tasks of the person waiting in this process.
func (w *Worker) orderWakeUp(ws, key string) {
	w.orderMu.Lock()
	defer w.orderMu.Unlock()
	k := orderWakeKey(ws, key)
	if ow := w.orderWakes[k]; ow != nil {
		close(ow.ch)
		delete(w.orderWakes, k)
	}
}

var errWaitingForPredecessor = errors.New("ordering: waiting for the person's earlier task")

// orderCheck decides whether t may go: every number below its own is
// finished, held by no task, or held by a task that is no longer queued.
// seen caches, for one gate's polls, the tasks found to hold their numbers.
func (w *Worker) orderCheck(ctx context.Context, t *Task, seen map[string]bool) (orderVerdict, error) {
	env := t.Envelope
	n := env.Seq
	if n <= 1 {
		return orderVerdict{pass: true}, nil
	}
	ws, key := env.Workspace, env.OrderKey
	stateKey := keys.SeqState(ws, key)
	ttl := int64(orderingTTL / time.Second)
	cmds, err := runScripts(ctx, w.rdb,
		scriptCall{gateScript, []string{stateKey, keys.Seq(ws, key)}, []any{n - 1, orderingChunk, ttl}},
		scriptCall{doneScript, []string{DoneKey(ws, key)}, []any{ttl}})
	if err != nil {
		return orderVerdict{}, err
	}
	g, err := cmds[0].Slice()
	if err != nil || len(g) < 4 {
		return orderVerdict{}, fmt.Errorf("ordering: gate script: %v", err)
	}
	d, _ := cmds[1].Slice()
	now := time.UnixMilli(toInt(g[0]))
	done, at := toInt(g[1]), toInt(g[2])
	if len(d) == 2 && toInt(d[0]) > done {
		done, at = toInt(d[0]), toInt(d[1])
	}
	v := orderVerdict{done: done}
	if done >= n {
		// n itself was recorded as finished: asynq runs it again after a
		// crash before its acknowledgement. Its successors waited for it.
		v.pass = true
		return v, nil
	}
	floor := max(done, 1)
	lo, recs := toInt(g[3]), g[4:]
	var skipped, unknown []int64
	for hi := n - 1; hi >= floor; {
		var holders []holderAt
		for s := hi; s >= max(lo, floor); s-- {
			var h sequence.Holder
			ok := false
			if i := s - lo; i < int64(len(recs)) {
				if raw, isString := recs[i].(string); isString {
					h, ok = sequence.ParseHolder(raw)
				}
			}
			switch {
			case !ok && s == done:
				// Recorded as finished by a worker that left no record of
				// its task (an earlier version): nothing to look up.
			case !ok:
				unknown = append(unknown, s)
			case h.Void || h.TaskID == t.ID:
			default:
				holders = append(holders, holderAt{seq: s, Holder: h})
			}
		}
		wait, until, active, gone, err := w.lookUp(ctx, holders, env.OrderKey, done, now, seen)
		if err != nil || wait {
			v.until, v.active = until, active
			return v, err
		}
		skipped = append(skipped, gone...)
		if lo <= floor {
			break
		}
		// Every number read is settled: read the ones below.
		hi = lo - 1
		lo = max(hi-orderingChunk+1, floor)
		fields := make([]string, 0, hi-lo+1)
		for s := lo; s <= hi; s++ {
			fields = append(fields, strconv.FormatInt(s, 10))
		}
		vals, err := w.rdb.HMGet(ctx, stateKey, fields...).Result()
		if err != nil {
			return v, err
		}
		recs = vals
	}
	if len(unknown) > 0 {
		since := time.UnixMilli(max(at, env.EnqueuedAt))
		if now.Sub(since) < w.cfg.Ordering.MaxWait {
			return v, nil
		}
		v.unknown = true
		skipped = append(skipped, unknown...)
	}
	if done < n-1 {
		// Everything below n is settled: record it, so the next task need
		// not look again. Numbers another worker finished meanwhile were
		// not skipped.
		cmds, err := runScripts(ctx, w.rdb,
			scriptCall{finishScript, []string{stateKey, keys.Seq(ws, key)}, []any{n - 1, ttl}},
			scriptCall{advanceScript, []string{DoneKey(ws, key)}, []any{n - 1, ttl}})
		if err == nil {
			if before, err := cmds[0].Int64(); err == nil && before > done {
				done = before
			}
		}
		for _, s := range skipped {
			if s > done {
				v.skipped++
			}
		}
	}
	v.pass = true
	return v, nil
}

// holderAt is the record of the task holding number seq.
type holderAt struct {
	seq int64
	sequence.Holder
}

// lookUp looks up the tasks holding the numbers of hs (highest first) in
// asynq. wait: one of them is still queued (until: when asynq runs it
// next, if it is scheduled or retrying), or may still be on its way (taken
// less than MaxWait ago, not in Redis). gone lists the numbers above done
// whose tasks left the queue.
func (w *Worker) lookUp(ctx context.Context, hs []holderAt, orderKey string, done int64, now time.Time, seen map[string]bool) (wait bool, until time.Time, active bool, gone []int64, err error) {
	if len(hs) == 0 {
		return false, time.Time{}, false, nil, nil
	}
	cmds := make([]*redis.StringCmd, len(hs))
	if _, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hs {
			cmds[i] = p.HGet(ctx, keys.AsynqTask(h.Queue, h.TaskID), asynqStateField)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return false, time.Time{}, false, nil, err
	}
	for i, h := range hs {
		state, err := cmds[i].Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, time.Time{}, false, nil, err
		}
		switch {
		case asynqQueued(state):
			if held, next := w.holds(h, state, orderKey, seen); held {
				return true, next, state == "active", nil, nil
			}
			// The id now names another task (an idempotency key used
			// again after the first task left Redis): this one is gone.
		case state == "" && h.seq != done && now.Sub(h.Stamped) < w.cfg.Ordering.MaxWait:
			// Not in Redis: its enqueue may be under way.
			return true, time.Time{}, false, nil, nil
		}
		if h.seq > done {
			gone = append(gone, h.seq)
		}
	}
	return false, time.Time{}, false, gone, nil
}

// holds reports whether the queued task h names (in state) is the one
// that took number h.seq of the person orderKey, not a later task reusing
// its id, and when asynq runs it next if it is scheduled or retrying (zero
// if unknown). When asynq cannot tell, it is taken to be. seen remembers
// the tasks found to hold their number, so a gate polling a pending or
// active predecessor reads its state only.
func (w *Worker) holds(h holderAt, state, orderKey string, seen map[string]bool) (bool, time.Time) {
	later := state == "scheduled" || state == "retry"
	if seen[h.TaskID] && !later {
		return true, time.Time{}
	}
	ti, err := w.inspector.GetTaskInfo(h.Queue, h.TaskID)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return false, time.Time{}
	}
	if err != nil {
		return true, time.Time{}
	}
	var e tasks.Envelope
	if json.Unmarshal(ti.Payload, &e) != nil || e.OrderKey != orderKey || e.Seq != h.seq {
		return false, time.Time{}
	}
	seen[h.TaskID] = true
	if later {
		return true, ti.NextProcessAt
	}
	return true, time.Time{}
}

// toInt reads an integer of a script's reply (an integer or a string; 0
// for nil or anything else).
func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// orderDone records that t finished (delivered or dead-lettered). It runs
// before asynq acknowledges t; t's successor goes ahead only once asynq
// has (it looks t's task up), so a crash in between does not let it
// overtake t's second delivery.
func (w *Worker) orderDone(ctx context.Context, t *Task) {
	env := t.Envelope
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	ws, key, ttl := env.Workspace, env.OrderKey, int64(orderingTTL/time.Second)
	if _, err := runScripts(wctx, w.rdb,
		scriptCall{finishScript, []string{keys.SeqState(ws, key), keys.Seq(ws, key)}, []any{env.Seq, ttl}},
		scriptCall{advanceScript, []string{DoneKey(ws, key)}, []any{env.Seq, ttl}}); err != nil {
		w.log.Warn("ordering: could not record a finished task; the person's next task goes ahead once this one has left the queue",
			"type", t.Type, "task_id", t.ID, "seq", env.Seq, "error", err.Error())
	}
	w.orderWakeUp(ws, key)
	w.wakeSuccessor(wctx, ws, key, env.Seq+1)
}

// wakeSuccessor runs the task holding number seq of the person now when it
// was rescheduled to wait for its predecessor (it is in asynq's retry set,
// its last error that wait), instead of letting it wait out its delay: its
// predecessor just finished. One still running is looked at again for a
// moment (it may be on its way to the retry set); one pending looks again
// by itself (in this process it was just woken), one retrying for its own
// failure keeps its backoff, one scheduled for later (ProcessIn) keeps its
// time. Best effort.
func (w *Worker) wakeSuccessor(ctx context.Context, ws, key string, seq int64) {
	raw, err := w.rdb.HGet(ctx, keys.SeqState(ws, key), strconv.FormatInt(seq, 10)).Result()
	if err != nil {
		return
	}
	h, ok := sequence.ParseHolder(raw)
	if !ok || h.Void || h.TaskID == "" {
		return
	}
	if w.runWaiting(h, seq) != asynq.TaskStateActive {
		return
	}
	// Running: it may have given up waiting a moment ago and be on its
	// way to asynq's retry set, where nothing would run it before its
	// delay (the wake-up would be lost: 1-3 s of the person's tasks
	// standing still). Look again shortly, in the background.
	w.background(func(ctx context.Context) {
		for _, d := range successorRechecks {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if w.runWaiting(h, seq) != asynq.TaskStateActive {
				return
			}
		}
	})
}

// successorRechecks are the waits between looks at a running successor
// (wakeSuccessor): asynq moves a task its handler rescheduled within
// milliseconds, so 126 ms in all.
var successorRechecks = []time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond,
	16 * time.Millisecond, 32 * time.Millisecond, 64 * time.Millisecond}

// runWaiting runs h's task now when it is in asynq's retry set waiting
// for its predecessor (see wakeSuccessor), and returns the state it found
// it in (0 when it could not tell).
func (w *Worker) runWaiting(h sequence.Holder, seq int64) asynq.TaskState {
	ti, err := w.inspector.GetTaskInfo(h.Queue, h.TaskID)
	if err != nil {
		return 0
	}
	if ti.State != asynq.TaskStateRetry {
		return ti.State
	}
	if ti.LastErr != "" && !strings.Contains(ti.LastErr, errWaitingForPredecessor.Error()) {
		return ti.State // retrying for a failure of its own
	}
	if err := w.inspector.RunTask(h.Queue, h.TaskID); err == nil {
		w.log.Debug("ordering: woke the person's next task, its predecessor finished", "task_id", h.TaskID, "seq", seq)
	}
	return ti.State
}

// restamp gives a dead letter's task a new place at the end of its
// person's sequence before DeadLetters.Retry re-enqueues it under taskID:
// its old number was finished when it was dead-lettered, and a task keeping
// it would pass every ordering gate at once, overtaking the person's tasks
// still queued. With the new number it is delivered after every task of
// the person enqueued before the retry, and before those enqueued after.
// The number is recorded as held by taskID. It returns the payload to
// enqueue and a function that voids the number when the enqueue is refused
// as a duplicate (an earlier retry of the record already holds its place);
// a task without a sequence number is returned unchanged, with a no-op.
func (s *DeadLetters) restamp(ctx context.Context, d *DeadLetter, payload []byte, taskID string) ([]byte, func(), error) {
	var env tasks.Envelope
	if json.Unmarshal(payload, &env) != nil || env.Seq <= 0 || !validOrderKey(env.OrderKey) {
		return payload, func() {}, nil
	}
	queue := d.Queue
	if queue == "" {
		queue = tasks.QueueDefault // asynq's default queue
	}
	seq, err := sequence.Stamp(ctx, s.rdb, env.Workspace, env.OrderKey, queue, taskID)
	if err != nil {
		return nil, nil, fmt.Errorf("worker: dead letter %s: ordering sequence: %w", d.ID, err)
	}
	void := func() { _ = sequence.Void(context.WithoutCancel(ctx), s.rdb, env.Workspace, env.OrderKey, seq) }
	env.Seq = seq
	b, err := json.Marshal(env)
	if err != nil {
		void()
		return nil, nil, fmt.Errorf("worker: dead letter %s: %w", d.ID, err)
	}
	return b, void, nil
}
