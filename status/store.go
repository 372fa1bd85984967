package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
)

// Defaults of Options' zero fields, and the caps that bound what a task's
// timeline may hold.
const (
	// DefaultTTL is how long a task's timeline and its delivery's events
	// are kept after their latest change.
	DefaultTTL = 30 * 24 * time.Hour
	// EntryCap is how many of cioq's own entries (failed attempts, the
	// acceptance, the dead letter) a task's record keeps, the newest;
	// older ones are counted.
	EntryCap = 24
	// EventCap is how many events of one delivery are kept; later ones are
	// counted per metric, and the one deciding the state is kept whatever
	// the count.
	EventCap = 32
	// OtherCap is how many events naming no delivery are kept per
	// workspace (keys.StatusOther).
	OtherCap = 1000
)

// Metrics is told about outcomes as they are recorded.
// internal/ops.MessageMetrics satisfies it. Label values come from bounded
// sets: configured workspaces, task types, template ids, the metric names
// Outcome returns.
type Metrics interface {
	// MessageOutcome counts one outcome of a message: "accepted",
	// "dead_lettered" (the worker), or a reported metric (sent,
	// delivered, bounced, failed, ... or "other").
	MessageOutcome(workspace, taskType, template, outcome string)
	// MessageDelivered observes the time from Customer.io accepting a send
	// to its "delivered" event.
	MessageDelivered(workspace, taskType string, d time.Duration)
}

// Options configure a Store. The zero value is the documented default.
type Options struct {
	// TTL is how long a timeline is kept after its latest change (default
	// DefaultTTL, 30 days).
	TTL time.Duration
	// Metrics, when set, counts outcomes.
	Metrics Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store writes and reads tasks' timelines in Redis: the worker's entries
// (failed attempts, the acceptance with its delivery id, the dead letter)
// and Customer.io's reports (reporting webhooks, the fallback poll). It is
// safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	ttl     time.Duration
	metrics Metrics
	now     func() time.Time
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, o Options) *Store {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{rdb: rdb, ttl: o.TTL, metrics: o.Metrics, now: o.Now}
}

// TTL is how long the store keeps a timeline after its latest change.
func (s *Store) TTL() time.Duration { return s.ttl }

// Task names the task an entry is about and what the worker knows of it.
type Task struct {
	// ID is the asynq task id.
	ID string
	// EnqueuedAt is the envelope's enqueue time (unix ms; 0 unknown): a
	// record of another enqueue time belongs to an earlier task with the
	// same id (an idempotency key used again) and is replaced.
	EnqueuedAt int64
	// Workspace, Type and Queue are the task's.
	Workspace, Type, Queue string
	// Template is the transactional message id or trigger name, or
	// "broadcast:<id>" for a broadcast trigger.
	Template string
	// TraceID is the W3C trace id the task carries ("" if none).
	TraceID string
}

