package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/ingest"
	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/worker"
)

func runWorker(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "worker", "[flags]",
		"Runs a worker: takes tasks from Redis and delivers them to Customer.io with\n"+
			"backoff, Retry-After and the dead letter store. The admin port serves\n"+
			"/metrics (this process's counters), /healthz and /readyz: Redis answers,\n"+
			"each workspace's Track and App credentials pass a read probe (at start and\n"+
			"every CIOQ_PROBE_INTERVAL; Pipelines cannot be probed), and no task is\n"+
			"waiting for want of valid credentials. SIGTERM or SIGINT stops fetching,\n"+
			"lets in-flight tasks finish and exits 0.\n\n"+
			"The admin port listens on 127.0.0.1:9090 unless told otherwise: its\n"+
			"/readyz names workspaces and credential failures, so open it (e.g.\n"+
			"CIOQ_ADMIN_ADDR=:9090 in a container) only where Prometheus, not the\n"+
			"public, reaches it.\n\n"+
			"Environment: REDIS_URL, CUSTOMERIO_*, CIOQ_ADMIN_ADDR, CIOQ_CONCURRENCY,\n"+
			"CIOQ_QUEUES, CIOQ_WORKSPACES_FILE, CIOQ_LOG_LEVEL, CIOQ_LOG_FORMAT, CIOQ_RATE_LIMITS,\n"+
			"CIOQ_RATE_TRACK, CIOQ_RATE_APP, CIOQ_RATE_TRANSACTIONAL, CIOQ_BATCH,\n"+
			"CIOQ_BATCH_TYPES, CIOQ_BATCH_LINGER, CIOQ_BATCH_MAX_OPS, CIOQ_BATCH_IN_FLIGHT,\n"+
			"CIOQ_ORDERED, CIOQ_ORDERING_MAX_WAIT, CIOQ_PROBE_INTERVAL, CIOQ_STATUS_TTL,\n"+
			"CIOQ_STATUS_POLL_AFTER, CIOQ_CONTRACTS_FILE, CIOQ_OUTBOX_URL (also relay that\n"+
			"database's outbox table into Redis, as `cioq relay` does, with its defaults),\n"+
			"CIOQ_OUTBOX_SCHEMA,\n"+
			"CIOQ_KEY_SECRET, CIOQ_REDIS_ACK_REPLICAS, CIOQ_REDIS_ACK_TIMEOUT, CIOQ_QUEUE_SHARDS;\n"+
			"OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and the\n"+
			"other standard OTEL_* variables export a span per task and per Customer.io\n"+
			"request, continuing the trace each task was enqueued in (nothing is traced\n"+
			"without them).")
	concurrency := fs.Int("concurrency", 0, "tasks processed at once (default CIOQ_CONCURRENCY, else 10)")
	queues := fs.String("queues", "", "queue weights, e.g. critical=6,default=3,bulk=1 (default CIOQ_QUEUES, else that)")
	adminAddr := fs.String("admin-addr", "", "listen address of the admin port (/metrics, /healthz, /readyz; default CIOQ_ADMIN_ADDR, else "+defaultAdminAddr+"); empty or \"off\" disables it")
	shutdown := fs.Duration("shutdown-timeout", worker.DefaultShutdownTimeout, "how long in-flight tasks may finish at shutdown before they go back to the queue")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	log, err := newLogger(a.getenv, a.stderr)
	if err != nil {
		return err
	}
	cfg, wc, err := workerConfig(a, fs, *concurrency, *queues, *shutdown, log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	metrics := ops.NewMetrics(reg)
	wc.Observer = metricsObserver{metrics}
	if wc.Contracts != nil {
		wc.Contracts.SetObserver(contractsObserver{metrics})
	}
	wc.Status.Metrics = ops.NewMessageMetrics(reg)
	tp, stopTracing, err := newTracerProvider(a.getenv, "cioq-worker", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	wc.TracerProvider = tp
	w, err := worker.New(wc)
	if err != nil {
		return configError(err)
	}
	rdb, err := redisClient(cfg.Redis, cfg.Acks)
	if err != nil {
		return err
	}
	defer rdb.Close()
	logRedisFindings(ctx, log, cfg.Redis, rdb, cfg.Acks, wc.Queues, cfg.Shards)

	checks := append([]ops.Check{ops.RedisCheck(rdb)}, workerChecks(w)...)
	var rel *outbox.Relay
	if u, err := outboxURL(a.getenv); err != nil {
		return err
	} else if u != "" {
		popts, err := keySecretOptions(a.getenv)
		if err != nil {
			return err
		}
		popts = append(popts, cfg.Acks.ProducerOptions()...)
		popts = append(popts, config.ShardOptions(cfg.Shards)...)
		rfs := flag.NewFlagSet("relay", flag.ContinueOnError)
		if rel, err = newRelay(rfs, addRelayFlags(rfs), a.getenv, u, rdb, popts, log, reg); err != nil {
			return err
		}
		defer rel.Close()
		checks = append(checks, relayCheck(rel))
	}

	admin, err := startAdmin(a, fs, *adminAddr, reg, checks, log)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		if admin != nil {
			admin.Close()
		}
		return err
	}
	log.Info("worker started", "version", version(), "concurrency", concurrencyOf(wc),
		"queues", queuesString(wc.Queues), "workspaces", workspacesString(cfg), "outbox_relay", rel != nil)
	relayDone := make(chan struct{})
	if rel != nil {
		go func() { defer close(relayDone); rel.Run(ctx) }()
	} else {
		close(relayDone)
	}
	<-ctx.Done()
	<-relayDone
	log.Info("shutting down: no new tasks; in-flight tasks may finish", "timeout", wc.ShutdownTimeout)
	w.Shutdown()
	if admin != nil {
		admin.Shutdown(5 * time.Second)
	}
	log.Info("worker stopped")
	return nil
}

