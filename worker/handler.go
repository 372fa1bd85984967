package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// Task is a decoded task as the worker's middleware and delivery see it.
type Task struct {
	// ID, Queue, Retried and MaxRetry come from asynq.
	ID       string
	Queue    string
	Retried  int
	MaxRetry int
	// Type is the task type.
	Type string
	// Envelope is the decoded envelope (workspace, expiry, enqueue time).
	Envelope *tasks.Envelope
	// Payload is the validated payload (a pointer, e.g. *tasks.SendEmail).
	Payload tasks.Payload
}

type decodedKey struct{}

// Decoded returns the decoded task inside a Middleware's handler.
func Decoded(ctx context.Context) (*Task, bool) {
	t, ok := ctx.Value(decodedKey{}).(*Task)
	return t, ok
}

// process is the worker's asynq handler: decode and validate, check the
// expiry, run the middleware and the delivery, then apply the retry policy.
func (w *Worker) process(ctx context.Context, at *asynq.Task, next asynq.Handler) (err error) {
	t := &Task{Type: at.Type()}
	t.ID, _ = asynq.GetTaskID(ctx)
	t.Queue, _ = asynq.GetQueueName(ctx)
	t.Retried, _ = asynq.GetRetryCount(ctx)
	t.MaxRetry, _ = asynq.GetMaxRetry(ctx)

	defer func() {
		// asynq recovers handler panics too (processor.go perform), but
		// as an opaque failure; recovering here sends the panic through
		// the retry policy as a transient failure.
		if x := recover(); x != nil {
			// The panic value may quote task data: log and keep only its
			// type; the stack (code locations only) goes to the log.
			w.log.Error("task handler panicked", "type", t.Type, "task_id", t.ID, "panic_type", fmt.Sprintf("%T", x), "stack", string(debug.Stack()))
			err = w.decide(ctx, t, at, fmt.Errorf("worker: handler panic (%T)", x), "")
		}
	}()

	env, p, derr := tasks.Decode(at.Type(), at.Payload())
	if derr != nil {
		return w.deadLetter(ctx, t, at, DeadLetterInvalid, 0, "", derr.Error())
	}
	t.Envelope, t.Payload = env, p
	if verr := p.Validate(); verr != nil {
		return w.deadLetter(ctx, t, at, DeadLetterInvalid, 0, "", "invalid payload: "+verr.Error())
	}
	ordered := w.ordered(t)
	if env.Expired(w.cfg.Now()) {
		// A send that an earlier attempt delivered (the worker died before
		// acknowledging it) is done, not expired: dead-lettering it as
		// "not sent" would be false, and retrying it from the store would
		// send it twice.
		if apiOf(t.Type) == customerio.APIApp {
			if sent, err := w.alreadySent(ctx, t); err == nil && sent {
				return w.decide(ctx, t, at, nil, customerio.APIApp)
			}
		}
		w.obs.Expired(t.Type)
		exp, _ := env.Expiry()
		err := w.deadLetter(ctx, t, at, DeadLetterExpired, 0, "", "expired at "+exp.UTC().Format(time.RFC3339)+" before it could be sent; not sent")
		if ordered && isDeadLettered(err) {
			w.orderDone(ctx, t)
		}
		return err
	}
	if ordered {
		if gerr := w.orderGate(ctx, t); gerr != nil {
			return w.decide(ctx, t, at, gerr, "")
		}
	}
	derr = next.ProcessTask(context.WithValue(ctx, decodedKey{}, t), at)
	err = w.decide(ctx, t, at, derr, apiOf(t.Type))
	if ordered && (err == nil || isDeadLettered(err)) {
		w.orderDone(ctx, t)
	}
	return err
}

// isDeadLettered reports whether err is the worker's "recorded in the
// dead-letter store" outcome.
func isDeadLettered(err error) bool {
	var dl *deadLetterError
	return errors.As(err, &dl)
}

