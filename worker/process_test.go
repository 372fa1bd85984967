package worker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/tasks"
)

// TestHelperProcess is not a test: it is the worker process the crash and
// SIGTERM tests start by re-executing the test binary.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("CIOQ_HELPER") != "worker" {
		t.Skip("helper process only")
	}
	db, _ := strconv.Atoi(os.Getenv("CIOQ_HELPER_REDIS_DB"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	w, err := New(Config{
		Redis:           asynq.RedisClientOpt{Addr: os.Getenv("CIOQ_HELPER_REDIS_ADDR"), DB: db},
		Workspaces:      map[string]customerio.Config{"": sandboxConfig(os.Getenv("CIOQ_HELPER_SANDBOX"))},
		Concurrency:     50,
		ShutdownTimeout: 10 * time.Second,
		Logger:          testLogger(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

func startHelper(t *testing.T, h *harness) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "CIOQ_HELPER=worker",
		"CIOQ_HELPER_REDIS_ADDR="+h.db.Addr, fmt.Sprintf("CIOQ_HELPER_REDIS_DB=%d", h.db.Index),
		"CIOQ_HELPER_SANDBOX="+h.url)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// enqueueEvents enqueues n track events for person pid; the producer gives
// each a ULID id.
func enqueueEvents(t *testing.T, h *harness, pid string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := h.prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: pid},
			Event: customerio.Event{Name: "e", Data: map[string]any{"i": i}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkAllOnce checks the sandbox stored exactly the n events of pid, each
// once, and that nothing is left in Redis or dead-lettered.
func checkAllOnce(t *testing.T, h *harness, pid string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range h.sb.Events(pid) {
		seen[fmt.Sprint(e.Data["i"])]++
	}
	for i := 0; i < n; i++ {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("event %d stored %d times", i, c)
		}
	}
	if len(h.sb.Events(pid)) != n {
		t.Errorf("%d events stored, want %d", len(h.sb.Events(pid)), n)
	}
	if c, _ := NewDeadLetters(h.db.Client, nil).Count(context.Background()); c != 0 {
		t.Errorf("%d dead letters", c)
	}
	qi, err := h.insp.GetQueueInfo(tasks.QueueDefault)
	if err == nil && qi.Size-qi.Completed != 0 {
		t.Errorf("queue not empty: %+v", qi)
	}
}

func TestCrashMidFlightLosesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("takes ~60-90 s (asynq's 30 s lease + 30 s recovery cutoff, checked every minute)")
	}
	start := time.Now()
	h := newHarnessWith(t, harnessOptions{NoStart: true})
	const n = 1000
	enqueueEvents(t, h, "crash", n)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Latency: 300 * time.Millisecond})
	cmd := startHelper(t, h)
	waitSandbox(t, h.sb, 30*time.Second, "first deliveries", func(s *sandbox.Server) bool { return len(s.Events("crash")) >= 100 })
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	killedAt := len(h.sb.Events("crash"))
	t.Logf("killed after %d of %d events stored (%s)", killedAt, n, time.Since(start).Round(time.Millisecond))
	if killedAt == n {
		t.Fatal("everything was delivered before the kill; slow the sandbox down")
	}
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Latency: 20 * time.Millisecond})
	h.cfg.Concurrency = 50
	h.start(t)
	waitSandbox(t, h.sb, 150*time.Second, "all events", func(s *sandbox.Server) bool { return len(s.Events("crash")) >= n })
	eventually(t, 30*time.Second, "queue drained", func() bool {
		qi, err := h.insp.GetQueueInfo(tasks.QueueDefault)
		return err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Retry == 0
	})
	checkAllOnce(t, h, "crash", n)
	t.Logf("recovered and finished in %s", time.Since(start).Round(time.Millisecond))
}

func TestSIGTERMDuringDeliveryExitsCleanly(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a worker process")
	}
	start := time.Now()
	h := newHarnessWith(t, harnessOptions{NoStart: true})
	const n = 300
	enqueueEvents(t, h, "term", n)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Latency: 300 * time.Millisecond})
	cmd := startHelper(t, h)
	waitSandbox(t, h.sb, 30*time.Second, "first deliveries", func(s *sandbox.Server) bool { return len(s.Events("term")) >= 50 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("worker exit: %v", err)
	}
	t.Logf("exit 0 after %d of %d events", len(h.sb.Events("term")), n)
	h.sb.ClearFaults()
	h.start(t)
	waitSandbox(t, h.sb, 30*time.Second, "all events", func(s *sandbox.Server) bool { return len(s.Events("term")) >= n })
	eventually(t, 10*time.Second, "queue drained", func() bool {
		qi, err := h.insp.GetQueueInfo(tasks.QueueDefault)
		return err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Retry == 0
	})
	checkAllOnce(t, h, "term", n)
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}