// Entry is one line of a task's timeline.
type Entry struct {
	// At is when it happened.
	At time.Time `json:"at"`
	// Kind is what happened: enqueued, attempt (a failed attempt),
	// accepted, dead_lettered, completed, or a metric Customer.io reported
	// (sent, delivered, opened, clicked, bounced, failed, ...).
	Kind string `json:"kind"`
	// Source is who says so: cioq (the worker), asynq (its task record),
	// webhook (a reporting webhook) or poll (GET /v1/messages/{id}).
	Source string `json:"source"`
	// Attempt, Class and Status describe a failed attempt or the dead
	// letter: the attempt number, the retry or dead-letter class and the
	// HTTP status (0 if none).
	Attempt int    `json:"attempt,omitempty"`
	Class   string `json:"class,omitempty"`
	Status  int    `json:"status,omitempty"`
	// Message is Customer.io's message of a failed attempt or the reason
	// of a failure, bounce or drop it reported (email addresses in it are
	// redacted unless identifiers are shown).
	Message string `json:"message,omitempty"`
	// Delivery is the delivery reference of the acceptance
	// ("delivery:<id>", "trigger:<id>"), or, on a broadcast trigger's
	// timeline, the delivery of the message a reported event is about.
	Delivery string `json:"delivery,omitempty"`
	// ObjectType is what a reported event happened to (email, push, ...).
	ObjectType string `json:"object_type,omitempty"`
	// Recipient, CustomerID and Href are a reported event's person data:
	// empty unless identifiers are shown (LookupOptions.ShowIdentifiers).
	Recipient  string `json:"recipient,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
	Href       string `json:"href,omitempty"`
}

// taskScript writes a task's record, replacing a record of another
// enqueue time. KEYS[1] the record; ARGV[1] the enqueue time, ARGV[2] the
// TTL in ms, ARGV[3] the entry cap, ARGV[4] an entry ("" = none), then
// field, value pairs (empty values are not written).
var taskScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'enq')
if cur and cur ~= ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'enq', ARGV[1])
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if ARGV[4] ~= '' then
  local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
  redis.call('HSET', KEYS[1], 'e' .. (n % tonumber(ARGV[3])), ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// writeTask writes t's facts, the entry e (none when e.Kind is ""), and
// the extra field, value pairs.
func (s *Store) writeTask(ctx context.Context, t Task, e Entry, extra ...any) error {
	tkeys, args, err := s.taskArgs(t, e, extra...)
	if err != nil {
		return err
	}
	return taskScript.Run(ctx, s.rdb, tkeys, args...).Err()
}

// taskArgs are taskScript's keys and arguments.
func (s *Store) taskArgs(t Task, e Entry, extra ...any) ([]string, []any, error) {
	if t.ID == "" {
		return nil, nil, errors.New("status: a task id is required")
	}
	var eb []byte
	if e.Kind != "" {
		var err error
		if eb, err = json.Marshal(e); err != nil {
			return nil, nil, err
		}
	}
	args := append([]any{t.EnqueuedAt, s.ttl.Milliseconds(), EntryCap, eb,
		"ws", t.Workspace, "type", t.Type, "q", t.Queue, "tmpl", t.Template, "tr", t.TraceID}, extra...)
	return []string{keys.StatusTask(t.ID)}, args, nil
}

// Attempt records a failed attempt of t that will be retried (Kind
// "attempt"; At, Attempt, Class, Status and Message from e).
func (s *Store) Attempt(ctx context.Context, t Task, e Entry) error {
	e.Kind, e.Source = KindAttempt, "cioq"
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Message = clip(e.Message)
	return s.writeTask(ctx, t, e)
}

// DeadLettered records that t was dead-lettered (Class the dead-letter
// class, Status and Message the last failure's).
func (s *Store) DeadLettered(ctx context.Context, t Task, e Entry) error {
	e.Kind, e.Source = KindDeadLettered, "cioq"
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Message = clip(e.Message)
	err := s.writeTask(ctx, t, e)
	if err == nil && s.metrics != nil {
		s.metrics.MessageOutcome(keys.Workspace(t.Workspace), t.Type, t.Template, KindDeadLettered)
	}
	return err
}

// DeadLetterRemoved records that t's dead letter was removed again (Kind
// KindDeadLetterRemoved; Message says why): asynq retried the task on its
// own after the worker's late decision had dead-lettered it, or it was
// delivered after all. The dead_lettered entries before it stay in the
// timeline but no longer decide its state, and the outcome
// "dead_letter_removed" is counted (cioq_message_outcomes_total only
// grows: subtract it from dead_lettered).
func (s *Store) DeadLetterRemoved(ctx context.Context, t Task, e Entry) error {
	e.Kind, e.Source = KindDeadLetterRemoved, "cioq"
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Message = clip(e.Message)
	err := s.writeTask(ctx, t, e)
	if err == nil && s.metrics != nil {
		s.metrics.MessageOutcome(keys.Workspace(t.Workspace), t.Type, t.Template, KindDeadLetterRemoved)
	}
	return err
}

// Accepted records that Customer.io accepted t on attempt (from 1) with
// the delivery reference ref ("delivery:<id>", "trigger:<id>"): the task's
// entry, and the link from the delivery to the task that reporting
// webhooks and the fallback poll follow. With pollAfter > 0 the delivery
// is queued for the fallback poll that long from now.
func (s *Store) Accepted(ctx context.Context, t Task, ref string, attempt int, pollAfter time.Duration) error {
	now := s.now()
	tkeys, args, err := s.taskArgs(t, Entry{}, "d", ref, "acc", now.UnixMilli(), "att", attempt)
	if err != nil {
		return err
	}
	// One round trip: the task's record (a script, sent whole: a pipeline
	// cannot fall back from EVALSHA), the delivery's link, the poll queue.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		taskScript.Eval(ctx, p, tkeys, args...)
		if ref != "" {
			dk := keys.StatusDelivery(t.Workspace, ref)
			p.HSet(ctx, dk, "task", t.ID, "type", t.Type, "tmpl", t.Template, "acc", now.UnixMilli())
			p.PExpire(ctx, dk, s.ttl)
			if pollAfter > 0 {
				p.ZAdd(ctx, keys.StatusPending(t.Workspace), redis.Z{Score: float64(now.Add(pollAfter).UnixMilli()), Member: ref})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.metrics != nil {
		s.metrics.MessageOutcome(keys.Workspace(t.Workspace), t.Type, t.Template, KindAccepted)
	}
	return nil
}

// eventScript adds one event to a delivery's record unless its id is
// there already, and keeps the highest ranked event as the state.
// KEYS[1] the record; ARGV[1] the event's field, ARGV[2] the event,
// ARGV[3] the metric, ARGV[4] its rank, ARGV[5] its time, ARGV[6] the cap,
// ARGV[7] the TTL in ms, ARGV[8] the recipient, ARGV[9] the customer id.
// The state event is s (its id's field in sid), its rank sr, its time sa.
// Returns {added (1/0), {task, type, tmpl, acc}}.
var eventScript = redis.NewScript(`
local link = redis.call('HMGET', KEYS[1], 'task', 'type', 'tmpl', 'acc')
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {0, link} end
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if n < tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'n', 1)
else
  redis.call('HINCRBY', KEYS[1], 'x', 1)
  redis.call('HINCRBY', KEYS[1], 'c:' .. ARGV[3], 1)
