package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/worker"
)

const (
	leakEmail = "leak-test@example.com"
	leakID    = "user-leak-42"
	// leakKey is an idempotency key built from a person identifier, as
	// the README's examples build them.
	leakKey = "order:person-7731"
)

// leakyPayloads are envelopes of several task types, each carrying the
// email and the identifier the leak test looks for.
var leakyPayloads = map[string]string{
	"cio:send_email": `{"transactional_message_id":"password_reset","to":"` + leakEmail + `","identifiers":{"id":"` + leakID + `"},` +
		`"message_data":{"reset_link":"https://example.com/r?u=` + leakID + `"},"attachments":{"invoice.pdf":"SGVsbG8="}}`,
	"cio:identify":          `{"identifiers":{"id":"` + leakID + `"},"attributes":{"email":"` + leakEmail + `","plan":"pro"}}`,
	"cio:track":             `{"identifiers":{"email":"` + leakEmail + `"},"name":"purchase","id":"01JLEAK","data":{"by":"` + leakID + `"}}`,
	"cio:merge_people":      `{"primary":{"id":"` + leakID + `"},"secondary":{"email":"` + leakEmail + `"}}`,
	"cio:segment_add":       `{"segment_id":3,"ids":["` + leakID + `","user-2"]}`,
	"cio:broadcast_trigger": `{"broadcast_id":7,"emails":["` + leakEmail + `"],"per_user_data":[{"id":"` + leakID + `","data":{"x":1}}]}`,
	"cdp:track":             `{"userId":"` + leakID + `","event":"Order Completed","traits":{"email":"` + leakEmail + `"},"context":{"ip":"203.0.113.9"}}`,
}

func leakyTask(typ string) *asynq.Task {
	return asynq.NewTask(typ, envelope(leakyPayloads[typ]))
}

// errLeaky is what a badly behaved worker might return.
var errLeaky = fmt.Errorf("customer.io rejected %s for %s", leakID, leakEmail)

