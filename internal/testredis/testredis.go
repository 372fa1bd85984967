// Package testredis gives each test its own empty database on a Redis server
// reserved for tests, so tests never touch data they did not create.
//
// The server address comes from CIOQ_TEST_REDIS (host:port, default
// 127.0.0.1:6399; `make test` starts a server there with 256 databases). When
// nothing answers and redis-server is installed, the first test starts one.
// Every call to New takes the next database index (1..250) from a counter in
// database 0 and flushes it before and after the test. Databases 251, 252,
// 253 and 255 are left to the runnable examples of one package each
// (StatusExampleDB, RateLimitExampleDB, WorkerExampleDB, ExampleDB), which
// cannot take a testing.TB and run in parallel with each other, and 254 to
// benchmarks (BenchDB: `make bench` flushes it), so none of them can wipe a
// running test's data.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
)

// DefaultAddr is where tests look for their Redis server when CIOQ_TEST_REDIS is unset.
const DefaultAddr = "127.0.0.1:6399"

// databases is the number of databases the test server is started with.
const databases = 256

// ExampleDB is the database reserved for the producer package's runnable
// examples; tests never get it.
const ExampleDB = databases - 1

// WorkerExampleDB is the database reserved for the worker package's runnable
// examples.
const WorkerExampleDB = databases - 3

// RateLimitExampleDB is the database reserved for the ratelimit package's
// runnable examples.
const RateLimitExampleDB = databases - 4

// StatusExampleDB is the database reserved for the status package's
// runnable examples.
const StatusExampleDB = databases - 5

// testDBs is how many databases (1..testDBs) tests take in turn.
const testDBs = StatusExampleDB - 1

// BenchDB is the database reserved for `make bench` / `cioq bench`; tests
// never get it.
const BenchDB = databases - 2

// DB is one test's private Redis database.
type DB struct {
	// Addr is the server's host:port.
	Addr string
	// Index is the database number reserved for this test.
	Index int
	// Client is a go-redis client on that database, closed when the test ends.
	Client *redis.Client
}

// URL returns a redis:// URL addressing this database.
func (d *DB) URL() string { return fmt.Sprintf("redis://%s/%d", d.Addr, d.Index) }

// ConnOpt returns asynq connection options for this database.
func (d *DB) ConnOpt() asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Addr: d.Addr, DB: d.Index}
}

// Addr returns the test server's address, starting a server when none answers.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("CIOQ_TEST_REDIS")
	if addr == "" {
		addr = DefaultAddr
	}
	startOnce.Do(func() { startErr = ensure(addr) })
	if startErr != nil {
		t.Fatalf("testredis: %v", startErr)
	}
	return addr
}

// New reserves a fresh, empty database for the test.
func New(t testing.TB) *DB {
	t.Helper()
	addr := Addr(t)
	ctx := context.Background()

	ctl := redis.NewClient(&redis.Options{Addr: addr, DB: 0})
	n, err := ctl.Incr(ctx, keys.TestRedisNextDB).Result()
	ctl.Close()
	if err != nil {
		t.Fatalf("testredis: reserve database: %v", err)
	}
	idx := 1 + int((n-1)%testDBs)

	c := redis.NewClient(&redis.Options{Addr: addr, DB: idx})
	if err := c.FlushDB(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("testredis: flush database %d: %v (is the server started with --databases %d?)", idx, err, databases)
	}
	t.Cleanup(func() {
		c.FlushDB(context.Background())
		c.Close()
	})
	return &DB{Addr: addr, Index: idx, Client: c}
}

var (
	startOnce sync.Once
	startErr  error
)

func answers(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	return strings.HasPrefix(string(buf[:n]), "+PONG")
}

// ensure starts redis-server at addr when nothing answers there.
func ensure(addr string) error {
	if answers(addr) {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("CIOQ_TEST_REDIS=%q: %v", addr, err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("no Redis answers at %s and redis-server is not installed; run `make test`, which installs and starts one", addr)
	}
	dir := filepath.Join(os.TempDir(), "cioq-redis-"+port)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(bin, "--daemonize", "yes", "--bind", host, "--port", port,
		"--dir", dir, "--save", "", "--appendonly", "no",
		"--databases", fmt.Sprint(databases), "--maxmemory-policy", "noeviction",
		"--logfile", filepath.Join(dir, "redis.log"))
	out, err := cmd.CombinedOutput()
	if err != nil && !answers(addr) {
		return fmt.Errorf("start redis-server at %s: %v: %s", addr, err, out)
	}
	for i := 0; i < 100; i++ {
		if answers(addr) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server at %s did not answer", addr)
}