end
local sr = tonumber(redis.call('HGET', KEYS[1], 'sr') or '0')
local sa = tonumber(redis.call('HGET', KEYS[1], 'sa') or '0')
local r, a = tonumber(ARGV[4]), tonumber(ARGV[5])
if r > sr or (r == sr and a >= sa) then
  redis.call('HSET', KEYS[1], 's', ARGV[2], 'sid', ARGV[1], 'sr', ARGV[4], 'sa', ARGV[5])
end
if ARGV[8] ~= '' then redis.call('HSETNX', KEYS[1], 'to', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSETNX', KEYS[1], 'cid', ARGV[9]) end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {1, link}
`)

// encodeEvent is an event as a delivery's record keeps it (under
// ev:<id>): a JSON array [metric, at, object type, source, reason, href,
// delivery (a broadcast message's, on its trigger's record)]
// without its empty tail, short enough for Redis's compact hash encoding
// (values of at most 64 bytes) when there is no reason or link. The
// recipient and customer id are kept once per delivery.
func encodeEvent(ev Event) []byte {
	src := "w"
	if ev.Source == "poll" {
		src = "p"
	}
	a := []any{ev.Metric, ev.At, ev.ObjectType, src, ev.Reason, ev.Href, ev.Delivery}
	for len(a) > 2 {
		if s, _ := a[len(a)-1].(string); s != "" {
			break
		}
		a = a[:len(a)-1]
	}
	b, _ := json.Marshal(a)
	return b
}

// decodeEvent reads encodeEvent's bytes of the event id.
func decodeEvent(id string, b []byte) (Event, bool) {
	var a []json.RawMessage
	if json.Unmarshal(b, &a) != nil || len(a) < 2 {
		return Event{}, false
	}
	ev := Event{ID: id}
	str := func(i int) string {
		var s string
		if i < len(a) {
			_ = json.Unmarshal(a[i], &s)
		}
		return s
	}
	ev.Metric, ev.ObjectType, ev.Reason, ev.Href, ev.Delivery = str(0), str(2), str(4), str(5), str(6)
	_ = json.Unmarshal(a[1], &ev.At)
	ev.Source = "webhook"
	if str(3) == "p" {
		ev.Source = "poll"
	}
	return ev, ev.Metric != ""
}

// Link is the task a delivery belongs to, as the worker recorded it at
// acceptance; zero when it has not (yet).
type Link struct {
	TaskID, Type, Template string
	AcceptedAt             time.Time
}

// RecordEvent adds ev to what is known of the delivery ref of workspace
// ws and counts its outcome (with the time from acceptance to a
// "delivered"). added is false when an event with its id was recorded
// before (nothing changed, nothing counted). Events are kept whether or
// not the delivery's task is known yet: a webhook may arrive before the
// worker recorded the acceptance.
func (s *Store) RecordEvent(ctx context.Context, ws, ref string, ev Event) (added bool, link Link, err error) {
	res, err := eventScript.Run(ctx, s.rdb, []string{keys.StatusDelivery(ws, ref)},
		"ev:"+ev.ID, encodeEvent(ev), ev.Metric, rank(ev.Metric), ev.At, EventCap, s.ttl.Milliseconds(),
		ev.Recipient, ev.CustomerID).Slice()
	if err != nil {
		return false, Link{}, err
	}
	if len(res) == 2 {
		added = res[0] == int64(1)
		if l, ok := res[1].([]any); ok && len(l) == 4 {
			str := func(v any) string { s, _ := v.(string); return s }
			link = Link{TaskID: str(l[0]), Type: str(l[1]), Template: str(l[2])}
			if ms, err := strconv.ParseInt(str(l[3]), 10, 64); err == nil && ms > 0 {
				link.AcceptedAt = time.UnixMilli(ms)
			}
		}
	}
	if added {
		typ, tmpl := link.Type, link.Template
		if typ == "" {
			typ = ev.typeHint
		}
		if typ == "" {
			typ = OutcomeOther
		}
		if tmpl == "" {
			tmpl = ev.tmplHint
		}
		s.outcome(ws, typ, tmpl, Outcome(ev.Metric))
		if ev.Metric == MetricDelivered && !link.AcceptedAt.IsZero() && s.metrics != nil {
			s.metrics.MessageDelivered(keys.Workspace(ws), typ, max(0, time.Unix(ev.At, 0).Sub(link.AcceptedAt)))
		}
	}
	if added && rank(ev.Metric) >= finalRank {
		// A final state: the fallback poll need not ask about it.
		if err := s.rdb.ZRem(ctx, keys.StatusPending(ws), ref).Err(); err != nil {
			return added, link, err
		}
	}
	return added, link, nil
}

// recordOther keeps an event that names no delivery: deduplicated by its
// id (or, without one, by its bytes) and pushed onto the workspace's list.
func (s *Store) recordOther(ctx context.Context, ws string, id string, body []byte) (added bool, err error) {
	sum := sha256.Sum256([]byte(id))
	if id == "" {
		sum = sha256.Sum256(body)
	}
	ok, err := s.rdb.SetNX(ctx, keys.StatusEventSeen(ws, hex.EncodeToString(sum[:16])), "1", s.ttl).Result()
	if err != nil || !ok {
		return false, err
	}
	if len(body) > 4096 {
		body = body[:0:0]
		body = append(body, `{"truncated":true}`...)
	}
	k := keys.StatusOther(ws)
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, k, body)
		p.LTrim(ctx, k, 0, OtherCap-1)
		p.PExpire(ctx, k, s.ttl)
		return nil
	})
	return err == nil, err
}

// Other returns up to n of the newest events of workspace ws that named no
// delivery, as received (they may hold identifiers: show them only where
// payloads are shown).
func (s *Store) Other(ctx context.Context, ws string, n int) ([]json.RawMessage, error) {
	vals, err := s.rdb.LRange(ctx, keys.StatusOther(ws), 0, int64(n)-1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		out[i] = json.RawMessage(v)
	}
	return out, nil
}

// claimScript takes up to ARGV[2] entries of a pending set due at ARGV[1]
// and moves them to ARGV[3], so concurrent pollers take different ones.
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due
`)

