package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/producer"
)

// Environment variables of the transactional outbox.
const (
	envOutboxURL    = "CIOQ_OUTBOX_URL"
	envOutboxSchema = "CIOQ_OUTBOX_SCHEMA"
)

// outboxURL returns CIOQ_OUTBOX_URL ("" when unset); a value that is not a
// PostgreSQL connection string is a configuration error naming the
// variable, never showing the value (it may hold a password).
func outboxURL(getenv func(string) string) (string, error) {
	u := strings.TrimSpace(getenv(envOutboxURL))
	if u == "" {
		return "", nil
	}
	if _, err := pgx.ParseConfig(u); err != nil {
		return "", usageErrorf("%s: not a PostgreSQL connection string (postgres://user:password@host:5432/db?sslmode=require)", envOutboxURL)
	}
	return u, nil
}

// outboxSchema returns the --schema flag when given, else CIOQ_OUTBOX_SCHEMA,
// else the default, checked.
func outboxSchema(fs *flag.FlagSet, flagValue string, getenv func(string) string) (string, error) {
	s := strings.TrimSpace(getenv(envOutboxSchema))
	name := envOutboxSchema
	if flagSet(fs, "schema") {
		s, name = flagValue, "--schema"
	}
	if s == "" {
		s = outbox.DefaultSchema
	}
	if _, err := outbox.MigrationSQL(s); err != nil {
		return "", usageErrorf("%s=%q: %v", name, s, errors.Unwrap(err))
	}
	return s, nil
}

func runOutbox(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "outbox", "migrate [flags]",
		"`cioq outbox migrate` creates the outbox table that outbox.Writer writes into\n"+
			"inside the application's transactions, its notify trigger and its schema, in\n"+
			"the database of CIOQ_OUTBOX_URL; running it again changes nothing. --print\n"+
			"prints the SQL instead (outbox/schema.sql is the same for the default schema),\n"+
			"for teams that apply migrations with their own tool.\n\n"+
			"Environment: CIOQ_OUTBOX_URL, CIOQ_OUTBOX_SCHEMA.")
	schema := fs.String("schema", "", "PostgreSQL schema of the table (default CIOQ_OUTBOX_SCHEMA, else cioq)")
	print := fs.Bool("print", false, "print the migration's SQL instead of running it")
	if len(args) > 0 && args[0] == "migrate" {
		args = args[1:]
	} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return usageErrorf("unknown subcommand %q (want migrate)", args[0])
	} else if !containsHelp(args) {
		return usageErrorf("missing subcommand (want migrate)")
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s, err := outboxSchema(fs, *schema, a.getenv)
	if err != nil {
		return err
	}
	if *print {
		sql, _ := outbox.MigrationSQL(s)
		fmt.Fprint(a.stdout, sql)
		return nil
	}
	u, err := outboxURL(a.getenv)
	if err != nil {
		return err
	}
	if u == "" {
		return usageErrorf("%s is not set (the application's database, e.g. postgres://app@db:5432/app)", envOutboxURL)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(cctx, u)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", envOutboxURL, err)
	}
	defer conn.Close(context.Background())
	if err := outbox.Migrate(cctx, conn, s); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "outbox table %s.%s ready\n", s, outbox.Table)
	return nil
}

func containsHelp(args []string) bool {
	for _, x := range args {
		if isHelpArg(x) {
			return true
		}
	}
	return false
}

// relayFlags are the relay's flags, shared by `cioq relay`.
type relayFlags struct {
	schema      *string
	batch       *int
	concurrency *int
	poll        *time.Duration
	dedup       *time.Duration
}

func addRelayFlags(fs *flag.FlagSet) relayFlags {
	return relayFlags{
		schema:      fs.String("schema", "", "PostgreSQL schema of the outbox table (default CIOQ_OUTBOX_SCHEMA, else cioq)"),
		batch:       fs.Int("batch", outbox.DefaultBatchSize, "rows claimed per batch"),
		concurrency: fs.Int("concurrency", outbox.DefaultConcurrency, "rows of a batch enqueued into Redis at once (1 keeps id order exactly)"),
		poll:        fs.Duration("poll-interval", outbox.DefaultPollInterval, "how often to look for rows without a notification (the safety net behind LISTEN/NOTIFY)"),
		dedup:       fs.Duration("dedup-window", outbox.DefaultDedupWindow, "how long Redis keeps a relayed task without key after it completes, so a replay is a duplicate"),
	}
}

