package worker

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/redisack"
	"github.com/cioq/cioq/tasks"
)

// DeadLetterClass is why a task was dead-lettered. (Not to be confused
// with customerio.Class, what a failed call means: a permanent
// customerio.Class is one of the reasons for DeadLetterPermanent.)
type DeadLetterClass string

// Dead-letter classes.
const (
	// DeadLetterPermanent: Customer.io refused the task with a permanent
	// 4xx (400, 403, 404, 413, 422, ...), or the worker refused it
	// (asynq.SkipRetry); retrying would fail the same way.
	DeadLetterPermanent DeadLetterClass = "permanent"
	// DeadLetterExpired: the task's expires_at passed before it could be
	// sent; it was never sent.
	DeadLetterExpired DeadLetterClass = "expired"
	// DeadLetterInvalid: the task's bytes did not decode, or its payload
	// did not validate; Customer.io was never called.
	DeadLetterInvalid DeadLetterClass = "invalid"
	// DeadLetterExhausted: transient failures used up the retry budget and
	// the retry window, or asynq archived the task itself (e.g. after its
	// worker crashed on the last attempt).
	DeadLetterExhausted DeadLetterClass = "exhausted"
	// DeadLetterConfig: the task names a workspace the worker has no
	// configuration for (a mistyped name, or a workspace never added), and
	// its retry window passed while it was kept; Customer.io was never
	// called. Fix the name at the source, or configure the workspace, then
	// retry it.
	DeadLetterConfig DeadLetterClass = "config"
)

// Failure is one failed attempt in a dead letter's history.
type Failure struct {
	// At is when the attempt failed.
	At time.Time `json:"at"`
	// Class is the RetryReason of an attempt that was retried
	// (RetryTransient, RetryThrottled, RetryAuth), the DeadLetterClass of
	// the one that dead-lettered the task.
	Class string `json:"class"`
	// Status is Customer.io's HTTP status (0 if none: a network error, an
	// invalid payload).
	Status int `json:"status,omitempty"`
	// Message is Customer.io's message, Error the error text (neither holds
	// payload data or credentials).
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
	// Attempt is the attempt's number: one more than the transient failures
	// (and crashes) before it, as DeadLetter.Attempts counts them. Attempts
	// that did not spend the retry budget (throttled, auth) share the number
	// of the attempt after them; the transient failures retried after the
	// budget ran out, inside the retry window, go on counting past
	// AttemptsAllowed (for a task with a cioq budget: see AttemptsAllowed).
	Attempt int `json:"attempt,omitempty"`
}

// DeadLetter is cioq's own record of a dead-lettered task. Unlike asynq's
// archive it is never trimmed or expired: only Delete, Purge and Retry
// remove it.
type DeadLetter struct {
	// ID is the asynq task id.
	ID string
	// Type is the task type, e.g. "cio:send_email".
	Type string
	// Queue is the asynq queue the task was in.
	Queue string
	// Workspace is the task's workspace ("" = default), when it decoded.
	Workspace string
	// Payload is the task's bytes, exactly as enqueued.
	Payload []byte
	// Attempts is how many attempts spent the task's retry budget, the
	// last one included (asynq's retried+1, at most AttemptsAllowed for a
	// task with a cioq budget). Attempts refused with 429 or
	// for credentials (401, none configured) do not spend it, nor do waits
	// for a rate limit or a person's earlier task, nor the retries of a
	// transient failure past the budget while the retry window is open;
	// History lists them all. See AttemptsAllowed.
	Attempts int
	// MaxRetry is the task's retry budget (tasks.HeaderRetryBudget, or
	// asynq's MaxRetry for a task enqueued without it), which Retry gives the
	// new task again.
	MaxRetry int
	// Class, Status, Message and Error describe the latest failure: the
	// dead-letter class, the HTTP status (0 if none), Customer.io's message
	// and the error text (which never holds payload data or credentials).
	Class   DeadLetterClass
	Status  int
	Message string
	Error   string
	// FirstFailedAt is when the task was first dead-lettered; LastFailedAt
	// when it was last (a retried dead letter that fails again keeps both).
	FirstFailedAt, LastFailedAt time.Time
	// History lists every failed attempt, oldest first: the attempts that
	// were retried (from the task's attempt log) and the one that
	// dead-lettered the task. A dead letter retried with Retry that fails
	// again carries its earlier history over, so its history holds both.
	History []Failure
	// HistoryOmitted counts the failed attempts History leaves out: the
	// oldest of a task's attempts beyond AttemptHistoryCap, and the oldest
	// entries beyond DeadLetterHistoryCap.
	HistoryOmitted int
	// RetriedFrom is the id of the dead letter this task was retried from
	// (Retry enqueues a new task), "" if none.
	RetriedFrom string

	// allowed is AttemptsAllowed as the worker wrote it (0: not written,
	// in records of earlier versions).
	allowed int
}

