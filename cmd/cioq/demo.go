package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/cmd/cioq/internal/demo"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/worker"
)

// Demo defaults.
const (
	demoRedisURL     = "redis://127.0.0.1:6379/9"
	demoDashUser     = "admin"
	demoDashPassword = "demo"
	// demoWebhookKey signs the sandbox's reporting webhooks to the demo's
	// receiver (unless CIOQ_WEBHOOK_SIGNING_KEY says otherwise).
	demoWebhookKey = "sandbox-webhook-signing-key"
)

// demoFlags are the demo's flags.
type demoFlags struct {
	addr, sandboxAddr string
	scenarios         bool
	timeout           time.Duration
}

func parseDemoFlags(a *app, args []string) (demoFlags, error) {
	fs := newFlagSet(a, "demo", "[flags]",
		"The demo `make run` runs, in one process: the Customer.io sandbox, a worker\n"+
			"and the HTTP server (dashboard, metrics, health, the reporting webhook\n"+
			"receiver the sandbox reports each delivery to). It enqueues the demo\n"+
			"scenarios through the producer (password reset and order confirmation\n"+
			"emails, a welcome email that bounces, segment attributes, anonymous page views merged on signup, a company\n"+
			"with a member, a manual segment, a broadcast, a Pipelines identify and\n"+
			"track), waits until the sandbox received them, prints what it received and\n"+
			"what became of each message (cioq status), and keeps running until Ctrl-C.\n\n"+
			"With Customer.io credentials in the environment (CUSTOMERIO_SITE_ID and\n"+
			"CUSTOMERIO_TRACK_API_KEY, CUSTOMERIO_APP_API_KEY or\n"+
			"CUSTOMERIO_PIPELINES_WRITE_KEY) it runs no sandbox: the worker delivers to\n"+
			"Customer.io (or the CUSTOMERIO_*_URL endpoints) and no demo data is sent\n"+
			"unless --scenarios is given.\n\n"+
			"Environment: REDIS_URL (default "+demoRedisURL+"), CUSTOMERIO_*,\n"+
			"CIOQ_DASHBOARD_USER and CIOQ_DASHBOARD_PASSWORD (default "+demoDashUser+"/"+demoDashPassword+"), CIOQ_*.")
	var f demoFlags
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address of the dashboard, /metrics and health (a free port if taken)")
	fs.StringVar(&f.sandboxAddr, "sandbox-addr", "127.0.0.1:8025", "listen address of the sandbox (a free port if taken)")
	fs.BoolVar(&f.scenarios, "scenarios", false, "with real credentials: enqueue the demo scenarios anyway (they send real messages)")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "how long to wait for the scenarios to arrive")
	return f, parseNoArgs(fs, args)
}