// seedAllStates fills db with tasks in every state asynqmon shows: pending,
// scheduled and aggregating in "default"; retry, archived, completed (with a
// result) and active in queues of their own, processed by a real asynq
// server; and a scheduler entry. It returns when every state is visible.
func seedAllStates(t *testing.T, db *testredis.DB) {
	t.Helper()
	ctx := context.Background()
	client := asynq.NewClient(db.ConnOpt())
	t.Cleanup(func() { client.Close() })

	enqueue := func(task *asynq.Task, opts ...asynq.Option) {
		t.Helper()
		if _, err := client.EnqueueContext(ctx, task, opts...); err != nil {
			t.Fatalf("enqueue %s: %v", task.Type(), err)
		}
	}
	for typ := range leakyPayloads {
		enqueue(leakyTask(typ), asynq.Queue("default"))
	}
	enqueue(asynq.NewTask("cio:track", []byte("\x00garbage "+leakEmail)), asynq.Queue("default"))
	enqueue(asynq.NewTask("cio:identify", []byte(leakyPayloads["cio:identify"])), asynq.Queue("default")) // bare, no envelope
	enqueue(leakyTask("cio:send_email"), asynq.Queue("default"), asynq.ProcessIn(time.Hour))
	enqueue(leakyTask("cio:identify"), asynq.Queue("default"), asynq.Group("batch-1"))
	enqueue(leakyTask("cio:track"), asynq.Queue("retryq"), asynq.MaxRetry(5))
	enqueue(leakyTask("cdp:track"), asynq.Queue("archiveq"))
	enqueue(leakyTask("cio:send_email"), asynq.Queue("doneq"), asynq.Retention(time.Hour))
	enqueue(leakyTask("cio:broadcast_trigger"), asynq.Queue("activeq"))
	// A task the producer enqueued with an idempotency key (pending).
	if _, err := producer.NewFromRedis(db.Client).EnqueueRaw(ctx, "cio:identify",
		[]byte(leakyPayloads["cio:identify"]), producer.IdempotencyKey(leakKey), producer.Queue("default")); err != nil {
		t.Fatalf("enqueue with an idempotency key: %v", err)
	}

	release := make(chan struct{})
	srv := asynq.NewServer(db.ConnOpt(), asynq.Config{
		Concurrency:     4,
		Queues:          map[string]int{"retryq": 1, "archiveq": 1, "doneq": 1, "activeq": 1},
		RetryDelayFunc:  func(int, error, *asynq.Task) time.Duration { return time.Hour },
		LogLevel:        asynq.FatalLevel,
		ShutdownTimeout: 3 * time.Second,
	})
	err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		q, _ := asynq.GetQueueName(ctx)
		switch q {
		case "retryq":
			return errLeaky
		case "archiveq":
			return fmt.Errorf("%w: %w", errLeaky, asynq.SkipRetry)
		case "doneq":
			_, err := task.ResultWriter().Write([]byte(`{"delivered_to":"` + leakEmail + `","person":"` + leakID + `"}`))
			return err
		default:
			select {
			case <-release:
			case <-ctx.Done():
			}
			return ctx.Err()
		}
	}))
	if err != nil {
		t.Fatalf("start asynq server: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }); srv.Shutdown() })

	sched := asynq.NewScheduler(db.ConnOpt(), &asynq.SchedulerOpts{HeartbeatInterval: 100 * time.Millisecond, LogLevel: asynq.FatalLevel})
	if _, err := sched.Register("@every 1h", leakyTask("cio:identify"), asynq.Queue("default")); err != nil {
		t.Fatalf("register scheduler entry: %v", err)
	}
	if err := sched.Start(); err != nil {
		t.Fatalf("start scheduler: %v", err)
	}
	t.Cleanup(sched.Shutdown)

	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	waitFor(t, 20*time.Second, "tasks in every state", func() bool {
		n := func(q string, f func(*asynq.QueueInfo) int) int {
			info, err := insp.GetQueueInfo(q)
			if err != nil {
				return -1
			}
			return f(info)
		}
		servers, _ := insp.Servers()
		workers := 0
		for _, s := range servers {
			workers += len(s.ActiveWorkers)
		}
		entries, _ := insp.SchedulerEntries()
		return n("retryq", func(i *asynq.QueueInfo) int { return i.Retry }) == 1 &&
			n("archiveq", func(i *asynq.QueueInfo) int { return i.Archived }) == 1 &&
			n("doneq", func(i *asynq.QueueInfo) int { return i.Completed }) == 1 &&
			n("activeq", func(i *asynq.QueueInfo) int { return i.Active }) == 1 &&
			n("default", func(i *asynq.QueueInfo) int { return i.Scheduled }) == 1 &&
			n("default", func(i *asynq.QueueInfo) int { return i.Aggregating }) == 1 &&
			workers == 1 && len(entries) == 1
	})
}

// waitFor is testsupport.Eventually: it polls ok until it holds, failing
// after d.
func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	testsupport.Eventually(t, d, what, ok)
}

func newTestDashboard(t *testing.T, opts DashboardOptions) http.Handler {
	t.Helper()
	h, err := NewDashboard(opts)
	if err != nil {
		t.Fatalf("NewDashboard: %v", err)
	}
	t.Cleanup(func() { h.(*Dashboard).Close() })
	return h
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, h http.Handler, method, path, user, pass string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

// getRoutes lists the GET routes asynqmon registers, read from its source.
func getRoutes(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/hibiken/asynqmon").Output()
	if err != nil {
		t.Fatalf("locate asynqmon source: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "handler.go"))
	if err != nil {
		t.Fatalf("read asynqmon source: %v", err)
	}
	re := regexp.MustCompile(`api\.HandleFunc\("([^"]+)",.*\.Methods\("GET"\)`)
	var routes []string
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			routes = append(routes, m[1])
		}
	}
	if len(routes) < 15 {
		t.Fatalf("found only %d GET routes in asynqmon's handler.go: %v", len(routes), routes)
	}
	return routes
}

// expand fills a route template with every value its variables take in db.
func expand(t *testing.T, insp *asynq.Inspector, route string) []string {
	t.Helper()
	queues, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{route}
	fill := func(v string, values func(path string) []string) {
		var next []string
		for _, p := range paths {
			if !strings.Contains(p, "{"+v+"}") {
				next = append(next, p)
				continue
			}
			for _, val := range values(p) {
				next = append(next, strings.Replace(p, "{"+v+"}", url.PathEscape(val), 1))
			}
		}
		paths = next
	}
	fill("qname", func(string) []string { return queues })
	fill("gname", func(p string) []string {
		q := queueOf(p)
		groups, _ := insp.Groups(q)
		var names []string
		for _, g := range groups {
			names = append(names, g.Group)
		}
		return names
	})
	fill("task_id", func(p string) []string {
		q := queueOf(p)
		var ids []string
		lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks,
			insp.ListRetryTasks, insp.ListArchivedTasks, insp.ListCompletedTasks,
		}
		for _, list := range lists {
			tasks, _ := list(q, asynq.PageSize(100))
			for _, ti := range tasks {
				ids = append(ids, ti.ID)
			}
		}
		groups, _ := insp.Groups(q)
		for _, g := range groups {
			tasks, _ := insp.ListAggregatingTasks(q, g.Group, asynq.PageSize(100))
			for _, ti := range tasks {
				ids = append(ids, ti.ID)
			}
		}
		return ids
	})
	fill("entry_id", func(string) []string {
		entries, _ := insp.SchedulerEntries()
		var ids []string
		for _, e := range entries {
			ids = append(ids, e.ID)
		}
		return ids
	})
	for i, p := range paths {
		if strings.HasSuffix(p, "_tasks") || strings.HasSuffix(p, "enqueue_events") {
			paths[i] = p + "?size=100"
		}
	}
	return paths
}

