package redisconf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/internal/testredis"
)

// logLines decodes the JSON lines of buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestLoggerLevelsAndScrubbing(t *testing.T) {
	var buf bytes.Buffer
	g := redisconf.NewLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()
	g.Printf(ctx, "sentinel: selected addr=%s masterAddr=%s", "10.0.0.7:26379", "10.0.0.8:6379")
	g.Printf(ctx, "sentinel: GetMasterAddrByName addr=%s, master=%q failed: %s", "redis://ops:hunter2@10.0.0.7:26379", "mymaster",
		"dial tcp: password=hunter2 refused")
	g.Printf(ctx, "redis: discarding bad PubSub connection: %s", "EOF")
	lines := logLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"INFO", "WARN", "WARN"} {
		if lines[i]["level"] != want || lines[i]["component"] != "go-redis" {
			t.Errorf("line %d: level %v component %v, want %s go-redis", i, lines[i]["level"], lines[i]["component"], want)
		}
	}
	if msg, _ := lines[0]["msg"].(string); msg != "sentinel: selected addr=10.0.0.7:26379 masterAddr=10.0.0.8:6379" {
		t.Errorf("msg %q", msg)
	}
	if strings.Contains(buf.String(), "hunter2") || !strings.Contains(buf.String(), "redis://xxxxx@10.0.0.7") {
		t.Errorf("a password reached the log:\n%s", buf.String())
	}

	// Below the handler's level nothing is written.
	buf.Reset()
	quiet := redisconf.NewLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	quiet.Printf(ctx, "sentinel: new master=%q addr=%q", "mymaster", "10.0.0.9:6379")
	if buf.Len() != 0 {
		t.Errorf("an info line at level warn: %s", buf.String())
	}
}

// A line go-redis itself writes (it truncates a sub-millisecond expiry and
// says so) comes out through SetLogger's slog logger.
func TestSetLoggerRoutesGoRedis(t *testing.T) {
	db := testredis.New(t)
	var buf bytes.Buffer
	redisconf.SetLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { redisconf.SetLogger(slog.Default()) })
	if err := db.Client.Set(context.Background(), "redisconf-log-probe", "1", 500*time.Microsecond).Err(); err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["component"] != "go-redis" || lines[0]["level"] != "WARN" ||
		!strings.Contains(lines[0]["msg"].(string), "truncating to 1ms") {
		t.Errorf("go-redis's line did not come through slog: %s", buf.String())
	}
}
