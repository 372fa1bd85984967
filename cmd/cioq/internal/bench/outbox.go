package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

type pgxTx = pgx.Tx

// benchSchema is the schema the outbox section creates (and drops) in the
// database of Options.Postgres.
const benchSchema = "cioq_bench"

func confirmationEmail(order string) tasks.SendEmail {
	return tasks.SendEmail{
		SendOptions: customerio.SendOptions{TransactionalMessageID: "order_confirmation",
			Identifiers: &customerio.Identifiers{ID: "user-1002"},
			MessageData: map[string]any{"order_id": order, "total": 59.98,
				"items": []map[string]any{{"name": "Product A", "quantity": 2, "price": 29.99}}}},
		To: "grace@example.com",
	}
}

// benchOutbox measures the transactional outbox: what writing a task costs
// inside the application's transaction next to a plain INSERT of the same
// row, how fast the relay moves rows into Redis next to the producer's own
// enqueue rate, and the commit → enqueued latency at 100 rows/s.
func benchOutbox(ctx context.Context, e *env, rep *Report) error {
	if e.opts.Postgres == "" {
		e.logf("bench: outbox: skipped (no CIOQ_OUTBOX_URL; `make bench` starts a PostgreSQL)")
		return nil
	}
	pool, err := pgxpool.New(ctx, e.opts.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	drop := func() error {
		_, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+benchSchema+" CASCADE")
		return err
	}
	if err := drop(); err != nil {
		return err
	}
	defer drop()
	ob, err := newOutboxBench(ctx, pool)
	if err != nil {
		return err
	}
	if err := ob.writeRow(ctx, e, rep); err != nil {
		return err
	}
	stopRelay, err := ob.relayRow(ctx, e, rep)
	if err != nil {
		return err
	}
	defer stopRelay() // the latency row measures through the same relay
	return ob.latencyRow(ctx, e, rep)
}

// outboxBench is the outbox section's PostgreSQL side: the schema with the
// outbox table, an orders table and a plain copy of the outbox table.
type outboxBench struct {
	pool   *pgxpool.Pool
	w      *outbox.Writer
	sample producer.Prepared

	mu   sync.Mutex
	next int
}

func newOutboxBench(ctx context.Context, pool *pgxpool.Pool) (*outboxBench, error) {
	if err := outbox.Migrate(ctx, pool, benchSchema); err != nil {
		return nil, err
	}
	for _, q := range []string{
		"CREATE TABLE " + benchSchema + ".orders (id text PRIMARY KEY, total numeric NOT NULL)",
		// The outbox table's columns, defaults and index, without its trigger.
		"CREATE TABLE " + benchSchema + ".plain (LIKE " + benchSchema + ".outbox INCLUDING ALL)",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return nil, err
		}
	}
	w, err := outbox.NewWriter(outbox.Config{Schema: benchSchema})
	if err != nil {
		return nil, err
	}
	sample, err := producer.NewPreparer().Prepare(confirmationEmail("ORD-0"))
	if err != nil {
		return nil, err
	}
	return &outboxBench{pool: pool, w: w, sample: sample}, nil
}

func (ob *outboxBench) orderID() string {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	ob.next++
	return "ORD-" + strconv.Itoa(ob.next)
}

