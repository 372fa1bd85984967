package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// Tasks asynq can neither process nor recover.
//
// asynq's dequeue script moves a task id from its queue's pending list to
// the active list, gives it a lease (asynq:{q}:lease, expiry in unix
// seconds, 30 s, renewed by the processing server's heartbeat) and returns
// the task's message; the server then decodes it. Two kinds of entries get
// stuck there for good:
//
//   - a message that does not decode (corrupt bytes in asynq:{q}:t:<id>'s
//     msg field): the dequeue fails after the id was moved, so no handler
//     ever runs and nothing renews the lease. asynq's recoverer lists the
//     expired leases of a queue and decodes each message; the first that
//     does not decode fails the whole listing, so the recoverer does
//     nothing for that queue at all, every minute, and crashed workers'
//     healthy tasks in it are not recovered either.
//   - an id without task data (pushed to a pending list with no
//     asynq:{q}:t:<id>, or whose hash lost its msg): the dequeue script
//     moves it to active, creates a hash holding only its state, finds no
//     message and reports an empty queue; the recoverer skips ids without a
//     message.
//
// The worker's check (one process at a time, every StuckCheckInterval)
// takes such an entry once its lease has been expired for a lease period
// (the margin asynq's recoverer gives too), moves it atomically out of
// active and the lease set into a holding hash in the same Cluster slot
// (cioq:{q}:stuck), records it in the dead-letter store as class invalid
// with what could be read of it and the reason, and only then drops it from
// the holding hash. An entry whose lease is live is never touched, and one
// whose message decodes is left to asynq's recoverer. An id in active with
// no lease at all (which asynq's own scripts never leave behind) is given an
// expired lease once it has been seen so for a lease period, so asynq's
// recoverer or this check takes it on the next pass.

// asynqLease is asynq's task lease (its internal rdb.LeaseDuration).
const asynqLease = 30 * time.Second

const (
	// stuckBatch is the most expired leases one pass reads per queue.
	stuckBatch = 500
)

// Reasons of StuckTask, the values of cioq_stuck_tasks_total's reason label.
const (
	stuckUndecodable = "undecodable"
	stuckNoTaskData  = "no_task_data"
)

// stuckCheck is the Worker's state of the check.
type stuckCheck struct {
	mu sync.Mutex
	// noLease maps queue+"\n"+id of an active id without a lease to when
	// this process first saw it so.
	noLease map[string]time.Time
}

func (w *Worker) stuckLoop() {
	defer w.reconcile.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-w.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, err := w.checkStuckLocked(ctx); err != nil && !errors.Is(err, context.Canceled) {
			w.log.Warn("stuck-task check failed", "error", err.Error())
		}
		cancel()
		t.Reset(w.cfg.StuckCheckInterval)
	}
}

