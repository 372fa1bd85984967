package status

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// ErrNotFound is Lookup's error for a task Redis holds nothing of: never
// enqueued, or gone (a task of another API delivered and past asynq's
// retention; a timeline past its TTL).
var ErrNotFound = errors.New("status: no such task in Redis")

// States a Timeline can have besides the metrics Customer.io reports
// (sent, delivered, opened, clicked, bounced, failed, ...) and the kinds
// accepted, dead_lettered and completed.
const (
	StatePending   = "pending"
	StateScheduled = "scheduled"
	StateActive    = "active"
	StateRetrying  = "retrying"
)

// Timeline is everything Redis holds about one task's fate, oldest first.
type Timeline struct {
	// TaskID is the asynq task id.
	TaskID string `json:"task_id"`
	// Type, Queue, Workspace and Template describe the task ("" unknown).
	Type      string `json:"type,omitempty"`
	Queue     string `json:"queue,omitempty"`
	Workspace string `json:"workspace,omitempty"`
	Template  string `json:"template,omitempty"`
	// TraceID is the W3C trace id the task carries ("" if none).
	TraceID string `json:"trace_id,omitempty"`
	// State is where the task is: pending, scheduled, active, retrying (in
	// asynq), accepted (by Customer.io, nothing reported yet), a reported
	// metric (sent, delivered, opened, clicked, converted, unsubscribed,
	// spammed, bounced, dropped, failed, undeliverable, ...),
	// dead_lettered, or completed (a task of an API that reports nothing
	// further, accepted by Customer.io). A broadcast trigger's is the
	// most serious outcome among the messages it sent (see Counts), or
	// processed (the fallback poll) before any is reported.
	State string `json:"state"`
	// Final is true once the state is delivered (or further), a failure, a
	// dead letter or completed.
	Final bool `json:"final"`
	// Reason is why it failed: Customer.io's reason of a bounce, failure or
	// drop, or the dead letter's message.
	Reason string `json:"reason,omitempty"`
	// Delivery is Customer.io's delivery reference ("delivery:<id>",
	// "trigger:<id>") once accepted.
	Delivery string `json:"delivery,omitempty"`
	// EnqueuedAt and AcceptedAt are when the task was enqueued and when
	// Customer.io accepted it (zero when unknown or not yet).
	EnqueuedAt time.Time `json:"enqueued_at,omitzero"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	// NextAttemptAt is when asynq runs the task next (retrying, scheduled).
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// Counts are the reported events per metric (a broadcast trigger's
	// deliveries counted together).
	Counts map[string]int `json:"counts,omitempty"`
	// Entries is the timeline, oldest first.
	Entries []Entry `json:"entries"`
	// Omitted counts entries and events the records no longer hold (past
	// EntryCap or EventCap).
	Omitted int `json:"omitted,omitempty"`
}

// LookupOptions tune Lookup.
type LookupOptions struct {
	// ShowIdentifiers keeps the person data of reported events
	// (recipient, customer id, clicked link) and email addresses in
	// reasons; without it they are removed, as payloads are everywhere
	// they are not asked for.
	ShowIdentifiers bool
}

// Lookup returns the timeline of task taskID: its record (App API tasks:
// sends and broadcast triggers), what Customer.io reported about its
// delivery, and asynq's record of the task while it has one. ErrNotFound
// when Redis holds none of these.
func (s *Store) Lookup(ctx context.Context, taskID string, o LookupOptions) (*Timeline, error) {
	if taskID == "" {
		return nil, ErrNotFound
	}
	// asynq's record first: the worker writes the timeline before the
	// task leaves asynq, so one of the two always has the task.
	info := s.taskInfo(ctx, taskID)
	rec, err := s.rdb.HGetAll(ctx, keys.StatusTask(taskID)).Result()
	if err != nil {
		return nil, err
	}
	tl := &Timeline{TaskID: taskID, Workspace: rec["ws"], Type: rec["type"], Queue: rec["q"], Template: rec["tmpl"], TraceID: rec["tr"]}
	if ms, _ := strconv.ParseInt(rec["enq"], 10, 64); ms > 0 {
		tl.EnqueuedAt = time.UnixMilli(ms)
	}
	n, _ := strconv.Atoi(rec["n"])
	for i := max(1, n-EntryCap+1); i <= n; i++ {
		var e Entry
		if json.Unmarshal([]byte(rec["e"+strconv.Itoa(i%EntryCap)]), &e) == nil && e.Kind != "" {
			tl.Entries = append(tl.Entries, e)
		}
	}
	tl.Omitted += max(0, n-EntryCap)
	tl.Delivery = rec["d"]
	if ms, _ := strconv.ParseInt(rec["acc"], 10, 64); ms > 0 {
		tl.AcceptedAt = time.UnixMilli(ms)
		att, _ := strconv.Atoi(rec["att"])
		tl.Entries = append(tl.Entries, Entry{At: tl.AcceptedAt, Kind: KindAccepted, Source: "cioq", Attempt: att, Delivery: tl.Delivery})
	}

	live := ""
	if info != nil {
		live = s.fromAsynq(tl, info, len(rec) > 0)
	}
	if len(rec) == 0 && info == nil {
		return nil, ErrNotFound
	}
	if tl.Delivery != "" {
		if err := s.addEvents(ctx, tl); err != nil {
			return nil, err
		}
	}
	if !tl.EnqueuedAt.IsZero() {
		tl.Entries = append(tl.Entries, Entry{At: tl.EnqueuedAt, Kind: KindEnqueued, Source: "cioq"})
	}
	// Customer.io's times are whole seconds: within a second, the order of
	// a message's life decides. What Customer.io reports of a message
	// happened after cioq saw it accepted, whatever the two clocks say (a
	// broadcast's messages may be sent before the trigger's answer
	// reaches the worker, or a clock runs behind): such an event is placed
	// no earlier than the acceptance.
	second := func(e Entry) int64 {
		s := e.At.Unix()
		if !tl.AcceptedAt.IsZero() && e.Source != "cioq" && e.Source != "asynq" && rank(e.Kind) > rank(KindAccepted) {
			s = max(s, tl.AcceptedAt.Unix())
		}
		return s
	}
	sort.SliceStable(tl.Entries, func(i, j int) bool {
		a, b := tl.Entries[i], tl.Entries[j]
		if as, bs := second(a), second(b); as != bs {
			return as < bs
		}
		if ra, rb := rank(a.Kind), rank(b.Kind); ra != rb {
			return ra < rb
		}
		return a.At.Before(b.At)
	})
	decide(tl, live)
	if !o.ShowIdentifiers {
		for i := range tl.Entries {
			e := &tl.Entries[i]
			e.Recipient, e.CustomerID, e.Href = "", "", ""
			e.Message = RedactIdentifiers(e.Message)
		}
		tl.Reason = RedactIdentifiers(tl.Reason)
	}
	return tl, nil
}

// decide sets the timeline's state: the highest ranked entry (the later of
// equals; a dead_lettered entry retracted by a later dead_letter_removed
// does not count), or asynq's live state while nothing beyond a failed
// attempt happened.
func decide(tl *Timeline, live string) {
	// A dead letter removed again (asynq retried the task) is retracted:
	// it stays in the entries, and no longer decides the state.
	var removed time.Time
	for _, e := range tl.Entries {
		if e.Kind == KindDeadLetterRemoved && e.At.After(removed) {
			removed = e.At
		}
	}
	best := -1
	for i, e := range tl.Entries {
		if e.Kind == KindDeadLettered && !e.At.After(removed) {
			continue
		}
		if best < 0 || rank(e.Kind) > rank(tl.Entries[best].Kind) ||
			rank(e.Kind) == rank(tl.Entries[best].Kind) && !e.At.Before(tl.Entries[best].At) {
			best = i
		}
	}
	if best < 0 {
		tl.State = live
		return
	}
	e := tl.Entries[best]
	if live != "" && rank(e.Kind) <= rank(KindAttempt) {
		tl.State = live
		return
	}
	tl.State = e.Kind
	tl.Final = rank(e.Kind) >= finalRank
	if failed(e.Kind) {
		tl.Reason = e.Message
	}
}

// taskInfo is asynq's record of the task, in whichever queue has it; nil
// if none does.
func (s *Store) taskInfo(ctx context.Context, id string) *asynq.TaskInfo {
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	qs, err := s.rdb.SMembers(ctx, keys.AsynqQueues).Result()
	if err != nil {
		return nil
	}
	sort.Strings(qs)
	for _, q := range qs {
		if info, err := insp.GetTaskInfo(q, id); err == nil {
			return info
		}
	}
	return nil
}

// fromAsynq fills in what asynq's record says and returns the live state
// ("" when the task is no longer waiting or running). With a cioq record
// (an App API task) the failures and the outcome are in it already.
func (s *Store) fromAsynq(tl *Timeline, info *asynq.TaskInfo, recorded bool) string {
	if tl.Type == "" {
		tl.Type = info.Type
	}
	if tl.Queue == "" {
		tl.Queue = info.Queue
	}
	var env tasks.Envelope
	if json.Unmarshal(info.Payload, &env) == nil {
		if tl.EnqueuedAt.IsZero() && env.EnqueuedAt > 0 {
			tl.EnqueuedAt = time.UnixMilli(env.EnqueuedAt)
		}
		if tl.Workspace == "" {
			tl.Workspace = env.Workspace
		}
		if tl.TraceID == "" {
			tl.TraceID = traceIDOf(env.TraceParent)
		}
	}
	live := ""
	switch info.State {
	case asynq.TaskStatePending, asynq.TaskStateAggregating:
		live = StatePending
	case asynq.TaskStateScheduled:
		live, tl.NextAttemptAt = StateScheduled, info.NextProcessAt
	case asynq.TaskStateActive:
		live = StateActive
	case asynq.TaskStateRetry:
		live, tl.NextAttemptAt = StateRetrying, info.NextProcessAt
	}
	if recorded {
		return live
	}
	if info.LastErr != "" && !info.LastFailedAt.IsZero() {
		kind := KindAttempt
		if info.State == asynq.TaskStateArchived {
			kind = KindDeadLettered
		}
		tl.Entries = append(tl.Entries, Entry{At: info.LastFailedAt, Kind: kind, Source: "asynq", Attempt: info.Retried, Message: info.LastErr})
	}
	if info.State == asynq.TaskStateCompleted {
		tl.Entries = append(tl.Entries, Entry{At: info.CompletedAt, Kind: KindCompleted, Source: "asynq"})
	}
	return live
}

// addEvents adds what Customer.io reported about the timeline's delivery.
func (s *Store) addEvents(ctx context.Context, tl *Timeline) error {
	d, err := s.rdb.HGetAll(ctx, keys.StatusDelivery(tl.Workspace, tl.Delivery)).Result()
	if err != nil {
		return err
	}
	var evs []Event
	seen := map[string]bool{}
	stateOnly := "" // the id of a state event kept only as the state (past the cap, so counted in c:)
	add := func(field, raw string) bool {
		ev, ok := decodeEvent(strings.TrimPrefix(field, "ev:"), []byte(raw))
		if !ok || seen[ev.ID] {
			return false
		}
		seen[ev.ID] = true
		evs = append(evs, ev)
		return true
	}
	fields := make([]string, 0, len(d))
	for k := range d {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, k := range fields {
		switch {
		case strings.HasPrefix(k, "ev:"):
			add(k, d[k])
		case strings.HasPrefix(k, "c:"):
			if n, err := strconv.Atoi(d[k]); err == nil {
				if tl.Counts == nil {
					tl.Counts = map[string]int{}
				}
				tl.Counts[strings.TrimPrefix(k, "c:")] += n
			}
		}
	}
	if add(d["sid"], d["s"]) {
		stateOnly = evs[len(evs)-1].ID
	}
	reported := map[string]bool{} // metrics a webhook reported
	for _, ev := range evs {
		if ev.Source == "webhook" {
			reported[ev.Metric] = true
		}
	}
	first := true
	for _, ev := range evs {
		if tl.Counts == nil {
			tl.Counts = map[string]int{}
		}
		if ev.Source == "poll" && reported[ev.Metric] {
			continue // a metric both a webhook and the poll reported is shown once
		}
		if ev.ID != stateOnly {
			tl.Counts[ev.Metric]++
		}
		e := Entry{At: time.Unix(ev.At, 0), Kind: ev.Metric, Source: ev.Source, Message: ev.Reason, ObjectType: ev.ObjectType, Href: ev.Href, Delivery: ev.Delivery}
		if first {
			e.Recipient, e.CustomerID = d["to"], d["cid"]
			first = false
		}
		tl.Entries = append(tl.Entries, e)
	}
	if x, _ := strconv.Atoi(d["x"]); x > 0 {
		tl.Omitted += x
	}
	return nil
}

// identifierPattern matches what may be an email address or a phone
// number in a reason text (a number counts once it has 8 digits, which
// SMTP codes such as "550 5.1.1" do not).
var identifierPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+|\+?[0-9][0-9 ().\-]{6,}[0-9]`)

