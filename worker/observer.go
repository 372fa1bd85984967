package worker

import "time"

// Observer is told about every outcome the worker produces, so metrics (or
// anything else) can be plugged in without touching the handlers. Methods
// are called from handler goroutines concurrently and must not block.
type Observer interface {
	// Delivered: Customer.io accepted the task. latency runs from the
	// task's enqueued_at (0 when unknown) to now.
	Delivered(taskType, queue, workspace string, latency time.Duration)
	// Retried: the task failed and will be tried again. class is
	// "transient", "throttled" (429, not spending the retry budget) or
	// "auth"; status is the HTTP status (0 for network errors).
	Retried(taskType, class string, status int)
	// DeadLettered: the task was moved to the dead-letter store.
	DeadLettered(taskType string, class Class)
	// Expired: the task passed its expires_at and was dead-lettered unsent
	// (DeadLettered is called too).
	Expired(taskType string)
	// Response: one call to Customer.io ended. statusClass is "2xx",
	// "4xx", "5xx" or "error" (no HTTP response: network error, timeout,
	// missing credentials).
	Response(api, statusClass string, d time.Duration)
	// AuthFailure: a call was refused for lack of valid credentials.
	AuthFailure(api, workspace string)
}

// NopObserver is an Observer that does nothing; embed it to implement only
// some methods.
type NopObserver struct{}

// Delivered does nothing.
func (NopObserver) Delivered(string, string, string, time.Duration) {}

// Retried does nothing.
func (NopObserver) Retried(string, string, int) {}

// DeadLettered does nothing.
func (NopObserver) DeadLettered(string, Class) {}

// Expired does nothing.
func (NopObserver) Expired(string) {}

// Response does nothing.
func (NopObserver) Response(string, string, time.Duration) {}

// AuthFailure does nothing.
func (NopObserver) AuthFailure(string, string) {}
