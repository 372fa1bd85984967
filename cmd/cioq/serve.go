package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/worker"
)

func runServe(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "serve", "[flags]",
		"Serves HTTP: the ingest front door at / (configured by CIOQ_INGEST_CONFIG),\n"+
			"the asynqmon dashboard at /dashboard (basic auth from CIOQ_DASHBOARD_USER and\n"+
			"CIOQ_DASHBOARD_PASSWORD), /metrics (process metrics and the queue collector,\n"+
			"including cioq_dead_letters), /healthz and /readyz (the status only; each\n"+
			"check's result with the dashboard's credentials). SIGTERM or SIGINT stops\n"+
			"accepting connections, drains requests in flight and exits 0.\n\n"+
			"With CIOQ_WORKSPACES_FILE (the workers' file), the ingest refuses a source\n"+
			"or a task naming a workspace that is not in it. /v1/tasks puts tasks only in\n"+
			"the queues of CIOQ_QUEUES (the workers' setting; default critical, default,\n"+
			"bulk). With CIOQ_CONTRACTS_FILE, it refuses (400, naming the field) a\n"+
			"request with a task a contract refuses.\n\n"+
			"With CIOQ_WEBHOOK_SIGNING_KEY (or webhook_signing_key in the workspaces\n"+
			"file) it receives Customer.io's reporting webhooks at POST\n"+
			"/v1/customerio/webhooks[/WORKSPACE] and records each message's fate\n"+
			"(cioq status TASK_ID shows it, and the dashboard's page\n"+
			"/dashboard/timeline?task=TASK_ID, which also finds a task by its key).\n\n"+
			"The dashboard refuses cross-origin requests that change state (403) and\n"+
			"API bodies that are not JSON (415). On a loopback address, and with\n"+
			"--no-auth, it also refuses Host headers other than IP addresses, localhost\n"+
			"and --allowed-hosts (421), against DNS rebinding.\n\n"+
			"Environment: REDIS_URL, CIOQ_DASHBOARD_USER, CIOQ_DASHBOARD_PASSWORD,\n"+
			"CIOQ_DASHBOARD_TRUSTED_ORIGINS, CIOQ_DASHBOARD_ALLOWED_HOSTS,\n"+
			"CIOQ_INGEST_CONFIG, CIOQ_KEY_SECRET, CIOQ_WORKSPACES_FILE, CIOQ_CONTRACTS_FILE, CIOQ_QUEUES,\n"+
			"CIOQ_WEBHOOK_SIGNING_KEY, CIOQ_STATUS_TTL, CIOQ_LOG_LEVEL, CIOQ_LOG_FORMAT,\n"+
			"CIOQ_REDIS_ACK_REPLICAS, CIOQ_REDIS_ACK_TIMEOUT, CIOQ_QUEUE_SHARDS.")
	addr := fs.String("addr", ":8080", "listen address")
	readOnly := fs.Bool("read-only", false, "dashboard refuses every change (no retry, delete, pause buttons)")
	noAuth := fs.Bool("no-auth", false, "serve the dashboard without authentication when no credentials are set (logs a warning)")
	showPayloads := fs.Bool("show-payloads", false, "dashboard shows task payloads unredacted (person identifiers, emails, message data)")
	queueMetrics := fs.Bool("queue-metrics", true, "serve queue sizes and cioq_dead_letters read from Redis on /metrics (register them in one kind of process only)")
	drain := fs.Duration("drain-timeout", 20*time.Second, "how long requests in flight may finish at shutdown")
	fs.String("trusted-origins", "", "comma-separated origins (https://cioq.example.com) whose dashboard changes are accepted "+
		"although their Origin does not match the Host header, as behind a proxy that rewrites Host (default "+envDashboardTrustedOrigins+")")
	fs.String("allowed-hosts", "", "comma-separated host names the dashboard answers to besides IP addresses and localhost; "+
		"setting any checks the Host header on every address (default "+envDashboardAllowedHosts+")")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	dnet, err := readDashboardNetwork(a.getenv, fs)
	if err != nil {
		return err
	}
	log, err := newLogger(a.getenv, a.stderr)
	if err != nil {
		return err
	}
	rurl, err := redisURL(a.getenv)
	if err != nil {
		return err
	}
	conn, rdb, acks, err := ackedRedis(a.getenv, rurl)
	if err != nil {
		return err
	}
	defer rdb.Close()
	shards, err := shardSettings(a.getenv)
	if err != nil {
		return err
	}
	logRedisFindings(ctx, log, conn, rdb, acks, nil, shards)
	if shards > 1 {
		log.Info("queue shards: the dashboard (asynqmon) lists each shard as a queue of its own and cannot sum them; /metrics, cioq dlq and cioq doctor report logical queues",
			"shards", shards)
	}

	popts, err := keySecretOptions(a.getenv)
	if err != nil {
		return err
	}
	popts = append(popts, acks.ProducerOptions()...)
	popts = append(popts, config.ShardOptions(shards)...)

	reg := newRegistry()
	dash := ops.DashboardOptions{
		RedisConnOpt:   conn,
		Username:       strings.TrimSpace(a.getenv(envDashboardUser)),
		Password:       a.getenv(envDashboardPassword),
		AllowNoAuth:    *noAuth,
		ReadOnly:       *readOnly,
		ShowPayloads:   *showPayloads,
		TrustedOrigins: dnet.origins,
		AllowedHosts:   dnet.hosts,
	}
	// A rebinding page can drive a dashboard it needs no password for, or
	// one only this machine reaches.
	dash.CheckHost = dash.Unauthenticated() || loopbackAddr(*addr)
	site, err := newSite(siteOptions{
		log: log, getenv: a.getenv, conn: conn, rdb: rdb, reg: reg, producer: popts,
		dashboard:    dash,
		queueMetrics: *queueMetrics,
		metrics:      ops.NewMetrics(reg),
	})
	if err != nil {
		return err
	}
	defer site.Close()

	srv, err := listenHTTP(*addr, site)
	if err != nil {
		return usageErrorf("--addr: %v", err)
	}
	log.Info("serving", "version", version(), "addr", srv.Addr(), "dashboard", srv.URL()+ops.DefaultDashboardRoot+"/",
		"ingest", site.ingest, "webhooks", site.webhooks, "read_only", *readOnly, "show_payloads", *showPayloads, "queue_metrics", *queueMetrics)
	select {
	case <-ctx.Done():
	case err := <-srv.done:
		return err
	}
	log.Info("shutting down: not accepting new connections, draining requests in flight", "timeout", *drain)
	if !srv.Shutdown(*drain) {
		log.Warn("drain timeout passed; closed the remaining connections")
	}
	log.Info("server stopped")
	return nil
}