// decide is the retry policy, in one place. It maps the outcome of a
// delivery to: success, a retry (with its delay and whether it spends the
// retry budget) or a dead letter, logs the decision with its reason and
// tells the Observer.
func (w *Worker) decide(ctx context.Context, t *Task, at *asynq.Task, err error, api customerio.API) error {
	ws := ""
	if t.Envelope != nil {
		ws = t.Envelope.Workspace
	}
	if err == nil {
		if api != "" {
			w.authOK(ws, api)
			w.noteSuccess(ws, api)
		}
		var lat time.Duration
		if t.Envelope != nil {
			if enq, ok := t.Envelope.Enqueued(); ok {
				lat = w.cfg.Now().Sub(enq)
			}
		}
		w.obs.Delivered(t.Type, t.Queue, ws, lat)
		return nil
	}

	var re *retryError
	var status int
	var msg string
	var retryAfter time.Duration
	var ae *customerio.APIError
	if errors.As(err, &ae) {
		status, msg, retryAfter = ae.StatusCode, ae.Message, ae.RetryAfter
	}
	exhausted := t.Retried >= t.MaxRetry // asynq archives after this attempt whatever we return

	switch {
	case errors.As(err, &re):
		// Already decided (RetryLater from middleware, or a nested decision).
	case errors.Is(err, asynq.SkipRetry):
		return w.deadLetter(ctx, t, at, DeadLetterPermanent, status, msg, err.Error())
	default:
		switch customerio.ClassOf(err) {
		case customerio.ClassPermanent:
			return w.deadLetter(ctx, t, at, DeadLetterPermanent, status, msg, err.Error())
		case customerio.ClassAuth:
			unknown := errors.Is(err, errUnknownWorkspace)
			if unknown && w.windowPassed(t, at) {
				// Kept for its whole retry window without anyone adding the
				// workspace: most likely a mistyped name. Tell someone.
				return w.deadLetter(ctx, t, at, DeadLetterConfig, 0, "",
					fmt.Sprintf("workspace %q is not configured on this worker, and the task's retry window passed while it was kept", displayWS(ws)))
			}
			reason := "credentials refused"
			if status != 0 {
				reason = fmt.Sprintf("credentials refused (%d)", status)
			}
			if errors.Is(err, customerio.ErrMissingCredentials) {
				reason = "no credentials configured"
			}
			if unknown {
				reason = "workspace not configured"
			}
			if api != "" {
				w.authFailed(ws, api, reason, t)
			}
			re = &retryError{err: err, class: RetryAuth, status: status, delay: w.cfg.AuthRetryDelay, spend: false,
				reason: reason + ": configuration problem, the task is kept"}
		default: // transient
			re = &retryError{err: err, class: RetryTransient, status: status, delay: retryAfter, spend: true, reason: "transient failure"}
			if status == 429 {
				re.class, re.spend, re.reason = RetryThrottled, false, "throttled (429): does not spend the retry budget"
			}
			if retryAfter > 0 {
				re.reason += fmt.Sprintf("; Retry-After %s", retryAfter)
			}
		}
	}

	if re.spend && t.Retried+1 >= t.MaxRetry {
		// This failure would exhaust the retry budget. Dead-letter only
		// once the retry window has passed too; until then keep retrying
		// without spending the budget.
		if w.windowPassed(t, at) {
			return w.deadLetter(ctx, t, at, DeadLetterExhausted, status, msg, "retries exhausted and retry window passed: "+err.Error())
		}
		re.spend = false
		re.reason += "; retry budget used up but the retry window is still open: not spending it"
	}
	if exhausted {
		// asynq archives a task whose budget is used up (e.g. by crashes,
		// which always count) without asking IsFailure: record it first.
		return w.deadLetter(ctx, t, at, DeadLetterExhausted, status, msg, "retries exhausted: "+err.Error())
	}
	w.noteRetry(ctx, t, api, re, err)
	w.obs.Retried(t.Type, re.class, re.status)
	if re.class != RetrySnoozed {
		// Waits are not attempts; every other retried failure goes into
		// the task's history.
		w.recordAttempt(ctx, t, re, msg, err)
	}
	level := slog.LevelInfo
	if re.class == RetrySnoozed {
		// Rate-limit and ordering waits are routine, not failures.
		level = slog.LevelDebug
	}
	w.log.Log(ctx, level, "task will be retried", "type", t.Type, "task_id", t.ID, "queue", t.Queue,
		"class", string(re.class), "status", re.status, "attempt", t.Retried+1, "spends_budget", re.spend,
		"reason", re.reason, "error", err.Error())
	if re.err != err {
		// Keep the caller's error chain but carry the decision.
		cp := *re
		cp.err = err
		return &cp
	}
	return re
}

// windowPassed reports whether the task's retry window (its type's
// RetryWindow since enqueued_at, or since a DLQ retry) has passed. A task
// without a known start (a bare payload) has only its retry budget.
func (w *Worker) windowPassed(t *Task, at *asynq.Task) bool {
	window := tasks.DefaultRetryWindow
	if spec, ok := tasks.Lookup(t.Type); ok && spec.Defaults.RetryWindow > 0 {
		window = spec.Defaults.RetryWindow
	}
	var start time.Time
	if h := at.Headers()[HeaderRetryWindowStart]; h != "" {
		if ms, err := strconv.ParseInt(h, 10, 64); err == nil {
			start = time.UnixMilli(ms)
		}
	}
	if start.IsZero() && t.Envelope != nil {
		start, _ = t.Envelope.Enqueued()
	}
	if start.IsZero() {
		return true
	}
	return w.cfg.Now().Sub(start) >= window
}

// deadLetter records the task in the dead-letter store and returns an
// error wrapping asynq.SkipRetry so asynq archives it at once. If the
// record cannot be written the task is retried instead (nothing is lost;
// the reconciler catches a task asynq archives regardless).
func (w *Worker) deadLetter(ctx context.Context, t *Task, at *asynq.Task, class DeadLetterClass, status int, msg, reason string) error {
	d := &DeadLetter{
		ID: t.ID, Type: t.Type, Queue: t.Queue, Payload: at.Payload(),
		Attempts: t.Retried + 1, MaxRetry: t.MaxRetry,
		Class: class, Status: status, Message: msg, Error: reason,
	}
	if t.Envelope != nil {
		d.Workspace = t.Envelope.Workspace
	}
	carriedOver(d, at.Headers())
	// The task's context may be at its deadline; the record must still be written.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	akey := attemptsKey(t.ID, enqueuedAt(t))
	if err := w.dlq.takeAttempts(wctx, akey, d); err != nil {
		// The record is what matters: write it without the earlier attempts.
		w.log.Warn("could not read the task's attempt history; dead-lettering it without", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
	if err := w.dlq.Add(wctx, d); err != nil {
		w.log.Error("could not record dead letter; the task will be retried", "type", t.Type, "task_id", t.ID, "queue", t.Queue, "class", string(class), "error", err.Error())
		return &retryError{err: err, class: RetryTransient, spend: false, reason: "dead-letter store unavailable"}
	}
	// The record holds the attempts now (the log would expire anyway).
	w.rdb.Del(wctx, akey)
	w.obs.DeadLettered(t.Type, class)
	w.keptDone(d.Workspace, apiOf(t.Type), t.ID)
	w.log.Warn("task dead-lettered", "type", t.Type, "task_id", t.ID, "queue", t.Queue,
		"class", string(class), "status", status, "attempt", t.Retried+1, "reason", reason)
	return fmt.Errorf("worker: %w", &deadLetterError{class: class, status: status, msg: msg})
}
