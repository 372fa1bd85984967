package outbox_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/testpg"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// criticalTasks is the number of tasks in queue critical (pending,
// active, completed: every state).
func criticalTasks(t *testing.T, insp *asynq.Inspector) int {
	t.Helper()
	qi, err := insp.GetQueueInfo(tasks.QueueCritical)
	if err != nil {
		return 0 // no task yet: the queue does not exist
	}
	return qi.Size + qi.Completed
}

// A relay SIGKILLed mid-batch five times while it relays 5,000 rows loses
// none and makes no second task: each kill leaves rows whose tasks Redis
// already holds (the claim never committed), the next relay relays them
// again as duplicates, and in the end Redis holds exactly one task per
// row, which the worker delivers once.
func TestRelayKilledMidBatchDeliversEveryRowOnce(t *testing.T) {
	t.Parallel()
	const rows, kills = 5000, 5
	e := newEnv(t)
	want := e.fill(t, rows, 100)
	ctx := context.Background()
	overlap := 0
	for k := 0; k < kills; k++ {
		before := criticalTasks(t, e.insp)
		relay := child(t, "relay", envChildPG+"="+e.db.URL, envChildRDB+"="+e.rdb.URL())
		out, err := relay.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.Start(); err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "relay running\n" {
			relay.Process.Kill()
			relay.Wait()
			t.Fatalf("relay child said %q", line)
		}
		// Kill it once it has enqueued a few hundred tasks: in the middle
		// of a batch of 100, as it spends most of its time enqueueing.
		eventually(t, 3*time.Minute, "the relay enqueueing", func() bool { return criticalTasks(t, e.insp) >= before+250+37*k })
		if err := relay.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		relay.Wait()
		// Rows still in PostgreSQL whose task Redis holds: replays to come.
		left, inRedis := e.rows(t), criticalTasks(t, e.insp)
		overlap += left + inRedis - rows
		t.Logf("kill %d: %d rows left, %d tasks in Redis, %d relayed but not deleted", k+1, left, inRedis, left+inRedis-rows)
	}
	if overlap == 0 {
		t.Error("no kill landed in a batch: the test proved nothing about replays")
	}
	r := e.startRelay(t, outbox.RelayConfig{})
	eventually(t, 3*time.Minute, "the rows relayed", func() bool { return e.rows(t) == 0 })
	ids := pendingIDs(t, e.insp)
	if len(ids) != rows {
		t.Errorf("%d tasks in Redis for %d rows", len(ids), rows)
	}
	for id, n := range ids {
		if !want[id] || n != 1 {
			t.Errorf("task %s: %d times, of a row: %v", id, n, want[id])
		}
	}
	t.Logf("last relay: %+v", r.Stats())
	start := time.Now()

	sb := startWorker(t, e.rdb)
	got := deliveries(t, sb, rows)
	if len(got) != rows {
		t.Errorf("%d orders delivered, want %d", len(got), rows)
	}
	for order, n := range got {
		if n != 1 {
			t.Errorf("order %s delivered %d times", order, n)
		}
	}
	t.Logf("delivered in %s", time.Since(start))
	_ = ctx
}

// Two relays side by side share the rows: none is relayed twice.
func TestTwoRelaysRelayNoRowTwice(t *testing.T) {
	t.Parallel()
	const rows = 3000
	e := newEnv(t)
	r1 := e.startRelay(t, outbox.RelayConfig{BatchSize: 50})
	r2 := e.startRelay(t, outbox.RelayConfig{BatchSize: 50, Producer: producer.NewFromRedis(e.rdb.Client)})
	want := e.fill(t, rows, 25)
	eventually(t, 3*time.Minute, "the rows relayed", func() bool { return r1.Stats().Relayed+r2.Stats().Relayed == rows })
	s1, s2 := r1.Stats(), r2.Stats()
	t.Logf("relay 1: %+v; relay 2: %+v", s1, s2)
	if s1.Duplicates+s2.Duplicates != 0 {
		t.Errorf("duplicates: a row was relayed twice (%+v, %+v)", s1, s2)
	}
	if s1.Relayed == 0 || s2.Relayed == 0 {
		t.Logf("one relay took every row (%d, %d)", s1.Relayed, s2.Relayed)
	}
	ids := pendingIDs(t, e.insp)
	if len(ids) != rows {
		t.Errorf("%d tasks for %d rows", len(ids), rows)
	}
	for id := range ids {
		if !want[id] {
			t.Errorf("task %s is no row's", id)
		}
	}
}

