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
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// Task is a decoded task as the worker's middleware and delivery see it.
type Task struct {
	// ID, Queue and Retried come from asynq. Retried counts the task's
	// earlier attempts that failed transiently, crashed or ran out of time
	// (not those refused with 429 or for credentials, nor waits).
	ID      string
	Queue   string
	Retried int
	// MaxRetry is the task's retry budget: its tasks.HeaderRetryBudget, or
	// asynq's MaxRetry for a task enqueued without one (by an older
	// producer, or directly with asynq).
	MaxRetry int
	// Type is the task type.
	Type string
	// Envelope is the decoded envelope (workspace, expiry, enqueue time).
	Envelope *tasks.Envelope
	// Payload is the validated payload (a pointer, e.g. *tasks.SendEmail),
	// with what Config.Contracts coerced.
	Payload tasks.Payload

	// budgeted: the task carries tasks.HeaderRetryBudget, and asynq's own
	// MaxRetry (asynqMaxRetry) is tasks.AsynqMaxRetry, so asynq never
	// archives it by itself.
	budgeted      bool
	asynqMaxRetry int
	// rescued is the person an anonymous event's visitor was merged into
	// (Config.AnonymousMergeTTL): the event is delivered as theirs.
	rescued *customerio.Identifiers
	// traceID is the task's W3C trace id ("" if none), for log lines.
	traceID string
	// multiSlot: the attempt holds one of the worker's cio:batch slots
	// (multi.go), taken before its payload was decoded.
	multiSlot bool
}

// readBudget sets t's retry budget from at's headers (see Task.MaxRetry);
// t.MaxRetry holds asynq's MaxRetry on entry.
func (t *Task) readBudget(at *asynq.Task) {
	t.asynqMaxRetry = t.MaxRetry
	if n, err := strconv.Atoi(at.Headers()[tasks.HeaderRetryBudget]); err == nil && n >= 0 {
		t.MaxRetry, t.budgeted = n, true
	}
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
	t.readBudget(at)
	// The attempt's work runs under its own deadline, ahead of asynq's, so
	// that the decision below is made, recorded and returned before asynq
	// acts on the deadline by itself (deadline.go). ctx stays asynq's: it
	// tells whether asynq still waits for the decision.
	actx, cancel := attemptContext(ctx)
	defer cancel()

	if w.returned != nil {
		defer func() { w.returned(t, err) }()
	}
	var span trace.Span // the task's span, when tracing is on
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
		endTaskSpan(span, err)
	}()

	defer w.takeMultiSlot(actx, t)()
	env, p, derr := tasks.Decode(at.Type(), at.Payload())
	if derr != nil {
		return w.settle(ctx, t, at, outcome{kind: outcomeUndecodable, err: derr})
	}
	t.Envelope, t.Payload = env, p
	ctx, span = w.startTaskSpan(ctx, t)
	if span != nil {
		// The attempt's requests to Customer.io are the span's children.
		actx = trace.ContextWithSpan(actx, span)
	}
	if verr := p.Validate(); verr != nil {
		return w.settle(ctx, t, at, outcome{kind: outcomeInvalid, err: verr})
	}
	if w.cfg.Contracts != nil {
		res, cerr := w.cfg.Contracts.Check(env.Workspace, p)
		if cerr != nil {
			return w.settle(ctx, t, at, outcome{kind: outcomeInvalid, err: cerr})
		}
		t.Payload = res.Payload
	}
	ordered := w.ordered(t)
	if env.Expired(w.cfg.Now()) {
		o := outcome{kind: outcomeExpired}
		if apiOf(t.Type) == customerio.APIApp {
			if sent, err := w.alreadySent(actx, t); err == nil && sent {
				o.sent, o.api = true, customerio.APIApp
				return w.settle(ctx, t, at, o)
			}
		}
		err := w.settle(ctx, t, at, o)
		if ordered && isDeadLettered(err) {
			w.orderDone(ctx, t)
		}
		return err
	}
	if ordered {
		if gerr := w.orderGate(actx, t); gerr != nil {
			return w.decide(ctx, t, at, gerr, "")
		}
	}
	if ferr := w.replicatedFence(actx, t); ferr != nil {
		return w.decide(ctx, t, at, ferr, "")
	}
	w.rescue(actx, t)
	derr = next.ProcessTask(context.WithValue(actx, decodedKey{}, t), at)
	if derr == nil {
		w.delivered(ctx, t)
	}
	err = w.decide(ctx, t, at, derr, apiOf(t.Type))
	if ordered && (err == nil || isDeadLettered(err)) {
		w.orderDone(ctx, t)
	}
	if err == nil && ctx.Err() != nil {
		w.deliveredLate(ctx, t, at)
	}
	return err
}

