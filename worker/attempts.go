package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/worker/batch"
)

// The attempt log: while a task is retried, each failed attempt (time,
// class, status, attempt number and a short reason) is recorded in a Redis
// hash per task, so that when the task is dead-lettered its record lists
// every attempt, not only the last error asynq keeps.
const (
	// AttemptHistoryCap is how many attempts of one task the log keeps, the
	// newest; older ones are counted (DeadLetter.HistoryOmitted).
	AttemptHistoryCap = 20
	// AttemptHistoryTTL is how long a task's log outlives its latest failed
	// attempt. A task that fails and then succeeds leaves its log to this
	// expiry rather than deleting it, which would cost every success a
	// Redis round trip. A task that waits longer than this between two
	// failures (a worker fleet down for a day) starts a new log.
	AttemptHistoryTTL = 24 * time.Hour
	// DeadLetterHistoryCap is how many history entries a dead letter keeps,
	// the newest (a dead letter retried and failed again many times);
	// older ones are counted (DeadLetter.HistoryOmitted).
	DeadLetterHistoryCap = 100
	// maxReasonBytes bounds the message and error text of a logged attempt.
	maxReasonBytes = 300
)

// attemptsKey is the Redis key of a task's attempt log:
// cioq:attempts:<task id>:<enqueued_at ms> (without the enqueue time when
// it is unknown). The enqueue time tells a task from a later one that
// reuses its id (an idempotency key used again after the first left Redis),
// as the send record's key does. One key per task, in its own Cluster slot.
func attemptsKey(id string, enqueuedAt int64) string { return keys.Attempts(id, enqueuedAt) }

// aloneField is the attempt log's mark that the task is to be delivered
// on its own from now on, not in a Track v2 batch: one of its attempts
// failed in a batch whose failure named no operation
// (batch.ErrUnattributed), so only a request of its own can tell whether
// Customer.io refuses it (see Worker.deliversAlone).
const aloneField = "alone"

// recordAttemptScript appends one entry to an attempt log in one round
// trip: field n counts the attempts recorded, entry i lives in field
// e<i mod cap>, so the hash holds the newest cap entries. KEYS[1] the log,
// ARGV[1] the entry (JSON), ARGV[2] the cap, ARGV[3] the expiry in ms,
// ARGV[4] "1" to set the alone mark too.
var recordAttemptScript = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'e' .. (n % tonumber(ARGV[2])), ARGV[1])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], '` + aloneField + `', '1')
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return n
`)

// recordAttempt appends f to the attempt log at key.
func (s *DeadLetters) recordAttempt(ctx context.Context, key string, f Failure) error {
	return s.recordAttemptMark(ctx, key, f, false)
}

// recordAttemptMark appends f to the attempt log at key; alone also marks
// the task to be delivered outside batches from now on.
func (s *DeadLetters) recordAttemptMark(ctx context.Context, key string, f Failure, alone bool) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	mark := "0"
	if alone {
		mark = "1"
	}
	return recordAttemptScript.Run(ctx, s.rdb, []string{key}, b, AttemptHistoryCap, AttemptHistoryTTL.Milliseconds(), mark).Err()
}

// attempts returns the attempt log at key, oldest first, and how many
// older attempts it no longer holds. A missing log is empty.
func (s *DeadLetters) attempts(ctx context.Context, key string) ([]Failure, int, error) {
	m, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil || len(m) == 0 {
		return nil, 0, err
	}
	n, _ := strconv.Atoi(m["n"])
	kept := min(n, AttemptHistoryCap)
	out := make([]Failure, 0, kept)
	for i := n - kept + 1; i <= n; i++ {
		var f Failure
		if json.Unmarshal([]byte(m["e"+strconv.Itoa(i%AttemptHistoryCap)]), &f) == nil {
			out = append(out, f)
		}
	}
	return out, n - len(out), nil
}

// takeAttempts adds the attempt log at key to d's history (after what d
// carried over) for d's record.
func (s *DeadLetters) takeAttempts(ctx context.Context, key string, d *DeadLetter) error {
	run, omitted, err := s.attempts(ctx, key)
	if err != nil {
		return err
	}
	d.History = append(d.History, run...)
	d.HistoryOmitted += omitted
	return nil
}

// recordAttempt logs a failed attempt of t that is retried (re) in its
// attempt log. A failure in a batch that named no operation
// (batch.ErrUnattributed) also marks the task to be delivered on its own
// from now on. It is best effort: a log that cannot be written costs the
// dead letter's history that entry (and such a task its mark: it is
// batched again, and marked again if the batch fails the same way),
// nothing else.
func (w *Worker) recordAttempt(ctx context.Context, t *Task, re *retryError, msg string, err error) {
	f := Failure{At: w.cfg.Now(), Class: string(re.class), Status: re.status,
		Message: shortReason(msg), Error: shortReason(err.Error()), Attempt: t.Retried + 1}
	// The task's context may be at its deadline (a timeout is a common
	// transient failure); the entry must still be written.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	alone := errors.Is(err, batch.ErrUnattributed)
	if werr := w.dlq.recordAttemptMark(wctx, attemptsKey(t.ID, enqueuedAt(t)), f, alone); werr != nil {
		w.log.Debug("could not record the attempt in the task's history", "type", t.Type, "task_id", t.ID, "error", werr.Error())
	}
	w.statusAttempt(ctx, t, f)
}

func enqueuedAt(t *Task) int64 {
	if t.Envelope == nil {
		return 0
	}
	return t.Envelope.EnqueuedAt
}

// shortReason truncates s to maxReasonBytes on a rune boundary.
func shortReason(s string) string {
	if len(s) <= maxReasonBytes {
		return s
	}
	cut := maxReasonBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
