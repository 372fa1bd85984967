package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/internal/testredis"
)

// go-redis has a logger of its own (stderr, "redis: 2026/…"); the binary's
// logger takes its lines over, in the configured format: JSON with
// CIOQ_LOG_FORMAT=json. (Not parallel: the logger is process-wide.)
func TestGoRedisLogsThroughSlog(t *testing.T) {
	db := testredis.New(t)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev); redisconf.SetLogger(prev) })
	for _, format := range []string{"json", "text"} {
		var buf syncBuffer
		env := map[string]string{"CIOQ_LOG_FORMAT": format}
		if _, err := newLogger(func(k string) string { return env[k] }, &buf); err != nil {
			t.Fatal(err)
		}
		// go-redis logs that it rounds a sub-millisecond expiry up.
		if err := db.Client.Set(context.Background(), "log-probe", "1", 500*time.Microsecond).Err(); err != nil {
			t.Fatal(err)
		}
		out := strings.TrimSpace(buf.String())
		if strings.Count(out, "\n") != 0 || !strings.Contains(out, "truncating to 1ms") {
			t.Fatalf("%s: want go-redis's one line in the process's log, got %q", format, out)
		}
		switch format {
		case "json":
			var line map[string]any
			if err := json.Unmarshal([]byte(out), &line); err != nil || line["component"] != "go-redis" || line["level"] != "WARN" {
				t.Errorf("json: line %q (%v)", out, err)
			}
		case "text":
			if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "component=go-redis") {
				t.Errorf("text: line %q", out)
			}
		}
	}
}
