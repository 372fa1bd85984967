package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// The retry policy, as one pure function: classify turns what happened to
// one attempt of a task (an outcome) into a decision (success, a retry or a
// dead letter) without touching Redis, the Observer or the log; the
// handler's apply carries the decision out. The package documentation's
// "Delivery semantics" states the policy in words; policy_test.go has one
// table row per rule.

// RetryReason is why a task is retried: the "class" of a retry in the
// worker's log lines, the [Observer] and a [Failure] in a dead letter's
// history.
type RetryReason string

// Retry reasons.
const (
	// RetryTransient: 408, 5xx, a network error, a timeout or a panic; the
	// task is retried after a backoff or Retry-After, spending one retry of
	// its budget (unless the budget is used up while its retry window is
	// still open).
	RetryTransient RetryReason = "transient"
	// RetryThrottled: 429; retried after Retry-After (or the backoff)
	// without spending the retry budget.
	RetryThrottled RetryReason = "throttled"
	// RetryAuth: 401, no credentials for the task's workspace and API, or
	// a workspace the worker does not know; retried every AuthRetryDelay
	// without spending the retry budget.
	RetryAuth RetryReason = "auth"
	// RetrySnoozed: a wait, not a failure ([RetryLater]: a rate limit, a
	// person's earlier task); never spends the retry budget and is not
	// recorded in the task's history.
	RetrySnoozed RetryReason = "snoozed"
)

// outcomeKind is where an attempt of a task ended.
type outcomeKind int

const (
	// outcomeRan: the task ran (the ordering gate, the middleware and the
	// delivery, or a panic in them); err nil means delivered.
	outcomeRan outcomeKind = iota
	// outcomeUndecodable: the task's bytes did not decode (err says why).
	outcomeUndecodable
	// outcomeInvalid: the payload did not validate (err says why).
	outcomeInvalid
	// outcomeExpired: the task's expires_at passed before it could be sent.
	outcomeExpired
)

// outcome is what the handler learned about one attempt of a task: the
// policy's input besides the task itself and the time.
type outcome struct {
	kind outcomeKind
	// err is the attempt's failure; nil when it was delivered (and for an
	// expired task).
	err error
	// api is the Customer.io API the attempt called, whose credentials and
	// recovery state the decision updates; "" when none was called (or
	// the attempt did not get that far).
	api customerio.API
	// sent (an expired task only): an earlier attempt's send record shows
	// the send was delivered before it expired.
	sent bool
	// windowStart is when a dead letter retried from the store started a
	// new retry window (HeaderRetryWindowStart); zero when it did not, and
	// the window then starts at the task's enqueued_at.
	windowStart time.Time
}

// decisionKind is what the policy decided.
type decisionKind int

const (
	// decideSuccess: the task is done.
	decideSuccess decisionKind = iota
	// decideRetry: the task is tried again.
	decideRetry
	// decideDeadLetter: the task is recorded in the dead-letter store and
	// archived.
	decideDeadLetter
)

func (k decisionKind) String() string {
	switch k {
	case decideSuccess:
		return "success"
	case decideRetry:
		return "retry"
	case decideDeadLetter:
		return "dead letter"
	}
	return fmt.Sprintf("decisionKind(%d)", int(k))
}

// decision is the retry policy's verdict on one attempt, with everything
// the handler needs to carry it out.
type decision struct {
	kind decisionKind
	// api is the outcome's API: on success its credentials are known to
	// work and a recovery may be due; on a retry the recovery index is
	// kept; "" = none.
	api customerio.API
	// cause is the failure decided (nil on success). The error asynq gets
	// for a retry wraps it, so its chain is kept.
	cause error

	// latency (success) runs from the task's enqueued_at to now; 0 when
	// unknown.
	latency time.Duration

	// reason (retry) is the retry's class.
	reason RetryReason
	// delay (retry) is the wait before the next attempt; 0 = the backoff
	// schedule.
	delay time.Duration
	// spend (retry): this failure uses up one retry of the task's budget.
	spend bool
	// counted (retry): asynq counts this failure in the task's retried
	// count although it does not spend the budget (a transient failure past
	// the budget of a task with a cioq budget), so the backoff, which
	// follows that count, keeps growing.
	counted bool

	// class (dead letter) is the dead letter's class.
	class DeadLetterClass

	// status is the HTTP status (0 if none) and message Customer.io's
	// message, for the log, the attempt history and the dead letter.
	status  int
	message string
	// text explains the decision: the log line's reason, and the dead
	// letter's Error.
	text string
	// authFailure, when not "", is the credentials problem to record for
	// the task's workspace and api (Health fails, naming it) before the
	// retry or the dead letter is applied.
	authFailure string
}