// AttemptsAllowed is how many attempts the task's retry budget allows, the
// same unit as Attempts. For a task with a cioq budget
// (tasks.HeaderRetryBudget: every task today's producer enqueues) it is
// MaxRetry+1: MaxRetry transient failures are retried. For a task without
// one (enqueued by an older producer, or directly with asynq), asynq's
// MaxRetry is the budget and asynq archives the task by itself on its next
// failure of any kind once its retried count has reached it, so the worker
// dead-letters a transient failure on attempt MaxRetry (once the retry
// window has passed) and keeps asynq's last retry in reserve: it is
// MaxRetry, at least 1, and a worker crash during an attempt (which asynq
// counts) can make Attempts one more. A record written by an earlier
// version of the worker counts the second way.
func (d *DeadLetter) AttemptsAllowed() int {
	if d.allowed > 0 {
		return d.allowed
	}
	return max(d.MaxRetry, 1)
}

// Filter selects dead letters for List and Purge. Zero fields match
// everything.
type Filter struct {
	// Queue matches an asynq queue by its name, or a logical queue
	// (critical, default, bulk) by every shard of it (CIOQ_QUEUE_SHARDS).
	Queue string
	Type  string
	Class DeadLetterClass
	// Since and Until bound LastFailedAt: Since inclusive, Until exclusive.
	Since, Until time.Time
	// Limit caps the items List returns (0 = 100, at most 10,000).
	Limit int
	// Cursor continues a previous List (its Page.Next).
	Cursor string
}

// Page is one page of List.
type Page struct {
	Items []*DeadLetter
	// Next is the cursor of the following page; "" when there is none.
	Next string
}

// Enqueuer is what DeadLetters.Retry needs to re-enqueue a task;
// *asynq.Client satisfies it.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// ErrNotFound is returned when no dead letter has the given id.
var ErrNotFound = errors.New("worker: dead letter not found")

// HeaderRetryWindowStart is the asynq task header DeadLetters.Retry sets:
// the unix-millisecond time the retried task's retry window starts from,
// instead of the envelope's enqueued_at.
const HeaderRetryWindowStart = "cioq-retry-window-start"

// Headers DeadLetters.Retry sets on the new task so that, if it is
// dead-lettered again, its record keeps the earlier failures: the id it was
// retried from, the first failure time (unix ms) and the earlier history
// (a JSON array of Failure).
const (
	HeaderRetriedFrom    = "cioq-dlq-retried-from"
	HeaderFirstFailed    = "cioq-dlq-first-failed"
	HeaderFailureHistory = "cioq-dlq-history"
	// HeaderHistoryOmitted is the dead letter's HistoryOmitted (decimal).
	HeaderHistoryOmitted = "cioq-dlq-history-omitted"
)

// carriedOver fills d's RetriedFrom, FirstFailedAt and History from the
// headers DeadLetters.Retry put on the task; headers of other tasks leave d
// unchanged.
func carriedOver(d *DeadLetter, headers map[string]string) {
	from := headers[HeaderRetriedFrom]
	if from == "" {
		return
	}
	d.RetriedFrom = from
	if ms, err := strconv.ParseInt(headers[HeaderFirstFailed], 10, 64); err == nil && ms > 0 {
		d.FirstFailedAt = time.UnixMilli(ms)
	}
	var hist []Failure
	if json.Unmarshal([]byte(headers[HeaderFailureHistory]), &hist) == nil {
		d.History = hist
	}
	d.HistoryOmitted, _ = strconv.Atoi(headers[HeaderHistoryOmitted])
}

