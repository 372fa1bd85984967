package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioq/cioq/producer"
)

// Relay defaults (RelayConfig's zero values).
const (
	DefaultBatchSize    = 500
	DefaultConcurrency  = 16
	DefaultPollInterval = 2 * time.Second
	DefaultDedupWindow  = 15 * time.Minute
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Postgres is the connection string of the application's database
	// (the binary's CIOQ_OUTBOX_URL), e.g.
	// postgres://cioq_relay@db:5432/app?sslmode=require. Required.
	Postgres string
	// Schema is the outbox table's schema (DefaultSchema when empty).
	Schema string
	// Producer enqueues into Redis; its key secret (WithKeySecret, or the
	// deployment's in Redis) turns idempotency keys into task ids, as for
	// tasks the application enqueues directly. Required; the Relay does
	// not close it.
	Producer *producer.Client
	// BatchSize is how many rows one claim takes (DefaultBatchSize).
	BatchSize int
	// Concurrency is how many rows of a batch are enqueued into Redis at
	// once (DefaultConcurrency); 1 keeps id order exactly.
	Concurrency int
	// PollInterval is how often the relay looks for rows without being
	// notified, the safety net behind LISTEN/NOTIFY, and the longest pause
	// between attempts while Redis or PostgreSQL fails (DefaultPollInterval).
	PollInterval time.Duration
	// DedupWindow is how long Redis keeps a relayed task without
	// idempotency key after it completes, so that a row relayed again
	// after a crash between Redis's acceptance and the row's deletion is
	// refused as a duplicate (DefaultDedupWindow). Keyed tasks keep the
	// producer's idempotency window instead.
	DedupWindow time.Duration
	// Logger receives the relay's log lines (none when nil).
	Logger *slog.Logger
}

// Relay moves committed outbox rows into Redis: it claims them in id order
// in batches (FOR UPDATE SKIP LOCKED, so relays side by side share the
// work), enqueues each under its task id, and deletes the rows Redis
// accepted in the same transaction as the claim. A relay killed at any
// point loses no row (an uncommitted claim is rolled back) and makes no
// second task (a row relayed again is a duplicate task id). Redis down:
// the rows wait in PostgreSQL and Check fails until it is back.
type Relay struct {
	cfg  RelayConfig
	log  *slog.Logger
	pool *pgxpool.Pool

	claim, remove, fail, backlog string

	wake chan struct{}

	relayed, duplicates, failed, batches atomic.Int64

	mu      sync.Mutex
	lastErr error // the last attempt's failure, nil after a success
}

// NewRelay checks cfg and returns a Relay; it connects to PostgreSQL
// lazily (Run, Check), so it succeeds with the database down.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Postgres == "" {
		return nil, errors.New("outbox: relay: no PostgreSQL connection string")
	}
	if cfg.Producer == nil {
		return nil, errors.New("outbox: relay: no producer")
	}
	q, err := quoteSchema(cfg.Schema)
	if err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pc, err := pgxpool.ParseConfig(cfg.Postgres)
	if err != nil {
		// pgx's parse errors can quote the string, password included.
		return nil, errors.New("outbox: relay: the PostgreSQL connection string does not parse")
	}
	pc.MaxConns = int32(max(4, cfg.Concurrency/2))
	pc.ConnConfig.RuntimeParams["application_name"] = "cioq relay"
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: %w", err)
	}
	t := q + ".outbox"
	return &Relay{
		cfg: cfg, log: log, pool: pool,
		claim: "SELECT id, task_type, envelope, queue, idempotency_key, task_id, process_at, max_retry, timeout_ms FROM " + t +
			" WHERE failed IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
		remove: "DELETE FROM " + t + " WHERE id = ANY($1)",
		fail:   "UPDATE " + t + " SET failed = $2 WHERE id = $1",
		backlog: "SELECT count(*) FILTER (WHERE failed IS NULL), count(*) FILTER (WHERE failed IS NOT NULL), " +
			"COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at) FILTER (WHERE failed IS NULL)), 0)::float8 FROM " + t,
		wake: make(chan struct{}, 1),
	}, nil
}