func queueOf(path string) string {
	rest := strings.TrimPrefix(path, "/queues/")
	q, _, _ := strings.Cut(rest, "/")
	q, _ = url.PathUnescape(q)
	return q
}

// fetchAll GETs every GET route of the dashboard's API for every queue,
// group, task and scheduler entry in db and returns the bodies by path.
func fetchAll(t *testing.T, h http.Handler, db *testredis.DB) map[string]string {
	t.Helper()
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	bodies := map[string]string{}
	for _, route := range getRoutes(t) {
		paths := expand(t, insp, route)
		if len(paths) == 0 {
			t.Errorf("route %s: no value in the seeded Redis to fill it with", route)
		}
		for _, p := range paths {
			resp := do(t, h, http.MethodGet, "/dashboard/api"+p, "ops", "s3cret")
			if resp.status != http.StatusOK && route != "/metrics" { // no Prometheus configured
				t.Errorf("GET %s: status %d: %s", p, resp.status, resp.body)
			}
			bodies[p] = resp.body
		}
	}
	return bodies
}

func TestDashboardRedactsEveryAPIResponse(t *testing.T) {
	db := testredis.New(t)
	seedAllStates(t, db)

	redacted := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"})
	bodies := fetchAll(t, redacted, db)
	paths := make([]string, 0, len(bodies))
	for p := range bodies {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	all := ""
	for _, p := range paths {
		for _, secret := range []string{leakEmail, leakID, "leak-test%40example.com", leakKey, "person-7731"} {
			if strings.Contains(bodies[p], secret) {
				t.Errorf("GET %s leaks %q:\n%s", p, secret, bodies[p])
			}
		}
		all += bodies[p]
	}
	t.Logf("fetched %d API responses", len(bodies))
	// Triage information survives.
	for _, want := range []string{"password_reset", "cio:send_email", "customer.io rejected", "invoice.pdf", "batch-1", "bytes, not JSON"} {
		if !strings.Contains(all, want) {
			t.Errorf("redacted responses lost %q", want)
		}
	}

	// The same walk without redaction finds the secrets: the test can fail.
	shown := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret", ShowPayloads: true})
	all = ""
	for _, b := range fetchAll(t, shown, db) {
		all += b
	}
	for _, secret := range []string{leakEmail, leakID, leakKey} {
		if !strings.Contains(all, secret) {
			t.Errorf("with ShowPayloads no response contains %q: the leak test would not notice a leak", secret)
		}
	}
}

func TestDashboardAuth(t *testing.T) {
	db := testredis.New(t)
	h := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"})

	tests := []struct {
		name       string
		user, pass string
		want       int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", "ops", "wrong", http.StatusUnauthorized},
		{"wrong user", "admin", "s3cret", http.StatusUnauthorized},
		{"right", "ops", "s3cret", http.StatusOK},
	}
	for _, tt := range tests {
		for _, path := range []string{"/dashboard/", "/dashboard/api/queues"} {
			resp := do(t, h, http.MethodGet, path, tt.user, tt.pass)
			if resp.status != tt.want {
				t.Errorf("%s: GET %s = %d, want %d", tt.name, path, resp.status, tt.want)
			}
			if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s: GET %s: WWW-Authenticate = %q", tt.name, path, resp.header.Get("WWW-Authenticate"))
			}
		}
	}
	if resp := do(t, h, http.MethodGet, "/elsewhere", "ops", "s3cret"); resp.status != http.StatusNotFound {
		t.Errorf("GET outside the root = %d, want 404", resp.status)
	}
}

