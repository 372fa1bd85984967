package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// redisCPU returns the CPU time the Redis server has used so far (INFO
// cpu: used_cpu_user + used_cpu_sys), to charge Redis's share of a run to
// its operations.
func redisCPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	s, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("redis INFO cpu: %s: %w", k, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

// e2eRun is one contender's delivery of n operations.
type e2eRun struct {
	rate     float64       // operations delivered per second
	redisCPU time.Duration // Redis CPU per operation while delivering
	requests uint64        // HTTP requests the sandbox answered
	tooMany  uint64        // of which 429
	batch    float64       // mean operations per batch request (0: none)
	tasks    int           // asynq tasks that carried the operations
}

// timed runs start (which begins delivering and returns how to stop),
// waits until done reaches n and returns the rate and Redis's CPU per
// operation over that span.
func timed(ctx context.Context, e *env, n int, done *atomic.Int64, start func() (stop func(), err error)) (e2eRun, error) {
	cpu0, err := redisCPU(ctx, e.rdb)
	if err != nil {
		return e2eRun{}, err
	}
	t0 := time.Now()
	stop, err := start()
	if err != nil {
		return e2eRun{}, err
	}
	err = waitCount(ctx, done, int64(n), 5*time.Minute)
	el := time.Since(t0)
	cpu1, cerr := redisCPU(ctx, e.rdb)
	stop()
	if err != nil {
		return e2eRun{}, err
	}
	if cerr != nil {
		return e2eRun{}, cerr
	}
	st := e.sb.Stats()
	return e2eRun{rate: float64(n) / el.Seconds(), redisCPU: (cpu1 - cpu0) / time.Duration(n),
		requests: st.Total, tooMany: st.TooManyRequests, tasks: n}, nil
}

// naiveEvent is what the hand-written handler reads of a cio:track task:
// the envelope's payload, decoded with encoding/json.
type naiveEvent struct {
	Payload struct {
		Identifiers struct {
			ID string `json:"id"`
		} `json:"identifiers"`
		Name      string         `json:"name"`
		ID        string         `json:"id,omitempty"`
		Timestamp int64          `json:"timestamp,omitempty"`
		Data      map[string]any `json:"data,omitempty"`
	} `json:"payload"`
}

// naiveHandler is the asynq handler a user would write instead of cioq:
// decode the payload, make one Track v1 request, fail on anything but a
// 2xx. No validation, no retry policy, no rate limit, no dead letters.
func naiveHandler(e *env, conc int, done *atomic.Int64) asynq.HandlerFunc {
	cc := e.cioConfig()
	base := cc.TrackURL + "/api/v1/customers/"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conc // keep a connection per worker slot
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return func(ctx context.Context, t *asynq.Task) error {
		var ev naiveEvent
		if err := json.Unmarshal(t.Payload(), &ev); err != nil {
			return fmt.Errorf("decode: %w", asynq.SkipRetry)
		}
		p := ev.Payload
		body, err := json.Marshal(struct {
			Name      string         `json:"name"`
			ID        string         `json:"id,omitempty"`
			Timestamp int64          `json:"timestamp,omitempty"`
			Data      map[string]any `json:"data,omitempty"`
		}{p.Name, p.ID, p.Timestamp, p.Data})
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+url.PathEscape(p.Identifiers.ID)+"/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.SetBasicAuth(cc.SiteID, cc.TrackAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return errors.New("customer.io: " + resp.Status)
		}
		done.Add(1)
		return nil
	}
}

// runNaive is the baseline users compare against: the same tasks through
// an asynq server on the one queue they are in, whose handler makes one
// HTTP request per task to the same sandbox (naiveHandler).
func runNaive(ctx context.Context, e *env, n, conc int, mk func(i int) tasks.Payload) (e2eRun, error) {
	if err := e.flush(ctx); err != nil {
		return e2eRun{}, err
	}
	if err := fill(ctx, newProducer(e), n, mk); err != nil {
		return e2eRun{}, err
	}
	var done atomic.Int64
	return timed(ctx, e, n, &done, func() (func(), error) {
		srv := asynq.NewServer(e.conn, asynq.Config{
			Concurrency: conc, Queues: map[string]int{tasks.QueueDefault: 1}, TaskCheckInterval: worker.DefaultPollInterval,
			LogLevel: asynq.ErrorLevel, ShutdownTimeout: 5 * time.Second,
		})
		if err := srv.Start(naiveHandler(e, conc, &done)); err != nil {
			return nil, err
		}
		return srv.Shutdown, nil
	})
}

// runNoop is the ceiling: the same tasks through an asynq server on cioq's
// three weighted queues whose handler does nothing.
func runNoop(ctx context.Context, e *env, n, conc int, mk func(i int) tasks.Payload) (e2eRun, error) {
	if err := e.flush(ctx); err != nil {
		return e2eRun{}, err
	}
	if err := fill(ctx, newProducer(e), n, mk); err != nil {
		return e2eRun{}, err
	}
	var done atomic.Int64
	return timed(ctx, e, n, &done, func() (func(), error) {
		srv := asynq.NewServer(e.conn, asynq.Config{
			Concurrency: conc, Queues: worker.DefaultQueues(), TaskCheckInterval: worker.DefaultPollInterval,
			LogLevel: asynq.ErrorLevel, ShutdownTimeout: 5 * time.Second,
		})
		if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { done.Add(1); return nil })); err != nil {
			return nil, err
		}
		return srv.Shutdown, nil
	})
}