// policy is the retry policy's configuration.
type policy struct {
	// authRetryDelay is the wait before retrying a task kept for lack of
	// valid credentials (Config.AuthRetryDelay).
	authRetryDelay time.Duration
}

// classify is the retry policy, in one place and without side effects: it
// maps the outcome o of an attempt of t, at now, to a decision.
func (p policy) classify(t *Task, o outcome, now time.Time) decision {
	switch o.kind {
	case outcomeUndecodable:
		return deadLettered(DeadLetterInvalid, 0, "", o.err.Error())
	case outcomeInvalid:
		return deadLettered(DeadLetterInvalid, 0, "", "invalid payload: "+o.err.Error())
	case outcomeExpired:
		if o.sent {
			// A send that an earlier attempt delivered (the worker died
			// before acknowledging it) is done, not expired: dead-lettering
			// it as "not sent" would be false, and retrying it from the
			// store would send it twice.
			return p.succeeded(t, o.api, now)
		}
		var exp time.Time
		if t.Envelope != nil {
			exp, _ = t.Envelope.Expiry()
		}
		return deadLettered(DeadLetterExpired, 0, "", "expired at "+exp.UTC().Format(time.RFC3339)+" before it could be sent; not sent")
	}
	if o.err == nil {
		return p.succeeded(t, o.api, now)
	}
	err := o.err

	var status int
	var msg string
	var retryAfter time.Duration
	var ae *customerio.APIError
	if errors.As(err, &ae) {
		status, msg, retryAfter = ae.StatusCode, ae.Message, ae.RetryAfter
	}
	// asynq archives a task by itself, after this attempt whatever we
	// return, once its retried count reaches asynq's MaxRetry: never for a
	// task with a cioq budget (asynq's MaxRetry is tasks.AsynqMaxRetry),
	// on the last attempt for one without.
	exhausted := t.Retried >= t.asynqLimit()

	d := decision{kind: decideRetry, api: o.api, cause: err, message: msg}
	var re *retryError
	switch {
	case errors.As(err, &re):
		// Already decided (RetryLater from middleware, or a nested decision).
		d.reason, d.status, d.delay, d.spend, d.counted, d.text = re.class, re.status, re.delay, re.spend, re.counted, re.reason
	case errors.Is(err, asynq.SkipRetry):
		return deadLettered(DeadLetterPermanent, status, msg, err.Error())
	default:
		switch customerio.ClassOf(err) {
		case customerio.ClassPermanent:
			return deadLettered(DeadLetterPermanent, status, msg, err.Error())
		case customerio.ClassAuth:
			unknown := errors.Is(err, errUnknownWorkspace)
			if unknown && p.windowPassed(t, o, now) {
				// Kept for its whole retry window without anyone adding the
				// workspace: most likely a mistyped name. Tell someone.
				return deadLettered(DeadLetterConfig, 0, "",
					fmt.Sprintf("workspace %q is not configured on this worker, and the task's retry window passed while it was kept", displayWS(workspaceOf(t))))
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
			if o.api != "" {
				d.authFailure = reason
			}
			d.reason, d.status, d.delay, d.spend = RetryAuth, status, p.authRetryDelay, false
			d.text = reason + ": configuration problem, the task is kept"
		default: // transient
			d.reason, d.status, d.delay, d.spend, d.text = RetryTransient, status, retryAfter, true, "transient failure"
			if status == 429 {
				d.reason, d.spend, d.text = RetryThrottled, false, "throttled (429): does not spend the retry budget"
			}
			if retryAfter > 0 {
				d.text += fmt.Sprintf("; Retry-After %s", retryAfter)
			}
		}
	}

	if d.spend && t.budgetSpent() {
		// The retry budget is used up. Dead-letter only once the retry
		// window has passed too; until then keep retrying without
		// spending the budget (asynq still counts the failure for a task
		// with a cioq budget, so its backoff keeps growing).
		if p.windowPassed(t, o, now) {
			return deadLettered(DeadLetterExhausted, status, msg, "retries exhausted and retry window passed: "+err.Error())
		}
		d.spend, d.counted = false, t.budgeted
		d.text += "; retry budget used up but the retry window is still open: not spending it"
	}
	if exhausted {
		// asynq archives a task whose asynq budget is used up (e.g. by
		// crashes, which always count) without asking IsFailure: record it
		// first. Only a task without a cioq budget gets here. A
		// credentials problem found on the way is still recorded.
		dl := deadLettered(DeadLetterExhausted, status, msg, "retries exhausted: "+err.Error())
		dl.authFailure = d.authFailure
		return dl
	}
	return d
}

// asynqLimit is the retried count at which asynq archives t by itself on
// a failed attempt: asynq's MaxRetry for a task with a cioq budget
// (tasks.AsynqMaxRetry: never in practice), the budget itself for one
// without.
func (t *Task) asynqLimit() int {
	if t.budgeted {
		return t.asynqMaxRetry
	}
	return t.MaxRetry
}

// budgetSpent reports whether t's retry budget is used up, so that a
// transient failure now is retried only while the retry window is open.
// With a cioq budget n, the first n transient failures are retried (n+1
// attempts). Without one, asynq would archive the task on the failure after
// its n-th retry, whatever that failure is: the worker stops spending one
// retry earlier (n attempts, at least 1) so that a 429 or a credentials
// failure on the last attempt is still retried.
func (t *Task) budgetSpent() bool {
	if t.budgeted {
		return t.Retried >= t.MaxRetry
	}
	return t.Retried+1 >= t.MaxRetry
}

// attemptsAllowed is how many attempts t's retry budget allows, in the unit
// of DeadLetter.Attempts (see budgetSpent).
func (t *Task) attemptsAllowed() int {
	if t.budgeted {
		return t.MaxRetry + 1
	}
	return max(t.MaxRetry, 1)
}

// succeeded is the decision for a delivered task.
func (p policy) succeeded(t *Task, api customerio.API, now time.Time) decision {
	d := decision{kind: decideSuccess, api: api}
	if t.Envelope != nil {
		if enq, ok := t.Envelope.Enqueued(); ok {
			d.latency = now.Sub(enq)
		}
	}
	return d
}

// deadLettered is a dead-letter decision.
func deadLettered(class DeadLetterClass, status int, msg, text string) decision {
	return decision{kind: decideDeadLetter, class: class, status: status, message: msg, text: text}
}

// windowPassed reports whether the task's retry window (its type's
// RetryWindow since enqueued_at, or since a DLQ retry) has passed at now. A
// task without a known start (a bare payload) has only its retry budget.
func (p policy) windowPassed(t *Task, o outcome, now time.Time) bool {
	window := tasks.DefaultRetryWindow
	if spec, ok := tasks.Lookup(t.Type); ok && spec.Defaults.RetryWindow > 0 {
		window = spec.Defaults.RetryWindow
	}
	start := o.windowStart
	if start.IsZero() && t.Envelope != nil {
		start, _ = t.Envelope.Enqueued()
	}
	if start.IsZero() {
		return true
	}
	return now.Sub(start) >= window
}

// workspaceOf is t's workspace ("" = default, also when it did not decode).
func workspaceOf(t *Task) string {
	if t.Envelope == nil {
		return ""
	}
	return t.Envelope.Workspace
}