// workerConfig loads the worker's configuration from the environment, with
// the command's flags on top.
func workerConfig(a *app, fs *flag.FlagSet, concurrency int, queues string, shutdown time.Duration, log *slog.Logger) (*config.Config, worker.Config, error) {
	cfg, err := config.Load(a.getenv)
	if err != nil {
		return nil, worker.Config{}, configError(err)
	}
	wc := cfg.WorkerConfig()
	if flagSet(fs, "concurrency") {
		if concurrency < 1 || concurrency > 10000 {
			return nil, worker.Config{}, usageErrorf("--concurrency=%d: want an integer from 1 to 10000", concurrency)
		}
		wc.Concurrency = concurrency
	}
	if flagSet(fs, "queues") {
		q, err := config.ParseQueues(queues)
		if err != nil {
			return nil, worker.Config{}, usageErrorf("--queues: %v", err)
		}
		wc.Queues = q
	}
	wc.ShutdownTimeout = shutdown
	wc.Logger = log
	return cfg, wc, nil
}

// startAdmin starts the admin port (/metrics, /healthz, /readyz) at
// --admin-addr, else CIOQ_ADMIN_ADDR, else defaultAdminAddr; nil when it
// is "" or "off".
func startAdmin(a *app, fs *flag.FlagSet, flagAddr string, reg *prometheus.Registry, checks []ops.Check, log *slog.Logger) (*httpServer, error) {
	addr := strings.TrimSpace(a.getenv(envAdminAddr))
	if flagSet(fs, "admin-addr") {
		addr = flagAddr
	} else if addr == "" {
		addr = defaultAdminAddr
	}
	if addr == "" || addr == "off" {
		return nil, nil
	}
	admin, err := listenHTTP(addr, ops.AdminMux(ops.Handler(reg), ops.NewHealth(checks...)))
	if err != nil {
		return nil, usageErrorf("--admin-addr (or %s): %v", envAdminAddr, err)
	}
	log.Info("admin port listening", "addr", admin.Addr(), "paths", "/metrics /healthz /readyz")
	return admin, nil
}

// workerChecks are the worker's readiness checks as /readyz lists them:
// one per configured workspace and API (what its credentials probe found)
// and kept_tasks (tasks kept for lack of valid credentials).
func workerChecks(w *worker.Worker) []ops.Check {
	var out []ops.Check
	for _, c := range w.Checks() {
		out = append(out, ops.DetailCheck(c.Name, c.Run))
	}
	return out
}

func concurrencyOf(c worker.Config) int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return worker.DefaultConcurrency
}

func queuesString(q map[string]int) string {
	if q == nil {
		q = worker.DefaultQueues()
	}
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if q[names[i]] != q[names[j]] {
			return q[names[i]] > q[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Itoa(q[n])
	}
	return strings.Join(parts, ",")
}

// workspacesString names each workspace and the APIs it has credentials
// for, never a key.
func workspacesString(c *config.Config) string {
	names := make([]string, 0, len(c.Workspaces))
	for n := range c.Workspaces {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s(%s)", workspaceLabel(n), c.Workspaces[n])
	}
	return strings.Join(parts, " ")
}

// httpServer is an http.Server serving on its own listener.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// listenHTTP listens on addr and serves h in the background, with the
// timeouts ingest recommends against slow or idle clients.
func listenHTTP(addr string, h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := ingest.NewHTTPServer(addr, h)
	srv.ErrorLog = slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn)
	s := &httpServer{srv: srv, ln: ln, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *httpServer) Addr() string { return s.ln.Addr().String() }

// URL is a URL reaching the server from this machine (an unspecified
// listen address becomes 127.0.0.1).
func (s *httpServer) URL() string { return "http://" + localAddr(s.ln.Addr()) }

func localAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Shutdown stops accepting connections and waits up to timeout for requests
// in flight to finish, then closes what is left. It reports whether every
// request finished.
func (s *httpServer) Shutdown(timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.srv.Close()
		return false
	}
	return true
}

// Close closes the server at once.
func (s *httpServer) Close() { s.srv.Close() }
