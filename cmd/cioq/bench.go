package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/cmd/cioq/internal/bench"
)

func runBench(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "bench", "[flags]",
		"Measures cioq against raw asynq in one run, with the in-process sandbox\n"+
			"standing in for Customer.io: enqueue rate, end-to-end rate at concurrency\n"+
			"10 and 50, batched vs unbatched, latency at 100 tasks/s, 3 workers at the\n"+
			"sandbox's 100 req/s Track limit, app-side cost and a worker's peak RSS; with\n"+
			"CIOQ_OUTBOX_URL, the transactional outbox (its write inside a transaction vs a\n"+
			"plain INSERT, relay throughput, commit→enqueued latency) in a schema cioq_bench\n"+
			"it creates and drops there. It FLUSHES the Redis database of REDIS_URL: point\n"+
			"it at a spare one.\n\n"+
			"Environment: REDIS_URL, CIOQ_OUTBOX_URL.")
	quick := fs.Bool("quick", false, "short run (well under a minute)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	tasksN := fs.Int("tasks", 0, "tasks per end-to-end and batching measurement (default 20000, quick 3000)")
	enqDur := fs.Duration("enqueue-duration", 0, "duration of each enqueue measurement (default 3s, quick 1s)")
	lightDur := fs.Duration("light-duration", 0, "duration of the 100 tasks/s latency measurement (default 5s, quick 2s)")
	importRows := fs.Int("import-rows", 0, "rows of the import measurement (default 1000000, quick 50000)")
	limitDur := fs.Duration("limit-duration", 0, "duration of the rate-limited 3-worker measurement (default 10s, quick 3s)")
	only := fs.String("only", "", "comma-separated sections to run: enqueue,e2e,batch,multi,latency,limit,app,import,process,outbox")
	limitRates := fs.String("limit-rates", "", "comma-separated sandbox limits the limit section runs (of 1,5,100,3000; default all)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	workerBin := fs.String("worker-bin", "", "path of the cioq binary whose worker command the process and limit sections run (default: this one; e.g. an older build, for a before/after comparison)")
	noRSS := fs.Bool("no-rss", false, "skip the worker-process measurements (CPU per operation, peak RSS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	url := a.getenv("REDIS_URL")
	if url == "" {
		return usageErrorf("REDIS_URL is not set (bench flushes that database: use a spare one)")
	}
	opts := bench.Options{RedisURL: url, Quick: *quick, Tasks: *tasksN, EnqueueDuration: *enqDur,
		LightDuration: *lightDur, ImportRows: *importRows, LimitDuration: *limitDur, Log: a.stderr, Postgres: strings.TrimSpace(a.getenv(envOutboxURL))}
	if *only != "" {
		opts.Only = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			opts.Only[strings.TrimSpace(s)] = true
		}
	}
	if *limitRates != "" {
		opts.LimitRates = map[int]bool{}
		for _, s := range strings.Split(*limitRates, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return usageErrorf("--limit-rates: %q is not a number", s)
			}
			opts.LimitRates[n] = true
		}
	}
	if !*noRSS {
		if *workerBin != "" {
			opts.WorkerCommand = []string{*workerBin, "worker"}
		} else if exe, err := os.Executable(); err == nil {
			opts.WorkerCommand = []string{exe, "worker"}
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return usageErrorf("--cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if err := rep.WriteTable(a.stdout); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
