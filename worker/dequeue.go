package worker

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// One dequeue round trip for all queues.
//
// asynq's processor fetches tasks one at a time, serially: for each task it
// runs its dequeue script once per queue, in a weighted random order, until
// one of them yields a task. With cioq's three queues, of which two are
// usually empty, that is about 1.9 round trips per task (2 with strict
// priority), and since nothing else runs in that loop, the round trips
// bound the worker's throughput and cost Redis a script run each.
//
// dequeueHook, a go-redis hook on the worker's own Redis client, replaces
// the first of those runs with one script that tries every queue of the
// worker in one round trip, in an order drawn as asynq draws it (asynq's
// choice first, the rest by weight), and answers the calls asynq then makes
// for the other queues itself when that script found all of them empty.
// The script does per queue exactly what asynq's does (skip a paused
// queue; pop the task id into the active list, mark the task active, set
// its lease), so asynq finds the task as if its own script had taken it;
// and it takes several tasks at once when the queue holds them (see
// Prefetching below), so most of asynq's calls make no round trip at all.
// Only a script whose text is asynq v0.26's dequeue script is replaced
// (matched by its SHA-1): an asynq whose script differs runs unchanged.
// The keys of different queues are in different Cluster slots, so on a
// Cluster client the hook's script tries only the queue asynq asked for
// (asynq then tries the others one round trip each, as it does alone),
// and still takes several of its tasks at once and bounds the cio:batch
// tasks held.

// asynqDequeueSHA is the SHA-1 of asynq v0.26's dequeue script
// (internal/rdb/rdb.go, dequeueCmd), which the hook recognizes. That script
// takes KEYS pending, paused, active, lease of one queue and ARGV lease
// expiry (unix s), task key prefix; cioq keeps only its fingerprint (the
// tests read the script from asynq's module source and check it).
const asynqDequeueSHA = "a8153319360adc71cdc370107f8ab9786f204765"

// dequeueAllScript does what asynq's dequeue script does, over several queues
// in order, and takes up to a budget of tasks from the first queue that
// has any: each id popped into the active list, its hash marked active
// without a pending_since, its lease set, as asynq's script does for one.
// KEYS: pending, paused, active, lease of each queue (4 per queue). ARGV:
// lease expiry (unix s), the most tasks, the most message bytes (the task
// that reaches it is the last taken; one is always taken), the most
// cio:batch tasks (-1: any number; see Bounding the cio:batch tasks
// below), the message prefix of a cio:batch task, then the task key prefix
// of each queue. With a bound, it looks at a queue's next task before
// taking it, and stops at a cio:batch one past the bound (that queue's
// later tasks wait behind it; the next queue is tried). It returns nil
// when every queue is empty, paused or stopped at, else {queue index
// (1-based), id, msg, id, msg, ...}.
var dequeueAllScript = redis.NewScript(dequeueAllSrc)

const dequeueAllSrc = `
local most, budget, multi, mark = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
for i = 1, #KEYS / 4 do
  local k = (i - 1) * 4
  if redis.call("EXISTS", KEYS[k + 2]) == 0 then
    local out, size = {i}, 0
    while #out < 2 * most + 1 and size < budget do
      local msg
      if multi >= 0 then
        local head = redis.call("LINDEX", KEYS[k + 1], -1)
        if not head then break end
        msg = redis.call("HGET", ARGV[i + 5] .. head, "msg")
        if msg and string.sub(msg, 1, #mark) == mark then
          if multi == 0 then break end
          multi = multi - 1
        end
      end
      local id = redis.call("RPOPLPUSH", KEYS[k + 1], KEYS[k + 3])
      if not id then break end
      local key = ARGV[i + 5] .. id
      redis.call("HSET", key, "state", "active")
      redis.call("HDEL", key, "pending_since")
      redis.call("ZADD", KEYS[k + 4], ARGV[1], id)
      if multi < 0 then msg = redis.call("HGET", key, "msg") end
      if not msg then break end
      out[#out + 1] = id
      out[#out + 1] = msg
      size = size + #msg
    end
    if #out > 1 then return out end
  end
end
return nil
`

// releaseScript renews the lease of a prefetched task handed out late,
// unless it is no longer leased (asynq's recoverer took it). KEYS: lease
// set. ARGV: expiry (unix s), id. Returns 1 when renewed.
var releaseScript = redis.NewScript(`
if redis.call("ZSCORE", KEYS[1], ARGV[2]) then
  redis.call("ZADD", KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
`)

