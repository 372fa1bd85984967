package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker/batch"
	"github.com/cioq/cioq/worker/ratelimit"
)

// Defaults of Config's zero fields.
const (
	DefaultConcurrency        = 10
	DefaultPollInterval       = 20 * time.Millisecond
	DefaultDelayedPoll        = time.Second
	DefaultShutdownTimeout    = 10 * time.Second
	DefaultAuthRetryDelay     = 30 * time.Second
	DefaultSendDedupeTTL      = 7 * 24 * time.Hour
	DefaultReconcileInterval  = time.Minute
	DefaultAuthLogInterval    = time.Minute
	DefaultStuckCheckInterval = time.Minute
)

// redisBufferSize is the read and write buffer of each of the worker's
// Redis connections.
const redisBufferSize = 4 << 10

// DefaultQueues are the queue weights used when Config.Queues is nil.
func DefaultQueues() map[string]int {
	return map[string]int{tasks.QueueCritical: 6, tasks.QueueDefault: 3, tasks.QueueBulk: 1}
}

// Config configures a Worker. The zero value of every field but Redis is
// its documented default.
type Config struct {
	// Redis is where the queues live (required).
	Redis asynq.RedisConnOpt
	// Workspaces maps a workspace name to its Customer.io client
	// configuration; "" is the default workspace (a task naming "default"
	// is delivered with it too). A task naming an API the workspace has no
	// key for is kept and retried every AuthRetryDelay (and Health fails)
	// until configured; so is a task naming a workspace that is not here,
	// until its retry window has passed: then it is dead-lettered with class
	// DeadLetterConfig.
	Workspaces map[string]customerio.Config
	// Concurrency is the number of tasks processed at once (default 10).
	Concurrency int
	// Queues maps queue names to weights (default critical=6, default=3, bulk=1).
	Queues map[string]int
	// Shards splits each queue of Queues into that many asynq queues
	// (1 to 16; default 1: the plain names), as producer.WithShards does,
	// each with the queue's weight; the worker also serves the queues of
	// an earlier count that still hold tasks (see shards.go).
	Shards int
	// PollInterval is how often an idle worker looks for new tasks
	// (asynq's TaskCheckInterval; asynq's default is 1 s, cioq's 20 ms).
	PollInterval time.Duration
	// DelayedPollInterval is how often scheduled and retry tasks are
	// moved to their queue (asynq's DelayedTaskCheckInterval; default 1 s).
	DelayedPollInterval time.Duration
	// ShutdownTimeout is how long Shutdown lets in-flight tasks finish
	// before asynq puts them back in their queue (default 10 s).
	ShutdownTimeout time.Duration
	// Backoff is the schedule of transient retries (default 1 s doubling to 10 min).
	Backoff BackoffConfig
	// AuthRetryDelay is the wait before retrying a task refused for lack
	// of valid credentials (default 30 s). Such retries never spend the
	// task's retry budget.
	AuthRetryDelay time.Duration
	// SendDedupeTTL is how long a transactional send or broadcast trigger
	// is remembered so a retry of the same task does not send it again
	// (default 7 days).
	SendDedupeTTL time.Duration
	// ReconcileInterval is how often tasks asynq archived by itself are
	// copied into the dead-letter store (default 1 min; also run at Start).
	ReconcileInterval time.Duration
	// AuthLogInterval is how often a persisting credentials problem of one
	// workspace and API is logged (default 1 min).
	AuthLogInterval time.Duration
	// ProbeInterval is how often the worker checks each configured
	// workspace's Track and App credentials with a cheap authenticated read
	// (GET /api/v1/accounts/region, GET /v1/transactional), through the
	// shared rate limiter, starting at Start (default 5 min; negative: never).
	// A refusal (401) makes Health fail until a probe or a delivery of that
	// workspace and API succeeds; a transient failure changes nothing.
	// Pipelines credentials cannot be probed (see Checks).
	ProbeInterval time.Duration
	// KeptCheckInterval is how often the worker looks up the tasks it kept
	// for lack of valid credentials, so that Health stops failing for a
	// workspace and API once none of them is waiting any more (deleted,
	// delivered or dead-lettered elsewhere) (default 30 s).
	KeptCheckInterval time.Duration
	// Logger receives the worker's and asynq's logs (default slog.Default()).
	Logger *slog.Logger
	// Observer is told about outcomes, for metrics (default NopObserver).
	Observer Observer
	// Middleware wraps the delivery of every task, first element
	// outermost. It runs after the task was decoded, validated and checked
	// for expiry ([Decoded] gives the decoded task), and its errors go
	// through the same retry policy as Customer.io's (return [RetryLater]
	// to snooze a task without spending its retry budget).
	Middleware []func(asynq.Handler) asynq.Handler
	// RateLimits are the Customer.io rate limits all worker processes on
	// this Redis enforce together (default: on, Customer.io's documented
	// limits; see RateLimits).
	RateLimits RateLimits
	// Batching sends person, object and relationship operations through
	// Track v2 batch requests (default: on for every batchable type).
	Batching Batching
	// Ordering delivers each person's tasks in enqueue order in the
	// workspaces it lists (default: none).
	Ordering Ordering
	// Recovery pulls the retrying tasks of a workspace and API forward
	// when that API recovers from an outage (default: on; see Recovery).
	Recovery Recovery
	// StuckCheckInterval is how often one worker process looks for tasks
	// asynq can no longer process or recover (a corrupt message, an id
	// without task data) and moves them to the dead-letter store (default
	// 1 min; also run at Start); see the package documentation.
	StuckCheckInterval time.Duration
	// Replicas, when above 0, makes the writes whose loss in a failover
	// would cost a duplicate or a loss wait until that many replicas have
	// them (Redis WAIT on the write's connection, at most ReplicaTimeout):
	// send records (a lost one sends a password reset twice) and dead
	// letters (see Replicas in the package documentation). Default 0: none.
	Replicas int
	// ReplicaTimeout bounds each such wait (default 1 s). The Redis
	// client's read timeout is raised to ReplicaTimeout+0.5 s if lower.
	ReplicaTimeout time.Duration
	// Status records the timelines of transactional sends and broadcast
	// triggers (default: on, kept 30 days; see StatusConfig).
	Status StatusConfig
	// TracerProvider, when set, traces every task's delivery and each of
	// its requests to Customer.io, continuing the trace the task was
	// enqueued in (see tracing.go); nil: no tracing and no cost (the trace
	// id a task carries is still logged).
	TracerProvider trace.TracerProvider
	// Contracts checks every task again after it was decoded and
	// validated, before delivery (package contracts; the producer checked
	// it at enqueue): a task enqueued before a contract changed is judged
	// by the contract in force. A refused one is dead-lettered as invalid
	// with the contract's reason, a value the contract coerces is
	// delivered coerced. Default: none.
	Contracts *contracts.Set
	// AnonymousMergeTTL is how long the worker remembers that an anonymous
	// visitor was merged into a person, once it delivered the merge (an
	// identify carrying anonymous_id, cio:merge_anonymous, a Pipelines
	// identify with userId and anonymousId, a Pipelines alias). An
	// anonymous event of that visitor delivered later is delivered as the
	// person's event, with the same event id: Customer.io merges only the
	// anonymous events it receives within five minutes of the identify,
	// so one delayed by a backlog or retries would otherwise be orphaned.
	// Default 30 days (Customer.io keeps anonymous events that long);
	// negative: off.
	AnonymousMergeTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Queues == nil {
		c.Queues = DefaultQueues()
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.DelayedPollInterval <= 0 {
		c.DelayedPollInterval = DefaultDelayedPoll
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.AuthRetryDelay <= 0 {
		c.AuthRetryDelay = DefaultAuthRetryDelay
	}
	if c.SendDedupeTTL <= 0 {
		c.SendDedupeTTL = DefaultSendDedupeTTL
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.AuthLogInterval <= 0 {
		c.AuthLogInterval = DefaultAuthLogInterval
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.KeptCheckInterval <= 0 {
		c.KeptCheckInterval = DefaultKeptCheckInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AnonymousMergeTTL == 0 {
		c.AnonymousMergeTTL = DefaultAnonymousMergeTTL
	}
	if c.RateLimits.MaxWait <= 0 {
		c.RateLimits.MaxWait = DefaultRateLimitMaxWait
	}
	if c.Ordering.MaxWait <= 0 {
		c.Ordering.MaxWait = DefaultOrderingMaxWait
	}
	if c.Ordering.Poll <= 0 {
		c.Ordering.Poll = DefaultOrderingPoll
	}
	if c.Ordering.ActiveWait <= 0 {
		c.Ordering.ActiveWait = DefaultOrderingActive
	}
	if c.Recovery.MinInterval <= 0 {
		c.Recovery.MinInterval = DefaultRecoveryMinInterval
	}
	if c.StuckCheckInterval <= 0 {
		c.StuckCheckInterval = DefaultStuckCheckInterval
	}
	c.Status = c.Status.withDefaults()
	return c
}

// Worker delivers cioq tasks from Redis to Customer.io.
type Worker struct {
	cfg       Config
	log       *slog.Logger
	obs       Observer
	rdb       redis.UniversalClient
	inspector *asynq.Inspector
	srv       *asynq.Server
	dlq       *DeadLetters
	handler   asynq.Handler
	queues    []string
	// logical is Config.Queues as given: the logical queues, before the
	// shards (shards.go).
	logical map[string]int

	limiter    *ratelimit.Limiter
	batchTypes map[string]bool
	// dequeue, when set, serves asynq's dequeues of all queues in one
	// round trip (dequeue.go).
	dequeue *dequeueHook
	// multiSem bounds the cio:batch tasks delivered at once (multi.go).
	multiSem chan struct{}
	// batchHook, when set (tests), runs in every batch request before it is sent.
	batchHook func(encoded []json.RawMessage)
	// returned, when set (tests), runs as each attempt's handler returns.
	returned func(t *Task, err error)

	mu          sync.Mutex
	clients     map[string]*customerio.Client
	authFail    map[authKey]*authState
	probes      map[authKey]*probeState
	batchers    map[string]*batch.Batcher
	batchClosed batch.Stats

	rec    recovery
	stuck  stuckCheck
	status *status.Store // nil: Config.Status.Off
	tracer trace.Tracer  // nil: Config.TracerProvider unset
	// locks serialize a task's dead-letter decisions with asynq's error
	// handler (deadline.go).
	locks taskLocks
	// orderWakes wake a person's tasks waiting in this process when one
	// of the person's tasks finishes here (ordering.go).
	orderMu    sync.Mutex
	orderWakes map[string]*orderWake

	stopOnce  sync.Once
	stop      chan struct{}
	reconcile sync.WaitGroup
	// bg runs the readiness loop (probes, kept tasks); probeNow asks it to
	// probe at once (after SetWorkspace).
	bg       sync.WaitGroup
	probeNow chan struct{}

	// jobs runs the worker's background jobs (recovery pulls); jobsCtx
	// ends at Shutdown.
	jobsMu     sync.Mutex
	jobs       sync.WaitGroup
	jobsCtx    context.Context
	jobsCancel context.CancelFunc
	jobsClosed bool
}

type authKey struct {
	workspace string
	api       customerio.API
}

// authState is a workspace and API with tasks kept for lack of valid
// credentials: the worker forgets it once none of them is waiting (see
// readiness.go).
type authState struct {
	since      time.Time
	reason     string
	lastLog    time.Time
	suppressed int
	// kept holds the kept tasks' ids (at most maxKeptIDs).
	kept map[string]keptTask
}

// New checks cfg and builds a Worker; nothing runs until Start.
func New(cfg Config) (*Worker, error) {
	if cfg.Redis == nil {
		return nil, errors.New("worker: Config.Redis is required")
	}
	cfg = cfg.withDefaults()
	for q, w := range cfg.Queues {
		if strings.TrimSpace(q) == "" || w < 1 {
			return nil, fmt.Errorf("worker: queue %q: weight must be a positive integer", q)
		}
	}
	w := &Worker{cfg: cfg}
	if cfg.TracerProvider != nil {
		w.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	clients := make(map[string]*customerio.Client, len(cfg.Workspaces))
	for name, cc := range cfg.Workspaces {
		c, err := customerio.New(w.clientConfig(cc))
		if err != nil {
			return nil, fmt.Errorf("worker: workspace %q: %w", name, err)
		}
		clients[name] = c
	}
	acks, redisOpt, err := replicaSettings(cfg)
	if err != nil {
		return nil, err
	}
	// 4 KiB connection buffers instead of go-redis's 32 KiB (see
	// redisconf.ClientWithBufferSize): the worker's memory, not its speed.
	rc, err := redisconf.ClientWithBufferSize(redisOpt, redisBufferSize)
	if err != nil {
		return nil, errors.New("worker: Config.Redis does not make a go-redis client")
	}
	if err := installAcks(rc, acks); err != nil {
		rc.Close()
		return nil, err
	}
	if err := checkShards(cfg.Shards); err != nil {
		rc.Close()
		return nil, err
	}
	logical := cfg.Queues
	cfg.Queues = shardQueues(rc, logical, cfg.Shards, cfg.Logger)
	slots := multiTasksAtOnce(cfg.Batching.MaxInFlight)
	dq := installDequeueHook(rc, cfg.Queues, cfg.Concurrency, slots+multiExtra)
	*w = Worker{
		dequeue:   dq,
		multiSem:  make(chan struct{}, slots),
		cfg:       cfg,
		logical:   logical,
		tracer:    w.tracer,
		log:       cfg.Logger,
		obs:       cfg.Observer,
		rdb:       rc,
		inspector: asynq.NewInspectorFromRedisClient(rc),
		clients:   clients,
		authFail:  map[authKey]*authState{},
		probes:    map[authKey]*probeState{},
		probeNow:  make(chan struct{}, 1),
		stop:      make(chan struct{}),
		batchers:  map[string]*batch.Batcher{},
		rec:       recovery{state: map[authKey]*recState{}},
	}
	w.jobsCtx, w.jobsCancel = context.WithCancel(context.Background())
	for name, l := range cfg.RateLimits.Workspaces {
		for _, lim := range []ratelimit.Limit{l.Track, l.App, l.Transactional, l.Broadcast} {
			if err := lim.Validate(); err != nil {
				return nil, fmt.Errorf("worker: rate limits of workspace %q: %w", name, err)
			}
		}
	}
	for _, lim := range []ratelimit.Limit{cfg.RateLimits.Default.Track, cfg.RateLimits.Default.App, cfg.RateLimits.Default.Transactional, cfg.RateLimits.Default.Broadcast} {
		if err := lim.Validate(); err != nil {
			return nil, fmt.Errorf("worker: rate limits: %w", err)
		}
	}
	if !cfg.RateLimits.Off {
		w.limiter = ratelimit.New(rc, cfg.RateLimits.Limiter)
	}
	w.batchTypes = cfg.Batching.enabled()
	for typ := range w.batchTypes {
		if !slices.Contains(BatchableTypes, typ) {
			return nil, fmt.Errorf("worker: batching: task type %q cannot be batched (see BatchableTypes)", typ)
		}
	}
	for q := range cfg.Queues {
		w.queues = append(w.queues, q)
	}
	sort.Strings(w.queues)
	w.dlq = NewDeadLetters(rc, w.inspector)
	w.dlq.now = cfg.Now
	w.dlq.acks = acks
	w.dlq.shards = cfg.Shards
	if !cfg.Status.Off {
		w.status = status.NewStore(rc, status.Options{TTL: cfg.Status.TTL, Metrics: cfg.Status.Metrics, Now: cfg.Now})
	}
	w.initProbes()

	var h asynq.Handler = asynq.HandlerFunc(w.deliver)
	for i := len(cfg.Middleware) - 1; i >= 0; i-- {
		h = cfg.Middleware[i](h)
	}
	w.handler = asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		return w.process(ctx, t, h)
	})
	w.srv = asynq.NewServerFromRedisClient(rc, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.DelayedPollInterval,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		RetryDelayFunc:           retryDelay(cfg.Backoff, cfg.Now),
		IsFailure:                isFailure,
		ErrorHandler:             asynq.ErrorHandlerFunc(w.handleError),
		Logger:                   NewAsynqLogger(cfg.Logger),
		LogLevel:                 asynq.WarnLevel,
	})
	return w, nil
}

// Handler returns the worker's task handler (decode, validate, policy,
// middleware, delivery), e.g. to serve it from another asynq server.
func (w *Worker) Handler() asynq.Handler { return w.handler }

// DLQ returns the dead-letter store.
func (w *Worker) DLQ() *DeadLetters { return w.dlq }

// Start starts processing in the background: asynq's server, the
// Start starts processing in the background: asynq's server, the
// dead-letter reconciler and the stuck-task check (both run once right
// away) and the readiness loop (credentials probes, right away and every
// ProbeInterval; the kept tasks check every KeptCheckInterval).
func (w *Worker) Start() error {
	if err := w.srv.Start(w.handler); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	w.reconcile.Add(2)
	go w.reconcileLoop()
	go w.stuckLoop()
	w.bg.Add(1)
	go w.readinessLoop()
	if w.status != nil && w.cfg.Status.PollAfter > 0 {
		w.bg.Add(1)
		go w.statusPollLoop()
	}
	return nil
}

// Run starts the worker, blocks until ctx is done, then shuts down
// gracefully.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Shutdown()
	return nil
}

// Shutdown stops fetching tasks, lets in-flight tasks finish for up to
// ShutdownTimeout and has asynq put the rest back in their queues (without
// spending a retry), then closes the Redis connections. Nothing is lost.
func (w *Worker) Shutdown() {
	w.stopOnce.Do(func() {
		close(w.stop)
		w.srv.Shutdown()
		w.requeuePrefetched()
		w.closeBatchers()
		w.reconcile.Wait()
		w.bg.Wait()
		w.jobsMu.Lock()
		w.jobsClosed = true
		w.jobsMu.Unlock()
		w.jobsCancel()
		w.jobs.Wait()
		w.inspector.Close()
		w.rdb.Close()
	})
}

// Health returns nil when the worker is healthy. It fails while Redis does
// not answer, while the last probe of a workspace's API was refused, and
// while tasks kept for lack of valid credentials (a 401, no key for the
// task's API, an unknown workspace) are still waiting: the error names the
// workspace and API, never a key. A failure clears once a call for that
// workspace and API succeeds; a kept-tasks failure also clears once none
// of the kept tasks is waiting any more (deleted, delivered or
// dead-lettered). Checks has the same findings one check at a time.
func (w *Worker) Health() error {
	var problems []string
	for _, c := range w.Checks() {
		if _, err := c.Run(); err != nil {
			if c.Name == "kept_tasks" {
				problems = append(problems, w.keptProblems()...)
				continue
			}
			problems = append(problems, err.Error())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.rdb.Ping(ctx).Err(); err != nil {
		problems = append([]string{"redis: " + err.Error()}, problems...)
	}
	if len(problems) == 0 {
		return nil
	}
	return &HealthError{Problems: problems}
}

// HealthError lists what makes the worker unhealthy.
type HealthError struct {
	Problems []string
}

// Error joins the problems.
func (e *HealthError) Error() string { return "worker unhealthy: " + strings.Join(e.Problems, "; ") }

func displayWS(ws string) string {
	if ws == "" {
		return "default"
	}
	return ws
}

// client returns the workspace's client, or nil when none is configured.
// "default" names the default workspace too.
func (w *Worker) client(ws string) *customerio.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.clients[ws]
	if c == nil && ws == "default" {
		c = w.clients[""]
	}
	return c
}

// SetWorkspace installs (or replaces) a workspace's Customer.io
// configuration while the worker runs, e.g. after a key was rotated. Tasks
// kept for lack of credentials are delivered at their next retry.
func (w *Worker) SetWorkspace(name string, cfg customerio.Config) error {
	c, err := customerio.New(w.clientConfig(cfg))
	if err != nil {
		return fmt.Errorf("worker: workspace %q: %w", name, err)
	}
	w.mu.Lock()
	w.clients[name] = c
	for k := range w.probes {
		if k.workspace == name {
			delete(w.probes, k) // found with the old configuration
		}
	}
	w.mu.Unlock()
	w.initProbes()
	select {
	case w.probeNow <- struct{}{}:
	default:
	}
	return nil
}

// authFailed records that task t of a workspace's API was kept for lack of
// valid credentials, logging at most once per AuthLogInterval.
func (w *Worker) authFailed(ws string, api customerio.API, reason string, t *Task) {
	now := w.cfg.Now()
	k := authKey{ws, api}
	w.mu.Lock()
	s := w.authFail[k]
	if s == nil {
		s = &authState{since: now}
		w.authFail[k] = s
	}
	s.reason = reason
	s.keep(t.ID, t.Queue, now)
	logIt := now.Sub(s.lastLog) >= w.cfg.AuthLogInterval
	suppressed := s.suppressed
	if logIt {
		s.lastLog = now
		s.suppressed = 0
	} else {
		s.suppressed++
	}
	w.mu.Unlock()
	w.obs.AuthFailure(string(api), ws)
	if logIt {
		w.log.Warn("customer.io credentials problem: tasks are kept and retried until it is fixed",
			"workspace", displayWS(ws), "api", string(api), "reason", reason,
			"retry_in", w.cfg.AuthRetryDelay, "similar_since_last_log", suppressed)
	}
}

// authOK records a delivery of a workspace's API: its credentials work, so
// neither kept tasks nor a refused probe count against it any more.
func (w *Worker) authOK(ws string, api customerio.API) {
	w.mu.Lock()
	_, was := w.authFail[authKey{ws, api}]
	delete(w.authFail, authKey{ws, api})
	if s := w.probes[authKey{ws, api}]; s != nil && s.refused != "" {
		s.refused, s.since = "", time.Time{}
		was = true
	}
	w.mu.Unlock()
	if was {
		w.log.Info("customer.io credentials work again", "workspace", displayWS(ws), "api", string(api))
	}
}

// background runs f in a goroutine that Shutdown waits for (its context
// ends at Shutdown); it reports false, running nothing, once Shutdown began.
func (w *Worker) background(f func(ctx context.Context)) bool {
	w.jobsMu.Lock()
	defer w.jobsMu.Unlock()
	if w.jobsClosed {
		return false
	}
	w.jobs.Add(1)
	go func() {
		defer w.jobs.Done()
		f(w.jobsCtx)
	}()
	return true
}