// DeadLetters is the dead-letter store: a Redis hash per task
// (cioq:{dlq}:t:<id>), a list of its failures (cioq:{dlq}:h:<id>) and a
// sorted set indexing ids by last failure time (cioq:{dlq}:index). The {dlq}
// hash tag keeps them in one Redis Cluster slot, so every write can be one
// MULTI/EXEC transaction, and a record is either complete or absent.
type DeadLetters struct {
	rdb       redis.UniversalClient
	inspector *asynq.Inspector
	now       func() time.Time
	acks      redisack.Settings // SetReplicas
	shards    int               // SetShards; 0 or 1: none
	// reconcileHook, when set (tests), runs after each chunk of a queue's
	// archive Reconcile went through, with how many ids it went through.
	reconcileHook func(queue string, done int)
}

// NewDeadLetters returns a store on rdb. inspector (optional) is used to
// delete asynq's archive entry when a dead letter is retried or deleted.
func NewDeadLetters(rdb redis.UniversalClient, inspector *asynq.Inspector) *DeadLetters {
	return &DeadLetters{rdb: rdb, inspector: inspector, now: time.Now}
}

// Add records a dead letter. d.History, if set, holds the failed attempts
// before d's own failure (carried over by Retry, then the task's retried
// attempts), oldest first, and d.HistoryOmitted how many of them were left
// out: they are written ahead of d's own failure. When a record with the
// same id exists (the task was dead-lettered again), its FirstFailedAt is
// kept, the other fields are replaced, and the entries of d.History newer
// than its last one are appended before d's failure. The history keeps the
// newest DeadLetterHistoryCap entries and counts the others.
func (s *DeadLetters) Add(ctx context.Context, d *DeadLetter) error {
	if d.ID == "" {
		return errors.New("worker: dead letter without id")
	}
	ctx = redisack.With(ctx, s.acks)
	if d.LastFailedAt.IsZero() {
		d.LastFailedAt = s.now()
	}
	if d.FirstFailedAt.IsZero() {
		d.FirstFailedAt = d.LastFailedAt
	}
	f := Failure{At: d.LastFailedAt, Class: string(d.Class), Status: d.Status, Message: d.Message, Error: d.Error, Attempt: d.Attempts}
	fb, err := json.Marshal(f)
	if err != nil {
		return err
	}
	key, hkey := keys.DeadLetter(d.ID), keys.DeadLetterHistory(d.ID)
	// What an existing record of the same id holds already.
	var llen *redis.IntCmd
	var last, prevOmitted *redis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		llen = p.LLen(ctx, hkey)
		last = p.LIndex(ctx, hkey, -1)
		prevOmitted = p.HGet(ctx, key, "history_omitted")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("worker: record dead letter: %w", err)
	}
	var since time.Time
	if llen.Val() > 0 {
		var lf Failure
		if json.Unmarshal([]byte(last.Val()), &lf) == nil {
			since = lf.At
		}
	}
	entries := make([]any, 0, len(d.History)+1)
	for _, h := range d.History {
		if !since.IsZero() && !h.At.After(since) {
			continue // in the record already
		}
		hb, err := json.Marshal(h)
		if err != nil {
			return err
		}
		entries = append(entries, hb)
	}
	entries = append(entries, fb)
	omitted := d.HistoryOmitted
	if n, _ := strconv.Atoi(prevOmitted.Val()); n > omitted {
		omitted = n
	}
	trim := int(llen.Val()) + len(entries) - DeadLetterHistoryCap
	if trim > 0 {
		omitted += trim
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key,
			"id", d.ID, "type", d.Type, "queue", d.Queue, "workspace", d.Workspace,
			"payload", d.Payload, "attempts", d.Attempts, "max_retry", d.MaxRetry,
			"class", string(d.Class), "status", d.Status, "message", d.Message, "error", d.Error,
			"last_failed", d.LastFailedAt.UnixMilli(), "retried_from", d.RetriedFrom,
			"history_omitted", omitted, "attempts_allowed", d.allowed)
		p.HSetNX(ctx, key, "first_failed", d.FirstFailedAt.UnixMilli())
		p.RPush(ctx, hkey, entries...)
		if trim > 0 {
			p.LTrim(ctx, hkey, -DeadLetterHistoryCap, -1)
		}
		p.ZAdd(ctx, keys.DeadLetterIndex, redis.Z{Score: float64(d.LastFailedAt.UnixMilli()), Member: d.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("worker: record dead letter: %w", err)
	}
	return nil
}

