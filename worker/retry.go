package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"
)

// BackoffConfig is the exponential backoff of transient failures:
// attempt n (0-based) waits a uniformly random time in
// [0, min(Cap, Base·2ⁿ)] ("full jitter"). A Retry-After from Customer.io
// replaces it.
type BackoffConfig struct {
	// Base is the first nominal delay (default 1 s).
	Base time.Duration
	// Cap bounds the nominal delay (default 10 min).
	Cap time.Duration
}

func (b BackoffConfig) withDefaults() BackoffConfig {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Cap <= 0 {
		b.Cap = 10 * time.Minute
	}
	if b.Cap < b.Base {
		b.Cap = b.Base
	}
	return b
}

// Nominal returns the un-jittered delay of retry n: min(Cap, Base·2ⁿ),
// computed with cenkalti/backoff's exponential schedule.
func (b BackoffConfig) Nominal(n int) time.Duration {
	b = b.withDefaults()
	eb := &backoff.ExponentialBackOff{
		InitialInterval:     b.Base,
		RandomizationFactor: 0,
		Multiplier:          2,
		MaxInterval:         b.Cap,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	eb.Reset()
	d := eb.NextBackOff()
	for i := 0; i < n && d < b.Cap; i++ {
		d = eb.NextBackOff()
	}
	return d
}

// Delay returns the jittered delay of retry n.
func (b BackoffConfig) Delay(n int) time.Duration {
	nom := b.Nominal(n)
	return time.Duration(rand.Int64N(int64(nom) + 1))
}

// retryError is what the worker's handler returns for a task that should be
// tried again: the decision travels to asynq's IsFailure and RetryDelayFunc
// inside the error, so the policy lives in one place (classify, policy.go).
// Middleware may return one too (RetryLater): classify takes its decision
// as it is.
type retryError struct {
	err error
	// class is the retry's reason.
	class  RetryReason
	status int
	// delay is the wait before the next attempt; 0 = the backoff schedule.
	delay time.Duration
	// spend: this failure uses up one retry of the task's budget.
	spend bool
	// counted: asynq counts the failure although it does not spend the
	// budget (the decision's counted).
	counted bool
	// reason explains the decision, for logs.
	reason string
}

func (e *retryError) Error() string {
	if e.err == nil {
		return string(e.class) + ": " + e.reason
	}
	return e.err.Error()
}

func (e *retryError) Unwrap() error { return e.err }

// RetryLater returns an error that makes the worker try the task again
// after d without spending its retry budget. Middleware (rate limiting,
// batching) returns it to snooze a task; cause may be nil.
func RetryLater(d time.Duration, cause error) error {
	return &retryError{err: cause, class: RetrySnoozed, delay: d, reason: "snoozed by middleware"}
}

// isFailure is asynq's IsFailure, which decides whether asynq counts a
// retried failure in the task's retried count (the count RetryDelayFunc's
// backoff follows, and the count that spends the retry budget): a
// retryError says itself (it spends the budget, or is counted past it);
// anything else (a lease lost after a crash, a deadline that asynq saw
// before the handler returned, a panic asynq recovered) counts.
func isFailure(err error) bool {
	var re *retryError
	if errors.As(err, &re) {
		return re.spend || re.counted
	}
	return true
}

// retryDelay returns asynq's RetryDelayFunc: a retryError's own delay
// (Retry-After, the auth delay) or the backoff schedule, rounded up so the
// retry never runs earlier than decided (asynq stores retry times in whole
// seconds, truncating).
func retryDelay(b BackoffConfig, now func() time.Time) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var d time.Duration
		var re *retryError
		if errors.As(err, &re) && re.delay > 0 {
			d = re.delay
		} else {
			d = b.Delay(n)
		}
		return roundUpToSecond(now(), d)
	}
}

// roundUpToSecond returns d' ≥ d such that now+d' falls on a whole second:
// asynq truncates the retry time to unix seconds, which would otherwise
// make the retry up to a second early.
func roundUpToSecond(now time.Time, d time.Duration) time.Duration {
	at := now.Add(d)
	if at.Truncate(time.Second).Equal(at) {
		return d
	}
	return at.Truncate(time.Second).Add(time.Second).Sub(now)
}

// deadLetterError is returned (wrapping asynq.SkipRetry) once a task has
// been recorded in the dead-letter store, so asynq archives it at once.
type deadLetterError struct {
	class  DeadLetterClass
	status int
	msg    string
}

func (e *deadLetterError) Error() string {
	s := "dead-lettered (" + string(e.class)
	if e.status != 0 {
		s += fmt.Sprintf(", status %d", e.status)
	}
	s += ")"
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

func (e *deadLetterError) Unwrap() error { return asynq.SkipRetry }
