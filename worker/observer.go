package worker

import "time"

// Observer is told about every outcome the worker produces, so metrics (or
// anything else) can be plugged in without touching the handlers. Methods
// are called from handler goroutines concurrently and must not block.
type Observer interface {
	// Delivered: Customer.io accepted the task. latency runs from the
	// task's enqueued_at (0 when unknown) to now.
	Delivered(taskType, queue, workspace string, latency time.Duration)
	// Retried: the task failed and will be tried again. reason is
	// RetryTransient, RetryThrottled (429, not spending the retry budget),
	// RetryAuth, or RetrySnoozed (a wait, not a failure: a rate limit, a
	// person's earlier task); status is the HTTP status (0 for network
	// errors).
	Retried(taskType string, reason RetryReason, status int)
	// DeadLettered: the task was moved to the dead-letter store.
	DeadLettered(taskType string, class DeadLetterClass)
	// Expired: the task passed its expires_at and was dead-lettered unsent
	// (DeadLettered is called too).
	Expired(taskType string)
	// Response: one call to Customer.io ended (a v2 batch request counts
	// once, whatever the number of tasks it carried). statusClass is "2xx",
	// "429", "4xx" (other than 429), "5xx" or "error" (no HTTP response:
	// network error, timeout, missing credentials).
	Response(api, statusClass string, d time.Duration)
	// RateLimitWait: the shared rate limiter made a request of api
	// ("track", "app", "transactional", "broadcast") wait d before it was
	// sent, or, when rescheduled, put the task back in the queue for d
	// instead of waiting.
	RateLimitWait(api, workspace string, d time.Duration, rescheduled bool)
	// OrderingWait: a task of a person in an ordered workspace waited d
	// (since it was enqueued) for the person's earlier tasks; gaveUp when it
	// went ahead without some of them: they left the queue without being
	// recorded as finished (deleted, archived), or no task in Redis held
	// their numbers for Ordering.MaxWait (see Ordering).
	OrderingWait(workspace string, d time.Duration, gaveUp bool)
	// AuthFailure: a call was refused for lack of valid credentials.
	AuthFailure(api, workspace string)
	// RecoveryPulled: api recovered in workspace after a run of transient
	// failures and this process pulled n retrying tasks forward (see
	// Recovery).
	RecoveryPulled(api, workspace string, n int)
	// StuckTask: a task asynq could neither process nor recover was moved
	// from its queue to the dead-letter store (Config.StuckCheckInterval);
	// reason is "undecodable" (its asynq message does not decode) or
	// "no_task_data" (an id without a message).
	StuckTask(queue, reason string)
}

// NopObserver is an Observer that does nothing; embed it to implement only
// some methods.
type NopObserver struct{}

// Delivered does nothing.
func (NopObserver) Delivered(string, string, string, time.Duration) {}

// Retried does nothing.
func (NopObserver) Retried(string, RetryReason, int) {}

// DeadLettered does nothing.
func (NopObserver) DeadLettered(string, DeadLetterClass) {}

// Expired does nothing.
func (NopObserver) Expired(string) {}

// Response does nothing.
func (NopObserver) Response(string, string, time.Duration) {}

// RateLimitWait does nothing.
func (NopObserver) RateLimitWait(string, string, time.Duration, bool) {}

// OrderingWait does nothing.
func (NopObserver) OrderingWait(string, time.Duration, bool) {}

// AuthFailure does nothing.
func (NopObserver) AuthFailure(string, string) {}

// RecoveryPulled does nothing.
func (NopObserver) RecoveryPulled(string, string, int) {}

// StuckTask does nothing.
func (NopObserver) StuckTask(string, string) {}