// Get returns the dead letter with the given id, or ErrNotFound.
func (s *DeadLetters) Get(ctx context.Context, id string) (*DeadLetter, error) {
	var h *redis.MapStringStringCmd
	var l *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, keys.DeadLetter(id))
		l = p.LRange(ctx, keys.DeadLetterHistory(id), 0, -1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(h.Val()) == 0 {
		return nil, ErrNotFound
	}
	return decodeDeadLetter(h.Val(), l.Val()), nil
}

func decodeDeadLetter(m map[string]string, hist []string) *DeadLetter {
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	ms := func(s string) time.Time {
		n, _ := strconv.ParseInt(s, 10, 64)
		if n == 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	d := &DeadLetter{
		ID: m["id"], Type: m["type"], Queue: m["queue"], Workspace: m["workspace"],
		Payload: []byte(m["payload"]), Attempts: atoi(m["attempts"]), MaxRetry: atoi(m["max_retry"]),
		Class: DeadLetterClass(m["class"]), Status: atoi(m["status"]), Message: m["message"], Error: m["error"],
		FirstFailedAt: ms(m["first_failed"]), LastFailedAt: ms(m["last_failed"]),
		RetriedFrom: m["retried_from"], HistoryOmitted: atoi(m["history_omitted"]),
		allowed: atoi(m["attempts_allowed"]),
	}
	for _, s := range hist {
		var f Failure
		if json.Unmarshal([]byte(s), &f) == nil {
			d.History = append(d.History, f)
		}
	}
	return d
}

// Count returns the number of dead letters.
func (s *DeadLetters) Count(ctx context.Context) (int64, error) {
	return s.rdb.ZCard(ctx, keys.DeadLetterIndex).Result()
}

// Has reports which of ids have a dead-letter record.
func (s *DeadLetters) has(ctx context.Context, ids []string) ([]bool, error) {
	cmds := make([]*redis.IntCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Exists(ctx, keys.DeadLetter(id))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	for i, c := range cmds {
		out[i] = c.Val() == 1
	}
	return out, nil
}

// List returns dead letters matching f, oldest last failure first, one page
// at a time: pass the returned Page.Next as f.Cursor to continue.
func (s *DeadLetters) List(ctx context.Context, f Filter) (*Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > 10000 {
		limit = 10000
	}
	// Start rank: after the cursor, and not before Since.
	var start int64
	if f.Cursor != "" {
		scoreStr, id, ok := strings.Cut(f.Cursor, ":")
		_, err := strconv.ParseInt(scoreStr, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("worker: invalid cursor")
		}
		rank, err := s.rdb.ZRank(ctx, keys.DeadLetterIndex, id).Result()
		switch {
		case err == nil:
			start = rank + 1
		case errors.Is(err, redis.Nil):
			// The cursor's item is gone: continue after where it stood,
			// i.e. after every item of a lower score and every item of
			// the same score whose id sorts before it (Redis orders equal
			// scores by member, bytewise).
			n, err := s.rdb.ZCount(ctx, keys.DeadLetterIndex, "-inf", "("+scoreStr).Result()
			if err != nil {
				return nil, err
			}
			same, err := s.rdb.ZRangeByScore(ctx, keys.DeadLetterIndex, &redis.ZRangeBy{Min: scoreStr, Max: scoreStr}).Result()
			if err != nil {
				return nil, err
			}
			for _, m := range same {
				if m < id {
					n++
				}
			}
			start = n
		default:
			return nil, err
		}
	}
	if !f.Since.IsZero() {
		n, err := s.rdb.ZCount(ctx, keys.DeadLetterIndex, "-inf", "("+strconv.FormatInt(f.Since.UnixMilli(), 10)).Result()
		if err != nil {
			return nil, err
		}
		start = max(start, n)
	}
	page := &Page{}
	chunk := int64(max(limit, 200))
	for {
		zs, err := s.rdb.ZRangeWithScores(ctx, keys.DeadLetterIndex, start, start+chunk-1).Result()
		if err != nil {
			return nil, err
		}
		if len(zs) == 0 {
			return page, nil
		}
		hs := make([]*redis.MapStringStringCmd, len(zs))
		ls := make([]*redis.StringSliceCmd, len(zs))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range zs {
				id := z.Member.(string)
				hs[i] = p.HGetAll(ctx, keys.DeadLetter(id))
				ls[i] = p.LRange(ctx, keys.DeadLetterHistory(id), 0, -1)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, z := range zs {
			if !f.Until.IsZero() && int64(z.Score) >= f.Until.UnixMilli() {
				return page, nil
			}
			if len(page.Items) == limit {
				last := page.Items[len(page.Items)-1]
				page.Next = fmt.Sprintf("%d:%s", last.LastFailedAt.UnixMilli(), last.ID)
				return page, nil
			}
			m := hs[i].Val()
			if len(m) == 0 {
				continue // deleted meanwhile
			}
			if !f.queueMatches(m["queue"]) || (f.Type != "" && m["type"] != f.Type) || (f.Class != "" && m["class"] != string(f.Class)) {
				continue
			}
			page.Items = append(page.Items, decodeDeadLetter(m, ls[i].Val()))
		}
		start += int64(len(zs))
	}
}

// Delete removes the dead letter with the given id, and asynq's archive
// entry of the task, so the reconciler does not copy it back. A task of that
// id that is not archived (pending, scheduled, retrying or running: it is
// still to be delivered) is left alone.
func (s *DeadLetters) Delete(ctx context.Context, id string) error {
	d, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := s.deleteArchived(ctx, d); err != nil {
		return err
	}
	return s.remove(ctx, id)
}

func (s *DeadLetters) remove(ctx context.Context, id string) error {
	ctx = redisack.With(ctx, s.acks)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys.DeadLetter(id), keys.DeadLetterHistory(id))
		p.ZRem(ctx, keys.DeadLetterIndex, id)
		return nil
	})
	return err
}