func TestNewDashboardOptions(t *testing.T) {
	db := testredis.New(t)
	if _, err := NewDashboard(DashboardOptions{RedisConnOpt: db.ConnOpt()}); !errors.Is(err, ErrDashboardNoAuth) {
		t.Errorf("no credentials: err = %v, want ErrDashboardNoAuth", err)
	}
	if _, err := NewDashboard(DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops"}); err == nil {
		t.Error("user without password: no error")
	}
	if _, err := NewDashboard(DashboardOptions{Username: "ops", Password: "x"}); err == nil {
		t.Error("no Redis: no error")
	}
	if _, err := NewDashboard(DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "x", RootPath: "dash"}); err == nil {
		t.Error("relative root: no error")
	}

	opts := DashboardOptions{RedisConnOpt: db.ConnOpt(), AllowNoAuth: true, RootPath: "/ops/queues/"}
	if !opts.Unauthenticated() {
		t.Error("Unauthenticated() = false with AllowNoAuth and no credentials")
	}
	h := newTestDashboard(t, opts)
	if resp := do(t, h, http.MethodGet, "/ops/queues/api/queues", "", ""); resp.status != http.StatusOK {
		t.Errorf("AllowNoAuth: GET = %d, want 200", resp.status)
	}
	if (DashboardOptions{Username: "a", Password: "b", AllowNoAuth: true}).Unauthenticated() {
		t.Error("Unauthenticated() = true with credentials")
	}
}

func TestDashboardReadOnly(t *testing.T) {
	db := testredis.New(t)
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	info, err := client.Enqueue(leakyTask("cio:identify"), asynq.Queue("default"))
	if err != nil {
		t.Fatal(err)
	}
	h := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret", ReadOnly: true})

	mutations := []struct{ method, path string }{
		{http.MethodPost, "/dashboard/api/queues/default:pause"},
		{http.MethodDelete, "/dashboard/api/queues/default/pending_tasks/" + info.ID},
		{http.MethodDelete, "/dashboard/api/queues/default/pending_tasks:delete_all"},
		{http.MethodDelete, "/dashboard/api/queues/default"},
		{http.MethodPost, "/dashboard/api/queues/default/pending_tasks:archive_all"},
		{http.MethodPut, "/dashboard/"},
	}
	for _, m := range mutations {
		resp := do(t, h, m.method, m.path, "ops", "s3cret")
		if resp.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405", m.method, m.path, resp.status)
		}
	}
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	qi, err := insp.GetQueueInfo("default")
	if err != nil {
		t.Fatal(err)
	}
	if qi.Pending != 1 || qi.Paused {
		t.Errorf("after refused mutations: pending=%d paused=%v, want 1 and false", qi.Pending, qi.Paused)
	}
	if resp := do(t, h, http.MethodGet, "/dashboard/api/queues/default", "ops", "s3cret"); resp.status != http.StatusOK {
		t.Errorf("read-only GET = %d, want 200", resp.status)
	}
	// Unauthenticated mutations are refused before the read-only guard.
	if resp := do(t, h, http.MethodPost, "/dashboard/api/queues/default:pause", "", ""); resp.status != http.StatusUnauthorized {
		t.Errorf("unauthenticated POST = %d, want 401", resp.status)
	}
}

