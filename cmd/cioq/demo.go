package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/cmd/cioq/internal/demo"
	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
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
			"what became of each message (cioq status), and keeps running until Ctrl-C.\n"+
			"With CIOQ_OUTBOX_URL (`make run` starts a PostgreSQL) it also runs a relay\n"+
			"and shows the transactional outbox: an order and its confirmation committed\n"+
			"together, then a rolled-back order whose confirmation is never sent.\n\n"+
			"With Customer.io credentials in the environment (CUSTOMERIO_SITE_ID and\n"+
			"CUSTOMERIO_TRACK_API_KEY, CUSTOMERIO_APP_API_KEY or\n"+
			"CUSTOMERIO_PIPELINES_WRITE_KEY) it runs no sandbox: the worker delivers to\n"+
			"Customer.io (or the CUSTOMERIO_*_URL endpoints) and no demo data is sent\n"+
			"unless --scenarios is given.\n\n"+
			"Environment: REDIS_URL (default "+demoRedisURL+"), CUSTOMERIO_*,\n"+
			"CIOQ_DASHBOARD_USER and CIOQ_DASHBOARD_PASSWORD (default "+demoDashUser+"/"+demoDashPassword+"), CIOQ_OUTBOX_URL, CIOQ_*.\n"+
			"The dashboard answers only Host headers that are IP addresses, localhost or in\n"+
			"CIOQ_DASHBOARD_ALLOWED_HOSTS (its credentials are well known).")
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
	contractsNote := ""
	if cfg.Contracts == nil && env.sb != nil {
		// The demo's contracts: the sandbox's templates pulled as `cioq
		// contracts pull` would, and declared attribute types.
		if cfg.Contracts, contractsNote, err = demoContracts(ctx, env.sb); err != nil {
			return err
		}
	}
	if cfg.Contracts != nil {
		popts = append(popts, producer.WithContracts(cfg.Contracts))
	}
	popts = append(popts, cfg.Acks.ProducerOptions()...)
	popts = append(popts, config.ShardOptions(cfg.Shards)...)
	rdb, err := redisClient(cfg.Redis, cfg.Acks)
	if err != nil {
		return err
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
	dnet, err := readDashboardNetwork(a.getenv, nil)
	if err != nil {
		return err
	}
	// The demo's credentials are well known, and it may run with real
	// keys: a DNS-rebinding page must not reach its dashboard.
	dash := ops.DashboardOptions{RedisConnOpt: cfg.Redis, Username: user, Password: pass,
		TrustedOrigins: dnet.origins, AllowedHosts: dnet.hosts, CheckHost: true}
	svc, err := startDemoServices(log, env.getenv, cfg, rdb, popts, f.addr, dash)
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
	fmt.Fprintf(out, "cioq %s demo: Redis %s, worker delivering to %s\n", version(), redisconf.Redact(rurl), env.target(cfg))
	if contractsNote != "" {
		fmt.Fprintln(out, contractsNote)
	}
	fmt.Fprintln(out)
	if !env.real || f.scenarios {
		o := demo.Options{Out: out, Producer: producer.NewFromRedis(rdb, popts...), Sandbox: env.sb,
			Inspector: asynq.NewInspectorFromRedisClient(rdb), DLQ: svc.worker.DLQ(), Timeout: f.timeout,
			Contracts: cfg.Contracts,
			Status:    status.NewStore(rdb, status.Options{TTL: cfg.Status.TTL}), PrintTimeline: printTimeline}
		if env.sb != nil {
			o.AdvanceSandboxClock = env.clock.advance
		}
		if err := demo.ForgetVisitor(ctx, rdb); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		err := demo.Run(ctx, o)
		if err != nil {
			svc.stop()
			if ctx.Err() != nil {
				return nil // Ctrl-C while waiting
			}
			return err
		}
		if err := runDemoOutbox(ctx, a, out, log, rdb, popts, env, f.timeout); err != nil {
			svc.stop()
			if ctx.Err() != nil {
				return nil
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

// runDemoOutbox runs the transactional outbox scenario when CIOQ_OUTBOX_URL
// names a database (`make run` starts one), with a relay that keeps running
// until ctx ends; without it, it says how to see it.
func runDemoOutbox(ctx context.Context, a *app, out io.Writer, log *slog.Logger, rdb redis.UniversalClient,
	popts []producer.Option, env *demoEnv, timeout time.Duration) error {
	u, err := outboxURL(a.getenv)
	if err != nil {
		return err
	}
	if u == "" {
		fmt.Fprintf(out, "\nTransactional outbox: not shown (set %s to a PostgreSQL database; `make run` starts one).\n", envOutboxURL)
		return nil
	}
	// The table first: a relay started before it would warn until it
	// exists.
	if err := demo.MigrateOutbox(ctx, u, timeout); err != nil {
		return err
	}
	rfs := flag.NewFlagSet("relay", flag.ContinueOnError)
	rel, err := newRelay(rfs, addRelayFlags(rfs), a.getenv, u, rdb, popts, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	go func() {
		rel.Run(ctx)
		rel.Close()
	}()
	return demo.RunOutbox(ctx, demo.OutboxOptions{Out: out, Postgres: u, Relay: rel, Sandbox: env.sb, Timeout: timeout})
}

// demoEnv is where the demo's worker delivers: the sandbox it started, or
// the real endpoints the environment's credentials name.
type demoEnv struct {
	// getenv is the environment the demo's configuration is loaded from:
	// REDIS_URL as the demo resolved it and, with the sandbox, the
	// sandbox's CUSTOMERIO_* settings instead of the process's.
	getenv func(string) string
	sb     *sandbox.Running // nil with real credentials
	clock  *offsetClock     // the sandbox's clock
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
	// The demo's sandbox answers an unknown template id as Customer.io
	// does, and runs on a clock the demo can move past the anonymous merge
	// window. Besides its default templates it has the welcome email the
	// bounce scenario sends.
	e.clock = &offsetClock{}
	scfg := sandbox.Config{CheckTemplates: true, Now: e.clock.now,
		TransactionalMessages: append(sandbox.DefaultTransactionalMessages(), demoWelcome())}
	sb, err := sandbox.Start(sandboxAddr, scfg)
	if err != nil {
		log.Warn("sandbox address taken; using a free port", "addr", sandboxAddr, "error", err.Error())
		if sb, err = sandbox.Start("127.0.0.1:0", scfg); err != nil {
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
	popts []producer.Option, addr string, dash ops.DashboardOptions) (*demoServices, error) {
	reg := newRegistry()
	metrics := ops.NewMetrics(reg)
	messages := ops.NewMessageMetrics(reg)
	wc := cfg.WorkerConfig()
	wc.Logger = log
	wc.Observer = metricsObserver{metrics}
	wc.Status.Metrics = messages
	if wc.Contracts != nil {
		wc.Contracts.SetObserver(contractsObserver{metrics})
	}
	w, err := worker.New(wc)
	if err != nil {
		return nil, configError(err)
	}
	site, err := newSite(siteOptions{
		log: log, getenv: getenv, conn: cfg.Redis, rdb: rdb, reg: reg, metrics: metrics, producer: popts,
		dashboard:    dash,
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

// offsetClock is the demo sandbox's clock: the time plus an offset the
// demo moves forward.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *offsetClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// demoContracts pulls the sandbox's templates as `cioq contracts pull`
// would, declares the demo's attribute types (coerced) and event
// timestamps, and writes the file to the temporary directory so `cioq
// contracts show` can print it. The note says so.
func demoContracts(ctx context.Context, sb *sandbox.Running) (*contracts.Set, string, error) {
	c, err := customerio.New(customerio.Config{AppAPIKey: sb.Config().AppAPIKey, AppURL: sb.AppURL()})
	if err != nil {
		return nil, "", err
	}
	pulled, err := contracts.Pull(ctx, c, contracts.PullOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("demo: pull the sandbox's templates: %w", err)
	}
	f := &contracts.File{Workspaces: map[string]*contracts.Workspace{"default": {
		Attributes: &contracts.Attributes{Policy: contracts.Coerce, People: &contracts.AttributeRules{Attributes: map[string]*contracts.Attribute{
			"total_revenue":         {Type: contracts.TypeNumber},
			"order_count":           {Type: contracts.TypeNumber},
			"churn_risk_score":      {Type: contracts.TypeNumber},
			"premium_features_used": {Type: contracts.TypeBoolean},
			"last_active_at":        {Type: contracts.TypeTimestamp},
		}}},
		Events: &contracts.Events{TimestampPolicy: contracts.Coerce},
	}}}
	contracts.Merge(f, "default", pulled)
	set, err := contracts.Compile(f)
	if err != nil {
		return nil, "", err
	}
	note := fmt.Sprintf("Contracts: %d template(s) pulled from the sandbox, people's attribute types declared (coerced)", len(pulled))
	if b, err := f.Marshal(); err == nil {
		path := filepath.Join(os.TempDir(), "cioq-demo-contracts.json")
		if os.WriteFile(path, b, 0o644) == nil {
			note += fmt.Sprintf(";\n  see them: %s=%s go run ./cmd/cioq contracts show", config.EnvContractsFile, path)
		}
	}
	return set, note, nil
}

// demoWelcome is the demo sandbox's welcome email (id 3): the message the
// bouncing-welcome scenario sends to bounce@example.com.
func demoWelcome() sandbox.TransactionalMessage {
	const created = 1552341937
	return sandbox.TransactionalMessage{ID: 3, Name: "welcome", Description: "welcomes a new customer",
		LinkTracking: true, OpenTracking: true, CreatedAt: created, UpdatedAt: created,
		Contents: []sandbox.TransactionalContent{{ID: 31, Name: "welcome", Type: "email", Created: created, Updated: created,
			Subject: `Welcome, {{ trigger.first_name | default: "there" }}`,
			Body:    `<p>Hi {{ trigger.first_name | default: "there" }}, welcome aboard.</p>`}}}
}
