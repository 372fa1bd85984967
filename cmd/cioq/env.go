package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/producer"
)

// Environment variables cmd reads itself (cmd/cioq/internal/config reads the rest).
const (
	envDashboardUser     = "CIOQ_DASHBOARD_USER"
	envDashboardPassword = "CIOQ_DASHBOARD_PASSWORD"
	envIngestConfig      = "CIOQ_INGEST_CONFIG"
	envLogLevel          = "CIOQ_LOG_LEVEL"
	envLogFormat         = "CIOQ_LOG_FORMAT"
	envKeySecret         = "CIOQ_KEY_SECRET"
	envAdminAddr         = "CIOQ_ADMIN_ADDR"
)

// defaultAdminAddr is the worker's admin port unless CIOQ_ADMIN_ADDR or
// --admin-addr say otherwise: this machine only, since its /readyz names
// workspaces and credential failures (a container sets ":9090" so that
// Prometheus can scrape it).
const defaultAdminAddr = "127.0.0.1:9090"

func version() string { return customerio.Version }

// newFlagSet returns a flag set whose -h (or --help) prints the command's
// help to a.stdout: the usage line (name and synopsis, its arguments), the
// command's one-line summary, the description and every flag. A bad flag
// prints nothing here: parseFlags returns it as a usage error, which
// exitCode prints once, with a hint to run -h.
func newFlagSet(a *app, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("cioq "+name, flag.ContinueOnError)
	fs.SetOutput(a.stdout)
	fs.Usage = func() { printHelp(fs.Output(), fs, name, synopsis, description) }
	if a.flagSets != nil {
		a.flagSets(fs)
	}
	return fs
}

// printHelp writes a command's help: usage line, summary, description,
// flags.
func printHelp(w io.Writer, fs *flag.FlagSet, name, synopsis, description string) {
	fmt.Fprintf(w, "Usage: cioq %s\n", strings.TrimSpace(name+" "+synopsis))
	if s := summaryOf(name); s != "" {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(s[:1])+s[1:])
	}
	if description != "" {
		fmt.Fprintf(w, "\n%s\n", description)
	}
	var any bool
	fs.VisitAll(func(*flag.Flag) { any = true })
	if any {
		fmt.Fprintf(w, "\nFlags:\n")
		printFlags(w, fs)
	}
}

// summaryOf returns the one-line summary of a command ("worker") or dlq
// subcommand ("dlq retry"), "" if there is none.
func summaryOf(name string) string {
	if sub, ok := strings.CutPrefix(name, "contracts "); ok {
		for _, s := range contractsSubs() {
			if s.name == sub {
				return s.summary
			}
		}
		return ""
	}
	if sub, ok := strings.CutPrefix(name, "dlq "); ok {
		for _, s := range dlqSubs() {
			if s.name == sub {
				return s.summary
			}
		}
		return ""
	}
	for _, c := range commands() {
		if c.name == name {
			return c.summary
		}
	}
	return ""
}

// printFlags is flag.PrintDefaults with the two-dash spelling the help texts
// and the README use (both spellings are accepted).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			if typ == "string" {
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(w, " (default %v)", f.DefValue)
			}
		}
		fmt.Fprintln(w)
	})
}

// isHelpArg reports whether arg asks for help.
func isHelpArg(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
}

// parseFlags parses args allowing flags after positional arguments
// (`cioq enqueue TYPE --key K`); the positional arguments are left in
// fs.Args() order. A bad flag is a usage error (exit 2); -h prints the
// help (see newFlagSet) and returns flag.ErrHelp (exit 0).
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	// The flag package prints a bad flag's error and the help itself;
	// discard that: the error is returned, the help printed only for -h.
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fs.SetOutput(out)
				fs.Usage()
				return err
			}
			return &usageError{err: err, hint: "run `" + fs.Name() + " -h` for usage"}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Re-parse nothing, but make fs.Args() return the positional arguments.
	_ = fs.Parse(append([]string{"--"}, pos...))
	return nil
}

// parseNoArgs parses the flags of a subcommand that takes no positional
// argument, refusing any.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// newLogger builds the slog logger from CIOQ_LOG_LEVEL (debug, info, warn,
// error; default info) and CIOQ_LOG_FORMAT (text or json; default text),
// writing to w, and makes it slog's default and go-redis's logger.
func newLogger(getenv func(string) string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch v := strings.ToLower(strings.TrimSpace(getenv(envLogLevel))); v {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usageErrorf("%s=%q: want debug, info, warn or error", envLogLevel, v)
	}
	opts := &slog.HandlerOptions{Level: level}
	var l *slog.Logger
	switch v := strings.ToLower(strings.TrimSpace(getenv(envLogFormat))); v {
	case "", "text":
		l = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		l = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return nil, usageErrorf("%s=%q: want text or json", envLogFormat, v)
	}
	// Libraries logging through slog's default (and net/http's ErrorLog,
	// see listenHTTP) go to the same place, and so does go-redis, which
	// has a logger of its own (asynq's goes through worker.AsynqLogger).
	slog.SetDefault(l)
	redisconf.SetLogger(l)
	return l, nil
}