// redisDownFor is how long TestRedisDownRowsWaitThenDrain keeps Redis
// stopped.
const redisDownFor = 30 * time.Second

// With Redis stopped for 30 s, committed rows wait in PostgreSQL and the
// relay reports unready; once Redis is back they drain and it is ready
// again.
func TestRedisDownRowsWaitThenDrain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rs := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.addr})
	defer rdb.Close()
	prod := producer.NewFromRedis(rdb, producer.WithKeySecret("0123456789abcdef0123456789abcdef"))
	e.prod = prod // fill's keyed task ids
	r := e.startRelay(t, outbox.RelayConfig{Producer: prod, PollInterval: 500 * time.Millisecond})
	eventually(t, 10*time.Second, "the relay ready", func() bool { return r.Check(context.Background()) == nil })

	rs.stop(t)
	want := e.fill(t, 200, 20)
	eventually(t, 10*time.Second, "the relay unready", func() bool { return r.Check(context.Background()) != nil })
	t.Logf("unready: %v", r.Check(context.Background()))
	time.Sleep(redisDownFor) // the outage itself: nothing to await
	b, err := r.Backlog(context.Background())
	if err != nil || b.Waiting != 200 || b.OldestAge < redisDownFor {
		t.Errorf("backlog with Redis down: %+v (%v); want 200 rows, the oldest %s old", b, err, redisDownFor)
	}
	if err := r.Check(context.Background()); err == nil {
		t.Error("ready with Redis down")
	}

	rs.start(t)
	eventually(t, 30*time.Second, "the rows drained", func() bool { return e.rows(t) == 0 })
	eventually(t, 10*time.Second, "the relay ready", func() bool { return r.Check(context.Background()) == nil })
	ids := pendingIDs(t, asynq.NewInspectorFromRedisClient(rdb))
	if len(ids) != 200 {
		t.Errorf("%d tasks for 200 rows", len(ids))
	}
	for id := range ids {
		if !want[id] {
			t.Errorf("task %s is no row's", id)
		}
	}
}

// A relay outlives a PostgreSQL restart: it reports unready while the
// server is down, reconnects (pool and LISTEN connection) and relays what
// is committed after.
func TestPostgresRestartRelayReconnects(t *testing.T) {
	t.Parallel()
	srv := testpg.NewServer(t)
	e := newEnv(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool, ""); err != nil {
		t.Fatal(err)
	}
	e.pool = pool
	r := e.startRelay(t, outbox.RelayConfig{Postgres: srv.URL(), PollInterval: 500 * time.Millisecond})
	want := e.fill(t, 100, 10)
	eventually(t, 10*time.Second, "the first rows relayed", func() bool { return r.Stats().Relayed == 100 })

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the relay unready", func() bool { return r.Check(ctx) != nil })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the relay ready", func() bool { return r.Check(ctx) == nil })
	pool.Reset() // the test's own connections died with the server
	for id := range e.fill(t, 100, 10) {
		want[id] = true
	}
	eventually(t, 30*time.Second, "the rows after the restart relayed", func() bool { return r.Stats().Relayed == 200 })
	if ids := pendingIDs(t, e.insp); len(ids) != 200 {
		t.Errorf("%d tasks for 200 rows", len(ids))
	}
}

// redisServer is a redis-server process of one test's own, to stop and
// start again on the same port.
type redisServer struct {
	addr string
	port string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s := &redisServer{addr: "127.0.0.1:" + port, port: port}
	s.start(t)
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *redisServer) start(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (make test installs it)")
	}
	s.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", s.port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	eventually(t, 10*time.Second, "redis-server answering", func() bool { return c.Ping(context.Background()).Err() == nil })
}

func (s *redisServer) stop(t *testing.T) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	if err := s.cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Logf("redis-server: %v", err)
	}
	s.cmd = nil
}

var _ = fmt.Sprint