// siteOptions configure newSite.
type siteOptions struct {
	log          *slog.Logger
	getenv       func(string) string
	conn         asynq.RedisConnOpt
	rdb          redis.UniversalClient
	reg          *prometheus.Registry
	metrics      *ops.Metrics
	producer     []producer.Option // the ingest's producer (CIOQ_KEY_SECRET)
	dashboard    ops.DashboardOptions
	queueMetrics bool
	// checks are readiness checks besides Redis (e.g. the demo's worker).
	checks []ops.Check
	// messages are the message outcome metrics when the caller registered
	// them already (the demo's worker); nil: registered on reg if needed.
	messages *ops.MessageMetrics
}

// site is the handler of `serve` (and of the demo): ingest at /, the
// dashboard, metrics and health.
type site struct {
	http.Handler
	closers  []io.Closer
	ingest   string // "on" or why it is off, for the start-up log
	webhooks string // the same for the reporting webhook receiver
}

func newSite(o siteOptions) (*site, error) {
	if o.dashboard.Timelines == nil && o.rdb != nil {
		o.dashboard.Timelines = status.NewStore(o.rdb, status.Options{})
		o.dashboard.TaskIDForKey = keyResolver(o.rdb, o.producer, o.getenv != nil && o.getenv(envKeySecret) != "")
	}
	dash, err := ops.NewDashboard(o.dashboard)
	if err != nil {
		if errors.Is(err, ops.ErrDashboardNoAuth) {
			return nil, &usageError{err: errors.New("the dashboard needs " + envDashboardUser + " and " + envDashboardPassword),
				hint: "set both, or pass --no-auth to serve it without authentication (not on a network others reach)"}
		}
		return nil, configError(err)
	}
	if o.dashboard.Unauthenticated() {
		o.log.Warn("dashboard served WITHOUT authentication (--no-auth): anyone reaching this port can retry, delete and read tasks")
	}
	s := &site{}
	if c, ok := dash.(io.Closer); ok {
		s.closers = append(s.closers, c)
	}
	inspector := asynq.NewInspectorFromRedisClient(o.rdb)
	if o.queueMetrics {
		dlq := worker.NewDeadLetters(o.rdb, inspector)
		o.reg.MustRegister(ops.NewQueueCollector(inspector, dlq.Count))
	}
	health := ops.NewHealth(append([]ops.Check{ops.RedisCheck(o.rdb)}, o.checks...)...)

	mux := http.NewServeMux()
	mux.Handle(ops.DefaultDashboardRoot, dash)
	mux.Handle(ops.DefaultDashboardRoot+"/", dash)
	mux.Handle("GET /metrics", ops.Handler(o.reg))
	mux.Handle("GET /healthz", health.Live())
	// The listener carries the ingest front door: readiness says only
	// ok or not, unless the request has the dashboard's credentials.
	mux.Handle("GET /readyz", health.PublicReadiness(ops.BasicAuthorized(o.dashboard.Username, o.dashboard.Password)))
	if s.webhooks, err = mountWebhooks(o, mux); err != nil {
		s.Close()
		return nil, err
	}
	ing, status, err := mountIngest(o)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.ingest = status
	if ing != nil {
		mux.Handle("/", ing)
	} else {
		mux.Handle("/{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, ops.DefaultDashboardRoot+"/", http.StatusFound)
		}))
	}
	s.Handler = mux
	return s, nil
}

// keyResolver resolves the idempotency keys the dashboard's timeline page
// is given, as `cioq status --key` does: without a key secret in Redis (and
// none configured) no task was ever enqueued with a key, and none is
// created by looking.
func keyResolver(rdb redis.UniversalClient, popts []producer.Option, configured bool) func(context.Context, string) (string, error) {
	p := producer.NewFromRedis(rdb, popts...)
	return func(ctx context.Context, key string) (string, error) {
		if !configured {
			n, err := rdb.Exists(ctx, producer.KeySecretRedisKey).Result()
			if err != nil {
				return "", err
			}
			if n == 0 {
				return "", ops.ErrNoSuchKey
			}
		}
		return p.TaskIDForKey(ctx, key)
	}
}

// Close releases the dashboard's Redis connections.
func (s *site) Close() error {
	for _, c := range s.closers {
		c.Close()
	}
	return nil
}