// Close releases the relay's connections (after Run has returned).
func (r *Relay) Close() { r.pool.Close() }

// Stats are a relay's counters since it started.
type Stats struct {
	// Relayed is the number of rows enqueued into Redis and deleted.
	Relayed int64
	// Duplicates counts those whose task id Redis already held (a row
	// relayed again after a crash, or a key the application had used):
	// deleted, nothing enqueued.
	Duplicates int64
	// Failed counts rows Redis refused for good (marked, kept).
	Failed int64
	// Batches is the number of claims that found rows.
	Batches int64
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	return Stats{Relayed: r.relayed.Load(), Duplicates: r.duplicates.Load(), Failed: r.failed.Load(), Batches: r.batches.Load()}
}

// Backlog is what waits in the outbox table.
type Backlog struct {
	// Waiting is the number of rows not yet relayed (committed; rows a
	// relay holds in a claim included).
	Waiting int64
	// Failed is the number of rows marked failed (see the failed column).
	Failed int64
	// OldestAge is the age of the oldest waiting row (0 when none).
	OldestAge time.Duration
}

// Backlog counts the table's rows (one scan of a table that is small when
// the relay keeps up).
func (r *Relay) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var age float64
	if err := r.pool.QueryRow(ctx, r.backlog).Scan(&b.Waiting, &b.Failed, &age); err != nil {
		return Backlog{}, r.pgError(err)
	}
	b.OldestAge = time.Duration(age * float64(time.Second))
	return b, nil
}

// Check reports whether the relay can work: PostgreSQL answers and the
// last attempt to relay succeeded (Redis accepted the rows). Its error
// names what fails, never a row's data.
func (r *Relay) Check(ctx context.Context) error {
	if err := r.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", r.pgError(err))
	}
	r.mu.Lock()
	err := r.lastErr
	r.mu.Unlock()
	return err
}

func (r *Relay) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

// ErrNoTable is wrapped by the relay's errors while the outbox table does
// not exist (run `cioq outbox migrate`).
var ErrNoTable = errors.New("the outbox table does not exist (run `cioq outbox migrate`)")

// pgError maps a missing table to ErrNoTable.
func (r *Relay) pgError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") {
		return fmt.Errorf("%w: %s", ErrNoTable, pe.Message)
	}
	return err
}

// Run relays until ctx is done, then returns nil once the batch in flight
// has ended (committed, or rolled back and left to the next relay). It
// listens for the table's notifications on a connection of its own and
// polls every PollInterval besides; failures (PostgreSQL or Redis down)
// are logged and retried with backoff up to PollInterval, and Check
// reports them.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.listen(ctx) }()
	defer wg.Wait()
	backoff := 50 * time.Millisecond
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		err := r.drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		r.setErr(err)
		wait := r.cfg.PollInterval
		if err != nil {
			r.log.Warn("outbox relay: relaying failed; rows wait in PostgreSQL", "err", err, "retry_in", backoff)
			wait = backoff
			backoff = min(2*backoff, r.cfg.PollInterval)
		} else {
			backoff = 50 * time.Millisecond
		}
		poll.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// poke wakes Run (without blocking: one pending wake is enough).
func (r *Relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// listen keeps a LISTEN connection open, waking Run at each notification
// and after each (re)connection (rows may have come meanwhile).
func (r *Relay) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, &backoff)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("outbox relay: lost the notification connection; polling meanwhile", "err", r.pgError(err), "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *Relay) listenOnce(ctx context.Context, backoff *time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, r.cfg.Postgres)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		return err
	}
	*backoff = 100 * time.Millisecond
	r.poke()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		r.poke()
	}
}

// drain relays batches until one comes back short.
func (r *Relay) drain(ctx context.Context) error {
	for {
		n, err := r.batch(ctx)
		if err != nil || n < r.cfg.BatchSize {
			return err
		}
	}
}

// row is one claimed outbox row.
type row struct {
	id   int64
	p    producer.Prepared
	done bool  // Redis accepted it (or held it already)
	dup  bool  // Redis held it already
	bad  error // refused for good
}