// inTx runs one transaction that saves an order, then calls f (which
// writes its confirmation), then commits.
func (ob *outboxBench) inTx(ctx context.Context, f func(ctx context.Context, tx pgxTx, order string) error) error {
	tx, err := ob.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	order := ob.orderID()
	if _, err := tx.Exec(ctx, "INSERT INTO "+benchSchema+".orders (id, total) VALUES ($1, 59.98)", order); err != nil {
		return err
	}
	if err := f(ctx, tx, order); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// writeRow: transactions with the outbox write against a plain INSERT of
// the same row.
func (ob *outboxBench) writeRow(ctx context.Context, e *env, rep *Report) error {
	sample := ob.sample
	plainSQL := "INSERT INTO " + benchSchema + ".plain (task_type, envelope, queue, task_id, workspace, max_retry, timeout_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)"
	const g = 4
	res, err := interleave(ctx, e, e.opts.EnqueueDuration, enqueueRounds, g, []contender{
		{"plain INSERT", func(ctx context.Context, _ int) error {
			return ob.inTx(ctx, func(ctx context.Context, tx pgxTx, _ string) error {
				_, err := tx.Exec(ctx, plainSQL, sample.Type, string(sample.Envelope), sample.Queue, "o-01HZY8V4Q6W5M3K2J1N0P9R8S7", "", sample.MaxRetry, sample.Timeout.Milliseconds())
				return err
			})
		}},
		{"outbox SendEmail", func(ctx context.Context, _ int) error {
			return ob.inTx(ctx, func(ctx context.Context, tx pgxTx, order string) error {
				_, err := ob.w.Pgx(tx).SendEmail(ctx, confirmationEmail(order))
				return err
			})
		}},
	})
	if err != nil {
		return err
	}
	plain, out := res[0], res[1]
	rep.add(Row{Section: "outbox", Name: fmt.Sprintf("transactions with the outbox write, %d goroutines", g), Value: median(out), Unit: "tx/s",
		Baseline: median(plain), BaseName: "plain INSERT of the same row", Ratio: pairedRatio(out, plain),
		Note: fmt.Sprintf("each tx: INSERT order + the write, COMMIT; %d-byte envelope; the outbox adds validation, encoding and the NOTIFY trigger; test server with fsync off", len(sample.Envelope))})
	return nil
}

// relayRow: rows committed first, then one relay drains them, against the
// producer's own enqueue rate. The relay keeps running until stop.
func (ob *outboxBench) relayRow(ctx context.Context, e *env, rep *Report) (stop func(), err error) {
	stop = func() {}
	if _, err := ob.pool.Exec(ctx, "TRUNCATE "+benchSchema+".outbox"); err != nil {
		return stop, err
	}
	if err := e.flush(ctx); err != nil {
		return stop, err
	}
	prod := producer.NewFromRedis(e.rdb)
	base, err := rate(ctx, e.opts.EnqueueDuration, 8, func(ctx context.Context, i int) error {
		_, err := prod.SendEmail(ctx, confirmationEmail("ORD-P"+strconv.Itoa(i)))
		return err
	})
	if err != nil {
		return stop, err
	}
	if err := e.flush(ctx); err != nil {
		return stop, err
	}
	n := e.opts.Tasks
	if err := ob.commitRows(ctx, n); err != nil {
		return stop, err
	}
	rel, err := outbox.NewRelay(outbox.RelayConfig{Postgres: e.opts.Postgres, Schema: benchSchema, Producer: prod, Logger: e.log})
	if err != nil {
		return stop, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); rel.Run(rctx) }()
	stop = func() { cancel(); <-done; rel.Close() }
	for rel.Stats().Relayed < int64(n) {
		if time.Since(start) > 5*time.Minute {
			stop()
			return func() {}, fmt.Errorf("relay: %d of %d rows in 5 minutes", rel.Stats().Relayed, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	relayRate := float64(n) / time.Since(start).Seconds()
	rep.add(Row{Section: "outbox", Name: "relay throughput, rows into Redis", Value: relayRate, Unit: "rows/s",
		Baseline: base, BaseName: "producer.SendEmail, 8 goroutines", Target: "ratio ≥ 0.80",
		Note: fmt.Sprintf("%d committed rows drained by one relay (batch %d, concurrency %d): claim, enqueue, delete, commit", n, outbox.DefaultBatchSize, outbox.DefaultConcurrency)})
	return stop, nil
}

// commitRows writes n confirmations to the outbox, 500 per transaction.
func (ob *outboxBench) commitRows(ctx context.Context, n int) error {
	for i := 0; i < n; i += 500 {
		tx, err := ob.pool.Begin(ctx)
		if err != nil {
			return err
		}
		for j := i; j < min(n, i+500); j++ {
			if _, err := ob.w.Pgx(tx).SendEmail(ctx, confirmationEmail("ORD-R"+strconv.Itoa(j))); err != nil {
				tx.Rollback(ctx)
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// latencyRow: commit → the task in Redis's pending list, at 100 rows/s,
// with the relay of relayRow still running.
func (ob *outboxBench) latencyRow(ctx context.Context, e *env, rep *Report) error {
	if err := e.flush(ctx); err != nil {
		return err
	}
	var mu sync.Mutex
	committed, popped := map[string]time.Time{}, map[string]time.Time{}
	pctx, pstop := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		for pctx.Err() == nil {
			v, err := e.rdb.BRPop(pctx, time.Second, keys.AsynqPending(tasks.QueueCritical)).Result()
			if err != nil || len(v) != 2 {
				continue
			}
			at := time.Now()
			mu.Lock()
			popped[v[1]] = at
			mu.Unlock()
		}
	}()
	defer func() { pstop(); <-pdone }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(e.opts.LightDuration)
	for time.Now().Before(deadline) {
		<-tick.C
		var id string
		if err := ob.inTx(ctx, func(ctx context.Context, tx pgxTx, order string) error {
			rc, err := ob.w.Pgx(tx).SendEmail(ctx, confirmationEmail(order))
			id = rc.TaskID
			return err
		}); err != nil {
			return err
		}
		at := time.Now()
		mu.Lock()
		committed[id] = at
		mu.Unlock()
	}
	tick.Stop()
	wait := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(popped)
		mu.Unlock()
		if got >= len(committed) || time.Now().After(wait) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	pstop()
	<-pdone // (the deferred stop finds it stopped)
	var lat []time.Duration
	for id, c := range committed {
		if p, ok := popped[id]; ok {
			lat = append(lat, max(0, p.Sub(c)))
		}
	}
	slices.Sort(lat)
	rep.add(Row{Section: "outbox", Name: "commit→enqueued p99 at 100 rows/s", Value: ms(percentile(lat, 0.99)), Unit: "ms", Target: "≤ 50 ms",
		Note: fmt.Sprintf("p50 %.1f ms over %d of %d rows; LISTEN/NOTIFY wakes the relay (poll %s as the safety net)", ms(percentile(lat, 0.5)), len(lat), len(committed), outbox.DefaultPollInterval)})
	return nil
}
