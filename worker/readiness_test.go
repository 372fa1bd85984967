package worker

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// probesAtStart turns the credentials probes on (the harness has them off),
// at Start only.
func probesAtStart(c *Config) { c.ProbeInterval = time.Hour }

// deliveryRequests counts the sandbox's requests other than the worker's
// credentials probes (GET /accounts/region, GET /v1/transactional).
func deliveryRequests(sb *sandbox.Server) int {
	n := 0
	for _, r := range sb.Requests(sandbox.RequestFilter{}) {
		if r.Method == "GET" && (strings.HasSuffix(r.Path, "/api/v1/accounts/region") || strings.HasSuffix(r.Path, "/v1/transactional")) {
			continue
		}
		n++
	}
	return n
}

// checkResult runs the named check of w; found is false when w has none.
func checkResult(w *Worker, name string) (detail string, err error, found bool) {
	for _, c := range w.Checks() {
		if c.Name == name {
			d, e := c.Run()
			return d, e, true
		}
	}
	return "", nil, false
}

// A task for a workspace the worker does not know makes it unready only
// while the task is waiting: once it is deleted the kept_tasks check
// clears, without a restart.
func TestKeptTaskDeletedClearsReadiness(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.AuthRetryDelay = time.Second
		c.KeptCheckInterval = 50 * time.Millisecond
	})
	ctx := context.Background()
	rc, err := h.prod.Identify(ctx, identify("x"), producer.Workspace("nope"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "unready naming workspace nope", func() bool {
		err := h.w.Health()
		return err != nil && strings.Contains(err.Error(), `workspace "nope" track API: workspace not configured`)
	})
	if _, err, _ := checkResult(h.w, "kept_tasks"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("kept_tasks = %v", err)
	}
	eventually(t, 10*time.Second, "task waiting for its retry", func() bool {
		ti := h.taskInfo(rc.TaskID)
		return ti != nil && ti.State == asynq.TaskStateRetry
	})
	if err := h.insp.DeleteTask(rc.Queue, rc.TaskID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "ready once the task is gone", func() bool { return h.w.Health() == nil })
	if d, err, _ := checkResult(h.w, "kept_tasks"); err != nil || d == "" {
		t.Errorf("kept_tasks = %q, %v", d, err)
	}
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// A task for an unknown workspace is kept while its retry window is open
// (an operator may be adding the workspace), then dead-lettered with class
// config, and readiness clears with it.
func TestUnknownWorkspaceDeadLetteredAsConfig(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // the worker's clock runs this far ahead
	h := newHarness(t, func(c *Config) {
		c.AuthRetryDelay = time.Second
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	ctx := context.Background()
	rc, err := h.prod.Identify(ctx, identify("x"), producer.Workspace("nope"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "kept and unready", func() bool {
		err := h.w.Health()
		return err != nil && strings.Contains(err.Error(), `"nope"`)
	})
	eventually(t, 10*time.Second, "a second attempt, still kept", func() bool {
		ti := h.taskInfo(rc.TaskID)
		return ti != nil && ti.State == asynq.TaskStateRetry && ti.LastErr != ""
	})
	if n, _ := h.w.DLQ().Count(ctx); n != 0 {
		t.Fatalf("dead-lettered within its retry window: %d", n)
	}

	offset.Store(int64(tasks.DefaultRetryWindow + time.Minute))
	var d *DeadLetter
	eventually(t, 10*time.Second, "dead letter", func() bool { d, _ = h.w.DLQ().Get(ctx, rc.TaskID); return d != nil })
	if d.Class != DeadLetterConfig || d.Workspace != "nope" || !strings.Contains(d.Error, `workspace "nope" is not configured`) || d.Status != 0 {
		t.Errorf("dead letter %+v", d)
	}
	if err := h.w.Health(); err != nil {
		t.Errorf("Health after the dead letter: %v", err)
	}
	if n := deliveryRequests(h.sb); n != 0 {
		t.Errorf("the sandbox saw %d requests", n)
	}
}

// A worker with a wrong App key is unready before any task runs: the
// probe's 401 names the workspace and API. The Track credentials, right,
// pass; Pipelines cannot be probed and says so. Fixing the key (here with
// SetWorkspace) probes again and clears it.
func TestProbeRefusedKeyUnreadyBeforeAnyTask(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		cc := c.Workspaces[""]
		cc.AppAPIKey = "wrong-app-key"
		c.Workspaces = map[string]customerio.Config{"": cc}
		c.ProbeInterval = time.Hour // at start only
	})
	eventually(t, 10*time.Second, "unready", func() bool { return h.w.Health() != nil })
	herr := h.w.Health().Error()
	if !strings.Contains(herr, `workspace "default" app API: credentials refused (401) by GET /v1/transactional`) || strings.Contains(herr, "wrong-app-key") || strings.Contains(herr, "track API") {
		t.Errorf("Health = %q", herr)
	}
	if _, err, ok := checkResult(h.w, "customerio:default:app"); !ok || err == nil {
		t.Errorf("customerio:default:app = %v (found %v)", err, ok)
	}
	eventually(t, 10*time.Second, "track probed", func() bool {
		d, err, _ := checkResult(h.w, "customerio:default:track")
		return err == nil && strings.Contains(d, "GET /api/v1/accounts/region accepted the credentials")
	})
	if d, err, _ := checkResult(h.w, "customerio:default:pipelines"); err != nil || !strings.HasPrefix(d, "not probed") {
		t.Errorf("customerio:default:pipelines = %q, %v", d, err)
	}
	if n := len(requestsTo(h.sb, sandbox.GroupApp, "/v1/transactional")); n != 1 {
		t.Errorf("%d probes of the App API, want 1", n)
	}
	if n := deliveryRequests(h.sb); n != 0 {
		t.Errorf("%d other requests", n)
	}

	if err := h.w.SetWorkspace("", sandboxConfig(h.url)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new key probed", func() bool {
		d, err, _ := checkResult(h.w, "customerio:default:app")
		return err == nil && strings.Contains(d, "GET /v1/transactional accepted the credentials")
	})
	if err := h.w.Health(); err != nil {
		t.Errorf("Health with the right key: %v", err)
	}
}

// A probe that fails transiently (5xx) changes nothing: the worker stays
// ready, and the check's detail says the probe was inconclusive.
func TestProbeTransientFailureKeepsReady(t *testing.T) {
	t.Parallel()
	h := newHarness(t, probesAtStart, true)
	h.sb.SetFault(sandbox.GroupApp, sandbox.Fault{Status: 503})
	h.start(t)
	eventually(t, 10*time.Second, "inconclusive probe", func() bool {
		d, _, _ := checkResult(h.w, "customerio:default:app")
		return strings.Contains(d, "inconclusive")
	})
	if err := h.w.Health(); err != nil {
		t.Errorf("Health after a 503 probe: %v", err)
	}
	if d, _, _ := checkResult(h.w, "customerio:default:app"); !strings.Contains(d, "503") {
		t.Errorf("detail %q", d)
	}
}

// Probes take their slot from the shared rate limiter of their API (Track;
// App reads share the App limit with broadcast triggers).
func TestProbeUsesSharedRateLimiter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, probesAtStart)
	eventually(t, 10*time.Second, "both probes answered", func() bool {
		return len(requestsTo(h.sb, sandbox.GroupApp, "/v1/transactional")) == 1 && len(requestsTo(h.sb, sandbox.GroupTrack, "/accounts/region")) == 1
	})
	for _, key := range []string{"cioq:ratelimit:{:track}:tat", "cioq:ratelimit:{:app}:tat"} {
		if n, err := h.db.Client.Exists(context.Background(), key).Result(); err != nil || n != 1 {
			t.Errorf("limiter key %s: %d, %v (the probe did not take a slot)", key, n, err)
		}
	}
}

// With probes off the worker makes no probe and says so.
func TestProbesOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.ProbeInterval = -1 })
	if d, err, _ := checkResult(h.w, "customerio:default:app"); err != nil || d != "not probed: probes are off" {
		t.Errorf("customerio:default:app = %q, %v", d, err)
	}
	// A delivery proves the worker runs; still no probe.
	if _, err := h.prod.Identify(context.Background(), identify("p")); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "person p", func(s *sandbox.Server) bool { _, ok := s.Person("p"); return ok })
	if n := int(h.sb.Stats().Total) - deliveryRequests(h.sb); n != 0 {
		t.Errorf("%d probes with probes off", n)
	}
}