// isDeadLettered reports whether err is the worker's "recorded in the
// dead-letter store" outcome.
func isDeadLettered(err error) bool {
	var dl *deadLetterError
	return errors.As(err, &dl)
}

// decide applies the retry policy to an attempt that ran: err is its
// failure (nil = delivered), api the Customer.io API it called ("" = none).
func (w *Worker) decide(ctx context.Context, t *Task, at *asynq.Task, err error, api customerio.API) error {
	return w.settle(ctx, t, at, outcome{kind: outcomeRan, err: err, api: api})
}

// settle classifies the outcome o of an attempt of t with the retry policy
// (classify, policy.go) and applies the decision.
func (w *Worker) settle(ctx context.Context, t *Task, at *asynq.Task, o outcome) error {
	o.windowStart = retryWindowStart(at)
	d := policy{authRetryDelay: w.cfg.AuthRetryDelay}.classify(t, o, w.cfg.Now())
	return w.apply(ctx, t, at, d)
}

// retryWindowStart is when a dead letter retried from the store started
// its new retry window (HeaderRetryWindowStart); zero when none.
func retryWindowStart(at *asynq.Task) time.Time {
	if h := at.Headers()[HeaderRetryWindowStart]; h != "" {
		if ms, err := strconv.ParseInt(h, 10, 64); err == nil {
			return time.UnixMilli(ms)
		}
	}
	return time.Time{}
}

// apply carries out the retry policy's decision d on t, with every side
// effect of deciding: the credentials and recovery state, the attempt
// history, the dead-letter record, the Observer and the log line (type,
// task id, queue, class, status, attempt, reason). It returns what asynq
// gets: nil, a *retryError (its delay and whether it spends the budget) or
// a dead letter wrapping asynq.SkipRetry.
func (w *Worker) apply(ctx context.Context, t *Task, at *asynq.Task, d decision) error {
	ws := workspaceOf(t)
	if d.authFailure != "" {
		w.authFailed(ws, d.api, d.authFailure, t)
	}
	switch d.kind {
	case decideSuccess:
		if d.api != "" {
			w.authOK(ws, d.api)
			w.noteSuccess(ws, d.api)
		}
		if !isMulti(t.Type) {
			// A cio:batch task's operations were reported one by one.
			w.obs.Delivered(t.Type, t.Queue, ws, d.latency)
		}
		return nil
	case decideDeadLetter:
		if d.class == DeadLetterExpired {
			w.obs.Expired(t.Type)
		}
		return w.deadLetter(ctx, t, at, d.class, d.status, d.message, d.text)
	}
	re := &retryError{err: d.cause, class: d.reason, status: d.status, delay: d.delay, spend: d.spend, counted: d.counted, reason: d.text}
	w.noteRetry(ctx, t, d.api, re, d.cause)
	w.obs.Retried(t.Type, re.class, re.status)
	if re.class != RetrySnoozed {
		// Waits are not attempts; every other retried failure goes into
		// the task's history.
		w.recordAttempt(ctx, t, re, d.message, d.cause)
	}
	level := slog.LevelInfo
	if re.class == RetrySnoozed {
		// Rate-limit and ordering waits are routine, not failures.
		level = slog.LevelDebug
	}
	w.log.Log(ctx, level, "task will be retried", "type", t.Type, "task_id", t.ID, "queue", t.Queue,
		"class", string(re.class), "status", re.status, "attempt", t.Retried+1, "spends_budget", re.spend,
		"reason", re.reason, "error", d.cause.Error(), t.traceAttr())
	return re
}