// requeueScript puts prefetched tasks no handler got back at the head of
// their queue (where asynq's dequeue takes the next task from), as asynq
// puts back an active task at shutdown. KEYS: active, lease, pending; ARGV:
// task key prefix, then the ids. Returns how many were put back.
var requeueScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call("LREM", KEYS[1], 0, id) > 0 then
    redis.call("ZREM", KEYS[2], id)
    redis.call("HSET", ARGV[1] .. id, "state", "pending")
    redis.call("RPUSH", KEYS[3], id)
    n = n + 1
  end
end
return n
`)

// emptyAnswerWindow bounds how long after finding every queue empty the
// hook answers asynq's calls for the other queues itself: asynq makes them
// back to back, in the same Dequeue.
const emptyAnswerWindow = 5 * time.Millisecond

// Prefetching. asynq asks for one task per free worker slot; the combined
// script takes up to prefetchMost tasks (never more than the worker's
// concurrency) and at most prefetchBytes of messages (so a burst of
// 100 KB cio:batch tasks is fetched one at a time, not held eight at
// once), hands asynq the first and keeps the rest, in order, for asynq's
// next calls, which then make no round trip. A kept task is asynq's as if
// its own script had taken it: active, leased, so a crash loses nothing
// (asynq's recoverer retries it once the lease has expired, as any task of
// a crashed worker); Shutdown puts kept tasks back at the head of their
// queue. One handed out more than prefetchRelease after it was taken gets
// its lease renewed first (asynq renews it from then on), or is dropped
// when the recoverer already took it; one kept longer than prefetchDrop
// (its lease expired, e.g. across a Sentinel failover) is not handed out
// but put back in its queue if it is still active (as Shutdown does), so
// it runs again at once rather than after asynq's recoverer's next run; a
// task the recoverer has moved meanwhile is left to it, and the
// recoverer's retry of one put back finds it no longer active: never run
// twice. A task
// that reaches a higher priority queue waits behind at most
// prefetchMost-1 kept ones.
const (
	prefetchMost    = 8
	prefetchBytes   = 64 << 10
	prefetchRelease = 10 * time.Second
	prefetchDrop    = 30 * time.Second // asynq's lease period
)

// Bounding the cio:batch tasks. asynq fetches a task for every free one
// of its Concurrency slots and starts a goroutine for it, but the worker
// delivers only a few cio:batch tasks at once (multiTasksAtOnce, one per
// batch request in flight): at concurrency 50, a queue of cio:batch tasks
// (~100 KB of message each) would leave ~46 of them in memory, waiting for
// a slot. The hook holds the cio:batch tasks taken from Redis and not
// ended yet (kept, or handed to asynq and not yet ended by asynq's own
// script, see finished) to multiMost: past it, its script takes no
// cio:batch task (it stops at one at the head of a queue and tries the
// next), and asynq, told there is no task when no other queue has one,
// asks again after its poll interval, while the other queues' tasks go on
// flowing. A task counts until asynq has taken it out of the active list
// (after its handler returned, whatever the outcome: done, retry,
// archive, or requeued at shutdown), so the cio:batch tasks active in
// Redis for this worker never exceed multiMost either. A cio:batch task
// is recognized by its message, asynq's encoded TaskMessage, whose first
// field is the type (multiMsgPrefix). Should asynq end a task by a
// command the hook does not see, a bounded hook finds it no longer leased
// in Redis (multiCheckEvery) and releases it, so a bound is never stuck.
const (
	// multiExtra is how many cio:batch tasks beyond the worker's slots
	// the hook lets asynq hold: the next ones, ready when a slot frees.
	multiExtra = 2
	// multiCheckEvery is how often a bounded hook looks in Redis for the
	// tasks it holds that have finished without Worker.process.
	multiCheckEvery = time.Second
	// multiWait is how long a dequeue that found nothing to take because
	// of the bound waits for a held task to end before it answers "no
	// task": when one ends within it, the dequeue runs again at once, so
	// the next cio:batch task starts without asynq's idle sleep (10 to
	// 30 ms at the default poll interval) in between. A task of another
	// queue enqueued meanwhile waits at most that long more.
	multiWait = 20 * time.Millisecond
)

// multiMsgPrefix is how asynq's encoded message of a cio:batch task
// starts: field 1 (type, length-delimited: tag 0x0a), its length, the
// type (asynq's internal/proto TaskMessage; TestMultiMsgPrefix checks it
// against a message asynq wrote).
const multiMsgPrefix = "\x0a" + string(rune(len(tasks.TypeBatch))) + tasks.TypeBatch

// dequeueHook is the go-redis hook described above.
type dequeueHook struct {
	queues  []string
	weights map[string]int
	// keys holds each queue's four keys and task key prefix, built once.
	keys map[string]*queueKeys
	// most is the most tasks one run takes (prefetchMost, at most the
	// worker's concurrency).
	most int
	// args recycles the combined script's argument lists.
	args sync.Pool
	// oneQueue: the script tries only the queue asynq asked for (a Cluster
	// client, whose queues' keys are in different slots).
	oneQueue bool

	mu sync.Mutex
	// empty holds the queues found empty by the last combined run that
	// asynq has not asked about yet, until emptyUntil.
	empty      map[string]bool
	emptyUntil time.Time
	// kept holds the prefetched tasks not handed to asynq yet, oldest
	// first; closed is set by requeue (no more prefetching).
	kept   []keptMsg
	closed bool
	// runs counts combined runs, answered the calls answered without Redis
	// (all queues empty), fromKept those answered with a kept task, taken
	// the tasks the runs took (tests).
	runs, answered, fromKept, taken int
	// multiMost bounds the cio:batch tasks held (0: no bound); held maps
	// those handed to asynq and not ended yet to their queue (the
	// kept ones are counted in kept); checked is the last look in Redis
	// for held ones that finished unreleased; multiPeak is the most
	// cio:batch tasks held at once (tests).
	multiMost int
	held      map[string]string
	checked   time.Time
	multiPeak int
	// heldN is len(held), read without h.mu by every command.
	heldN atomic.Int32
	// freed is signalled when a held task ends (see multiWait).
	freed chan struct{}
}

// keptMsg is a prefetched task: its queue, id, message and when taken.
type keptMsg struct {
	queue, id, msg string
	at             time.Time
}

// queueKeys are the keys of one queue the dequeue script takes.
type queueKeys struct {
	pending, paused, active, lease, prefix string
}

func newDequeueHook(weights map[string]int, concurrency, multiMost int) *dequeueHook {
	h := &dequeueHook{weights: weights, empty: map[string]bool{}, keys: map[string]*queueKeys{}, most: max(1, min(prefetchMost, concurrency)),
		multiMost: max(0, multiMost), held: map[string]string{}, freed: make(chan struct{}, 1)}
	for q := range weights {
		h.queues = append(h.queues, q)
		h.keys[q] = &queueKeys{keys.AsynqPending(q), keys.AsynqPaused(q), keys.AsynqActive(q), keys.AsynqLease(q), keys.AsynqTaskPrefix(q)}
	}
	n := len(h.queues)
	h.args.New = func() any { s := make([]any, 0, 7+5*n+1); return &s }
	return h
}

// installDequeueHook adds the hook to rdb when it is a single-node client
// (any number of queues: with one, the hook still prefetches) or a
// Cluster client (one queue per run), holding at most multiMost cio:batch
// tasks (0: any number).
func installDequeueHook(rdb redis.UniversalClient, weights map[string]int, concurrency, multiMost int) *dequeueHook {
	if len(weights) < 1 {
		return nil
	}
	h := newDequeueHook(weights, concurrency, multiMost)
	switch c := rdb.(type) {
	case *redis.Client:
		c.AddHook(h)
	case *redis.ClusterClient:
		h.oneQueue = true
		c.AddHook(h)
	default:
		return nil
	}
	return h
}

func (h *dequeueHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *dequeueHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *dequeueHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	var hook redis.ProcessHook
	hook = func(ctx context.Context, cmd redis.Cmder) error {
		q, lease, ok := h.match(cmd)
		if !ok {
			if h.heldN.Load() == 0 {
				return next(ctx, cmd)
			}
			err := next(ctx, cmd)
			h.finished(cmd)
			return err
		}
		c := cmd.(*redis.Cmd)
		for {
			now := time.Now()
			h.mu.Lock()
			if len(h.kept) == 0 {
				break // with h.mu held
			}
			m := h.kept[0]
			h.kept[0] = keptMsg{}
			h.kept = h.kept[1:]
			h.fromKept++
			multi := isMultiMsg(m.msg)
			if multi {
				h.hold(m.id, m.queue) // counted all along, kept or held
			}
			h.mu.Unlock()
			if age := now.Sub(m.at); age > prefetchDrop {
				// Its lease has expired: put it back in its queue (still
				// active, so not yet taken by asynq's recoverer, whose
				// retry then finds it gone from the active list), to be
				// taken again at once instead of a recoverer run later.
				k := h.keys[m.queue]
				err := requeueScript.Run(ctx, nextClient{next}, []string{k.active, k.lease, k.pending}, k.prefix, m.id).Err()
				if multi {
					h.releaseMulti(m.id)
				}
				if err != nil {
					h.putBack(m)
					return err
				}
				continue
			} else if age > prefetchRelease {
				n, err := releaseScript.Run(ctx, nextClient{next}, []string{h.keys[m.queue].lease}, lease, m.id).Int()
				if multi && (err != nil || n == 0) {
					h.releaseMulti(m.id)
				}
				if err != nil {
					h.putBack(m)
					return err
				}
				if n == 0 {
					continue // the recoverer has it
				}
			}
			c.SetVal(m.msg)
			return nil
		}
		// h.mu is held.
		now := time.Now()
		if h.empty[q] && now.Before(h.emptyUntil) {
			delete(h.empty, q)
			h.answered++
			h.mu.Unlock()
			return redis.Nil
		}
		clear(h.empty)
		h.runs++
		most := h.most
		if h.closed {
			most = 1
		}
		var order []string
		if h.oneQueue {
			order = []string{q}
		} else {
			order = h.order(q)
		}
		multi := h.multiRoom()
		check := multi == 0 && len(h.held) > 0 && now.Sub(h.checked) >= multiCheckEvery
		if check {
			h.checked = now
		}
		h.mu.Unlock()
		if check && h.checkHeld(ctx, next) > 0 {
			h.mu.Lock()
			multi = h.multiRoom()
			h.mu.Unlock()
		}

		// EVALSHA sha numkeys keys... lease most budget prefixes..., and
		// EVAL with the source when Redis does not know the script yet
		// (which loads it), through the rest of the hook chain.
		ap := h.args.Get().(*[]any)
		args := append((*ap)[:0], "evalsha", dequeueAllScript.Hash(), 4*len(order))
		for _, name := range order {
			k := h.keys[name]
			args = append(args, k.pending, k.paused, k.active, k.lease)
		}
		args = append(args, lease, most, prefetchBytes, multi, multiMsgPrefix)
		for _, name := range order {
			args = append(args, h.keys[name].prefix)
		}
		res := redis.NewCmd(ctx, args...)
		err := next(ctx, res)
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			args[0], args[1] = "eval", dequeueAllSrc
			res = redis.NewCmd(ctx, args...)
			err = next(ctx, res)
		}
		clear(args)
		*ap = args[:0]
		h.args.Put(ap)
		if err == redis.Nil && multi == 0 && h.awaitFreed(ctx) {
			// Bounded, and a held task has just ended: again.
			return hook(ctx, cmd)
		}
		if err == redis.Nil {
			h.mu.Lock()
			for _, name := range order[1:] {
				h.empty[name] = true
			}
			h.emptyUntil = time.Now().Add(emptyAnswerWindow)
			h.mu.Unlock()
			c.SetVal(nil)
			return err
		}
		if err != nil {
			c.SetErr(err)
			return err
		}
		first, err := h.keep(res.Val(), order)
		if err != nil {
			c.SetErr(err)
			return err
		}
		c.SetVal(first)
		return nil
	}
	return hook
}

// awaitFreed waits up to multiWait for a held cio:batch task to end and
// reports whether one did.
func (h *dequeueHook) awaitFreed(ctx context.Context) bool {
	t := time.NewTimer(multiWait)
	defer t.Stop()
	select {
	case <-h.freed:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// signalFreed wakes a dequeue waiting in awaitFreed. h.mu is held.
func (h *dequeueHook) signalFreed() {
	select {
	case h.freed <- struct{}{}:
	default:
	}
}

// keep reads a combined run's answer: it returns the first message and
// keeps the others.
func (h *dequeueHook) keep(v any, order []string) (string, error) {
	a, _ := v.([]any)
	qi, _ := a[0].(int64)
	if len(a) < 3 || len(a)%2 == 0 || qi < 1 || int(qi) > len(order) {
		return "", errors.New("worker: dequeue script: unexpected answer")
	}
	queue := order[qi-1]
	firstID, _ := a[1].(string)
	first, _ := a[2].(string)
	now := time.Now()
	h.mu.Lock()
	h.taken += (len(a) - 1) / 2
	if isMultiMsg(first) {
		h.hold(firstID, queue)
	}
	for i := 3; i+1 < len(a); i += 2 {
		id, _ := a[i].(string)
		msg, _ := a[i+1].(string)
		h.kept = append(h.kept, keptMsg{queue: queue, id: id, msg: msg, at: now})
	}
	h.notePeak()
	h.mu.Unlock()
	return first, nil
}

// isMultiMsg reports whether msg, asynq's encoded task message, is a
// cio:batch task's.
func isMultiMsg(msg string) bool { return strings.HasPrefix(msg, multiMsgPrefix) }

// multiRoom returns how many more cio:batch tasks the hook may take (-1:
// any number). h.mu is held.
func (h *dequeueHook) multiRoom() int {
	if h.multiMost <= 0 {
		return -1
	}
	n := len(h.held)
	for _, m := range h.kept {
		if isMultiMsg(m.msg) {
			n++
		}
	}
	return max(0, h.multiMost-n)
}

// hold records the cio:batch task id of queue as handed to asynq. h.mu is
// held.
func (h *dequeueHook) hold(id, queue string) {
	if h.multiMost > 0 {
		h.held[id] = queue
		h.heldN.Store(int32(len(h.held)))
		h.notePeak()
	}
}

// notePeak updates multiPeak. h.mu is held.
func (h *dequeueHook) notePeak() {
	if h.multiMost > 0 {
		h.multiPeak = max(h.multiPeak, h.multiMost-h.multiRoom())
	}
}

// releaseMulti tells the hook that task id is no longer asynq's (a no-op
// for a task it does not hold).
func (h *dequeueHook) releaseMulti(id string) {
	h.mu.Lock()
	if _, ok := h.held[id]; ok {
		h.unhold(id)
	}
	h.mu.Unlock()
}

// unhold forgets held task id and wakes a dequeue waiting for one to end.
// h.mu is held.
func (h *dequeueHook) unhold(id string) {
	delete(h.held, id)
	h.heldN.Store(int32(len(h.held)))
	h.signalFreed()
}

// finished releases the held task that cmd, once run, has taken out of
// its queue's active list: asynq ends every task it dequeued with a
// script of that queue (done, complete, retry, archive, requeue) whose
// keys include the active list and whose arguments include the task id.
func (h *dequeueHook) finished(cmd redis.Cmder) {
	a := cmd.Args()
	if len(a) < 4 || len(a) > 24 {
		return
	}
	if name, _ := a[0].(string); !strings.EqualFold(name, "evalsha") && !strings.EqualFold(name, "eval") {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range a[3:] {
		id, _ := x.(string)
		q, ok := h.held[id]
		if !ok {
			continue
		}
		for _, y := range a[3:] {
			if k, _ := y.(string); k == h.keys[q].active {
				h.unhold(id)
				return
			}
		}
	}
}

// checkHeld releases the held tasks no longer leased in Redis (ended by a
// command finished did not see) and returns how many it released. A Redis
// error leaves them held, to be checked again.
func (h *dequeueHook) checkHeld(ctx context.Context, next redis.ProcessHook) int {
	h.mu.Lock()
	ids := make([]string, 0, len(h.held))
	queues := make([]string, 0, len(h.held))
	for id, q := range h.held {
		ids = append(ids, id)
		queues = append(queues, q)
	}
	h.mu.Unlock()
	n := 0
	for i, id := range ids {
		cmd := redis.NewFloatCmd(ctx, "zscore", h.keys[queues[i]].lease, id)
		if err := next(ctx, cmd); err == redis.Nil {
			h.releaseMulti(id)
			n++
		}
	}
	return n
}

// putBack returns m to the head of the kept tasks.
func (h *dequeueHook) putBack(m keptMsg) {
	h.mu.Lock()
	h.kept = append([]keptMsg{m}, h.kept...)
	h.mu.Unlock()
}

// requeue puts the kept tasks back at the head of their queues, in order,
// and stops prefetching: Shutdown calls it once asynq has stopped asking
// for tasks. A task it cannot put back (Redis gone) stays active and
// leased, and asynq's recoverer retries it.
func (h *dequeueHook) requeue(ctx context.Context, rdb redis.UniversalClient) error {
	h.mu.Lock()
	kept := h.kept
	h.kept, h.closed = nil, true
	h.mu.Unlock()
	byQueue := map[string][]any{}
	for i := len(kept) - 1; i >= 0; i-- { // RPUSH last first: the oldest ends at the head
		m := kept[i]
		if byQueue[m.queue] == nil {
			byQueue[m.queue] = []any{h.keys[m.queue].prefix}
		}
		byQueue[m.queue] = append(byQueue[m.queue], m.id)
	}
	var errs []error
	for q, args := range byQueue {
		k := h.keys[q]
		if err := requeueScript.Run(ctx, rdb, []string{k.active, k.lease, k.pending}, args...).Err(); err != nil {
			errs = append(errs, fmt.Errorf("worker: put prefetched tasks back in queue %q: %w", q, err))
		}
	}
	return errors.Join(errs...)
}

// nextClient runs scripts through the rest of the hook chain (the hook's
// own commands must not come back to it).
type nextClient struct{ next redis.ProcessHook }

func (n nextClient) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return n.run(ctx, "eval", script, keys, args)
}

func (n nextClient) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return n.run(ctx, "evalsha", sha1, keys, args)
}

func (n nextClient) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return n.run(ctx, "eval_ro", script, keys, args)
}

func (n nextClient) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return n.run(ctx, "evalsha_ro", sha1, keys, args)
}

func (n nextClient) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	a := []any{"script", "exists"}
	for _, h := range hashes {
		a = append(a, h)
	}
	cmd := redis.NewBoolSliceCmd(ctx, a...)
	cmd.SetErr(n.next(ctx, cmd))
	return cmd
}

func (n nextClient) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	cmd := redis.NewStringCmd(ctx, "script", "load", script)
	cmd.SetErr(n.next(ctx, cmd))
	return cmd
}

func (n nextClient) run(ctx context.Context, name, script string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, script, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	cmd.SetErr(n.next(ctx, cmd)) // as Client.Process does: next only returns it
	return cmd
}

// match reports whether cmd is asynq's dequeue script for one of the
// worker's queues, and returns the queue and the lease argument.
func (h *dequeueHook) match(cmd redis.Cmder) (queue string, lease any, ok bool) {
	a := cmd.Args()
	if len(a) != 9 {
		return "", nil, false
	}
	if _, isCmd := cmd.(*redis.Cmd); !isCmd {
		return "", nil, false
	}
	name, _ := a[0].(string)
	src, _ := a[1].(string)
	switch {
	case strings.EqualFold(name, "evalsha") && src == asynqDequeueSHA:
	case strings.EqualFold(name, "eval") && sha1Hex(src) == asynqDequeueSHA:
	default:
		return "", nil, false
	}
	pending, _ := a[3].(string)
	for _, q := range h.queues {
		if pending == h.keys[q].pending {
			return q, a[7], true
		}
	}
	return "", nil, false
}

// order returns first, then the other queues in a weighted random order:
// the order asynq would have tried them in after first (the first
// occurrences in a shuffled list holding each queue weight times).
func (h *dequeueHook) order(first string) []string {
	out := make([]string, 1, len(h.queues))
	out[0] = first
	var buf [8]string
	rest := buf[:0]
	total := 0
	for _, q := range h.queues {
		if q != first {
			rest = append(rest, q)
			total += h.weights[q]
		}
	}
	for len(rest) > 0 {
		r := rand.IntN(max(total, 1))
		i := 0
		for ; i < len(rest)-1; i++ {
			r -= h.weights[rest[i]]
			if r < 0 {
				break
			}
		}
		out = append(out, rest[i])
		total -= h.weights[rest[i]]
		rest = append(rest[:i], rest[i+1:]...)
	}
	return out
}

// requeuePrefetched puts the dequeue hook's kept tasks back in their
// queues (Shutdown, once asynq has stopped asking for tasks).
func (w *Worker) requeuePrefetched() {
	if w.dequeue == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.dequeue.requeue(ctx, w.rdb); err != nil {
		w.log.Warn("prefetched tasks stay active until asynq's recoverer retries them", "error", err.Error())
	}
}

// sha1Hex is the SHA-1 of a script's text in hex, as Redis names scripts.
func sha1Hex(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}
