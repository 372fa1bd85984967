package producer

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/redisack"
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
	ordering  bool              // WithOrdering
	acks      redisack.Settings // WithReplicas
	shards    int               // WithShards; 0 or 1: none
	rr        shardState        // WithShards' round robin

	keySecret *string               // WithKeySecret; nil: the deployment's, in Redis
	keys      atomic.Pointer[keyer] // set once the secret is known
	keysMu    sync.Mutex            // serializes reading the secret from Redis

	// known is the set of Workspaces ("" = the default workspace); nil
	// when the option was not given (any well-formed name is accepted).
	known map[string]bool

	contracts *contracts.Set // WithContracts; nil: none

	published sync.Map // queue -> true: added to asynq's set of queues (asynqwire.go)
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

// Workspaces tells the client which workspaces the workers are configured
// with (the binary takes them from CIOQ_WORKSPACES_FILE). A task naming
// another one is then refused with an *UnknownWorkspaceError naming it,
// and nothing reaches Redis; a worker would only keep it until its retry
// window passed. The default workspace ("" or "default") is always known.
// Without this option any well-formed name is accepted.
func Workspaces(names ...string) Option {
	return func(c *Client) {
		if c.known == nil {
			c.known = map[string]bool{"": true}
		}
		for _, n := range names {
			c.known[canonicalWorkspace(n)] = true
		}
	}
}

// WithContracts checks every task against the workspace's contracts
// before it is enqueued (package contracts: the template a send names and
// the message_data variables it needs, declared attribute types, event
// timestamps). A task a contract refuses is a *contracts.Error, which
// unwraps to a *ValidationError naming the first field, and nothing
// reaches Redis; a value a contract coerces ("1000" → 1000) is enqueued
// coerced (EnqueueRaw writes it into the payload's bytes). Check and
// CheckPayload apply the contracts too. A nil set checks nothing.
func WithContracts(set *contracts.Set) Option {
	return func(c *Client) { c.contracts = set }
}

// Contracts returns the contracts the client checks tasks against
// (WithContracts), nil when none.
func (c *Client) Contracts() *contracts.Set { return c.contracts }

// canonicalWorkspace maps "default" to "", the default workspace's name
// in envelopes.
func canonicalWorkspace(w string) string {
	if w == "default" {
		return ""
	}
	return w
}

// UnknownWorkspaceError is the error for a task naming a workspace the
// client was not given in Workspaces (see there). It unwraps to a
// *ValidationError of field "workspace", so code handling validation
// errors handles it too.
type UnknownWorkspaceError struct {
	// Workspace is the name as given.
	Workspace string
	// Known lists the configured workspaces, sorted ("default" for the
	// default workspace).
	Known []string
}

// Error returns the text of the *ValidationError it unwraps to.
func (e *UnknownWorkspaceError) Error() string { return e.validation().Error() }

// Unwrap returns the *ValidationError of field "workspace".
func (e *UnknownWorkspaceError) Unwrap() error { return e.validation() }

func (e *UnknownWorkspaceError) validation() *ValidationError {
	return &ValidationError{Field: "workspace", Reason: fmt.Sprintf("%q is not a configured workspace (configured: %s)", e.Workspace, strings.Join(e.Known, ", "))}
}

// CheckWorkspace checks a workspace name as an enqueue would: a
// *ValidationError for a malformed name, an *UnknownWorkspaceError for one
// the client was not given in Workspaces, nil otherwise ("" and "default"
// are the default workspace).
func (c *Client) CheckWorkspace(name string) error {
	if err := validWorkspace(name); err != nil {
		return err
	}
	if c.known == nil || c.known[canonicalWorkspace(name)] {
		return nil
	}
	known := make([]string, 0, len(c.known))
	for n := range c.known {
		if n == "" {
			n = "default"
		}
		known = append(known, n)
	}
	sort.Strings(known)
	return &UnknownWorkspaceError{Workspace: name, Known: known}
}

// New connects to the Redis of redisURL (redis://, rediss://,
// redis-socket://, redis-sentinel:// or redis-cluster://, see
// internal/redisconf). Errors name REDIS_URL and never contain the
// password. Close releases the connection.
func New(redisURL string, opts ...Option) (*Client, error) {
	conn, err := redisconf.Parse(redisURL)
	if err != nil {
		return nil, err
	}
	c := newClient(opts)
	if c.acks.On() {
		// A WAIT may block for its timeout: read its answer in time.
		conn = redisconf.ReadTimeoutAtLeast(conn, c.acks.ReadTimeout())
	}
	rdb, err := redisconf.UniversalClient(conn)
	if err != nil {
		return nil, err
	}
	c.init(rdb, false)
	c.ownsRedis = true
	return c, nil
}

// NewFromRedis uses an existing go-redis client, which the caller keeps
// owning: Close does not close it. With WithReplicas it adds a hook to
// rdb (see there).
func NewFromRedis(rdb redis.UniversalClient, opts ...Option) *Client {
	c := newClient(opts)
	c.init(rdb, true)
	return c
}

// newClient applies the options to a client without Redis.
func newClient(opts []Option) *Client {
	c := &Client{retention: DefaultIdempotencyWindow}
	for _, o := range opts {
		o(c)
	}
	return c
}

// init gives c its Redis client (used: rdb may have run commands already)
// and checks the options, panicking on an invalid one.
func (c *Client) init(rdb redis.UniversalClient, used bool) {
	c.rdb = rdb
	c.ac = asynq.NewClientFromRedisClient(rdb)
	c.insp = asynq.NewInspectorFromRedisClient(rdb)
	if err := c.acks.Check(); err != nil {
		panic(fmt.Sprintf("producer: WithReplicas: %v", err))
	}
	if c.acks.On() {
		if err := c.acks.CheckClient(rdb); err != nil {
			panic(fmt.Sprintf("producer: WithReplicas: %v", err))
		}
		if err := c.installAcks(rdb, used); err != nil {
			panic(fmt.Sprintf("producer: WithReplicas: %v", err))
		}
	}
	if err := validWorkspace(c.workspace); err != nil {
		panic(fmt.Sprintf("producer: WithDefaultWorkspace: %v", err))
	}
	if c.shards != 0 {
		if err := CheckShards(c.shards); err != nil {
			panic(fmt.Sprintf("producer: WithShards: %v", err))
		}
	}
	if c.keySecret != nil {
		if err := CheckKeySecret(*c.keySecret); err != nil {
			panic(fmt.Sprintf("producer: WithKeySecret: the secret %v", err))
		}
		c.keys.Store(newKeyer([]byte(*c.keySecret)))
	}
}

// Close releases the Redis connection when New opened it.
func (c *Client) Close() error {
	if c.ownsRedis {
		return c.rdb.Close()
	}
	return nil
}

// Redis returns the client the producer enqueues through (its own when New
// opened it: Close closes it). Code that keeps records next to the tasks,
// such as the ingest front door's dedupe records, uses it.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

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
	// Queue is the asynq queue: with WithShards, the logical queue's
	// shard (internal/shard names it; its Logical gives the logical queue).
	Queue string
	// Type is the task type, e.g. tasks.TypeSendEmail.
	Type string
	// Duplicate is true when the idempotency key was already taken: nothing
	// was enqueued and the receipt describes the first task.
	Duplicate bool
	// Operations is how many operations the task carries, in receipts of
	// EnqueueBatch (a cio:batch task holds several; a task of its own,
	// 1); 0 elsewhere.
	Operations int
}