func runDemo(ctx context.Context, a *app, args []string) error {
	f, err := parseDemoFlags(a, args)
	if err != nil {
		return err
	}
	log, err := newLogger(a.getenv, a.stderr)
	if err != nil {
		return err
	}
	rurl := strings.TrimSpace(a.getenv(redisconf.EnvVar))
	if rurl == "" {
		rurl = demoRedisURL
		log.Info("REDIS_URL is not set; using the demo's default", "redis", rurl)
	}
	env, err := newDemoEnv(a, rurl, f.sandboxAddr, log)
	if err != nil {
		return err
	}
	if env.sb != nil {
		defer env.sb.Close()
	}
	cfg, err := config.Load(env.getenv)
	if err != nil {
		return configError(err)
	}
	popts, err := keySecretOptions(a.getenv)
	if err != nil {
		return err
	}
	rdb, err := redisconf.UniversalClient(cfg.Redis)
	if err != nil {
		return configError(err)
	}
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("no Redis answers at %s (%v): `make run` starts one, or set REDIS_URL", redisconf.Redact(rurl), err)
	}
	user, pass := strings.TrimSpace(a.getenv(envDashboardUser)), a.getenv(envDashboardPassword)
	if user == "" && pass == "" {
		user, pass = demoDashUser, demoDashPassword
	}
	svc, err := startDemoServices(log, env.getenv, cfg, rdb, popts, f.addr, user, pass)
	if err != nil {
		return err
	}
	defer svc.site.Close()
	if env.sb != nil {
		// The sandbox reports each delivery to the demo's receiver, as
		// Customer.io's reporting webhooks would.
		keys, _ := config.WebhookSigningKeys(env.getenv)
		env.sb.SetWebhooks(sandbox.Webhooks{URL: svc.srv.URL() + status.WebhookPath, SigningKey: keys[config.DefaultWorkspace]})
	}

	out := a.stdout
	fmt.Fprintf(out, "cioq %s demo: Redis %s, worker delivering to %s\n\n", version(), redisconf.Redact(rurl), env.target(cfg))
	if !env.real || f.scenarios {
		err := demo.Run(ctx, demo.Options{Out: out, Producer: producer.NewFromRedis(rdb, popts...), Sandbox: env.sb,
			Inspector: asynq.NewInspectorFromRedisClient(rdb), DLQ: svc.worker.DLQ(), Timeout: f.timeout,
			Status: status.NewStore(rdb, status.Options{TTL: cfg.Status.TTL}), PrintTimeline: printTimeline})
		if err != nil {
			svc.stop()
			if ctx.Err() != nil {
				return nil // Ctrl-C while waiting
			}
			return err
		}
	} else {
		fmt.Fprintln(out, "Real credentials found: no demo data is sent (pass --scenarios to send it).")
		fmt.Fprintln(out, "Enqueue tasks with `cioq enqueue` or the producer; the worker delivers them.")
	}
	printDemoURLs(out, svc.srv.URL(), user, pass, env.sb, rurl)

	<-ctx.Done()
	log.Info("shutting down the demo")
	svc.stop()
	return nil
}

// demoEnv is where the demo's worker delivers: the sandbox it started, or
// the real endpoints the environment's credentials name.
type demoEnv struct {
	// getenv is the environment the demo's configuration is loaded from:
	// REDIS_URL as the demo resolved it and, with the sandbox, the
	// sandbox's CUSTOMERIO_* settings instead of the process's.
	getenv func(string) string
	sb     *sandbox.Running // nil with real credentials
	// real: Customer.io credentials are set; overridden: so are endpoint URLs.
	real, overridden bool
}

// newDemoEnv starts the sandbox on sandboxAddr (a free port if taken)
// unless the environment has Customer.io credentials.
func newDemoEnv(a *app, rurl, sandboxAddr string, log *slog.Logger) (*demoEnv, error) {
	e := &demoEnv{}
	for _, k := range []string{config.EnvSiteID, config.EnvTrackAPIKey, config.EnvAppAPIKey, config.EnvPipelinesWriteKey} {
		if strings.TrimSpace(a.getenv(k)) != "" {
			e.real = true
		}
	}
	for _, k := range []string{config.EnvTrackURL, config.EnvAppURL, config.EnvPipelinesURL} {
		if strings.TrimSpace(a.getenv(k)) != "" {
			e.overridden = true
		}
	}
	e.getenv = func(k string) string {
		if k == redisconf.EnvVar {
			return rurl
		}
		return a.getenv(k)
	}
	if e.real {
		return e, nil
	}
	sb, err := sandbox.Start(sandboxAddr, sandbox.Config{})
	if err != nil {
		log.Warn("sandbox address taken; using a free port", "addr", sandboxAddr, "error", err.Error())
		if sb, err = sandbox.Start("127.0.0.1:0", sandbox.Config{}); err != nil {
			return nil, err
		}
	}
	e.sb = sb
	env := map[string]string{}
	for _, kv := range sandboxEnv(sb) {
		env[kv[0]] = kv[1]
	}
	if strings.TrimSpace(a.getenv(config.EnvWebhookSigningKey)) == "" {
		env[config.EnvWebhookSigningKey] = demoWebhookKey
	}
	e.getenv = func(k string) string {
		switch {
		case k == redisconf.EnvVar:
			return rurl
		case env[k] != "":
			return env[k]
		case strings.HasPrefix(k, "CUSTOMERIO_"):
			return ""
		}
		return a.getenv(k)
	}
	return e, nil
}

