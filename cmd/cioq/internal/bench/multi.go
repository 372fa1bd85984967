package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// fillBatch enqueues n operations made by mk in producer.EnqueueBatch
// calls of size operations (one cio:batch task each), from 8 goroutines.
func fillBatch(ctx context.Context, prod *producer.Client, n, size int, mk func(i int) tasks.Payload) (int, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	taskCount := 0
	calls := (n + size - 1) / size
	for k := 0; k < 8; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for c := k; c < calls; c += 8 {
				ops := make([]tasks.Payload, 0, size)
				for i := c * size; i < min(n, (c+1)*size); i++ {
					ops = append(ops, mk(i))
				}
				rec, err := prod.EnqueueBatch(ctx, ops, producer.BatchSize(size))
				mu.Lock()
				taskCount += len(rec.Tasks)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(k)
	}
	wg.Wait()
	return taskCount, firstErr
}

// multiBatch is the operations per EnqueueBatch call (and cio:batch
// task) of the multi-operation measurements: one v2 batch request's worth.
const multiBatch = tasks.DefaultBatchOperations

// runMulti enqueues n operations in cio:batch tasks (producer.EnqueueBatch),
// then starts a batching worker and times until every operation was
// delivered.
func runMulti(ctx context.Context, e *env, n, conc int, mk func(i int) tasks.Payload, mod func(*worker.Config)) (e2eRun, error) {
	if err := e.flush(ctx); err != nil {
		return e2eRun{}, err
	}
	nt, err := fillBatch(ctx, newProducer(e), n, multiBatch, mk)
	if err != nil {
		return e2eRun{}, err
	}
	obs := &counter{}
	cfg := worker.Config{
		Redis: e.conn, Workspaces: map[string]customerio.Config{"": e.cioConfig()},
		Concurrency: conc, Logger: e.log, Observer: obs, ShutdownTimeout: 5 * time.Second,
		RateLimits: worker.RateLimits{Off: true}, ProbeInterval: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		return e2eRun{}, err
	}
	res, err := timed(ctx, e, n, &obs.n, func() (func(), error) {
		if err := w.Start(); err != nil {
			return nil, err
		}
		return w.Shutdown, nil
	})
	res.batch, res.tasks = w.BatchStats().OpsPerBatch(), nt
	return res, err
}

// benchMulti measures multi-operation tasks: without a rate limit against
// one task per operation (unbatched, the per-task end-to-end rate), and at
// the sandbox's strict 100 req/s Track window with cioq's default Track
// limit.
func benchMulti(ctx context.Context, e *env, rep *Report) error {
	n := e.opts.Tasks * 10
	per, err := runCioq(ctx, e, e.opts.Tasks, 50, mkTrack, nil)
	if err != nil {
		return err
	}
	mu, err := runMulti(ctx, e, n, 50, mkTrack, nil)
	if err != nil {
		return err
	}
	rep.add(Row{Section: "multi", Name: "multi-operation tasks vs one task per operation, c50, no rate limit", Value: mu.rate, Unit: "ops/s",
		Baseline: per.rate, BaseName: "one task per operation, unbatched", Target: "ratio ≥ 10",
		Note: fmt.Sprintf("%d cio:track events in %d cio:batch tasks of %d (producer.EnqueueBatch), %.1f ops/request, %.4f requests/op, Redis %.2f µs/op (per-task: %d events, Redis %.1f µs/op)",
			n, mu.tasks, multiBatch, mu.batch, float64(mu.requests)/float64(n), us(mu.redisCPU), e.opts.Tasks, us(per.redisCPU))})

	// At Customer.io's limit: the sandbox refuses the 101st request of any
	// one-second window with a 429.
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1, TrackRateLimit: 100, MaxRecorded: -1, MaxRecordedBody: -1})
	hs := httptest.NewServer(sb)
	defer func() { hs.Close(); sb.Close() }()
	saved, savedHS := e.sb, e.hs
	e.sb, e.hs = sb, hs
	lim, err := runMulti(ctx, e, n, 50, mkTrack, func(c *worker.Config) { c.RateLimits.Off = false })
	e.sb, e.hs = saved, savedHS
	if err != nil {
		return err
	}
	rep.add(Row{Section: "multi", Name: "multi-operation tasks at the sandbox's strict 100 req/s Track window", Value: lim.rate, Unit: "ops/s",
		Target: "≥ 40,000 ops/s, ≥ 400 ops/request, zero 429s",
		Note: fmt.Sprintf("%d cio:track events in %d cio:batch tasks, c50, cioq's default Track limit (%s); %.1f ops/request, %d requests, %d answered 429",
			n, lim.tasks, "100/1.03s", lim.batch, lim.requests, lim.tooMany)})
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
