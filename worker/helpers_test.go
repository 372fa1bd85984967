package worker

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
)

// testLogger is testsupport.Logger: quiet unless CIOQ_TEST_LOG is set.
func testLogger() *slog.Logger { return testsupport.Logger() }

// sandboxConfig is testsupport.SandboxConfig: a customerio.Config pointing
// at the sandbox behind url.
func sandboxConfig(url string) customerio.Config { return testsupport.SandboxConfig(url) }

type harness struct {
	db   *testredis.DB
	sb   *sandbox.Server
	url  string
	w    *Worker
	prod *producer.Client
	insp *asynq.Inspector
	cfg  Config
}

// newSandbox starts a sandbox with no App rate limit or broadcast interval
// (tests that want them set their own).
func newSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	return serveSandbox(t, sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1})
}

// serveSandbox serves a sandbox configured by cfg over HTTP until the test ends.
func serveSandbox(t *testing.T, cfg sandbox.Config) (*sandbox.Server, string) {
	t.Helper()
	sb := sandbox.New(cfg)
	hs := httptest.NewServer(sb)
	t.Cleanup(func() { hs.Close(); sb.Close() })
	return sb, hs.URL
}

// harnessOptions say how newHarnessWith builds a harness. The zero value is
// a started worker on the default test configuration, delivering to a
// sandbox from newSandbox.
type harnessOptions struct {
	// Config, when set, edits the worker's configuration (h.cfg) before
	// the worker is built.
	Config func(*Config)
	// Sandbox, when set, configures the sandbox instead of newSandbox's
	// defaults (no App rate limit, no broadcast interval).
	Sandbox *sandbox.Config
	// NoStart leaves the worker unbuilt: the test adjusts h.cfg or
	// enqueues first, then calls h.start.
	NoStart bool
}

// newHarness is newHarnessWith with Config mod and NoStart noStart[0] (the
// older form; new tests say harnessOptions).
func newHarness(t *testing.T, mod func(*Config), noStart ...bool) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOptions{Config: mod, NoStart: len(noStart) > 0 && noStart[0]})
}

// newHarnessWith starts Redis (a database of its own), a sandbox, a
// producer and (unless opts.NoStart) a worker delivering to the sandbox.
//
// A test on its own harness (or its own testredis database) calls
// t.Parallel() unless what it asserts depends on timing: rate limits and
// throughput (throughput_test.go), the outage drain's goal, batches that
// must coalesce within a linger, hangs decided inside a one-second task
// timeout, pacing bounds. Those stay serial: `go test` runs a package's
// serial tests before its parallel ones, never beside them.
func newHarnessWith(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	h := &harness{db: testredis.New(t)}
	if opts.Sandbox != nil {
		h.sb, h.url = serveSandbox(t, *opts.Sandbox)
	} else {
		h.sb, h.url = newSandbox(t)
	}
	h.cfg = Config{
		Redis:       h.db.ConnOpt(),
		Workspaces:  map[string]customerio.Config{"": sandboxConfig(h.url)},
		Concurrency: 8,
		Backoff:     BackoffConfig{Base: 100 * time.Millisecond, Cap: time.Second},
		Logger:      testLogger(),
		// No credentials probes unless a test asks (readiness_test.go):
		// a probe would take a sandbox fault meant for a delivery, and
		// count among the responses tests count.
		ProbeInterval: -1,
	}
	if opts.Config != nil {
		opts.Config(&h.cfg)
	}
	h.prod = producer.NewFromRedis(h.db.Client)
	h.insp = asynq.NewInspectorFromRedisClient(h.db.Client)
	if !opts.NoStart {
		h.start(t)
	}
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	h.w = w
	t.Cleanup(w.Shutdown)
}

// waitSandbox waits until cond holds on the sandbox, failing after d.
func waitSandbox(t *testing.T, sb *sandbox.Server, d time.Duration, what string, cond func(*sandbox.Server) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := sb.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// eventually is testsupport.Eventually: it polls cond until it holds,
// failing after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testsupport.Eventually(t, d, what, cond)
}

// taskInfo returns asynq's info on a task, searching the default queues.
func (h *harness) taskInfo(id string) *asynq.TaskInfo {
	for q := range DefaultQueues() {
		if ti, err := h.insp.GetTaskInfo(q, id); err == nil {
			return ti
		}
	}
	return nil
}

// done reports whether the task left asynq's queues successfully (gone, or
// kept as completed for the producer's idempotency window).
func (h *harness) done(id string) bool {
	ti := h.taskInfo(id)
	return ti == nil || ti.State == asynq.TaskStateCompleted
}

// dumpOnFailure registers a cleanup that, when the test failed, logs what
// could explain it: the sandbox's non-2xx answers, the dead letters and the
// tasks still in Redis (types and errors only).
func (h *harness) dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range h.sb.Requests(sandbox.RequestFilter{}) {
			if r.Status < 200 || r.Status > 299 {
				t.Logf("sandbox answered %d to %s %s", r.Status, r.Method, r.Path)
			}
		}
		if h.w != nil {
			if pg, err := h.w.DLQ().List(context.Background(), Filter{}); err == nil {
				for _, d := range pg.Items {
					t.Logf("dead letter %s %s status %d: %s", d.Type, d.Class, d.Status, d.Error)
				}
			}
		}
		for q := range DefaultQueues() {
			for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
				h.insp.ListPendingTasks, h.insp.ListActiveTasks, h.insp.ListScheduledTasks, h.insp.ListRetryTasks,
			} {
				tis, _ := list(q)
				for _, ti := range tis {
					t.Logf("task in Redis: %s %s %s retried %d, last error %q", q, ti.State, ti.Type, ti.Retried, ti.LastErr)
				}
			}
		}
	})
}
