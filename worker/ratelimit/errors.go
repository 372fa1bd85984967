package ratelimit

import (
	"fmt"
	"time"
)

// WaitTooLongError is returned by Wait when the next free slot is further
// away than the caller was willing to wait (maxWait, or the time left before
// ctx's deadline). No slot was consumed: the caller should try again after
// ComeBack (its turn among the callers turned away; see Result), for
// example by rescheduling its task.
type WaitTooLongError struct {
	Key        string        // the limiter key
	RetryAfter time.Duration // when the next slot is expected to be free
	ComeBack   time.Duration // when to try again
}

// Error returns "ratelimit: <key>: next slot in <RetryAfter>".
func (e *WaitTooLongError) Error() string {
	return fmt.Sprintf("ratelimit: %s: next slot in %s", e.Key, e.RetryAfter)
}
