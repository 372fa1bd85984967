package worker

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
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
// its lease), so asynq finds the task as if its own script had taken it.
// Only a script whose text is asynq v0.26's dequeue script is replaced
// (matched by its SHA-1): an asynq whose script differs runs unchanged.
// The keys of different queues are in different Cluster slots, so the
// hook is installed on a single-node (or Sentinel) client only.

// asynqDequeueScript is asynq v0.26's dequeue script, byte for byte
// (internal/rdb/rdb.go, dequeueCmd). KEYS: pending, paused, active, lease
// of one queue; ARGV: lease expiry (unix s), task key prefix.
const asynqDequeueScript = `
if redis.call("EXISTS", KEYS[2]) == 0 then
	local id = redis.call("RPOPLPUSH", KEYS[1], KEYS[3])
	if id then
		local key = ARGV[2] .. id
		redis.call("HSET", key, "state", "active")
		redis.call("HDEL", key, "pending_since")
		redis.call("ZADD", KEYS[4], ARGV[1], id)
		return redis.call("HGET", key, "msg")
	end
end
return nil`

// dequeueAllScript is asynqDequeueScript over several queues in order.
// KEYS: pending, paused, active, lease of each queue (4 per queue). ARGV:
// lease expiry (unix s), then the task key prefix of each queue.
var dequeueAllScript = redis.NewScript(dequeueAllSrc)

const dequeueAllSrc = `
for i = 1, #KEYS / 4 do
  local k = (i - 1) * 4
  if redis.call("EXISTS", KEYS[k + 2]) == 0 then
    local id = redis.call("RPOPLPUSH", KEYS[k + 1], KEYS[k + 3])
    if id then
      local key = ARGV[i + 1] .. id
      redis.call("HSET", key, "state", "active")
      redis.call("HDEL", key, "pending_since")
      redis.call("ZADD", KEYS[k + 4], ARGV[1], id)
      return redis.call("HGET", key, "msg")
    end
  end
end
return nil
`

var asynqDequeueSHA = redis.NewScript(asynqDequeueScript).Hash()

// emptyAnswerWindow bounds how long after finding every queue empty the
// hook answers asynq's calls for the other queues itself: asynq makes them
// back to back, in the same Dequeue.
const emptyAnswerWindow = 5 * time.Millisecond

// dequeueHook is the go-redis hook described above.
type dequeueHook struct {
	queues  []string
	weights map[string]int
	// keys holds each queue's four keys and task key prefix, built once.
	keys map[string]*queueKeys
	// args recycles the combined script's argument lists.
	args sync.Pool

	mu sync.Mutex
	// empty holds the queues found empty by the last combined run that
	// asynq has not asked about yet, until emptyUntil.
	empty      map[string]bool
	emptyUntil time.Time
	// runs counts combined runs, answered the calls answered without Redis
	// (tests).
	runs, answered int
}

// queueKeys are the keys of one queue the dequeue script takes.
type queueKeys struct {
	pending, paused, active, lease, prefix string
}

func newDequeueHook(weights map[string]int) *dequeueHook {
	h := &dequeueHook{weights: weights, empty: map[string]bool{}, keys: map[string]*queueKeys{}}
	for q := range weights {
		h.queues = append(h.queues, q)
		h.keys[q] = &queueKeys{keys.AsynqPending(q), keys.AsynqPaused(q), keys.AsynqActive(q), keys.AsynqLease(q), keys.AsynqTaskPrefix(q)}
	}
	n := len(h.queues)
	h.args.New = func() any { s := make([]any, 0, 3+5*n+1); return &s }
	return h
}

// installDequeueHook adds the hook to rdb when it is a single-node client
// and the worker has more than one queue (asynq makes one call then).
func installDequeueHook(rdb redis.UniversalClient, weights map[string]int) *dequeueHook {
	c, ok := rdb.(*redis.Client)
	if !ok || len(weights) < 2 {
		return nil
	}
	h := newDequeueHook(weights)
	c.AddHook(h)
	return h
}

func (h *dequeueHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *dequeueHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *dequeueHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		q, lease, ok := h.match(cmd)
		if !ok {
			return next(ctx, cmd)
		}
		c := cmd.(*redis.Cmd)
		now := time.Now()
		h.mu.Lock()
		if h.empty[q] && now.Before(h.emptyUntil) {
			delete(h.empty, q)
			h.answered++
			h.mu.Unlock()
			return redis.Nil
		}
		clear(h.empty)
		h.runs++
		order := h.order(q)
		h.mu.Unlock()

		// EVALSHA sha numkeys keys... lease prefixes..., and EVAL with the
		// source when Redis does not know the script yet (which loads
		// it), through the rest of the hook chain.
		ap := h.args.Get().(*[]any)
		args := append((*ap)[:0], "evalsha", dequeueAllScript.Hash(), 4*len(order))
		for _, name := range order {
			k := h.keys[name]
			args = append(args, k.pending, k.paused, k.active, k.lease)
		}
		args = append(args, lease)
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
		*ap = args
		h.args.Put(ap)
		v := res.Val()
		if err == redis.Nil {
			h.mu.Lock()
			for _, name := range order[1:] {
				h.empty[name] = true
			}
			h.emptyUntil = time.Now().Add(emptyAnswerWindow)
			h.mu.Unlock()
		}
		c.SetVal(v)
		return err
	}
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
	case strings.EqualFold(name, "eval") && src == asynqDequeueScript:
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
