package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/worker"
)

// benchImport writes a CSV of people (ImportRows rows), imports it with a
// `cioq import` child process (wall time, peak RSS from the kernel's
// rusage) and delivers it with a worker to a sandbox holding Customer.io's
// strict 100 req/s Track window, at cioq's default Track limit.
func benchImport(ctx context.Context, e *env, rep *Report) error {
	if len(e.opts.WorkerCommand) == 0 {
		rep.add(Row{Section: "import", Name: "cioq import", Unit: "s", Note: "skipped: no cioq command"})
		return nil
	}
	n := e.opts.ImportRows
	dir, err := os.MkdirTemp("", "cioq-bench-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "people.csv")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "id,email,plan,seats,signup")
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "user-%d,user-%d@example.com,%s,%d,2024-%02d-%02d\n", i, i, []string{"free", "pro", "team"}[i%3], i%50, i%12+1, i%28+1)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	st, _ := f.Stat()
	f.Close()

	cmd := exec.CommandContext(ctx, e.opts.WorkerCommand[0], "import", path, "--no-progress", "--json",
		"--map", "id,email,attr.plan,attr.seats=seats:int,attr.created_at=signup:timestamp")
	cmd.Env = append(os.Environ(), "REDIS_URL="+e.opts.RedisURL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, e.opts.Log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	// The peak RSS from /proc (VmHWM, the process's own high-water mark
	// since its exec), read until it exits. (The kernel's rusage maxrss
	// would count the bench's own memory, inherited across the fork.)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var peak int64
	var werr error
	for running := true; running; {
		if v := vmHWM(cmd.Process.Pid); v > peak {
			peak = v
		}
		select {
		case werr = <-exited:
			running = false
		case <-time.After(10 * time.Millisecond):
		}
	}
	el := time.Since(start)
	if werr != nil {
		return fmt.Errorf("cioq import: %w: %s", werr, out.String())
	}
	var sum struct {
		Rows, Enqueued, Rejected, Tasks int64
	}
	_ = json.Unmarshal(out.Bytes(), &sum)
	if sum.Enqueued != int64(n) {
		return fmt.Errorf("cioq import enqueued %d of %d rows: %s", sum.Enqueued, n, out.String())
	}
	rep.add(Row{Section: "import", Name: fmt.Sprintf("cioq import of %d CSV rows: wall time", n), Value: el.Seconds(), Unit: "s",
		Note: fmt.Sprintf("%.0f rows/s; %.0f MiB file, %d cio:batch tasks; `cioq import` child process", float64(n)/el.Seconds(), float64(st.Size())/(1<<20), sum.Tasks)})
	rep.add(Row{Section: "import", Name: fmt.Sprintf("cioq import of %d CSV rows: peak RSS", n), Value: float64(peak) / 1024, Unit: "MiB",
		Target: "≤ 64 MiB", Note: "VmHWM of the `cioq import` process, read every 10 ms until it exits"})

	// Delivery at Customer.io's limit.
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1, TrackRateLimit: 100, MaxRecorded: -1, MaxRecordedBody: -1})
	hs := httptest.NewServer(sb)
	defer func() { hs.Close(); sb.Close() }()
	cc := e.cioConfig()
	cc.TrackURL = hs.URL + "/track"
	obs := &counter{}
	wk, err := worker.New(worker.Config{Redis: e.conn, Workspaces: map[string]customerio.Config{"": cc}, Concurrency: 50,
		Logger: e.log, Observer: obs, ShutdownTimeout: 5 * time.Second, ProbeInterval: -1})
	if err != nil {
		return err
	}
	start = time.Now()
	if err := wk.Start(); err != nil {
		return err
	}
	err = waitCount(ctx, &obs.n, int64(n), 30*time.Minute)
	del := time.Since(start)
	wk.Shutdown()
	if err != nil {
		return err
	}
	stats := sb.Stats()
	rep.add(Row{Section: "import", Name: fmt.Sprintf("delivery of the %d imported people at the sandbox's strict 100 req/s Track window", n), Value: del.Seconds(), Unit: "s",
		Note: fmt.Sprintf("%.0f ops/s, %.1f ops/request, %d requests, %d answered 429; worker c50, cioq's default Track limit", float64(n)/del.Seconds(), wk.BatchStats().OpsPerBatch(), stats.Total, stats.TooManyRequests)})
	return nil
}