func runRelay(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "relay", "[flags]",
		"Relays the outbox table of CIOQ_OUTBOX_URL into the Redis of REDIS_URL: claims\n"+
			"committed rows in id order in batches (FOR UPDATE SKIP LOCKED: run several\n"+
			"side by side), enqueues each under its task id (the idempotency key's keyed\n"+
			"hash, or the row's o-ULID) and deletes the rows Redis accepted in the claim's\n"+
			"transaction, so a relay killed at any point neither loses a row nor makes a\n"+
			"second task. LISTEN/NOTIFY wakes it at each commit. While Redis or PostgreSQL\n"+
			"is down the rows wait and /readyz answers 503. The admin port serves /metrics\n"+
			"(cioq_outbox_rows_waiting, cioq_outbox_oldest_row_age_seconds,\n"+
			"cioq_outbox_relayed_total, ...), /healthz and /readyz. `cioq worker` runs a\n"+
			"relay too when CIOQ_OUTBOX_URL is set. SIGTERM or SIGINT finishes the batch in\n"+
			"flight and exits 0.\n\n"+
			"With CIOQ_REDIS_ACK_REPLICAS=N a row is deleted only once N replicas hold\n"+
			"its task (a task fewer confirmed in time stays in the table and is relayed\n"+
			"again: a duplicate if it survived).\n\n"+
			"Environment: CIOQ_OUTBOX_URL, CIOQ_OUTBOX_SCHEMA, REDIS_URL, CIOQ_KEY_SECRET,\n"+
			"CIOQ_REDIS_ACK_REPLICAS, CIOQ_REDIS_ACK_TIMEOUT, CIOQ_QUEUE_SHARDS, CIOQ_LOG_LEVEL, CIOQ_LOG_FORMAT.")
	rf := addRelayFlags(fs)
	adminAddr := fs.String("admin-addr", ":9091", "listen address of the admin port (/metrics, /healthz, /readyz); empty disables it")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	log, rurl, popts, err := redisEnv(a)
	if err != nil {
		return err
	}
	u, err := outboxURL(a.getenv)
	if err != nil {
		return err
	}
	if u == "" {
		return usageErrorf("%s is not set (the application's database, e.g. postgres://app@db:5432/app)", envOutboxURL)
	}
	_, rdb, _, err := ackedRedis(a.getenv, rurl)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := newRegistry()
	rel, err := newRelay(fs, rf, a.getenv, u, rdb, popts, log, reg)
	if err != nil {
		return err
	}
	defer rel.Close()
	var admin *httpServer
	if *adminAddr != "" {
		health := ops.NewHealth(ops.RedisCheck(rdb), relayCheck(rel))
		admin, err = listenHTTP(*adminAddr, ops.AdminMux(ops.Handler(reg), health))
		if err != nil {
			return usageErrorf("--admin-addr: %v", err)
		}
		log.Info("admin port listening", "addr", admin.Addr(), "paths", "/metrics /healthz /readyz")
	}
	log.Info("outbox relay started", "version", version(), "batch", *rf.batch, "concurrency", *rf.concurrency)
	err = rel.Run(ctx)
	if admin != nil {
		admin.Shutdown(5 * time.Second)
	}
	log.Info("outbox relay stopped", "relayed", rel.Stats().Relayed)
	return err
}

// newRelay builds a relay from the flags and environment and registers its
// metrics on reg.
func newRelay(fs *flag.FlagSet, rf relayFlags, getenv func(string) string, pgURL string, rdb redis.UniversalClient,
	popts []producer.Option, log *slog.Logger, reg prometheus.Registerer) (*outbox.Relay, error) {
	s, err := outboxSchema(fs, *rf.schema, getenv)
	if err != nil {
		return nil, err
	}
	if *rf.batch < 1 || *rf.batch > 10000 {
		return nil, usageErrorf("--batch=%d: want 1 to 10000", *rf.batch)
	}
	if *rf.concurrency < 1 || *rf.concurrency > 1000 {
		return nil, usageErrorf("--concurrency=%d: want 1 to 1000", *rf.concurrency)
	}
	if *rf.poll < 10*time.Millisecond {
		return nil, usageErrorf("--poll-interval=%s: want at least 10ms", *rf.poll)
	}
	if *rf.dedup < time.Minute {
		return nil, usageErrorf("--dedup-window=%s: want at least 1m", *rf.dedup)
	}
	rel, err := outbox.NewRelay(outbox.RelayConfig{Postgres: pgURL, Schema: s, Producer: producer.NewFromRedis(rdb, popts...),
		BatchSize: *rf.batch, Concurrency: *rf.concurrency, PollInterval: *rf.poll, DedupWindow: *rf.dedup, Logger: log})
	if err != nil {
		return nil, configError(err)
	}
	reg.MustRegister(outboxCollector{rel})
	return rel, nil
}

// relayCheck is the readiness check "outbox": PostgreSQL answers and the
// relay's last attempt succeeded.
func relayCheck(r *outbox.Relay) ops.Check {
	return ops.Check{Name: "outbox", Func: r.Check}
}

// outboxCollector exports a relay's counters and the table's backlog (one
// query per scrape).
type outboxCollector struct{ r *outbox.Relay }

var (
	descOutboxWaiting = prometheus.NewDesc("cioq_outbox_rows_waiting",
		"Committed outbox rows not yet relayed into Redis.", nil, nil)
	descOutboxFailed = prometheus.NewDesc("cioq_outbox_rows_failed",
		"Outbox rows Redis refused for good (marked in the failed column, kept).", nil, nil)
	descOutboxAge = prometheus.NewDesc("cioq_outbox_oldest_row_age_seconds",
		"Age of the oldest outbox row waiting (0 when none).", nil, nil)
	descOutboxUp = prometheus.NewDesc("cioq_outbox_up",
		"1 when the outbox table could be read at this scrape.", nil, nil)
	descOutboxRelayed = prometheus.NewDesc("cioq_outbox_relayed_total",
		"Outbox rows relayed into Redis and deleted by this process (rate() is rows per second).", nil, nil)
	descOutboxDuplicates = prometheus.NewDesc("cioq_outbox_duplicates_total",
		"Relayed rows whose task id Redis already held (a replay after a crash, or a key used twice): nothing enqueued.", nil, nil)
)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOutboxWaiting, descOutboxFailed, descOutboxAge, descOutboxUp, descOutboxRelayed, descOutboxDuplicates} {
		ch <- d
	}
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(descOutboxRelayed, prometheus.CounterValue, float64(st.Relayed))
	ch <- prometheus.MustNewConstMetric(descOutboxDuplicates, prometheus.CounterValue, float64(st.Duplicates))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := c.r.Backlog(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descOutboxUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descOutboxUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descOutboxWaiting, prometheus.GaugeValue, float64(b.Waiting))
	ch <- prometheus.MustNewConstMetric(descOutboxFailed, prometheus.GaugeValue, float64(b.Failed))
	ch <- prometheus.MustNewConstMetric(descOutboxAge, prometheus.GaugeValue, b.OldestAge.Seconds())
}