// batchTimeout bounds one claim: PostgreSQL's and Redis's round trips.
const batchTimeout = 30 * time.Second

// batch claims up to BatchSize rows, enqueues them and deletes those Redis
// accepted, in one transaction. It returns the number of rows claimed.
func (r *Relay) batch(ctx context.Context) (int, error) {
	// The batch finishes what it started even when ctx ends: a commit cut
	// short only means a replay, but there is no reason to make one.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	if ctx.Err() != nil {
		return 0, nil
	}
	tx, err := r.pool.Begin(bctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", r.pgError(err))
	}
	defer tx.Rollback(context.Background())
	rows, err := r.claimRows(bctx, tx)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	r.batches.Add(1)
	redisErr := r.enqueue(bctx, rows)
	ids := make([]int64, 0, len(rows))
	var relayed, dups, failed int64
	for i := range rows {
		switch {
		case rows[i].done:
			ids = append(ids, rows[i].id)
		case rows[i].bad != nil:
			// The reason names a field and a rule, never a value.
			if _, err := tx.Exec(bctx, r.fail, rows[i].id, rows[i].bad.Error()); err != nil {
				return 0, fmt.Errorf("postgres: %w", r.pgError(err))
			}
			failed++
			r.log.Error("outbox relay: row refused for good; marked failed and kept", "id", rows[i].id, "type", rows[i].p.Type, "err", rows[i].bad)
		}
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(bctx, r.remove, ids); err != nil {
			return 0, fmt.Errorf("postgres: %w", r.pgError(err))
		}
	}
	if err := tx.Commit(bctx); err != nil {
		// Redis holds the tasks; the rows come back and are replayed as
		// duplicates.
		return 0, fmt.Errorf("postgres: commit: %w", r.pgError(err))
	}
	for i := range rows {
		if rows[i].done {
			relayed++
			if rows[i].dup {
				dups++
			}
		}
	}
	r.relayed.Add(relayed)
	r.duplicates.Add(dups)
	r.failed.Add(failed)
	if redisErr != nil {
		return len(rows), fmt.Errorf("redis: %w", redisErr)
	}
	return len(rows), nil
}

func (r *Relay) claimRows(ctx context.Context, tx pgx.Tx) ([]row, error) {
	q, err := tx.Query(ctx, r.claim, r.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", r.pgError(err))
	}
	defer q.Close()
	var rows []row
	for q.Next() {
		var x row
		var key, taskID *string
		var processAt *time.Time
		var timeoutMS int64
		if err := q.Scan(&x.id, &x.p.Type, &x.p.Envelope, &x.p.Queue, &key, &taskID, &processAt, &x.p.MaxRetry, &timeoutMS); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		if key != nil {
			x.p.Key = *key
		}
		if taskID != nil {
			x.p.TaskID = *taskID
		}
		if processAt != nil {
			x.p.ProcessAt = *processAt
		}
		x.p.Timeout = timeoutOf(timeoutMS)
		x.p.Retention = r.cfg.DedupWindow
		rows = append(rows, x)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %w", r.pgError(err))
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	return rows, nil
}

// enqueue hands rows to Redis, Concurrency at a time, taking them in id
// order. The first failure that is not the row's own fault stops the rest
// (Redis is down: no point waiting for each to time out) and is returned.
func (r *Relay) enqueue(bctx context.Context, rows []row) error {
	ectx, cancel := context.WithCancel(bctx)
	defer cancel()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, len(rows)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(rows) || ectx.Err() != nil {
					return
				}
				x := &rows[i]
				if x.p.Key == "" && x.p.TaskID == "" {
					x.bad = errors.New("row has neither idempotency_key nor task_id")
					continue
				}
				rc, err := r.cfg.Producer.EnqueuePrepared(ectx, x.p)
				var ve *producer.ValidationError
				switch {
				case err == nil:
					x.done = true
					x.dup = rc.Duplicate
				case errors.As(err, &ve):
					x.bad = err
				default:
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