// deadLetter records the task in the dead-letter store and returns an
// error wrapping asynq.SkipRetry so asynq archives it at once. If the
// record cannot be written the task is retried instead (nothing is lost;
// the reconciler catches a task asynq archives regardless).
//
// It writes nothing once ctx, asynq's context of the attempt, is done:
// asynq then no longer waits for this decision and has acted on the
// task's deadline (or lost lease) itself, retrying the task, or archiving
// a task without a cioq budget on its last attempt (which its error
// handler records: handleError). A record written now would describe a
// task still in Redis. The check and the write hold the task's lock, which
// handleError takes too, so a write that was under way when asynq gave up
// is undone there.
func (w *Worker) deadLetter(ctx context.Context, t *Task, at *asynq.Task, class DeadLetterClass, status int, msg, reason string) error {
	mu := w.taskLock(t.ID)
	mu.Lock()
	defer mu.Unlock()
	if err := ctx.Err(); err != nil {
		w.log.Warn("attempt outlived asynq's deadline for it: not dead-lettering the task, asynq has retried or archived it",
			"type", t.Type, "task_id", t.ID, "queue", t.Queue, "class", string(class), "attempt", t.Retried+1)
		return &retryError{err: err, class: RetryTransient, reason: "asynq acted on the task's deadline first"}
	}
	// The record must be written even if ctx reaches its deadline meanwhile.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.writeDeadLetter(wctx, t, at, class, status, msg, reason); err != nil {
		w.log.Error("could not record dead letter; the task will be retried", "type", t.Type, "task_id", t.ID, "queue", t.Queue, "class", string(class), "error", err.Error())
		return &retryError{err: err, class: RetryTransient, spend: false, reason: "dead-letter store unavailable"}
	}
	return fmt.Errorf("worker: %w", &deadLetterError{class: class, status: status, msg: msg})
}

// writeDeadLetter writes t's dead-letter record, with the attempt log, and
// tells the Observer, the credentials state and the log.
func (w *Worker) writeDeadLetter(ctx context.Context, t *Task, at *asynq.Task, class DeadLetterClass, status int, msg, reason string) error {
	d := &DeadLetter{
		ID: t.ID, Type: t.Type, Queue: t.Queue, Payload: at.Payload(),
		Attempts: min(t.Retried+1, t.attemptsAllowed()), MaxRetry: t.MaxRetry, allowed: t.attemptsAllowed(),
		Class: class, Status: status, Message: msg, Error: reason,
	}
	if !t.budgeted {
		// asynq counts crashes on top of the budget's attempts.
		d.Attempts = t.Retried + 1
	}
	if t.Envelope != nil {
		d.Workspace = t.Envelope.Workspace
	}
	carriedOver(d, at.Headers())
	akey := attemptsKey(t.ID, enqueuedAt(t))
	if err := w.dlq.takeAttempts(ctx, akey, d); err != nil {
		// The record is what matters: write it without the earlier attempts.
		w.log.Warn("could not read the task's attempt history; dead-lettering it without", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
	if err := w.dlq.Add(ctx, d); err != nil {
		return err
	}
	// The record holds the attempts now (the log would expire anyway).
	w.rdb.Del(ctx, akey)
	w.obs.DeadLettered(t.Type, class)
	w.statusDeadLettered(ctx, t, d)
	w.keptDone(d.Workspace, apiOf(t.Type), t.ID)
	w.log.Warn("task dead-lettered", "type", t.Type, "task_id", t.ID, "queue", t.Queue,
		"class", string(class), "status", status, "attempt", t.Retried+1, "reason", reason, t.traceAttr())
	return nil
}