// deleteArchived deletes d's task from asynq's archive, if it is archived
// there (see deleteArchivedTask).
func (s *DeadLetters) deleteArchived(ctx context.Context, d *DeadLetter) error {
	if s.inspector == nil || d.Queue == "" {
		return nil
	}
	if _, err := s.deleteArchivedTask(ctx, d.Queue, d.ID); err != nil {
		return fmt.Errorf("worker: delete archived task: %w", err)
	}
	return nil
}

// deleteArchivedScript deletes an asynq task only if it is archived, as
// asynq's own delete does (the entry in the archive, the task's unique
// lock if it holds it, its hash): asynq's Inspector.DeleteTask deletes a
// pending, scheduled or retrying task just as well, which would drop a
// task still to be delivered. KEYS: the task's hash, the queue's archive.
// ARGV: the task id. Returns 1 if it deleted the task.
var deleteArchivedScript = redis.NewScript(`
if redis.call("HGET", KEYS[1], "state") ~= "archived" then return 0 end
redis.call("ZREM", KEYS[2], ARGV[1])
local unique_key = redis.call("HGET", KEYS[1], "unique_key")
if unique_key and unique_key ~= "" and redis.call("GET", unique_key) == ARGV[1] then
	redis.call("DEL", unique_key)
end
redis.call("DEL", KEYS[1])
return 1
`)

// deleteArchivedTask deletes task id of queue q from asynq's archive, and
// reports whether it was there; a task in any other state is left alone.
func (s *DeadLetters) deleteArchivedTask(ctx context.Context, q, id string) (bool, error) {
	n, err := deleteArchivedScript.Run(ctx, s.rdb, []string{keys.AsynqTask(q, id), keys.AsynqArchived(q)}, id).Int()
	return n == 1, err
}