// e2eContender is one side of the end-to-end comparison.
type e2eContender struct {
	name string
	run  func(ctx context.Context, e *env, n, conc int) (e2eRun, error)
}

// benchE2E delivers the same cio:track events through the no-op asynq
// handler, the hand-written one-request-per-task handler, and cioq
// unbatched and batched, at concurrency 10 and 50, in interleaved rounds
// (the order rotates each round).
func benchE2E(ctx context.Context, e *env, rep *Report) error {
	n := e.opts.Tasks
	cs := []e2eContender{
		{"asynq no-op handler", func(ctx context.Context, e *env, n, conc int) (e2eRun, error) {
			return runNoop(ctx, e, n, conc, mkTrack)
		}},
		{"asynq one queue, one HTTP request per task", func(ctx context.Context, e *env, n, conc int) (e2eRun, error) {
			return runNaive(ctx, e, n, conc, mkTrack)
		}},
		{"cioq unbatched", func(ctx context.Context, e *env, n, conc int) (e2eRun, error) {
			return runCioq(ctx, e, n, conc, mkTrack, nil)
		}},
		{"cioq batched, multi-operation tasks (producer.EnqueueBatch)", func(ctx context.Context, e *env, n, conc int) (e2eRun, error) {
			return runMulti(ctx, e, n, conc, mkTrack, nil)
		}},
		{"cioq batched, one task per operation", func(ctx context.Context, e *env, n, conc int) (e2eRun, error) {
			return runCioq(ctx, e, n, conc, mkTrack, func(c *worker.Config) { c.Batching.Off = false })
		}},
	}
	for _, conc := range []int{10, 50} {
		res := make([][]e2eRun, len(cs))
		for r := 0; r < e2eRounds; r++ {
			for k := range cs {
				i := (k + r) % len(cs)
				v, err := cs[i].run(ctx, e, n, conc)
				if err != nil {
					return fmt.Errorf("%s: %w", cs[i].name, err)
				}
				res[i] = append(res[i], v)
			}
			e.logf("bench: e2e c%d round %d: no-op %.0f/s, hand-written %.0f/s, cioq %.0f/s, multi-operation %.0f/s, batched per task %.0f/s",
				conc, r+1, res[0][r].rate, res[1][r].rate, res[2][r].rate, res[3][r].rate, res[4][r].rate)
		}
		rates := func(i int) []float64 {
			out := make([]float64, len(res[i]))
			for k, v := range res[i] {
				out[k] = v.rate
			}
			return out
		}
		cpu := func(i int) float64 {
			out := make([]float64, len(res[i]))
			for k, v := range res[i] {
				out[k] = float64(v.redisCPU) / float64(time.Microsecond)
			}
			return median(out)
		}
		noop, naive := rates(0), rates(1)
		spread := func(a, b []float64) string {
			rs := ratios(a, b)
			return fmt.Sprintf("%.2f–%.2f", slices.Min(rs), slices.Max(rs))
		}
		rounds := fmt.Sprintf("median of %d interleaved rounds", e2eRounds)
		rep.add(Row{Section: "e2e", Name: fmt.Sprintf("baseline: asynq, one queue, one HTTP request per task, c%d", conc), Value: median(naive), Unit: "ops/s",
			Baseline: median(noop), BaseName: "asynq no-op handler, 3 weighted queues", Ratio: pairedRatio(naive, noop),
			Note: fmt.Sprintf("%d cio:track events; hand-written handler (encoding/json, net/http, no validation or retries); Redis %.0f µs/op (no-op %.0f); %s, ratio rounds %s",
				n, cpu(1), cpu(0), rounds, spread(naive, noop))})
		for _, c := range []struct {
			i      int
			target string
		}{{2, "ratio ≥ 1.0"}, {3, "ratio ≥ 3"}, {4, ""}} {
			v := rates(c.i)
			last := res[c.i][len(res[c.i])-1]
			note := fmt.Sprintf("%d cio:track events, rate limits off; Redis %.0f µs/op; %s, ratio rounds %s; vs no-op %.2f×",
				n, cpu(c.i), rounds, spread(v, naive), pairedRatio(v, noop))
			if last.batch > 0 {
				note += fmt.Sprintf("; %.1f ops/request", last.batch)
			}
			if last.tasks != n {
				note += fmt.Sprintf("; %d cio:batch tasks", last.tasks)
			}
			rep.add(Row{Section: "e2e", Name: fmt.Sprintf("%s, c%d", cs[c.i].name, conc), Value: median(v), Unit: "ops/s",
				Baseline: median(naive), BaseName: "hand-written asynq handler", Ratio: pairedRatio(v, naive), Target: c.target, Note: note})
		}
	}
	return nil
}
