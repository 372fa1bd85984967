package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// seedDeadLetters adds n dead letters straight into the store, 16 writers
// at a time; gen picks each one's fields.
func seedDeadLetters(t *testing.T, db *testredis.DB, n int, gen func(i int) *worker.DeadLetter) {
	t.Helper()
	store := worker.NewDeadLetters(db.Client, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if err := store.Add(ctx, gen(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

var seedBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// genericDeadLetter is dead letter i of a mix of types, queues and classes.
func genericDeadLetter(i int) *worker.DeadLetter {
	classes := []worker.DeadLetterClass{worker.DeadLetterPermanent, worker.DeadLetterExpired, worker.DeadLetterInvalid, worker.DeadLetterExhausted}
	d := &worker.DeadLetter{
		ID: fmt.Sprintf("dl-%05d", i), Type: "cio:identify", Queue: "default",
		Payload:  []byte(`{"v":1,"payload":{"identifiers":{"id":"user-` + fmt.Sprint(i) + `"},"attributes":{"email":"p` + fmt.Sprint(i) + `@example.com"}}}`),
		Attempts: 1, MaxRetry: 25, Class: classes[i%4], Error: "customer.io refused it",
		LastFailedAt: seedBase.Add(time.Duration(i) * time.Second),
	}
	if d.Class == worker.DeadLetterPermanent {
		d.Status, d.Message = 400, "attributes: too many"
	}
	if i%3 == 0 {
		d.Type, d.Queue = "cio:send_email", "critical"
	}
	return d
}

func TestDLQListPagesThroughEverything(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	const n = 10_500
	seedDeadLetters(t, db, n, genericDeadLetter)

	r := cli(t, env, "", "dlq", "list")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != n+1 {
		t.Fatalf("%d lines, want header + %d", len(lines), n)
	}
	for _, col := range []string{"ID", "TYPE", "QUEUE", "CLASS", "STATUS", "ATTEMPTS", "LAST FAILURE", "MESSAGE"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks %s", lines[0], col)
		}
	}
	if !strings.HasPrefix(lines[1], "dl-00000 ") || !strings.HasPrefix(lines[n], "dl-10499 ") {
		t.Errorf("not oldest first: %q … %q", lines[1], lines[n])
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		seen[strings.Fields(l)[0]] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids, want %d", len(seen), n)
	}
	if strings.Contains(r.stdout, "@example.com") {
		t.Error("list shows payload data")
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("%d dead letter(s)", n)) {
		t.Errorf("stderr: %s", r.stderr)
	}

	// Filters and --json.
	r = cli(t, env, "", "dlq", "list", "--json", "--type", "cio:send_email", "--class", "permanent")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	want := 0
	for i := 0; i < n; i++ {
		if i%3 == 0 && i%4 == 0 {
			want++
		}
	}
	items := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(items) != want {
		t.Fatalf("%d filtered items, want %d", len(items), want)
	}
	var it dlqItem
	if err := json.Unmarshal([]byte(items[0]), &it); err != nil || it.Type != "cio:send_email" || it.Class != worker.DeadLetterPermanent || it.Status != 400 {
		t.Errorf("item %+v, err %v", it, err)
	}
	since := seedBase.Add(10_000 * time.Second).Format(time.RFC3339)
	r = cli(t, env, "", "dlq", "list", "--since", since, "--limit", "100")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 101 || !strings.HasPrefix(lines[1], "dl-10000 ") {
		t.Errorf("--since --limit: exit %d, %d lines, first %q", r.code, len(lines), lines[min(1, len(lines)-1)])
	}
	if r := cli(t, env, "", "dlq", "list", "--class", "bogus"); r.code != 2 || !strings.Contains(r.stderr, "--class") {
		t.Errorf("bad class: exit %d, %s", r.code, r.stderr)
	}
	if r := cli(t, env, "", "dlq", "list", "--since", "yesterday"); r.code != 2 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("bad since: exit %d, %s", r.code, r.stderr)
	}
}

func TestDLQPurge(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	seedDeadLetters(t, db, 40, genericDeadLetter)
	store := worker.NewDeadLetters(db.Client, nil)
	count := func() int64 {
		n, err := store.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	r := cli(t, env, "", "dlq", "purge", "--class", "expired")
	if r.code != 2 || !strings.Contains(r.stderr, "--yes") || !strings.Contains(r.stderr, "10 dead letter") {
		t.Fatalf("purge without --yes: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := count(); n != 40 {
		t.Fatalf("%d dead letters after a refused purge, want 40", n)
	}
	r = cli(t, env, "", "dlq", "purge", "--class", "expired", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "purged 10") {
		t.Fatalf("purge: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := count(); n != 30 {
		t.Fatalf("%d dead letters after purging the expired, want 30", n)
	}
	r = cli(t, env, "", "dlq", "list", "--class", "expired")
	if strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("expired dead letters remain:\n%s", r.stdout)
	}
}

func TestDLQShowRetry(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	mk := func(i int) *worker.DeadLetter {
		b, err := tasks.Encode(tasks.SendEmail{
			SendOptions: sendOpts("password_reset", fmt.Sprintf("user-%d", i)),
			To:          fmt.Sprintf("person%d@example.com", i),
		}, tasks.Meta{EnqueuedAt: seedBase})
		if err != nil {
			t.Fatal(err)
		}
		return &worker.DeadLetter{ID: fmt.Sprintf("task-%d", i), Type: tasks.TypeSendEmail, Queue: tasks.QueueCritical,
			Payload: b, Attempts: 26, MaxRetry: 25, Class: worker.DeadLetterExhausted, Status: 503,
			Error: "retries exhausted", LastFailedAt: seedBase.Add(time.Duration(i) * time.Minute)}
	}
	seedDeadLetters(t, db, 5, mk)
	// A second failure of task-0 gives it a history of two.
	d0 := mk(0)
	d0.LastFailedAt, d0.Status, d0.Error = seedBase.Add(time.Hour), 502, "bad gateway again"
	if err := worker.NewDeadLetters(db.Client, nil).Add(context.Background(), d0); err != nil {
		t.Fatal(err)
	}

	r := cli(t, env, "", "dlq", "show", "task-0")
	if r.code != 0 {
		t.Fatalf("show: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"task-0", "cio:send_email", "exhausted", "History (2 failed attempts", "503", "502", "bad gateway again", "redacted", "password_reset", "26/25"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "person0@example.com") || strings.Contains(r.stdout, "user-0") {
		t.Errorf("show reveals the payload without --payload:\n%s", r.stdout)
	}
	r = cli(t, env, "", "dlq", "show", "task-0", "--payload")
	if !strings.Contains(r.stdout, "person0@example.com") {
		t.Errorf("show --payload hides the payload:\n%s", r.stdout)
	}
	if r := cli(t, env, "", "dlq", "show", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no dead letter") {
		t.Errorf("show unknown: exit %d, %s", r.code, r.stderr)
	}

	insp := asynq.NewInspectorFromRedisClient(db.Client)
	pending := func() []*asynq.TaskInfo {
		ts, err := insp.ListPendingTasks(tasks.QueueCritical)
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatal(err)
		}
		return ts
	}

	// retry ID: a new task with a full budget; the dead letter is gone.
	r = cli(t, env, "", "dlq", "retry", "task-1")
	if r.code != 0 {
		t.Fatalf("retry: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var out struct{ DeadLetter, TaskID, Queue, Type string }
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &struct {
		DeadLetter *string `json:"dead_letter"`
		TaskID     *string `json:"task_id"`
		Queue      *string `json:"queue"`
		Type       *string `json:"type"`
	}{&out.DeadLetter, &out.TaskID, &out.Queue, &out.Type}); err != nil {
		t.Fatalf("retry output %q: %v", r.stdout, err)
	}
	if out.DeadLetter != "task-1" || out.TaskID == "task-1" || out.Queue != "critical" || out.Type != tasks.TypeSendEmail {
		t.Errorf("retry output %+v", out)
	}
	ts := pending()
	if len(ts) != 1 || ts[0].ID != out.TaskID || ts[0].Headers[tasks.HeaderRetryBudget] != "25" || ts[0].MaxRetry != tasks.AsynqMaxRetry || ts[0].Retried != 0 {
		t.Fatalf("pending after retry: %+v", ts)
	}
	if _, err := worker.NewDeadLetters(db.Client, nil).Get(context.Background(), "task-1"); err != worker.ErrNotFound {
		t.Errorf("dead letter still there: %v", err)
	}

	// retry --all with a filter and a rate; unknown ids fail with exit 1.
	r = cli(t, env, "", "dlq", "retry", "--all", "--since", seedBase.Add(2*time.Minute).Format(time.RFC3339), "--rate", "100/s")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 4 || !strings.Contains(r.stderr, "4 retried, 0 failed") {
		// task-2, task-3, task-4 and task-0 (failed again at +1h)
		t.Fatalf("retry --all: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := len(pending()); n != 5 {
		t.Errorf("%d pending tasks, want 5", n)
	}
	if r := cli(t, env, "", "dlq", "retry", "ghost"); r.code != 1 || !strings.Contains(r.stderr, "ghost") {
		t.Errorf("retry unknown: exit %d, %s", r.code, r.stderr)
	}
	if r := cli(t, env, "", "dlq", "retry"); r.code != 2 {
		t.Errorf("retry without ids: exit %d", r.code)
	}
	if r := cli(t, env, "", "dlq", "retry", "--all", "--rate", "fast"); r.code != 2 || !strings.Contains(r.stderr, "--rate") {
		t.Errorf("bad rate: exit %d, %s", r.code, r.stderr)
	}
}

func TestDLQStatsExport(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	seedDeadLetters(t, db, 12, genericDeadLetter)

	r := cli(t, env, "", "dlq", "stats", "--json")
	if r.code != 0 {
		t.Fatalf("stats: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var s dlqStats
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Total != 12 || s.Queue["critical"] != 4 || s.Queue["default"] != 8 || s.Type["cio:send_email"] != 4 ||
		s.Class["permanent"] != 3 || s.Class["expired"] != 3 || s.Status["400"] != 3 || s.Status["none"] != 9 {
		t.Errorf("stats %+v", s)
	}
	r = cli(t, env, "", "dlq", "stats")
	for _, want := range []string{"dead letters: 12", "by queue:", "by type:", "by class:", "by status:", "cio:send_email"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats lacks %q:\n%s", want, r.stdout)
		}
	}

	r = cli(t, env, "", "dlq", "export", "--queue", "default")
	if r.code != 0 {
		t.Fatalf("export: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d exported, want 8", len(lines))
	}
	for _, l := range lines {
		var it dlqItem
		if err := json.Unmarshal([]byte(l), &it); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if it.Queue != "default" || len(it.History) != 1 || !it.PayloadRedacted || len(it.Payload) == 0 {
			t.Errorf("exported %+v", it)
		}
	}
	if strings.Contains(r.stdout, "@example.com") {
		t.Error("export shows payload data without --payload")
	}
	r = cli(t, env, "", "dlq", "export", "--payload", "--limit", "1")
	if r.code != 2 {
		t.Errorf("export takes no --limit: exit %d", r.code)
	}
	r = cli(t, env, "", "dlq", "export", "--payload")
	if !strings.Contains(r.stdout, "@example.com") || strings.Count(r.stdout, "\n") != 12 {
		t.Errorf("export --payload:\n%s", r.stdout)
	}
}

func sendOpts(template, id string) customerio.SendOptions {
	return customerio.SendOptions{TransactionalMessageID: customerio.MessageID(template), Identifiers: &customerio.Identifiers{ID: id}}
}

// delete ID... removes the dead letters and asynq's archive entries (what
// the dashboard refuses to do); an unknown id makes it exit 1, filters and
// a missing id are usage errors.
func TestDLQDelete(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	ctx := context.Background()
	client := asynq.NewClientFromRedisClient(db.Client)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	store := worker.NewDeadLetters(db.Client, nil)
	for _, id := range []string{"dead-a", "dead-b", "dead-c"} {
		info, err := client.Enqueue(asynq.NewTask(tasks.TypeIdentify, []byte(`{}`)), asynq.Queue("default"), asynq.TaskID(id))
		if err != nil {
			t.Fatal(err)
		}
		if err := insp.ArchiveTask("default", info.ID); err != nil {
			t.Fatal(err)
		}
		if err := store.Add(ctx, &worker.DeadLetter{ID: id, Type: tasks.TypeIdentify, Queue: "default", Payload: info.Payload,
			Attempts: 1, Class: worker.DeadLetterPermanent, Status: 400, Error: "refused"}); err != nil {
			t.Fatal(err)
		}
	}

	for _, args := range [][]string{{"delete"}, {"delete", "--class", "permanent", "dead-a"}, {"show", "--queue", "default", "dead-a"}} {
		if r := cli(t, env, "", append([]string{"dlq"}, args...)...); r.code != 2 {
			t.Errorf("dlq %v: exit %d, want 2; stderr:\n%s", args, r.code, r.stderr)
		}
	}

	r := cli(t, env, "", "dlq", "delete", "dead-a", "ghost", "dead-b")
	if r.code != 1 || r.stdout != "deleted dead-a\ndeleted dead-b\n" ||
		!strings.Contains(r.stderr, "ghost: no such dead letter") || !strings.Contains(r.stderr, "2 deleted, 1 failed") {
		t.Fatalf("delete: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, id := range []string{"dead-a", "dead-b"} {
		if _, err := store.Get(ctx, id); err != worker.ErrNotFound {
			t.Errorf("dead letter %s after delete: %v", id, err)
		}
		if _, err := insp.GetTaskInfo("default", id); err == nil {
			t.Errorf("archive entry %s still there after delete", id)
		}
	}
	if _, err := store.Get(ctx, "dead-c"); err != nil {
		t.Errorf("dead-c was not asked for: %v", err)
	}
	if ti, err := insp.GetTaskInfo("default", "dead-c"); err != nil || ti.State != asynq.TaskStateArchived {
		t.Errorf("dead-c's archive entry: %+v, %v", ti, err)
	}
}

// startWorker runs a real worker on db delivering to a fresh sandbox.
func startWorker(t *testing.T, db *testredis.DB) (*worker.Worker, *sandbox.Server) {
	t.Helper()
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1})
	hs := httptest.NewServer(sb)
	t.Cleanup(func() { hs.Close(); sb.Close() })
	w, err := worker.New(worker.Config{
		Redis:               db.ConnOpt(),
		Workspaces:          map[string]customerio.Config{"": testsupport.SandboxConfig(hs.URL)},
		Concurrency:         4,
		DelayedPollInterval: 100 * time.Millisecond,
		// No credentials probes: a probe would take the faults the tests set.
		ProbeInterval: -1,
		Batching:      worker.Batching{Off: true},
		Logger:        testsupport.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w, sb
}

// A task that fails 503, 503, then 400 shows three history entries, and the
// same attempt count (made/allowed), in list, show, show --json and export.
func TestDLQShowsEveryAttempt(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	w, sb := startWorker(t, db)
	ctx := context.Background()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	// Each failure answers Retry-After: 30, so the task waits in the retry
	// set until the next fault is in place and the test runs it.
	unavailable := sandbox.Fault{Status: 503, RetryAfter: "30", Times: 1}
	sb.SetFault(sandbox.GroupTrack, unavailable)
	r, err := producer.NewFromRedis(db.Client).Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "user-3x"}, Attributes: map[string]any{"plan": "pro"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, next := range []sandbox.Fault{unavailable, {Status: 400, Body: `{"meta":{"error":"plan is invalid"}}`, Times: 1}} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			ti, err := insp.GetTaskInfo(r.Queue, r.TaskID)
			if err == nil && ti.State == asynq.TaskStateRetry && ti.Retried == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task not waiting for retry %d: %+v %v", i+1, ti, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		sb.SetFault(sandbox.GroupTrack, next)
		if err := insp.RunTask(r.Queue, r.TaskID); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := w.DLQ().Get(ctx, r.TaskID); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	allowed := fmt.Sprintf("3/%d", tasks.DefaultMaxRetry+1) // a budget of 297 retries: 298 attempts

	res := cli(t, env, "", "dlq", "show", r.TaskID)
	if res.code != 0 {
		t.Fatalf("show: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "History (3 failed attempts") || !strings.Contains(res.stdout, allowed) {
		t.Errorf("show:\n%s", res.stdout)
	}
	_, hist, _ := strings.Cut(res.stdout, "History (")
	var rows []string
	for _, l := range strings.Split(hist, "\n")[2:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	wantRows := []string{" 1 transient 503 ", " 2 transient 503 ", " 3 permanent 400 plan is invalid"}
	if len(rows) != len(wantRows) {
		t.Fatalf("history rows %q", rows)
	}
	for i, w := range wantRows {
		if !strings.Contains(rows[i], w) {
			t.Errorf("history row %d %q, want %q", i, rows[i], w)
		}
	}

	res = cli(t, env, "", "dlq", "show", r.TaskID, "--json")
	var it dlqItem
	if err := json.Unmarshal([]byte(res.stdout), &it); err != nil {
		t.Fatalf("show --json %q: %v", res.stdout, err)
	}
	check := func(what string, it dlqItem, history bool) {
		t.Helper()
		if it.Attempts != 3 || it.AttemptsAllowed != tasks.DefaultMaxRetry+1 {
			t.Errorf("%s: attempts %d/%d, want %s", what, it.Attempts, it.AttemptsAllowed, allowed)
		}
		if !history {
			return
		}
		if len(it.History) != 3 {
			t.Fatalf("%s: %d history entries, want 3: %+v", what, len(it.History), it.History)
		}
		for i, w := range []struct {
			status int
			class  string
		}{{503, string(worker.RetryTransient)}, {503, string(worker.RetryTransient)}, {400, string(worker.DeadLetterPermanent)}} {
			if h := it.History[i]; h.Status != w.status || h.Class != w.class || h.Attempt != i+1 || h.At.IsZero() {
				t.Errorf("%s: history[%d] = %+v", what, i, h)
			}
		}
	}
	check("show --json", it, true)
	if !strings.Contains(res.stdout, `"attempts_allowed": 298`) || strings.Contains(res.stdout, "max_retry") {
		t.Errorf("show --json field names:\n%s", res.stdout)
	}
	res = cli(t, env, "", "dlq", "export")
	if err := json.Unmarshal([]byte(res.stdout), &it); err != nil {
		t.Fatalf("export %q: %v", res.stdout, err)
	}
	check("export", it, true)
	res = cli(t, env, "", "dlq", "list", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &it); err != nil {
		t.Fatalf("list --json %q: %v", res.stdout, err)
	}
	check("list --json", it, false)
	res = cli(t, env, "", "dlq", "list")
	if lines := strings.Split(strings.TrimSpace(res.stdout), "\n"); len(lines) != 2 || !strings.Contains(lines[1], " "+allowed+" ") {
		t.Errorf("list:\n%s", res.stdout)
	}
}

// Records written before attempts_allowed and history_omitted existed
// (only max_retry and the history list) read the same way.
func TestDLQReadsOldRecords(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	ctx := context.Background()
	at := seedBase.UnixMilli()
	if err := db.Client.HSet(ctx, "cioq:{dlq}:t:old-1", "id", "old-1", "type", tasks.TypeIdentify, "queue", "default",
		"workspace", "", "payload", `{"v":1,"payload":{"identifiers":{"id":"u"}}}`, "attempts", 2, "max_retry", 297,
		"class", "exhausted", "status", 503, "message", "", "error", "retries exhausted", "last_failed", at,
		"retried_from", "", "first_failed", at).Err(); err != nil {
		t.Fatal(err)
	}
	db.Client.RPush(ctx, "cioq:{dlq}:h:old-1", `{"at":"2026-01-01T00:00:00Z","class":"exhausted","status":503,"error":"retries exhausted","attempt":2}`)
	db.Client.ZAdd(ctx, "cioq:{dlq}:index", redis.Z{Score: float64(at), Member: "old-1"})

	res := cli(t, env, "", "dlq", "show", "old-1", "--json")
	var it dlqItem
	if err := json.Unmarshal([]byte(res.stdout), &it); err != nil {
		t.Fatalf("show --json %q: %v (stderr %s)", res.stdout, err, res.stderr)
	}
	if it.Attempts != 2 || it.AttemptsAllowed != 297 || len(it.History) != 1 || it.History[0].Status != 503 || it.HistoryOmitted != 0 {
		t.Errorf("old record: %+v", it)
	}
	if res := cli(t, env, "", "dlq", "list"); !strings.Contains(res.stdout, " 2/297 ") {
		t.Errorf("list:\n%s", res.stdout)
	}
}

// retry refuses an expired dead letter (class expired, or any class whose
// expiry has passed) unless given a new expiry or none, says why for each,
// and exits 1 when it skipped any; --all the same.
func TestDLQRetryExpired(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	ctx := context.Background()
	store := worker.NewDeadLetters(db.Client, nil)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	enq := time.Now().Add(-2 * time.Hour)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	encode := func(i int, exp time.Time) []byte {
		b, err := tasks.Encode(tasks.SendEmail{SendOptions: sendOpts("password_reset", fmt.Sprintf("user-%d", i)), To: fmt.Sprintf("p%d@example.com", i)},
			tasks.Meta{EnqueuedAt: enq, ExpiresAt: exp})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i, d := range []*worker.DeadLetter{
		{ID: "exp-1", Class: worker.DeadLetterExpired, Payload: encode(1, past)},
		{ID: "perm-past", Class: worker.DeadLetterPermanent, Status: 400, Payload: encode(2, past)},
		{ID: "perm-ok", Class: worker.DeadLetterPermanent, Status: 400, Payload: encode(3, time.Time{})},
		{ID: "exp-2", Class: worker.DeadLetterExpired, Payload: encode(4, past), Queue: "bulk"},
	} {
		d.Type, d.MaxRetry, d.LastFailedAt = tasks.TypeSendEmail, 297, seedBase.Add(time.Duration(i)*time.Minute)
		if d.Queue == "" {
			d.Queue = tasks.QueueCritical
		}
		if err := store.Add(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	pending := func(q string) []*asynq.TaskInfo {
		ts, _ := insp.ListPendingTasks(q)
		return ts
	}
	skipLine := func(id string) string {
		return "cioq dlq retry: " + id + ": skipped: its task expired at " + past.UTC().Format(time.RFC3339)
	}

	r := cli(t, env, "", "dlq", "retry", "exp-1")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, skipLine("exp-1")) || !strings.Contains(r.stderr, "--expires-in D") ||
		!strings.Contains(r.stderr, "--no-expiry") || !strings.Contains(r.stderr, "0 retried, 0 failed, 1 skipped") {
		t.Fatalf("retry expired: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := store.Get(ctx, "exp-1"); err != nil || len(pending(tasks.QueueCritical)) != 0 {
		t.Fatalf("refused retry changed something: %v, %d pending", err, len(pending(tasks.QueueCritical)))
	}
	for _, bad := range [][]string{{"--expires-in", "1h", "--no-expiry"}, {"--expires-in", "0s"}, {"--expires-in", "-5m"}} {
		if r := cli(t, env, "", append([]string{"dlq", "retry", "exp-1"}, bad...)...); r.code != 2 {
			t.Errorf("retry %v: exit %d, want 2; stderr:\n%s", bad, r.code, r.stderr)
		}
	}

	// --all: each expired one is skipped with its reason; the rest retried.
	r = cli(t, env, "", "dlq", "retry", "--all", "--queue", tasks.QueueCritical, "--rate", "1000/s")
	if r.code != 1 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"dead_letter":"perm-ok"`) ||
		!strings.Contains(r.stderr, skipLine("exp-1")) || !strings.Contains(r.stderr, skipLine("perm-past")) ||
		!strings.Contains(r.stderr, "(class permanent)") || !strings.Contains(r.stderr, "1 retried, 0 failed, 2 skipped") {
		t.Fatalf("retry --all: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// --expires-in: a new expiry from now.
	before := time.Now()
	r = cli(t, env, "", "dlq", "retry", "--all", "--queue", tasks.QueueCritical, "--expires-in", "1h")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stderr, "2 retried, 0 failed") {
		t.Fatalf("retry --all --expires-in: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	ts := pending(tasks.QueueCritical)
	if len(ts) != 3 {
		t.Fatalf("%d pending, want 3", len(ts))
	}
	withExpiry := 0
	for _, ti := range ts {
		e, _, err := tasks.Decode(ti.Type, ti.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if exp, ok := e.Expiry(); ok {
			withExpiry++
			if exp.Before(before.Add(time.Hour).Truncate(time.Second)) || exp.After(time.Now().Add(time.Hour)) {
				t.Errorf("new expiry %v, want an hour after the retry", exp)
			}
		}
	}
	if withExpiry != 2 {
		t.Errorf("%d retried tasks with an expiry, want 2 (perm-ok was retried unchanged)", withExpiry)
	}

	// --no-expiry: none.
	r = cli(t, env, "", "dlq", "retry", "exp-2", "--no-expiry")
	if r.code != 0 || !strings.Contains(r.stderr, "1 retried, 0 failed") {
		t.Fatalf("retry --no-expiry: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if ts := pending("bulk"); len(ts) != 1 {
		t.Fatalf("%d pending in bulk", len(ts))
	} else if e, _, err := tasks.Decode(ts[0].Type, ts[0].Payload); err != nil || e.ExpiresAt != 0 {
		t.Errorf("retried with --no-expiry: %+v %v", e, err)
	}
	if n, _ := store.Count(ctx); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

// TestDLQRetryAfterInterruptedRetry: a retry that enqueued the task and was
// interrupted before it removed the dead letter (as by Ctrl-C during
// `retry --all`) leaves the dead letter behind; `dlq retry` of it again
// enqueues nothing (one task stays in the queue), reports it as already
// retried, removes it and exits 0. On main it enqueued a second task.
func TestDLQRetryAfterInterruptedRetry(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL()}
	ctx := context.Background()
	b, err := tasks.Encode(tasks.SendEmail{SendOptions: sendOpts("receipt", "user-9"), To: "person9@example.com"}, tasks.Meta{EnqueuedAt: seedBase})
	if err != nil {
		t.Fatal(err)
	}
	store := worker.NewDeadLetters(db.Client, asynq.NewInspectorFromRedisClient(db.Client))
	if err := store.Add(ctx, &worker.DeadLetter{ID: "task-9", Type: tasks.TypeSendEmail, Queue: tasks.QueueCritical, Payload: b,
		Attempts: 1, MaxRetry: 25, Class: worker.DeadLetterPermanent, Status: 422, Error: "refused", LastFailedAt: seedBase}); err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(db.Client)
	rctx, interrupt := context.WithCancel(ctx)
	first, err := store.Retry(rctx, "task-9", interruptAfter{client, interrupt})
	if first == nil || err == nil {
		t.Fatalf("interrupted retry: %v, %v; want the task enqueued and the dead letter left", first, err)
	}

	r := cli(t, env, "", "dlq", "retry", "task-9")
	if r.code != 0 || !strings.Contains(r.stderr, "task-9: already retried as "+first.ID) || !strings.Contains(r.stderr, "0 retried, 0 failed, 1 already retried") {
		t.Fatalf("retry again: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var line struct {
		DeadLetter     string `json:"dead_letter"`
		TaskID         string `json:"task_id"`
		Queue          string `json:"queue"`
		Type           string `json:"type"`
		AlreadyRetried bool   `json:"already_retried"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &line); err != nil || line.DeadLetter != "task-9" || line.TaskID != first.ID ||
		line.Queue != tasks.QueueCritical || line.Type != tasks.TypeSendEmail || !line.AlreadyRetried {
		t.Errorf("retry output %q (%v)", r.stdout, err)
	}
	ts, err := asynq.NewInspectorFromRedisClient(db.Client).ListPendingTasks(tasks.QueueCritical)
	if err != nil || len(ts) != 1 || ts[0].ID != first.ID {
		t.Errorf("pending tasks %v (%v), want only %s", ts, err, first.ID)
	}
	if _, err := store.Get(ctx, "task-9"); err != worker.ErrNotFound {
		t.Errorf("dead letter still there: %v", err)
	}
}

// interruptAfter enqueues, then cancels the retry's context: the process
// "dies" between the enqueue and the removal of the dead letter.
type interruptAfter struct {
	c      *asynq.Client
	cancel context.CancelFunc
}

func (e interruptAfter) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	info, err := e.c.EnqueueContext(ctx, task, opts...)
	e.cancel()
	return info, err
}
