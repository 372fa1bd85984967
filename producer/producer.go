package producer

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/redisconf"
)

// DefaultIdempotencyWindow is how long a keyed task is kept after it
// completes, so its idempotency key keeps deduplicating (asynq Retention).
const DefaultIdempotencyWindow = 24 * time.Hour

// ValidationError is the error for a task refused before it reached Redis:
// a payload breaking Customer.io's rules, or a bad option. Field names the
// offending field (the payload's JSON name, or the option: "workspace",
// "queue", "idempotency_key", "expires_at", "max_retry", "timeout", "type",
// "payload"); the text never contains the value. It is the customerio
// client's own type, so one errors.As serves both.
type ValidationError = customerio.ValidationError

// Client enqueues Customer.io tasks into Redis. It is safe for concurrent
// use.
type Client struct {
	ac        *asynq.Client
	insp      *asynq.Inspector
	rdb       redis.UniversalClient
	ownsRedis bool
	retention time.Duration
	workspace string
	ordering  bool // WithOrdering

	keySecret *string               // WithKeySecret; nil: the deployment's, in Redis
	keys      atomic.Pointer[keyer] // set once the secret is known
	keysMu    sync.Mutex            // serializes reading the secret from Redis
}

// Option configures a Client.
type Option func(*Client)

// WithIdempotencyWindow sets how long a task enqueued with an
// IdempotencyKey is kept after it completes (default 24 h). The key
// deduplicates from the moment it is enqueued until window after the task
// completed; archived (dead-lettered) tasks keep it until they are deleted.
func WithIdempotencyWindow(window time.Duration) Option {
	return func(c *Client) {
		if window > 0 {
			c.retention = window
		}
	}
}

// WithDefaultWorkspace sets the workspace of tasks enqueued without a
// Workspace option ("" = Customer.io's default workspace). New and
// NewFromRedis panic on an invalid name; check it with
// tasks.ValidateWorkspace first when it comes from configuration.
func WithDefaultWorkspace(workspace string) Option {
	return func(c *Client) { c.workspace = workspace }
}

// New connects to the Redis of redisURL (redis://, rediss://,
// redis-socket://, redis-sentinel:// or redis-cluster://, see
// internal/redisconf). Errors name REDIS_URL and never contain the
// password. Close releases the connection.
func New(redisURL string, opts ...Option) (*Client, error) {
	rdb, err := redisconf.NewClient(redisURL)
	if err != nil {
		return nil, err
	}
	c := NewFromRedis(rdb, opts...)
	c.ownsRedis = true
	return c, nil
}

// NewFromRedis uses an existing go-redis client, which the caller keeps
// owning: Close does not close it.
func NewFromRedis(rdb redis.UniversalClient, opts ...Option) *Client {
	c := &Client{
		ac:        asynq.NewClientFromRedisClient(rdb),
		insp:      asynq.NewInspectorFromRedisClient(rdb),
		rdb:       rdb,
		retention: DefaultIdempotencyWindow,
	}
	for _, o := range opts {
		o(c)
	}
	if err := validWorkspace(c.workspace); err != nil {
		panic(fmt.Sprintf("producer: WithDefaultWorkspace: %v", err))
	}
	if c.keySecret != nil {
		if err := CheckKeySecret(*c.keySecret); err != nil {
			panic(fmt.Sprintf("producer: WithKeySecret: the secret %v", err))
		}
		c.keys.Store(newKeyer([]byte(*c.keySecret)))
	}
	return c
}

// Close releases the Redis connection when New opened it.
func (c *Client) Close() error {
	if c.ownsRedis {
		return c.rdb.Close()
	}
	return nil
}

// Ping checks that Redis answers.
func (c *Client) Ping() error { return c.ac.Ping() }

// Receipt says where a task went.
type Receipt struct {
	// TaskID is the asynq task id: with an idempotency key, the key's
	// keyed hash (see Client.TaskIDForKey), never the key itself, so it is
	// safe to log; otherwise asynq's random id.
	TaskID string
	// Key is the idempotency key as the caller gave it ("" without one).
	// It may name a person: keep it out of logs (log TaskID instead).
	Key string
	// Queue is the asynq queue.
	Queue string
	// Type is the task type, e.g. tasks.TypeSendEmail.
	Type string
	// Duplicate is true when the idempotency key was already taken: nothing
	// was enqueued and the receipt describes the first task.
	Duplicate bool
}
