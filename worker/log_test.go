package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio/sandbox"
)

// logBuffer is a bytes.Buffer safe for concurrent writers (the worker's
// goroutines) and a reading test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the JSON log records written so far.
func (l *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// The adapter drops exactly asynq's "Retry exhausted for task id=…" and
// passes every other message through, at its level, tagged component=asynq.
func TestAsynqLoggerDropsOnlyRetryExhausted(t *testing.T) {
	var buf logBuffer
	a := NewAsynqLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	a.Warn("Retry exhausted for task id=0f8c2d7e-1")
	a.Warn("Retry exhausted for task id=key with spaces")
	kept := []struct {
		log   func(...any)
		level string
		msg   string
	}{
		{a.Warn, "WARN", "revoke task id=0f8c2d7e-1"},
		{a.Warn, "WARN", "Could not archive task id=x: connection refused"},
		{a.Info, "INFO", "Retry exhausted for task id=x"}, // not asynq's warning
		{a.Error, "ERROR", "Retry exhausted for task id=x"},
		{a.Warn, "WARN", "retry exhausted for task id=x"},
		{a.Warn, "WARN", "Retry exhausted"},
	}
	for _, k := range kept {
		k.log(k.msg)
	}
	a.Warn("Retry exhausted for task id=", "two args")
	recs := buf.records(t)
	if len(recs) != len(kept)+1 {
		t.Fatalf("%d records, want %d: %v", len(recs), len(kept)+1, recs)
	}
	for i, k := range kept {
		if recs[i]["msg"] != k.msg || recs[i]["level"] != k.level || recs[i]["component"] != "asynq" {
			t.Errorf("record %d = %v, want %s %q", i, recs[i], k.level, k.msg)
		}
	}
}

// A real worker dead-lettering a task on its first attempt logs its own
// "task dead-lettered" line (with class and reason) and not asynq's
// "Retry exhausted" warning.
func TestDeadLetterLogsWorkerLineNotAsynqs(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	h := newHarness(t, func(c *Config) {
		c.Batching.Off = true
		c.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"refused"}}`})
	rc, err := h.prod.Identify(ctx, identify("u-log"))
	if err != nil {
		t.Fatal(err)
	}
	// asynq logs its warning before it archives the task: once the task is
	// archived, the line would be in the buffer.
	eventually(t, 10*time.Second, "archived by asynq", func() bool {
		ti := h.taskInfo(rc.TaskID)
		return ti != nil && ti.State == asynq.TaskStateArchived
	})
	var own int
	for _, r := range buf.records(t) {
		msg, _ := r["msg"].(string)
		if strings.Contains(msg, "Retry exhausted") {
			t.Errorf("asynq's line was logged: %v", r)
		}
		if msg == "task dead-lettered" && r["task_id"] == rc.TaskID {
			own++
			if r["class"] != string(DeadLetterPermanent) || r["level"] != "WARN" {
				t.Errorf("worker's line = %v", r)
			}
		}
	}
	if own != 1 {
		t.Errorf("%d \"task dead-lettered\" lines for the task, want 1", own)
	}
}
