package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// exampleRedisAddr is the test Redis (CIOQ_TEST_REDIS, default
// 127.0.0.1:6399, started by `make test`); the examples use the database
// reserved for this package's examples (testredis.WorkerExampleDB), emptied
// first.
func exampleRedisAddr() (string, int) {
	addr := os.Getenv("CIOQ_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6399"
	}
	const db = 253
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	rdb.FlushDB(context.Background())
	rdb.Close()
	return addr, db
}

// A worker delivering to the embedded Customer.io sandbox, with a middleware
// that sees every decoded task before it is delivered. Run blocks until its
// context is done, then shuts down gracefully.
func Example() {
	addr, db := exampleRedisAddr()
	sb, err := sandbox.Start("", sandbox.Config{})
	if err != nil {
		panic(err)
	}
	defer sb.Close()

	// Middleware runs after decoding and validation; worker.Decoded gives
	// the task (never log its payload: it holds personal data).
	seen := make(chan string, 1)
	audit := func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			if d, ok := worker.Decoded(ctx); ok {
				select { // only the first delivery is printed
				case seen <- d.Type + " from queue " + d.Queue:
				default:
				}
			}
			return next.ProcessTask(ctx, t)
		})
	}

	w, err := worker.New(worker.Config{
		Redis: asynq.RedisClientOpt{Addr: addr, DB: db},
		Workspaces: map[string]customerio.Config{"": {
			SiteID: sandbox.DefaultSiteID, TrackAPIKey: sandbox.DefaultTrackAPIKey,
			TrackURL: sb.TrackURL(), Timeout: 5 * time.Second,
		}},
		Middleware:    []func(asynq.Handler) asynq.Handler{audit},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		ProbeInterval: -1, // no credential probes in an example
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	prod, err := producer.New(fmt.Sprintf("redis://%s/%d", addr, db))
	if err != nil {
		panic(err)
	}
	defer prod.Close()
	_, err = prod.Identify(context.Background(), tasks.Identify{
		Identifiers: customerio.Identifiers{ID: "ada"},
		Attributes:  map[string]any{"plan": "pro"},
	})
	if err != nil {
		panic(err)
	}

	fmt.Println(<-seen)
	wait, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = sb.WaitFor(wait, func(s *sandbox.Server) bool { _, ok := s.Person("ada"); return ok })
	p, _ := sb.Person("ada")
	fmt.Println(err, p.Attributes["plan"])

	stop()
	fmt.Println(<-done)
	// Output:
	// cio:identify from queue default
	// <nil> pro
	// <nil>
}
