package bench

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/tasks"
)

// childRun is what one `cioq worker` process measured.
type childRun struct {
	elapsed time.Duration
	peakKiB int64 // VmHWM
	// anonKiB and fileKiB are the most RssAnon (heap, stacks, runtime)
	// and RssFile (pages of the executable and libraries) sampled.
	anonKiB, fileKiB int64
	workerCPU        time.Duration // the process's user+system CPU per operation
	redisCPU         time.Duration // Redis's CPU per operation
	ops              int
}

// runChild starts a `cioq worker` process from the executable exe at
// concurrency conc with the extra environment env, against the tasks
// already in Redis (ops operations), and measures it until the queues are
// drained.
func runChild(ctx context.Context, e *env, exe string, ops, conc int, env ...string) (childRun, error) {
	cc := e.cioConfig()
	cmd := exec.CommandContext(ctx, exe, append(slices.Clone(e.opts.WorkerCommand[1:]), "--concurrency="+strconv.Itoa(conc), "--admin-addr=")...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+e.opts.RedisURL,
		"CUSTOMERIO_SITE_ID="+cc.SiteID, "CUSTOMERIO_TRACK_API_KEY="+cc.TrackAPIKey, "CUSTOMERIO_APP_API_KEY="+cc.AppAPIKey,
		"CUSTOMERIO_TRACK_URL="+cc.TrackURL, "CUSTOMERIO_APP_URL="+cc.AppURL, "CIOQ_LOG_LEVEL=warn", "CIOQ_RATE_LIMITS=off",
		"CIOQ_PROBE_INTERVAL=off")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = e.opts.Log, e.opts.Log
	cpu0, err := redisCPU(ctx, e.rdb)
	if err != nil {
		return childRun{}, err
	}
	dropPageCache(cmd.Path)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return childRun{}, err
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	var peak int64
	var cpu time.Duration
	pid := cmd.Process.Pid
	var anon, file int64
	sample := func() {
		st := procStatus(pid)
		peak, anon, file = max(peak, st["VmHWM"]), max(anon, st["RssAnon"]), max(file, st["RssFile"])
	}
	for {
		sample()
		if c, ok := procCPU(pid); ok {
			cpu = c
		}
		qi, err := insp.GetQueueInfo(tasks.QueueDefault)
		if err == nil && qi.Pending == 0 && qi.Active == 0 && qi.Retry == 0 && qi.Scheduled == 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return childRun{}, fmt.Errorf("worker process did not drain %d operations", ops)
		}
		time.Sleep(50 * time.Millisecond)
	}
	el := time.Since(start)
	cpu1, err := redisCPU(ctx, e.rdb)
	if err != nil {
		return childRun{}, err
	}
	sample()
	if c, ok := procCPU(pid); ok {
		cpu = c
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	return childRun{elapsed: el, peakKiB: peak, anonKiB: anon, fileKiB: file, workerCPU: cpu / time.Duration(ops), redisCPU: (cpu1 - cpu0) / time.Duration(ops), ops: ops}, nil
}

// procCPU reads a process's user+system CPU time from /proc/<pid>/stat
// (in clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick, true
}

// benchProcess runs `cioq worker` processes (the binary users run, with
// its metrics) at concurrency 50 over cio:track events, unbatched and
// batched (one task per operation, and multi-operation tasks), and reports
// each one's CPU per operation, Redis's CPU per operation and its peak RSS.
func benchProcess(ctx context.Context, e *env, rep *Report) error {
	if len(e.opts.WorkerCommand) == 0 {
		rep.add(Row{Section: "process", Name: "worker process CPU and peak RSS, concurrency 50", Unit: "µs/op", Note: "skipped: no worker command"})
		return nil
	}
	exe, cleanup := coldCopy(e.opts.WorkerCommand[0])
	defer cleanup()
	linked := linkage(exe)
	n := e.opts.Tasks
	for _, m := range []struct {
		name  string
		env   []string
		multi bool
		conc  int
	}{
		{"unbatched", []string{"CIOQ_BATCH=off"}, false, 50},
		{"batched", nil, false, 50},
		{"multi-operation tasks", nil, true, 50},
		{"multi-operation tasks", nil, true, 10},
	} {
		if err := e.flush(ctx); err != nil {
			return err
		}
		if m.multi {
			n = e.opts.Tasks * 10
			if _, err := fillBatch(ctx, newProducer(e), n, multiBatch, mkTrack); err != nil {
				return err
			}
		} else if err := fill(ctx, newProducer(e), n, mkTrack); err != nil {
			return err
		}
		r, err := runChild(ctx, e, exe, n, m.conc, m.env...)
		if err != nil {
			return err
		}
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		what := fmt.Sprintf("%d cio:track tasks", n)
		if m.multi {
			what = fmt.Sprintf("%d cio:track events in cio:batch tasks of %d", n, multiBatch)
		}
		note := fmt.Sprintf("`cioq worker` child, %s in %s (%.0f ops/s, incl. start-up), rate limits off", what, r.elapsed.Round(time.Millisecond), float64(n)/r.elapsed.Seconds())
		c := fmt.Sprintf("c%d, ", m.conc)
		rep.add(Row{Section: "process", Name: "worker process CPU per operation, " + c + m.name, Value: us(r.workerCPU), Unit: "µs/op", Note: note})
		rep.add(Row{Section: "process", Name: "Redis CPU per operation, " + c + m.name, Value: us(r.redisCPU), Unit: "µs/op", Note: note})
		target := ""
		if m.conc == 50 {
			target = "≤ 32 MiB"
		}
		rep.add(Row{Section: "process", Name: "worker process peak RSS (VmHWM), " + c + m.name, Value: float64(r.peakKiB) / 1024, Unit: "MiB", Target: target,
			Note: fmt.Sprintf("largest sampled RssAnon %.1f MiB (heap, stacks, runtime), RssFile %.1f MiB (the executable's pages, shared with other processes running it, read from a cold page cache); %s; %s",
				float64(r.anonKiB)/1024, float64(r.fileKiB)/1024, linked, note)})
	}
	return nil
}

// linkage says how the executable at path is linked, for the RSS rows: a
// cgo build (`go build` where a C compiler is installed, `go run`) maps
// libc and the dynamic loader too, about 2 MiB more file pages than the
// static build that `make build` and the Dockerfile make, which is what
// users deploy.
func linkage(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "worker executable's linkage unknown"
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "worker executable dynamically linked (cgo: it maps libc and the dynamic loader, about 2 MiB more than the static `make build` and Dockerfile build; --worker-bin bin/cioq measures that one)"
		}
	}
	return "worker executable statically linked (CGO_ENABLED=0), as `make build` and the Dockerfile build it"
}