// unlockScript deletes a lock only if it still holds our token.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
`)

// checkStuckLocked runs checkStuck if no other process is running it
// (a Redis lock, released at the end, expiring by itself after 5 minutes
// should its holder die).
func (w *Worker) checkStuckLocked(ctx context.Context) (int, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	ok, err := w.rdb.SetNX(ctx, keys.StuckLock, token, 5*time.Minute).Result()
	if err != nil || !ok {
		return 0, err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = unlockScript.Run(uctx, w.rdb, []string{keys.StuckLock}, token).Err()
	}()
	return w.checkStuck(ctx)
}

// checkStuck makes one pass over the worker's queues and every other
// queue asynq knows of, and returns how many entries it moved to the
// dead-letter store.
func (w *Worker) checkStuck(ctx context.Context) (int, error) {
	moved := 0
	var errs []error
	for _, q := range w.knownQueues(ctx) {
		n, err := w.checkStuckQueue(ctx, q)
		moved += n
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %q: %w", q, err))
		}
	}
	return moved, errors.Join(errs...)
}

// claimStuckScript moves one stuck entry out of asynq's active list, lease
// set and task hash into the holding hash, if it is still as the caller saw
// it: its lease expired at or before the cutoff, and its message the same
// (or still absent).
//
// KEYS: active, lease, task hash, holding hash. ARGV: id, cutoff (unix s),
// "m" + message or "-". Returns 1 if it moved the entry, else 0.
var claimStuckScript = redis.NewScript(`
local score = redis.call("ZSCORE", KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
local msg = redis.call("HGET", KEYS[3], "msg")
local seen
if msg then seen = "m" .. msg else seen = "-" end
if seen ~= ARGV[3] then return 0 end
redis.call("HSET", KEYS[4], ARGV[1], seen)
redis.call("LREM", KEYS[1], 0, ARGV[1])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("DEL", KEYS[3])
return 1
`)

// expireLeaselessScript gives an id that is in the active list without a
// lease an expired one (score 0), so asynq's recoverer or the stuck check
// takes it. KEYS: active, lease. ARGV: id. Returns 1 if it did.
var expireLeaselessScript = redis.NewScript(`
if redis.call("ZSCORE", KEYS[2], ARGV[1]) then return 0 end
if not redis.call("LPOS", KEYS[1], ARGV[1]) then return 0 end
redis.call("ZADD", KEYS[2], 0, ARGV[1])
return 1
`)

func (w *Worker) checkStuckQueue(ctx context.Context, q string) (int, error) {
	// Entries a previous pass took out but could not record yet.
	moved, err := w.recordHeld(ctx, q)
	if err != nil {
		return moved, err
	}
	if err := w.expireLeaseless(ctx, q); err != nil && ctx.Err() == nil {
		// Not a reason to skip the expired leases below.
		w.log.Warn("stuck-task check: could not look for active tasks without a lease", "queue", q, "error", err.Error())
	}
	cutoff := time.Now().Add(-asynqLease).Unix()
	ids, err := w.rdb.ZRangeByScore(ctx, keys.AsynqLease(q), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(cutoff, 10), Count: stuckBatch}).Result()
	if err != nil || len(ids) == 0 {
		return moved, err
	}
	msgs := make([]*redis.StringCmd, len(ids))
	_, err = w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			msgs[i] = p.HGet(ctx, keys.AsynqTask(q, id), "msg")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return moved, err
	}
	claimed := false
	for i, id := range ids {
		seen := "-"
		if msg, err := msgs[i].Result(); err == nil {
			if decodeErr(msg) == nil {
				continue // a healthy task whose worker died: asynq's recoverer retries it
			}
			seen = "m" + msg
		} else if !errors.Is(err, redis.Nil) {
			return moved, err
		}
		n, err := claimStuckScript.Run(ctx, w.rdb,
			[]string{keys.AsynqActive(q), keys.AsynqLease(q), keys.AsynqTask(q, id), keys.StuckHold(q)},
			id, cutoff, seen).Int()
		if err != nil {
			return moved, err
		}
		claimed = claimed || n == 1
	}
	if claimed {
		n, err := w.recordHeld(ctx, q)
		moved += n
		return moved, err
	}
	return moved, nil
}

// expireLeaseless handles active ids without a lease: seen so for a lease
// period by this process, they get an expired lease.
func (w *Worker) expireLeaseless(ctx context.Context, q string) error {
	active, err := w.rdb.LRange(ctx, keys.AsynqActive(q), 0, -1).Result()
	if err != nil {
		return err
	}
	scores := make([]*redis.FloatCmd, len(active))
	_, err = w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range active {
			scores[i] = p.ZScore(ctx, keys.AsynqLease(q), id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	now := time.Now()
	w.stuck.mu.Lock()
	defer w.stuck.mu.Unlock()
	if w.stuck.noLease == nil {
		w.stuck.noLease = map[string]time.Time{}
	}
	still := map[string]bool{}
	for i, id := range active {
		if !errors.Is(scores[i].Err(), redis.Nil) {
			continue
		}
		k := q + "\n" + id
		still[k] = true
		first, ok := w.stuck.noLease[k]
		if !ok {
			w.stuck.noLease[k] = now
			continue
		}
		if now.Sub(first) < asynqLease {
			continue
		}
		if err := expireLeaselessScript.Run(ctx, w.rdb, []string{keys.AsynqActive(q), keys.AsynqLease(q)}, id).Err(); err != nil {
			return err
		}
		delete(w.stuck.noLease, k)
		w.log.Warn("task in asynq's active list without a lease: given an expired one so it is recovered", "queue", q, "task_id", id)
	}
	for k := range w.stuck.noLease {
		if len(k) > len(q) && k[:len(q)+1] == q+"\n" && !still[k] {
			delete(w.stuck.noLease, k)
		}
	}
	return nil
}

// recordHeld writes a dead letter for every entry of q's holding hash and
// drops the entry once it is written.
func (w *Worker) recordHeld(ctx context.Context, q string) (int, error) {
	held, err := w.rdb.HGetAll(ctx, keys.StuckHold(q)).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for id, v := range held {
		d, reason := stuckDeadLetter(q, id, v)
		if err := w.dlq.Add(ctx, d); err != nil {
			return n, err
		}
		if err := w.rdb.HDel(ctx, keys.StuckHold(q), id).Err(); err != nil {
			return n, err
		}
		n++
		typ := d.Type
		if _, ok := tasks.Lookup(typ); !ok {
			typ = "unknown" // a metric label: only known type names
		}
		w.obs.DeadLettered(typ, DeadLetterInvalid)
		w.obs.StuckTask(q, reason)
		w.log.Warn("task stuck in asynq's active state moved to the dead-letter store",
			"queue", q, "task_id", id, "type", d.Type, "class", string(DeadLetterInvalid), "reason", d.Error)
	}
	return n, nil
}

// stuckDeadLetter builds the dead letter of a held entry: held is "m" + the
// asynq message's bytes, or "-". It keeps what could be read: the task's
// type, payload (and so its workspace) and retry counts when the message's
// leading fields parse, else the message's bytes as the payload.
func stuckDeadLetter(q, id, held string) (*DeadLetter, string) {
	d := &DeadLetter{ID: id, Queue: q, Class: DeadLetterInvalid}
	if held == "" || held[0] != 'm' {
		d.Error = "stuck in asynq's active state: the task id has no task data (" + keys.AsynqTask(q, id) +
			" holds no message), so asynq can neither run nor recover it"
		return d, stuckNoTaskData
	}
	raw := []byte(held[1:])
	derr := decodeErr(held[1:])
	if derr == nil {
		derr = errors.New("decoded when checked again")
	}
	d.Error = "stuck in asynq's active state: its asynq message (" + strconv.Itoa(len(raw)) +
		" bytes) does not decode (" + derr.Error() + "), so asynq can neither run nor recover it"
	s := salvage(raw)
	d.Type, d.Attempts, d.MaxRetry = s.typ, s.retried+1, s.retry
	if s.retry >= tasks.AsynqMaxRetry {
		// The budget was in the task's headers, which are not read here:
		// unknown, so Retry gives the new task its type's budget.
		d.MaxRetry = 0
	}
	if s.typ != "" && s.payload != nil {
		d.Payload = s.payload
		if env, _, err := tasks.Decode(s.typ, s.payload); err == nil {
			d.Workspace = env.Workspace
		}
		d.Error += "; type and payload were read from the start of the message"
	} else {
		d.Payload = raw
		d.Error += "; the payload holds the message's bytes"
	}
	return d, stuckUndecodable
}

// taskMessageType is asynq's TaskMessage protobuf type, found in the
// global registry where asynq's generated code registers it, so the check
// decodes a message exactly as asynq does without importing its internals.
var taskMessageType, taskMessageTypeErr = protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("asynq.TaskMessage"))

// decodeErr returns why asynq cannot decode msg, or nil when it can.
func decodeErr(msg string) error {
	if taskMessageTypeErr != nil {
		// asynq changed its schema: judge by the leading fields instead.
		if salvage([]byte(msg)).ok {
			return nil
		}
		return errors.New("not an asynq task message")
	}
	return proto.Unmarshal([]byte(msg), taskMessageType.New().Interface())
}

// salvaged is what could be read of a message, field by field from its
// start (asynq.proto: type = 1, payload = 2, retry = 5, retried = 6),
// stopping at the first field that does not parse.
type salvaged struct {
	typ            string
	payload        []byte
	retry, retried int
	// ok reports that the whole message parsed.
	ok bool
}

func salvage(b []byte) salvaged {
	var s salvaged
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s
		}
		m := protowire.ConsumeFieldValue(num, wt, b[n:])
		if m < 0 {
			return s
		}
		v := b[n : n+m]
		switch {
		case num == 1 && wt == protowire.BytesType:
			if t, k := protowire.ConsumeBytes(v); k >= 0 && utf8.Valid(t) {
				s.typ = string(t)
			}
		case num == 2 && wt == protowire.BytesType:
			if p, k := protowire.ConsumeBytes(v); k >= 0 {
				s.payload = append([]byte{}, p...)
			}
		case num == 5 && wt == protowire.VarintType:
			if x, k := protowire.ConsumeVarint(v); k >= 0 {
				s.retry = int(int32(x))
			}
		case num == 6 && wt == protowire.VarintType:
			if x, k := protowire.ConsumeVarint(v); k >= 0 {
				s.retried = int(int32(x))
			}
		}
		b = b[n+m:]
	}
	s.ok = true
	return s
}
