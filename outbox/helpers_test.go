package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testpg"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// Child processes: the test binary run again as an application or a relay
// that the test kills (see TestMain).
const (
	envChild    = "CIOQ_OUTBOX_TEST_CHILD"
	envChildPG  = "CIOQ_OUTBOX_TEST_PG"
	envChildRDB = "CIOQ_OUTBOX_TEST_REDIS"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "":
		os.Exit(m.Run())
	case "relay":
		os.Exit(childRelay())
	case "app":
		os.Exit(childApp())
	}
	os.Exit(3)
}

// childRelay runs a relay until it is killed.
func childRelay() int {
	rdb := redis.NewClient(mustRedisOpts(os.Getenv(envChildRDB)))
	prod := producer.NewFromRedis(rdb)
	r, err := outbox.NewRelay(outbox.RelayConfig{Postgres: os.Getenv(envChildPG), Producer: prod, BatchSize: 100, Concurrency: 1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("relay running")
	if err := r.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childApp commits an order and its confirmation email in one transaction,
// says so on stdout, and kills itself at once with SIGKILL.
func childApp() int {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv(envChildPG))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w, _ := outbox.NewWriter(outbox.Config{})
	tx, err := conn.Begin(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := tx.Exec(ctx, "INSERT INTO orders (id) VALUES ('ORD-KILLED')"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rc, err := w.Pgx(tx).SendEmail(ctx, confirmation("ORD-KILLED"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := tx.Commit(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(rc.TaskID)
	p, _ := os.FindProcess(os.Getpid())
	p.Kill() // SIGKILL: no deferred call, no connection closed politely
	select {}
}

func mustRedisOpts(url string) *redis.Options {
	o, err := redis.ParseURL(url)
	if err != nil {
		panic(err)
	}
	return o
}

// child starts the test binary as a child of the given kind.
func child(t *testing.T, kind string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"="+kind), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// confirmation is an order's confirmation email.
func confirmation(order string) tasks.SendEmail {
	return tasks.SendEmail{
		SendOptions: customerio.SendOptions{TransactionalMessageID: "order_confirmation",
			Identifiers: &customerio.Identifiers{ID: "user-42"},
			MessageData: map[string]any{"order_id": order}},
		To: "ada@example.com",
	}
}

// env is one test's database (migrated, with an orders table), Redis
// database and producer.
type env struct {
	db   *testpg.DB
	pool *pgxpool.Pool
	rdb  *testredis.DB
	prod *producer.Client
	insp *asynq.Inspector
	w    *outbox.Writer
	next int // fill's next row number
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: testpg.New(t), rdb: testredis.New(t)}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.pool = pool
	if err := outbox.Migrate(ctx, pool, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE orders (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	e.prod = producer.NewFromRedis(e.rdb.Client)
	e.insp = asynq.NewInspectorFromRedisClient(e.rdb.Client)
	if e.w, err = outbox.NewWriter(outbox.Config{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// order commits (or rolls back) an order and its confirmation in one
// transaction, returning the receipt.
func (e *env) order(t *testing.T, id string, commit bool, opts ...producer.EnqueueOption) outbox.Receipt {
	t.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO orders (id) VALUES ($1)", id); err != nil {
		t.Fatal(err)
	}
	rc, err := e.w.Pgx(tx).SendEmail(ctx, confirmation(id), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return rc
}

// fill commits n rows, batch per transaction, every tenth with an
// idempotency key, and returns the task id each must become. Rows are
// numbered from e.next, so keys never repeat in a test.
func (e *env) fill(t *testing.T, n, batch int) map[string]bool {
	t.Helper()
	ctx := context.Background()
	want := map[string]bool{}
	first := e.next
	e.next += n
	n += first
	for i := first; i < n; i += batch {
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for j := i; j < min(n, i+batch); j++ {
			var opts []producer.EnqueueOption
			key := ""
			if j%10 == 0 {
				key = fmt.Sprintf("order-%d:confirmation", j)
				opts = append(opts, producer.IdempotencyKey(key))
			}
			rc, err := e.w.Pgx(tx).SendEmail(ctx, confirmation(fmt.Sprint("ORD-", j)), opts...)
			if err != nil {
				t.Fatal(err)
			}
			id := rc.TaskID
			if key != "" {
				if id, err = e.prod.TaskIDForKey(ctx, key); err != nil {
					t.Fatal(err)
				}
			}
			want[id] = true
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// rows is the number of rows in the outbox table.
func (e *env) rows(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM cioq.outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// pendingIDs returns the ids of every task of queue critical.
func pendingIDs(t *testing.T, insp *asynq.Inspector) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for page := 1; ; page++ {
		list, err := insp.ListPendingTasks(tasks.QueueCritical, asynq.Page(page), asynq.PageSize(1000))
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				return ids
			}
			t.Fatal(err)
		}
		for _, ti := range list {
			ids[ti.ID]++
		}
		if len(list) < 1000 {
			return ids
		}
	}
}

// startRelay runs a relay until the test ends.
func (e *env) startRelay(t *testing.T, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	if cfg.Postgres == "" {
		cfg.Postgres = e.db.URL
	}
	if cfg.Producer == nil {
		cfg.Producer = e.prod
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	r, err := outbox.NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
		r.Close()
	})
	return r
}

// eventually waits until cond holds and fails the test after limit (a
// bound for a stuck test, not a timing assertion); see
// testsupport.Eventually.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	testsupport.Eventually(t, limit, what, cond)
}

// testLogger is testsupport.Logger: quiet unless CIOQ_TEST_LOG is set.
func testLogger() *slog.Logger { return testsupport.Logger() }

// startWorker runs a worker delivering to a new sandbox until the test
// ends.
func startWorker(t *testing.T, rdb *testredis.DB) *sandbox.Server {
	t.Helper()
	return startWorkerWith(t, rdb, nil)
}

// startWorkerWith is startWorker with the worker's Config changed by mod.
func startWorkerWith(t *testing.T, rdb *testredis.DB, mod func(*worker.Config)) *sandbox.Server {
	t.Helper()
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, TransactionalRateLimit: -1, BroadcastInterval: -1})
	hs := httptest.NewServer(sb)
	t.Cleanup(func() { hs.Close(); sb.Close() })
	cfg := worker.Config{
		Redis:       rdb.ConnOpt(),
		Workspaces:  map[string]customerio.Config{"": testsupport.SandboxConfig(hs.URL)},
		Concurrency: 16, Logger: testLogger(), ProbeInterval: -1,
		RateLimits: worker.RateLimits{Off: true},
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return sb
}

// deliveries waits until the sandbox has want deliveries and returns them
// by order id.
func deliveries(t *testing.T, sb *sandbox.Server, want int) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sb.WaitFor(ctx, func(s *sandbox.Server) bool { return len(s.Deliveries()) >= want }); err != nil {
		t.Fatalf("%d of %d deliveries: %v", len(sb.Deliveries()), want, err)
	}
	by := map[string]int{}
	for _, d := range sb.Deliveries() {
		by[fmt.Sprint(d.MessageData["order_id"])]++
	}
	return by
}