// RedactIdentifiers replaces what looks like an email address or a phone
// number in s by "[redacted]" (Customer.io's failure reasons may quote the
// recipient).
func RedactIdentifiers(s string) string {
	if s == "" {
		return s
	}
	return identifierPattern.ReplaceAllStringFunc(s, func(m string) string {
		if strings.Contains(m, "@") {
			return "[redacted]"
		}
		digits := 0
		for _, c := range m {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		if digits < 8 {
			return m
		}
		return "[redacted]"
	})
}

// traceIDOf returns the trace id of a W3C traceparent
// ("00-<trace id>-<span id>-<flags>"), "" if it is not one.
func traceIDOf(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

// Detail is the entry's DETAIL column as `cioq status` and the dashboard's
// timeline page show it: the attempt and delivery of an acceptance; the
// class, HTTP status and object type of the others; then the message and
// the person data the lookup kept.
func (e Entry) Detail() string {
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	switch e.Kind {
	case KindEnqueued:
	case KindAccepted:
		add("attempt " + strconv.Itoa(e.Attempt))
		add(e.Delivery)
	default:
		add(e.Class)
		if e.Status != 0 {
			add(strconv.Itoa(e.Status))
		}
		add(e.ObjectType)
		add(e.Delivery) // a broadcast message's, on its trigger's timeline
	}
	add(e.Message)
	add(e.Recipient)
	if e.CustomerID != "" {
		add("customer " + e.CustomerID)
	}
	add(e.Href)
	return strings.Join(parts, " ")
}

// Label is the entry's EVENT column: its kind, with the attempt number of
// a failed attempt ("attempt 2").
func (e Entry) Label() string {
	if e.Kind == KindAttempt {
		return "attempt " + strconv.Itoa(e.Attempt)
	}
	return e.Kind
}

// countOrder is the order CountsText lists the documented metrics in.
var countOrder = []string{MetricSent, MetricDelivered, MetricOpened, MetricClicked, MetricConverted, MetricUnsubscribed,
	MetricSpammed, MetricBounced, MetricDropped, MetricFailed, MetricUndeliverable}

// CountsText is the timeline's Counts as one line ("sent 2, delivered
// 1"): the documented metrics in the order of a message's life, then the
// others by name.
func (tl *Timeline) CountsText() string {
	var parts []string
	seen := map[string]bool{}
	for _, m := range countOrder {
		if n := tl.Counts[m]; n > 0 {
			parts = append(parts, m+" "+strconv.Itoa(n))
		}
		seen[m] = true
	}
	var rest []string
	for m, n := range tl.Counts {
		if !seen[m] && n > 0 {
			rest = append(rest, m)
		}
	}
	sort.Strings(rest)
	for _, m := range rest {
		parts = append(parts, m+" "+strconv.Itoa(tl.Counts[m]))
	}
	return strings.Join(parts, ", ")
}