// ClaimDue returns up to n deliveries of workspace ws that the fallback
// poll should read now, and postpones them by next (another process
// polling meanwhile takes others).
func (s *Store) ClaimDue(ctx context.Context, ws string, n int, next time.Duration) ([]string, error) {
	now := s.now()
	return claimScript.Run(ctx, s.rdb, []string{keys.StatusPending(ws)},
		now.UnixMilli(), n, now.Add(next).UnixMilli()).StringSlice()
}

// DonePolling removes a delivery from the fallback poll's queue.
func (s *Store) DonePolling(ctx context.Context, ws, ref string) error {
	return s.rdb.ZRem(ctx, keys.StatusPending(ws), ref).Err()
}

// DeliveryLink returns the task a delivery belongs to (zero if unknown).
func (s *Store) DeliveryLink(ctx context.Context, ws, ref string) (Link, error) {
	v, err := s.rdb.HMGet(ctx, keys.StatusDelivery(ws, ref), "task", "type", "tmpl", "acc").Result()
	if err != nil {
		return Link{}, err
	}
	str := func(x any) string { s, _ := x.(string); return s }
	l := Link{TaskID: str(v[0]), Type: str(v[1]), Template: str(v[2])}
	if ms, err := strconv.ParseInt(str(v[3]), 10, 64); err == nil && ms > 0 {
		l.AcceptedAt = time.UnixMilli(ms)
	}
	return l, nil
}