func TestDashboardUILoadsOffline(t *testing.T) {
	db := testredis.New(t)
	h := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret", ReadOnly: true})
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.SetBasicAuth("ops", "s3cret")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	status, ctype, body := get("/dashboard/")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, "<html") {
		t.Fatalf("GET /dashboard/ = %d %q:\n%.300s", status, ctype, body)
	}
	// The page's own scripts are embedded too.
	m := regexp.MustCompile(`src="(/dashboard/static/js/[^"]+\.js)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("index page names no script under /dashboard/static/js:\n%.500s", body)
	}
	if status, ctype, _ := get(m[1]); status != http.StatusOK || !strings.Contains(ctype, "javascript") {
		t.Errorf("GET %s = %d %q", m[1], status, ctype)
	}
}

// Running or deleting archived tasks from the dashboard would bypass the
// dead letter store: every such request gets 405, read-only or not, and
// both the archive entry and the dead letter stay. Other mutations work.
func TestDashboardLeavesDeadLettersToCioqDLQ(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	info, err := client.Enqueue(leakyTask("cio:identify"), asynq.Queue("default"), asynq.TaskID("dead-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.ArchiveTask("default", info.ID); err != nil {
		t.Fatal(err)
	}
	store := worker.NewDeadLetters(db.Client, insp)
	if err := store.Add(ctx, &worker.DeadLetter{ID: info.ID, Type: info.Type, Queue: "default", Payload: info.Payload,
		Attempts: 1, Class: worker.DeadLetterPermanent, Status: 400, Error: "refused"}); err != nil {
		t.Fatal(err)
	}

	for _, readOnly := range []bool{false, true} {
		h := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret", ReadOnly: readOnly})
		for _, m := range []struct{ method, path string }{
			{http.MethodPost, "/dashboard/api/queues/default/archived_tasks/dead-1:run"},
			{http.MethodPost, "/dashboard/api/queues/default/archived_tasks:run_all"},
			{http.MethodPost, "/dashboard/api/queues/default/archived_tasks:batch_run"},
			{http.MethodDelete, "/dashboard/api/queues/default/archived_tasks/dead-1"},
			{http.MethodDelete, "/dashboard/api/queues/default/archived_tasks:delete_all"},
			{http.MethodPost, "/dashboard/api/queues/default/archived_tasks:batch_delete"},
			{http.MethodDelete, "/dashboard/api/queues/default/./archived_tasks/dead-1"},
			{http.MethodPut, "/dashboard/api/queues/default/archived_tasks"},
		} {
			req := httptest.NewRequest(m.method, m.path, strings.NewReader(`{"task_ids":["dead-1"]}`))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth("ops", "s3cret")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("read-only=%v: %s %s = %d, want 405", readOnly, m.method, m.path, rec.Code)
				continue
			}
			if readOnly {
				continue // the read-only guard answers first
			}
			var msg struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &msg); err != nil || msg.Error != ErrArchivedTasksMessage ||
				rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %s %q (%v)", m.method, m.path, rec.Header().Get("Content-Type"), rec.Body.String(), err)
			}
		}
	}

	if ti, err := insp.GetTaskInfo("default", "dead-1"); err != nil || ti.State != asynq.TaskStateArchived {
		t.Errorf("archive entry after refused requests: %+v, %v", ti, err)
	}
	if _, err := store.Get(ctx, "dead-1"); err != nil {
		t.Errorf("dead letter after refused requests: %v", err)
	}

	// Reading the archive, and mutations elsewhere, still work.
	h := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"})
	if resp := do(t, h, http.MethodGet, "/dashboard/api/queues/default/archived_tasks", "ops", "s3cret"); resp.status != http.StatusOK || !strings.Contains(resp.body, "dead-1") {
		t.Errorf("GET archived_tasks = %d %s", resp.status, resp.body)
	}
	for _, m := range []struct{ method, path string }{
		{http.MethodPost, "/dashboard/api/queues/default/retry_tasks:run_all"},
		{http.MethodPost, "/dashboard/api/queues/default:pause"},
	} {
		if resp := do(t, h, m.method, m.path, "ops", "s3cret"); resp.status/100 != 2 {
			t.Errorf("%s %s = %d %s, want 2xx", m.method, m.path, resp.status, resp.body)
		}
	}
	if qi, err := insp.GetQueueInfo("default"); err != nil || !qi.Paused {
		t.Errorf("the queue was not paused: %+v, %v", qi, err)
	}
}