// redisEnv reads what the commands that enqueue or read tasks with a
// client of their own (enqueue, dlq) need of the environment, checked in
// this order: the log settings, REDIS_URL, CIOQ_KEY_SECRET, the
// acknowledgement settings and CIOQ_QUEUE_SHARDS.
func redisEnv(a *app) (log *slog.Logger, rurl string, popts []producer.Option, err error) {
	if log, err = newLogger(a.getenv, a.stderr); err != nil {
		return nil, "", nil, err
	}
	if rurl, err = redisURL(a.getenv); err != nil {
		return nil, "", nil, err
	}
	if popts, err = keySecretOptions(a.getenv); err != nil {
		return nil, "", nil, err
	}
	acks, err := ackSettings(a.getenv)
	if err != nil {
		return nil, "", nil, err
	}
	shards, err := shardSettings(a.getenv)
	if err != nil {
		return nil, "", nil, err
	}
	popts = append(popts, acks.ProducerOptions()...)
	return log, rurl, append(popts, config.ShardOptions(shards)...), nil
}

// shardSettings reads CIOQ_QUEUE_SHARDS (a bad value is a configuration
// error naming the variable).
func shardSettings(getenv func(string) string) (int, error) {
	n, err := config.LoadShards(getenv)
	if err != nil {
		return n, configError(err)
	}
	return n, nil
}

// ackSettings reads CIOQ_REDIS_ACK_REPLICAS and CIOQ_REDIS_ACK_TIMEOUT
// (a bad value is a configuration error naming the variable).
func ackSettings(getenv func(string) string) (config.Acks, error) {
	a, err := config.LoadAcks(getenv)
	if err != nil {
		return a, configError(err)
	}
	return a, nil
}

// redisClient returns a client for the connection options with a read
// timeout long enough for the acknowledgement settings' WAIT.
func redisClient(conn asynq.RedisConnOpt, acks config.Acks) (redis.UniversalClient, error) {
	if acks.On() {
		conn = redisconf.ReadTimeoutAtLeast(conn, acks.ReadTimeout())
	}
	rdb, err := redisconf.UniversalClient(conn)
	if err != nil {
		return nil, configError(err)
	}
	return rdb, nil
}

// ackedRedis parses rurl and reads the acknowledgement settings
// (ackSettings), and returns the connection options, a client for them
// (redisClient) and the settings.
func ackedRedis(getenv func(string) string, rurl string) (asynq.RedisConnOpt, redis.UniversalClient, config.Acks, error) {
	acks, err := ackSettings(getenv)
	if err != nil {
		return nil, nil, acks, err
	}
	conn, err := redisconf.Parse(rurl)
	if err != nil {
		return nil, nil, acks, configError(err)
	}
	rdb, err := redisClient(conn, acks)
	return conn, rdb, acks, err
}

// redisURL returns REDIS_URL, checked (errors name it, never the password).
func redisURL(getenv func(string) string) (string, error) {
	u := strings.TrimSpace(getenv(redisconf.EnvVar))
	if u == "" {
		return "", usageErrorf("%s is not set (e.g. redis://127.0.0.1:6379/0)", redisconf.EnvVar)
	}
	if _, err := redisconf.Parse(u); err != nil {
		return "", configError(err)
	}
	return u, nil
}

// parseTimeArg reads --since/--until: an RFC 3339 time or a duration
// before now ("24h", "90m").
func parseTimeArg(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if strings.HasSuffix(v, "d") {
		var n int
		if _, err := fmt.Sscanf(v, "%dd", &n); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	return time.Time{}, usageErrorf("--%s=%q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration before now (24h, 7d)", name, v)
}

// keySecretOptions returns the producer options of CIOQ_KEY_SECRET, the
// secret idempotency keys are hashed with into task ids: WithKeySecret when
// it is set, none (the deployment's secret generated in Redis) when it is
// not. A secret too short is a configuration error naming the variable,
// never showing the value.
func keySecretOptions(getenv func(string) string) ([]producer.Option, error) {
	v := getenv(envKeySecret)
	if v == "" {
		return nil, nil
	}
	if err := producer.CheckKeySecret(v); err != nil {
		return nil, usageErrorf("%s: %v", envKeySecret, err)
	}
	return []producer.Option{producer.WithKeySecret(v)}, nil
}
