package worker

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
