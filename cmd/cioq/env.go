package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/producer"
)

// Environment variables cmd reads itself (internal/config reads the rest).
const (
	envDashboardUser     = "CIOQ_DASHBOARD_USER"
	envDashboardPassword = "CIOQ_DASHBOARD_PASSWORD"
	envIngestConfig      = "CIOQ_INGEST_CONFIG"
	envLogLevel          = "CIOQ_LOG_LEVEL"
	envLogFormat         = "CIOQ_LOG_FORMAT"
	envKeySecret         = "CIOQ_KEY_SECRET"
)

func version() string { return customerio.Version }

// newFlagSet returns a flag set whose -h prints the synopsis, the
// description and the flags to a.stderr.
func newFlagSet(a *app, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("cioq "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: cioq %s %s\n\n%s\n", name, synopsis, description)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments
// (`cioq enqueue TYPE --key K`); the positional arguments are left in
// fs.Args() order. A bad flag is a usage error (exit 2); -h is flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
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
