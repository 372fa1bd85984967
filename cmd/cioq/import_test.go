package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cioq/cioq/internal/testredis"
)

// TestImportCommand: `cioq import` of a CSV file prints progress lines on
// stderr (not a terminal), the summary on stdout, writes the rejects file
// and the checkpoint; run again it refuses (already imported), and
// --resume says there is nothing left to do.
func TestImportCommand(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("user_id,plan,seats\n")
	for i := 0; i < 1200; i++ {
		seats := fmt.Sprint(i % 7)
		if i == 600 {
			seats = "lots"
		}
		fmt.Fprintf(&b, "u%d,pro,%s\n", i, seats)
	}
	path := filepath.Join(dir, "people.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, env, "", "import", path, "--map", "id=user_id,attr.plan=plan,attr.seats=seats:int", "--progress-every", "1ns")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "rows read 1200, enqueued 1199 (3 tasks), rejected 1, duplicates 0") || !strings.Contains(r.stdout, "people.csv.rejects.jsonl") {
		t.Errorf("summary: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "cioq import: 100.0%, 1200 rows read, 1199 enqueued, 1 rejected") {
		t.Errorf("progress lines: %s", r.stderr)
	}
	rej, err := os.ReadFile(path + ".rejects.jsonl")
	if err != nil || !strings.Contains(string(rej), `"line":602`) || !strings.Contains(string(rej), `column \"seats\"`) {
		t.Errorf("rejects %s (%v)", rej, err)
	}
	if n := queued(t, db); n != 3 {
		t.Errorf("%d tasks, want 3 cio:batch tasks", n)
	}
	r = cli(t, env, "", "import", path, "--map", "id=user_id,attr.plan=plan,attr.seats=seats:int")
	if r.code != 2 || !strings.Contains(r.stderr, "imported already") {
		t.Errorf("again: exit %d: %s", r.code, r.stderr)
	}
	r = cli(t, env, "", "import", path, "--map", "id=user_id,attr.plan=plan,attr.seats=seats:int", "--resume")
	if r.code != 0 || !strings.Contains(r.stderr, "finished already") {
		t.Errorf("resume: exit %d: %s", r.code, r.stderr)
	}
	if n := queued(t, db); n != 3 {
		t.Errorf("%d tasks after the reruns, want 3", n)
	}
}

// TestEnqueueFileProgress: `enqueue --file` reports progress on stderr.
func TestEnqueueFileProgress(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	p := filepath.Join(t.TempDir(), "t.jsonl")
	line := `{"type":"cio:identify","payload":{"identifiers":{"id":"p"},"attributes":{"n":1}}}`
	if err := os.WriteFile(p, []byte(strings.Repeat(line+"\n", 20)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, map[string]string{"REDIS_URL": db.URL()}, "", "enqueue", "--file", p, "--progress-every", "1ns")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 20 || !strings.Contains(r.stderr, "cioq enqueue: 100.0%, 20 tasks enqueued") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestDLQProgress: `dlq export` and `dlq retry --all` report progress on
// stderr.
func TestDLQProgress(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	seedDeadLetters(t, db, 30, genericDeadLetter)
	env := map[string]string{"REDIS_URL": db.URL()}
	r := cli(t, env, "", "dlq", "export", "--progress-every", "1ns")
	if r.code != 0 || !strings.Contains(r.stderr, "cioq dlq export: 100.0%, 30 exported") {
		t.Errorf("export: exit %d: %s", r.code, r.stderr)
	}
	r = cli(t, env, "", "dlq", "retry", "--all", "--rate", "10000/s", "--progress-every", "1ns")
	// The 8 expired ones are skipped.
	if !strings.Contains(r.stderr, "cioq dlq retry: 100.0%, 22 of 30 retried, 8 failed") {
		t.Errorf("retry --all: exit %d: %s", r.code, r.stderr)
	}
}
