package producer

import (
	"time"
)

// EnqueueOption adjusts one enqueue call.
type EnqueueOption func(*enqueueConfig)

type enqueueConfig struct {
	key       string
	processAt time.Time
	processIn time.Duration
	queue     string
	workspace *string
	expiresAt time.Time
	expiresIn time.Duration
	maxRetry  int // -1 = type default
	timeout   time.Duration
	batchSize int // EnqueueBatch's operations per task; 0 = default
}

// IdempotencyKey makes the task's id a keyed hash of key (Client.TaskIDForKey):
// enqueueing the same key again (in the same queue), from this process or
// any other of the deployment, enqueues nothing and returns the first
// task's receipt with Duplicate set, so the task is delivered once. The key
// stays taken while the task waits, runs or retries, and for the client's
// idempotency window (WithIdempotencyWindow, default 24 h) after it
// completes. Keys are 1 to 200 printable ASCII characters without spaces;
// they are not scoped by workspace or type, so make them specific
// ("order-12345:confirmation").
//
// A key may contain a person identifier ("welcome:user-123"): it becomes
// no id, log line or receipt of cioq's. It is kept in the task's envelope
// (tasks.Meta.IdempotencyKey), so it shows only where payloads are shown
// (`cioq dlq show --payload`, the dashboard's --show-payloads), and in the
// Receipt's Key for the caller.
func IdempotencyKey(key string) EnqueueOption {
	return func(c *enqueueConfig) { c.key = key }
}

// ProcessAt delays the task until t (a time in the past means now).
func ProcessAt(t time.Time) EnqueueOption {
	return func(c *enqueueConfig) { c.processAt, c.processIn = t, 0 }
}

// ProcessIn delays the task by d.
func ProcessIn(d time.Duration) EnqueueOption {
	return func(c *enqueueConfig) { c.processIn, c.processAt = d, time.Time{} }
}

// Queue overrides the type's default queue (tasks.QueueCritical,
// tasks.QueueDefault or tasks.QueueBulk; a worker must listen on it).
func Queue(name string) EnqueueOption {
	return func(c *enqueueConfig) { c.queue = name }
}

// Workspace names the Customer.io workspace that delivers the task
// ([a-z0-9_-]{1,64}; "" or "default" = the default workspace). A client
// given Workspaces refuses a name not among them.
func Workspace(name string) EnqueueOption {
	return func(c *enqueueConfig) { c.workspace = &name }
}

// ExpiresAt makes the task stale at t: past it, the worker dead-letters it
// as expired instead of delivering it late. Meant for transactional sends (a
// password reset an hour late is worse than none); t must be in the future
// and not before the task's process time.
func ExpiresAt(t time.Time) EnqueueOption {
	return func(c *enqueueConfig) { c.expiresAt, c.expiresIn = t, 0 }
}

// ExpiresIn is ExpiresAt(now + d).
func ExpiresIn(d time.Duration) EnqueueOption {
	return func(c *enqueueConfig) { c.expiresIn, c.expiresAt = d, time.Time{} }
}

// MaxRetry overrides the type's retry budget (tasks.DefaultMaxRetry): the
// number of transient failures (5xx, timeouts, network errors) the worker
// retries, so a task is attempted at least n+1 times, and for at least its
// retry window, before it is dead-lettered as exhausted. 429s and
// credentials failures never spend it; 0 means no retry of a transient
// failure once the window has passed. The budget is sent in the task's
// tasks.HeaderRetryBudget header; asynq's own MaxRetry is
// tasks.AsynqMaxRetry, so asynq never archives the task by itself.
func MaxRetry(n int) EnqueueOption {
	return func(c *enqueueConfig) { c.maxRetry = n }
}

// Timeout overrides the type's per-attempt timeout (tasks.DefaultTimeout).
func Timeout(d time.Duration) EnqueueOption {
	return func(c *enqueueConfig) { c.timeout = d }
}
