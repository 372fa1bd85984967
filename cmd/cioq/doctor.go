package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/cmd/cioq/internal/doctor"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/worker"
)

func runDoctor(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "doctor", "[flags]",
		"Checks the Redis of REDIS_URL for what would lose acknowledged tasks, send\n"+
			"records or dead letters, and the Customer.io credentials: persistence\n"+
			"(appendonly, appendfsync), maxmemory-policy (noeviction), memory headroom,\n"+
			"replicas against CIOQ_REDIS_ACK_REPLICAS and min-replicas-to-write, the\n"+
			"Sentinel group or Cluster (does every queue's slot have a replica), asynq's\n"+
			"archive cap, and each workspace's Track and App credentials (the worker's\n"+
			"read probes). Every finding has a verdict (ok, warn, loses data, fails) and,\n"+
			"unless ok, the fix. It writes nothing to Redis.\n\n"+
			"Exit codes: 0 when no finding loses data or fails, 1 otherwise, 2 for a\n"+
			"configuration error. `cioq worker` and `cioq serve` log the Redis findings\n"+
			"that are not ok once at start.\n\n"+
			"Environment: REDIS_URL, CIOQ_REDIS_ACK_REPLICAS, CIOQ_REDIS_ACK_TIMEOUT,\n"+
			"CIOQ_QUEUES, CIOQ_QUEUE_SHARDS, CUSTOMERIO_*, CIOQ_WORKSPACES_FILE, CIOQ_LOG_LEVEL, CIOQ_LOG_FORMAT.")
	jsonOut := fs.Bool("json", false, "print one JSON object per finding ({\"check\",\"verdict\",\"detail\",\"fix\"})")
	noProbes := fs.Bool("no-probes", false, "do not probe the Customer.io credentials (check Redis only)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long the checks may take in all")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageErrorf("--timeout=%s: want a positive duration", *timeout)
	}
	log, err := newLogger(a.getenv, a.stderr)
	if err != nil {
		return err
	}
	rurl, err := redisURL(a.getenv)
	if err != nil {
		return err
	}
	acks, err := ackSettings(a.getenv)
	if err != nil {
		return err
	}
	shards, err := shardSettings(a.getenv)
	if err != nil {
		return err
	}
	var queues []string
	if v := strings.TrimSpace(a.getenv(config.EnvQueues)); v != "" {
		q, err := config.ParseQueues(v)
		if err != nil {
			return configError(fmt.Errorf("%s: %w", config.EnvQueues, err))
		}
		for name := range q {
			queues = append(queues, name)
		}
	}
	conn, err := redisconf.Parse(rurl)
	if err != nil {
		return configError(err)
	}
	rdb, err := redisClient(conn, acks)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	findings := doctor.Redis(ctx, doctor.Options{Conn: conn, Client: rdb, AckReplicas: acks.Replicas, Queues: queues, Shards: shards})
	if !*noProbes {
		findings = append(findings, credentialFindings(ctx, a, log)...)
	}
	if *jsonOut {
		enc := json.NewEncoder(a.stdout)
		for _, f := range findings {
			enc.Encode(f)
		}
	} else {
		printFindings(a.stdout, findings)
	}
	if doctor.Bad(findings) {
		return silentError(exitFailure)
	}
	return nil
}

// credentialFindings probes the workers' Customer.io credentials, as
// configured in this environment.
func credentialFindings(ctx context.Context, a *app, log *slog.Logger) []doctor.Finding {
	cfg, err := config.Load(a.getenv)
	if errors.Is(err, config.ErrNoCredentials) {
		return []doctor.Finding{{Check: "customerio", Verdict: doctor.Warn,
			Detail: "no Customer.io credentials in this environment: not probed",
			Fix:    "run doctor where the workers' CUSTOMERIO_* variables (and CIOQ_WORKSPACES_FILE) are set, or pass --no-probes"}}
	}
	if err != nil {
		return []doctor.Finding{{Check: "customerio", Verdict: doctor.Fails, Detail: err.Error(),
			Fix: "fix the setting it names: the worker refuses to start with it"}}
	}
	wc := cfg.WorkerConfig()
	wc.Logger = log
	w, err := worker.New(wc)
	if err != nil {
		return []doctor.Finding{{Check: "customerio", Verdict: doctor.Fails, Detail: err.Error(),
			Fix: "fix the setting it names: the worker refuses to start with it"}}
	}
	defer w.Shutdown()
	return doctor.Credentials(w.ProbeCredentials(ctx))
}

// printFindings writes one line per finding (verdict, check, detail) and
// its fix below it, then a count of the verdicts.
func printFindings(w io.Writer, fs []doctor.Finding) {
	out := bufio.NewWriter(w)
	defer out.Flush()
	width := 0
	for _, f := range fs {
		width = max(width, len(f.Check))
	}
	counts := map[doctor.Verdict]int{}
	for _, f := range fs {
		counts[f.Verdict]++
		fmt.Fprintf(out, "%-10s  %-*s  %s\n", f.Verdict, width, f.Check, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(out, "%-10s  %-*s  fix: %s\n", "", width, "", f.Fix)
		}
	}
	fmt.Fprintf(out, "\n%d ok, %d warn, %d loses data, %d fails\n",
		counts[doctor.OK], counts[doctor.Warn], counts[doctor.LosesData], counts[doctor.Fails])
}

// logRedisFindings runs doctor's Redis checks once (at most 5 s) and logs
// the findings that are not ok: warnings as WARN, the others as ERROR. The
// worker and serve call it at start.
func logRedisFindings(ctx context.Context, log *slog.Logger, conn asynq.RedisConnOpt, rdb redis.UniversalClient, acks config.Acks, queues map[string]int, shards int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var qs []string
	for q := range queues {
		qs = append(qs, q)
	}
	for _, f := range doctor.Redis(ctx, doctor.Options{Conn: conn, Client: rdb, AckReplicas: acks.Replicas, Queues: qs, Shards: shards}) {
		if f.Verdict == doctor.OK {
			continue
		}
		level := slog.LevelWarn
		if f.Verdict != doctor.Warn {
			level = slog.LevelError
		}
		log.Log(ctx, level, "redis check (see cioq doctor)", "check", f.Check, "verdict", string(f.Verdict), "detail", f.Detail, "fix", f.Fix)
	}
}