// target names where the worker delivers, for the demo's first line.
func (e *demoEnv) target(cfg *config.Config) string {
	switch {
	case e.real && e.overridden:
		return "the endpoints in CUSTOMERIO_TRACK_URL/APP_URL/PIPELINES_URL (" + workspacesString(cfg) + ")"
	case e.real:
		return "Customer.io (" + workspacesString(cfg) + ")"
	}
	return "the embedded Customer.io sandbox at " + sandboxBase(e.sb)
}

// demoServices are the demo's running worker and HTTP server.
type demoServices struct {
	worker *worker.Worker
	site   *site
	srv    *httpServer
}

// startDemoServices starts the worker and the HTTP server (dashboard,
// metrics, health) on addr, or a free port when addr is taken.
func startDemoServices(log *slog.Logger, getenv func(string) string, cfg *config.Config, rdb redis.UniversalClient,
	popts []producer.Option, addr, user, pass string) (*demoServices, error) {
	reg := newRegistry()
	metrics := ops.NewMetrics(reg)
	messages := ops.NewMessageMetrics(reg)
	wc := cfg.WorkerConfig()
	wc.Logger = log
	wc.Observer = metricsObserver{metrics}
	wc.Status.Metrics = messages
	w, err := worker.New(wc)
	if err != nil {
		return nil, configError(err)
	}
	site, err := newSite(siteOptions{
		log: log, getenv: getenv, conn: cfg.Redis, rdb: rdb, reg: reg, metrics: metrics, producer: popts,
		dashboard:    ops.DashboardOptions{RedisConnOpt: cfg.Redis, Username: user, Password: pass},
		queueMetrics: true, // one process: no replica double counts
		checks:       workerChecks(w),
		messages:     messages,
	})
	if err != nil {
		return nil, err
	}
	srv, err := listenHTTP(addr, site)
	if err != nil {
		log.Warn("dashboard address taken; using a free port", "addr", addr, "error", err.Error())
		if srv, err = listenHTTP("127.0.0.1:0", site); err != nil {
			site.Close()
			return nil, err
		}
	}
	if err := w.Start(); err != nil {
		srv.Close()
		site.Close()
		return nil, err
	}
	return &demoServices{worker: w, site: site, srv: srv}, nil
}

// stop shuts the HTTP server down, then the worker.
func (s *demoServices) stop() {
	s.srv.Shutdown(5 * time.Second)
	s.worker.Shutdown()
}

// printDemoURLs prints where to look while the demo runs.
func printDemoURLs(out io.Writer, base, user, pass string, sb *sandbox.Running, rurl string) {
	fmt.Fprintf(out, "\ncioq is running:\n")
	fmt.Fprintf(out, "  Dashboard        %s%s/   (user %q, password %q)\n", base, ops.DefaultDashboardRoot, user, maskUnlessDemo(user, pass))
	fmt.Fprintf(out, "  Metrics          %s/metrics\n", base)
	fmt.Fprintf(out, "  Health           %s/healthz  %s/readyz\n", base, base)
	if sb != nil {
		fmt.Fprintf(out, "  Sandbox control  %s/_sandbox/state  (also /_sandbox/people, /deliveries, /requests, /stats)\n", sandboxBase(sb))
	}
	fmt.Fprintf(out, "  Dead letters     REDIS_URL=%s go run ./cmd/cioq dlq list\n", redisconf.Redact(rurl))
	fmt.Fprintf(out, "  A message's fate REDIS_URL=%s go run ./cmd/cioq status TASK_ID\n", redisconf.Redact(rurl))
	fmt.Fprintf(out, "  Enqueue more     echo '{\"identifiers\":{\"id\":\"user-42\"},\"attributes\":{\"plan\":\"pro\"}}' | REDIS_URL=%s go run ./cmd/cioq enqueue cio:identify\n", redisconf.Redact(rurl))
	fmt.Fprintf(out, "\nPress Ctrl-C to stop.\n")
}

// maskUnlessDemo prints the demo's well-known password, never one the
// operator chose.
func maskUnlessDemo(user, pass string) string {
	if user == demoDashUser && pass == demoDashPassword {
		return pass
	}
	return "from CIOQ_DASHBOARD_PASSWORD"
}
