package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/cmd/cioq/internal/bench"
	"github.com/cioq/cioq/internal/testpg"
	"github.com/cioq/cioq/internal/testredis"
)

// TestQuickRunProducesNumbers runs every section (but the worker-process
// RSS, which needs the cioq binary) with tiny counts. It checks that each
// measurement produced a number, never how fast anything was.
func TestQuickRunProducesNumbers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs workers for ~15 s")
	}
	db := testredis.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Options{
		RedisURL: db.URL(), Quick: true, Tasks: 300,
		EnqueueDuration: 200 * time.Millisecond, LightDuration: 500 * time.Millisecond,
		LimitDuration: 1500 * time.Millisecond, AppCalls: 20, Postgres: testpg.New(t).URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range rep.Rows {
		seen[r.Section]++
		if r.Section != "process" && r.Section != "import" && r.Value <= 0 && !strings.Contains(r.Name, "429") {
			t.Errorf("%s / %s: no value", r.Section, r.Name)
		}
	}
	for _, s := range []string{"enqueue", "e2e", "batch", "multi", "latency", "limit", "app", "import", "process", "outbox"} {
		if seen[s] == 0 {
			t.Errorf("section %s produced no row", s)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil || !strings.Contains(buf.String(), "asynq.Client.Enqueue") {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
	t.Logf("\n%s", buf.String())
}