// removeSameScript removes a dead letter (its hash, history and index
// entry) only if it holds the given payload. KEYS: the record, its
// history, the index. ARGV: the id, the payload. Returns 1 if it did.
var removeSameScript = redis.NewScript(`
if redis.call("HGET", KEYS[1], "payload") ~= ARGV[2] then return 0 end
redis.call("DEL", KEYS[1], KEYS[2])
redis.call("ZREM", KEYS[3], ARGV[1])
return 1
`)

// removeSame removes the dead letter of task id if it is the record of the
// task with this payload (not of an earlier task that used the same
// idempotency key, whose envelope differs), and reports whether it did.
func (s *DeadLetters) removeSame(ctx context.Context, id string, payload []byte) (bool, error) {
	n, err := removeSameScript.Run(ctx, s.rdb,
		[]string{keys.DeadLetter(id), keys.DeadLetterHistory(id), keys.DeadLetterIndex}, id, payload).Int()
	return n == 1, err
}

// hasSame reports whether the store holds a dead letter of task id with
// this payload.
func (s *DeadLetters) hasSame(ctx context.Context, id string, payload []byte) (bool, error) {
	p, err := s.rdb.HGet(ctx, keys.DeadLetter(id), "payload").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil && p == string(payload), err
}

// Purge deletes every dead letter matching f (Limit and Cursor are
// ignored) and returns how many it deleted. It walks the index once, in
// chunks, reading only the fields the filter needs, so purging a few
// records among many costs one pass.
func (s *DeadLetters) Purge(ctx context.Context, f Filter) (int, error) {
	const chunk = 500
	var start int64
	if !f.Since.IsZero() {
		n, err := s.rdb.ZCount(ctx, keys.DeadLetterIndex, "-inf", "("+strconv.FormatInt(f.Since.UnixMilli(), 10)).Result()
		if err != nil {
			return 0, err
		}
		start = n
	}
	deleted := 0
	for {
		zs, err := s.rdb.ZRangeWithScores(ctx, keys.DeadLetterIndex, start, start+chunk-1).Result()
		if err != nil || len(zs) == 0 {
			return deleted, err
		}
		fields := make([]*redis.SliceCmd, len(zs))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range zs {
				fields[i] = p.HMGet(ctx, keys.DeadLetter(z.Member.(string)), "queue", "type", "class")
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		kept := int64(0)
		for i, z := range zs {
			if !f.Until.IsZero() && int64(z.Score) >= f.Until.UnixMilli() {
				return deleted, nil
			}
			v := fields[i].Val()
			str := func(j int) string { x, _ := v[j].(string); return x }
			if !f.queueMatches(str(0)) || (f.Type != "" && str(1) != f.Type) || (f.Class != "" && str(2) != string(f.Class)) {
				kept++
				continue
			}
			d := &DeadLetter{ID: z.Member.(string), Queue: str(0)}
			if err := s.deleteArchived(ctx, d); err != nil {
				return deleted, err
			}
			if err := s.remove(ctx, d.ID); err != nil {
				return deleted, err
			}
			deleted++
		}
		// Deleted items left the index: the next chunk starts after the
		// ones this chunk kept.
		start += kept
	}
}

// RetryOption changes how DeadLetters.Retry re-enqueues a dead letter.
type RetryOption func(*retryOptions)

type retryOptions struct {
	// setExpiry: rewrite the expiry, to now+expiresIn, or none when noExpiry.
	setExpiry bool
	expiresIn time.Duration
	noExpiry  bool
}

// RetryExpiresIn gives the new task the expiry now+d, replacing the one it
// had (a task without one gets it too). It is how an expired dead letter is
// retried as a send that is still worth making for d. d must be positive.
func RetryExpiresIn(d time.Duration) RetryOption {
	return func(o *retryOptions) { o.setExpiry, o.expiresIn, o.noExpiry = true, d, false }
}

// RetryNoExpiry removes the new task's expiry: it is delivered however late.
func RetryNoExpiry() RetryOption {
	return func(o *retryOptions) { o.setExpiry, o.expiresIn, o.noExpiry = true, 0, true }
}

// ExpiredError is what Retry returns, without enqueueing anything, for a
// dead letter whose task has expired (class expired, or an expires_at
// already past whatever the class): retried as it is, the task would be
// dead-lettered again at once. Retry it with RetryExpiresIn or
// RetryNoExpiry, or delete it.
type ExpiredError struct {
	// ID is the dead letter's id, Class its class.
	ID    string
	Class DeadLetterClass
	// ExpiresAt is the task's expiry (zero when its payload has none that
	// can be read).
	ExpiresAt time.Time
}

func (e *ExpiredError) Error() string {
	at := ""
	if !e.ExpiresAt.IsZero() {
		at = " at " + e.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("worker: dead letter %s: its task expired%s (class %s); retried as it is it would be dead-lettered again at once: give it a new expiry or none", e.ID, at, e.Class)
}

// AlreadyRetriedError is what Retry returns when the dead letter was
// retried before: its new task (TaskID, derived from the dead letter) is in
// Redis already, so nothing is enqueued again. Such a dead letter was left
// behind by a retry that enqueued its task and then could not remove it (a
// Redis error, a process interrupted), or is being retried by someone else
// at the same moment. Retry removes it (and asynq's archive entry) as the
// retry that enqueued the task would have; Err, when not nil, says why it
// could not.
type AlreadyRetriedError struct {
	// ID is the dead letter's id, TaskID the id of the task it was retried
	// as, Queue and Type that task's queue and type.
	ID, TaskID, Queue, Type string
	// Err is why the dead letter could not be removed; nil when it was.
	Err error
}

func (e *AlreadyRetriedError) Error() string {
	msg := fmt.Sprintf("worker: dead letter %s was already retried as task %s", e.ID, e.TaskID)
	if e.Err != nil {
		msg += "; the dead letter could not be removed: " + e.Err.Error()
	}
	return msg
}

func (e *AlreadyRetriedError) Unwrap() error { return e.Err }

// RetryTaskID is the id of the task DeadLetters.Retry enqueues for dead
// letter d: "r-" and 32 lower-case base32 characters, the first 160 bits of
// SHA-256 over d's id and the time of its latest failure. It is the same
// for every retry of the same record, so two retries (one after an
// interrupted retry, or two at once) enqueue one task: asynq refuses a
// second task with the same id while the first is in Redis, and a
// transactional send's record (keyed by task id and enqueue time, which a
// retry keeps) stops a second send after that. A record written again (its
// retried task failed again, under a new id) gets a new one.
func RetryTaskID(d *DeadLetter) string {
	sum := sha256.Sum256([]byte("cioq-dlq-retry:" + d.ID + ":" + strconv.FormatInt(d.LastFailedAt.UnixMilli(), 10)))
	return "r-" + retryIDEncoding.EncodeToString(sum[:20])
}

var retryIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Retry re-enqueues the dead letter's task as a new task (the id
// RetryTaskID derives from the record, the same type, payload and queue, a
// full retry budget and a new retry window), and only once that succeeded
// deletes the dead letter and asynq's archive entry. It returns the new
// task's info. The new task carries the dead letter's history in its
// headers: if it is dead-lettered again, its record keeps every earlier
// failure and the first failure time.
//
// Retrying is idempotent: when the task of an earlier retry of the same
// record is still in Redis, nothing is enqueued and Retry returns an
// *AlreadyRetriedError, having removed the dead letter (the earlier retry
// could not). So `cioq dlq retry` run again after an interrupt, or by two
// operators at once, sends a message once.
//
// A dead letter whose task has expired is refused with an *ExpiredError
// unless opts give it a new expiry (RetryExpiresIn) or none
// (RetryNoExpiry); either rewrites the expires_at of the task's envelope
// (nothing else), so it is refused for a payload that does not decode.
//
// A task with a per-person sequence number (producer.WithOrdering) gets a
// new one, at the end of its person's sequence: it is delivered after the
// person's tasks enqueued before the retry (see Ordering).
func (s *DeadLetters) Retry(ctx context.Context, id string, enq Enqueuer, opts ...RetryOption) (*asynq.TaskInfo, error) {
	var o retryOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.setExpiry && !o.noExpiry && o.expiresIn <= 0 {
		return nil, errors.New("worker: RetryExpiresIn wants a positive duration")
	}
	d, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	payload, err := s.retryPayload(d, o)
	if err != nil {
		return nil, err
	}
	hist, err := json.Marshal(d.History)
	if err != nil {
		return nil, err
	}
	headers := map[string]string{
		HeaderRetryWindowStart: strconv.FormatInt(s.now().UnixMilli(), 10),
		HeaderRetriedFrom:      d.ID,
		HeaderFirstFailed:      strconv.FormatInt(d.FirstFailedAt.UnixMilli(), 10),
		HeaderFailureHistory:   string(hist),
	}
	if d.HistoryOmitted > 0 {
		headers[HeaderHistoryOmitted] = strconv.Itoa(d.HistoryOmitted)
	}
	// The new task gets its type's full budget and timeout (asynq's own
	// defaults, 25 retries and 30 min, are not cioq's), the budget in its
	// headers as the producer sends it (asynq never archives it by itself).
	maxRetry, timeout := d.MaxRetry, tasks.DefaultTimeout
	if spec, ok := tasks.Lookup(d.Type); ok {
		if maxRetry <= 0 {
			maxRetry = spec.Defaults.MaxRetry
		}
		if spec.Defaults.Timeout > 0 {
			timeout = spec.Defaults.Timeout
		}
	}
	if maxRetry <= 0 {
		maxRetry = tasks.DefaultMaxRetry
	}
	taskID := RetryTaskID(d)
	headers[tasks.HeaderRetryBudget] = strconv.Itoa(maxRetry)
	aopts := []asynq.Option{asynq.TaskID(taskID), asynq.MaxRetry(tasks.AsynqMaxRetry), asynq.Timeout(timeout)}
	rd := *d // d, in the queue the retried task goes to (SetShards)
	rd.Queue = s.retryQueue(d, taskID)
	if rd.Queue != "" {
		aopts = append(aopts, asynq.Queue(rd.Queue))
	}
	ctx = redisack.With(ctx, s.acks)
	payload, void, err := s.restamp(ctx, &rd, payload, taskID) // a person's task: a new place in the person's order
	if err != nil {
		return nil, err
	}
	info, err := enq.EnqueueContext(ctx, asynq.NewTaskWithHeaders(d.Type, payload, headers), aopts...)
	if err != nil {
		if u := redisack.Unconfirmed(ctx); u != nil {
			err = u // asynq flattened it into text
		}
	}
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		void() // the earlier retry's task holds the person's place
		// An earlier retry of this record enqueued its task and did not
		// get to remove the record: finish that retry's work.
		q := rd.Queue
		if q == "" {
			q = "default" // asynq's
		}
		return nil, &AlreadyRetriedError{ID: d.ID, TaskID: taskID, Queue: q, Type: d.Type, Err: s.removeRetried(ctx, d)}
	}
	if err != nil {
		void()
		return nil, fmt.Errorf("worker: re-enqueue dead letter: %w", err)
	}
	return info, s.removeRetried(ctx, d)
}

// removeRetried deletes a retried dead letter and asynq's archive entry of
// its old task.
func (s *DeadLetters) removeRetried(ctx context.Context, d *DeadLetter) error {
	if err := s.deleteArchived(ctx, d); err != nil {
		return err
	}
	return s.remove(ctx, d.ID)
}

// retryPayload returns the bytes the retried task is enqueued with: the dead
// letter's, or with the expiry o asks for; and refuses an expired task that
// o gives no new expiry.
func (s *DeadLetters) retryPayload(d *DeadLetter, o retryOptions) ([]byte, error) {
	env, _, derr := tasks.Decode(d.Type, d.Payload)
	if o.setExpiry {
		if env == nil {
			return nil, fmt.Errorf("worker: dead letter %s: cannot change the expiry of a task whose bytes do not decode: %w", d.ID, derr)
		}
		e := *env
		e.ExpiresAt = 0
		if !o.noExpiry {
			e.ExpiresAt = s.now().Add(o.expiresIn).Unix()
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("worker: dead letter %s: %w", d.ID, err)
		}
		return b, nil
	}
	var exp time.Time
	if env != nil {
		exp, _ = env.Expiry()
	}
	if d.Class == DeadLetterExpired || (env != nil && env.Expired(s.now())) {
		return nil, &ExpiredError{ID: d.ID, Class: d.Class, ExpiresAt: exp}
	}
	return d.Payload, nil
}
