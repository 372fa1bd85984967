package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/status"
)

// DefaultStatusPollInterval is how often the fallback poll looks for
// accepted sends without a final state (StatusConfig.PollInterval).
const DefaultStatusPollInterval = time.Minute

// StatusConfig configures the timelines the worker records of App API
// tasks (transactional sends and broadcast triggers; package status): each
// failed attempt, the acceptance with Customer.io's delivery id, and the
// dead letter, one Redis call each. Tasks of the other APIs cost nothing.
// The zero value records them and keeps them status.DefaultTTL (30 days).
type StatusConfig struct {
	// Off records nothing.
	Off bool
	// TTL is how long a timeline is kept after its latest change (default
	// status.DefaultTTL).
	TTL time.Duration
	// Metrics, when set, counts the accepted and dead_lettered outcomes
	// (cioq_message_outcomes_total).
	Metrics status.Metrics
	// PollAfter turns the fallback poll on: a send Customer.io accepted
	// that long ago and that has no final state yet (no reporting webhook
	// said delivered, bounced, failed, ...) is read with GET
	// /v1/messages/{delivery id}, a broadcast trigger with GET
	// /v1/campaigns/{broadcast id}/triggers/{trigger id} (and its errors
	// once processed), through the App API's shared rate limit, and what
	// they say is recorded (default 0: off; use it when reporting webhooks
	// are not configured).
	PollAfter time.Duration
	// PollInterval is how often the poll looks for such sends, and how
	// long it waits before reading one again (default 1 min).
	PollInterval time.Duration
	// PollHorizon is how long after its acceptance a send is polled at
	// most (default DefaultStatusPollHorizon, 3 days).
	PollHorizon time.Duration
}

func (c StatusConfig) withDefaults() StatusConfig {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultStatusPollInterval
	}
	if c.PollHorizon <= 0 {
		c.PollHorizon = DefaultStatusPollHorizon
	}
	return c
}

// statusTask describes t for its timeline; ok is false for a task whose
// timeline the worker does not record.
func (w *Worker) statusTask(t *Task) (status.Task, bool) {
	if w.status == nil || apiOf(t.Type) != customerio.APIApp || t.ID == "" {
		return status.Task{}, false
	}
	st := status.Task{ID: t.ID, Type: t.Type, Queue: t.Queue, TraceID: t.traceID}
	if t.Envelope != nil {
		st.EnqueuedAt, st.Workspace = t.Envelope.EnqueuedAt, t.Envelope.Workspace
		st.Template = templateOf(t.Envelope.Payload)
	}
	return st, true
}

// templateOf is a send payload's transactional_message_id (an id or a
// trigger name), or "broadcast:<id>" of a broadcast trigger; "" if none.
func templateOf(payload []byte) string {
	var p struct {
		TransactionalMessageID json.RawMessage `json:"transactional_message_id"`
		BroadcastID            int             `json:"broadcast_id"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return ""
	}
	if s := strings.Trim(string(p.TransactionalMessageID), `"`); s != "" && s != "null" && len(s) <= 100 {
		return s
	}
	if p.BroadcastID > 0 {
		return "broadcast:" + strconv.Itoa(p.BroadcastID)
	}
	return ""
}

// statusContext bounds a timeline write; the task's own context may be at
// its deadline.
func statusContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
}

// statusAccepted records that Customer.io accepted t with reference ref
// ("delivery:<id>", "trigger:<id>"; "sent" names nothing). Best effort: a
// timeline that cannot be written costs the timeline, not the task.
func (w *Worker) statusAccepted(ctx context.Context, t *Task, ref string) {
	st, ok := w.statusTask(t)
	if !ok {
		return
	}
	if !strings.HasPrefix(ref, "delivery:") && !strings.HasPrefix(ref, "trigger:") {
		ref = ""
	}
	poll := time.Duration(0)
	if ref != "" {
		poll = w.cfg.Status.PollAfter
	}
	sctx, cancel := statusContext(ctx)
	defer cancel()
	if err := w.status.Accepted(sctx, st, ref, t.Retried+1, poll); err != nil {
		w.log.Debug("could not record the acceptance in the task's timeline", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
}

// statusAttempt records a failed attempt of t that will be retried.
func (w *Worker) statusAttempt(ctx context.Context, t *Task, f Failure) {
	st, ok := w.statusTask(t)
	if !ok {
		return
	}
	sctx, cancel := statusContext(ctx)
	defer cancel()
	e := status.Entry{At: f.At, Attempt: f.Attempt, Class: f.Class, Status: f.Status, Message: f.Message}
	if e.Message == "" {
		e.Message = f.Error
	}
	if err := w.status.Attempt(sctx, st, e); err != nil {
		w.log.Debug("could not record the attempt in the task's timeline", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
}

// statusDeadLettered records that t was dead-lettered.
func (w *Worker) statusDeadLettered(ctx context.Context, t *Task, d *DeadLetter) {
	st, ok := w.statusTask(t)
	if !ok {
		return
	}
	sctx, cancel := statusContext(ctx)
	defer cancel()
	msg := d.Message
	if msg == "" {
		msg = d.Error
	}
	e := status.Entry{At: w.cfg.Now(), Attempt: d.Attempts, Class: string(d.Class), Status: d.Status, Message: msg}
	if err := w.status.DeadLettered(sctx, st, e); err != nil {
		w.log.Debug("could not record the dead letter in the task's timeline", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
}

// statusDeadLetterRemoved records that t's dead letter was removed again
// (why says why), retracting its dead_lettered entry.
func (w *Worker) statusDeadLetterRemoved(ctx context.Context, t *Task, why string) {
	st, ok := w.statusTask(t)
	if !ok {
		return
	}
	sctx, cancel := statusContext(ctx)
	defer cancel()
	e := status.Entry{At: w.cfg.Now(), Attempt: t.Retried + 1, Message: why}
	if err := w.status.DeadLetterRemoved(sctx, st, e); err != nil {
		w.log.Debug("could not record the dead letter's removal in the task's timeline", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
}
