// Package bench measures cioq against raw asynq on the same machine, in one
// run, and against the in-process sandbox standing in for Customer.io: the
// enqueue rate, the end-to-end delivery rate, batching, latency at light
// load, shared rate limits across workers, the cost to the application and a
// worker's memory. `cioq bench` prints its Report.
//
// Speeds are reported next to a baseline measured in the same run (raw
// asynq), as ratios; nothing here asserts a timing.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/redisconf"
)

// Options configure a run. Zero fields take the full run's values; Quick
// shrinks every count and duration so the run takes well under a minute.
type Options struct {
	// RedisURL names the Redis database the run uses; it is flushed before
	// and between measurements.
	RedisURL string
	// Quick selects the short run.
	Quick bool
	// EnqueueDuration is how long each enqueue measurement runs (3 s; quick 1 s).
	EnqueueDuration time.Duration
	// Tasks is the number of tasks of each end-to-end and batching
	// measurement (20,000; quick 3,000).
	Tasks int
	// LightDuration is how long the light-load latency measurement enqueues
	// 100 tasks/s (5 s; quick 2 s).
	LightDuration time.Duration
	// LimitDuration is how long the three rate-limited workers run (10 s;
	// quick 3 s).
	LimitDuration time.Duration
	// ImportRows is the rows of the import measurement (1,000,000; quick
	// 50,000).
	ImportRows int
	// AppCalls is the number of calls of the app-side cost measurement
	// (300; quick 60).
	AppCalls int
	// LimitRates, when set, runs only the limit measurements of these
	// sandbox limits (requests per window: 1, 5, 100, 3000).
	LimitRates map[int]bool
	// WorkerCommand, when set, starts a worker process (`cioq worker`) for
	// the peak-RSS measurement; REDIS_URL and CUSTOMERIO_* are added to its
	// environment. Empty skips that measurement.
	WorkerCommand []string
	// Postgres is a PostgreSQL connection string for the outbox section
	// (CIOQ_OUTBOX_URL), which creates and drops the schema cioq_bench
	// there; empty skips it.
	Postgres string
	// Only, when set, runs only the named sections (enqueue, e2e, batch,
	// multi, latency, limit, app, import, process, outbox).
	Only map[string]bool
	// Log receives progress lines (nil: none).
	Log io.Writer
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, full, quick time.Duration) {
		if *d <= 0 {
			*d = full
			if o.Quick {
				*d = quick
			}
		}
	}
	def(&o.EnqueueDuration, 3*time.Second, time.Second)
	def(&o.LightDuration, 5*time.Second, 2*time.Second)
	def(&o.LimitDuration, 10*time.Second, 3*time.Second)
	if o.Tasks <= 0 {
		o.Tasks = 20000
		if o.Quick {
			o.Tasks = 3000
		}
	}
	if o.ImportRows <= 0 {
		o.ImportRows = 1_000_000
		if o.Quick {
			o.ImportRows = 50_000
		}
	}
	if o.AppCalls <= 0 {
		o.AppCalls = 300
		if o.Quick {
			o.AppCalls = 60
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Row is one line of the report: cioq's value, the baseline's, and their
// ratio when both are rates.
type Row struct {
	Section  string  `json:"section"`
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline,omitempty"`
	BaseName string  `json:"baseline_name,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	CPUs     int           `json:"cpus"`
	Quick    bool          `json:"quick"`
	Rows     []Row         `json:"rows"`
}

func (r *Report) add(row Row) {
	if row.Baseline > 0 && row.Ratio == 0 {
		row.Ratio = row.Value / row.Baseline
	}
	r.Rows = append(r.Rows, row)
}

// env is what every measurement shares.
type env struct {
	opts Options
	rdb  redis.UniversalClient
	conn asynq.RedisConnOpt
	sb   *sandbox.Server
	hs   *httptest.Server
	log  *slog.Logger
}

func (e *env) flush(ctx context.Context) error {
	e.sb.ClearFaults()
	e.sb.Reset()
	return e.rdb.FlushDB(ctx).Err()
}

func (e *env) cioConfig() customerio.Config {
	return customerio.Config{
		SiteID: sandbox.DefaultSiteID, TrackAPIKey: sandbox.DefaultTrackAPIKey,
		AppAPIKey: sandbox.DefaultAppAPIKey, PipelinesWriteKey: sandbox.DefaultPipelinesWriteKey,
		TrackURL: e.hs.URL + "/track", AppURL: e.hs.URL + "/app", PipelinesURL: e.hs.URL + "/cdp/v1",
		Timeout: 10 * time.Second,
	}
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.opts.Log, format+"\n", args...)
}

// Run runs the benchmark.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	conn, err := redisconf.Parse(opts.RedisURL)
	if err != nil {
		return nil, err
	}
	rdb, err := redisconf.UniversalClient(conn)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("bench: redis: %w", err)
	}
	// The shared sandbox records no requests: these sections read only its
	// counters (Stats, exact whatever the cap), and copying every request's
	// headers into a growing ring is stand-in CPU on the same 2 cores, not
	// cioq's. limitRun, which reads the requests' times, has its own.
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1, MaxRecorded: -1, MaxRecordedBody: -1})
	hs := httptest.NewServer(sb)
	defer func() { hs.Close(); sb.Close() }()
	e := &env{opts: opts, rdb: rdb, conn: conn, sb: sb, hs: hs,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep := &Report{Started: time.Now(), CPUs: numCPU(), Quick: opts.Quick}
	sections := []struct {
		name string
		run  func(context.Context, *env, *Report) error
	}{
		{"enqueue", benchEnqueue},
		{"e2e", benchE2E},
		{"batch", benchBatch},
		{"multi", benchMulti},
		{"latency", benchLatency},
		{"limit", benchLimit},
		{"app", benchApp},
		{"import", benchImport},
		{"process", benchProcess},
		{"outbox", benchOutbox},
	}
	for _, s := range sections {
		if opts.Only != nil && !opts.Only[s.name] {
			continue
		}
		if err := e.flush(ctx); err != nil {
			return nil, err
		}
		e.logf("bench: %s ...", s.name)
		if err := s.run(ctx, e, rep); err != nil {
			return rep, fmt.Errorf("bench: %s: %w", s.name, err)
		}
	}
	rep.Duration = time.Since(rep.Started)
	return rep, e.flush(ctx)
}

// WriteTable writes the report as an aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "cioq bench — %d CPUs, %s run, %s\n\n", r.CPUs, map[bool]string{true: "quick", false: "full"}[r.Quick], r.Duration.Round(time.Second))
	fmt.Fprintln(tw, "SECTION\tMEASUREMENT\tCIOQ\tBASELINE\tRATIO\tTARGET\tNOTE")
	for _, x := range r.Rows {
		base, ratio := "", ""
		if x.Baseline > 0 {
			base = num(x.Baseline) + " " + x.Unit + " (" + x.BaseName + ")"
		}
		if x.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", x.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\t%s\n", x.Section, x.Name, num(x.Value), x.Unit, base, ratio, x.Target, x.Note)
	}
	return tw.Flush()
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
