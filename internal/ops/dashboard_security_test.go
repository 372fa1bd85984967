package ops

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/worker"
)

// route is one of asynqmon's API routes.
type route struct{ method, path string }

// mutationRoutes lists the POST and DELETE routes asynqmon registers, read
// from its source, with {qname} = "default", {gname} = "g1" and
// {task_id} = "t1".
func mutationRoutes(t *testing.T) []route {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/hibiken/asynqmon").Output()
	if err != nil {
		t.Fatalf("locate asynqmon source: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "handler.go"))
	if err != nil {
		t.Fatalf("read asynqmon source: %v", err)
	}
	re := regexp.MustCompile(`api\.HandleFunc\("([^"]+)",.*\.Methods\("(POST|DELETE)"\)`)
	fill := strings.NewReplacer("{qname}", "default", "{gname}", "g1", "{task_id}", "t1")
	var routes []route
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		routes = append(routes, route{m[2], "/dashboard/api" + fill.Replace(m[1])})
	}
	if len(routes) < 40 {
		t.Fatalf("found only %d POST/DELETE routes in asynqmon's handler.go", len(routes))
	}
	return routes
}

// refusedRoute reports whether a same-origin request to r must still be
// refused with 405 because it would bypass the dead letter store (archived
// tasks, archiving) or drop an idempotency hold (completed tasks), and
// with which message.
func refusedRoute(r route) string {
	switch {
	case strings.Contains(r.path, "/archived_tasks"):
		return ErrArchivedTasksMessage
	case strings.Contains(r.path, "/completed_tasks"):
		return ErrCompletedTasksMessage
	case strings.HasSuffix(r.path, ":archive"), strings.HasSuffix(r.path, ":archive_all"), strings.HasSuffix(r.path, ":batch_archive"):
		return ErrArchiveMessage
	}
	return ""
}

// call sends one request to srv with basic auth and the given headers
// ("Host" sets the Host header) and returns the status and the body.
func call(t *testing.T, srv *httptest.Server, method, path, body string, headers ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("ops", "s3cret")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// errorOf is the "error" member of a refusal's JSON body.
func errorOf(body string) string {
	var m struct{ Error string }
	json.Unmarshal([]byte(body), &m)
	return m.Error
}

const evil = "https://evil.example"

// crossSite are the headers of a browser's request from evil.example: a
// modern one (Sec-Fetch-Site) and one without Sec-Fetch-Site, whose Origin
// does not match the Host.
var crossSite = map[string][]string{
	"Sec-Fetch-Site": {"Sec-Fetch-Site", "cross-site", "Origin", evil},
	"Origin only":    {"Origin", evil},
}

// Every POST and DELETE route of the dashboard's API refuses a cross-site
// request with 403, whatever its body; the same request from the
// dashboard's own page passes that check (and is answered by asynqmon, or
// refused with 405 when it would bypass the dead letter store or an
// idempotency hold).
func TestDashboardRefusesCrossSiteRequestsOnEveryRoute(t *testing.T) {
	db := testredis.New(t)
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	if _, err := client.Enqueue(leakyTask("cio:identify"), asynq.Queue("default"), asynq.TaskID("t1")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, r := range mutationRoutes(t) {
		for name, h := range crossSite {
			for _, body := range []struct{ ctype, body string }{
				{"application/json", `{"task_ids":["t1"]}`},
				{"text/plain", `{"task_ids":["t1"],"x":"="}`}, // an enctype=text/plain form
				{"application/x-www-form-urlencoded", ""},
			} {
				status, resp := call(t, srv, r.method, r.path, body.body, append([]string{"Content-Type", body.ctype}, h...)...)
				if status != http.StatusForbidden || !strings.Contains(errorOf(resp), "cross-origin request refused") {
					t.Errorf("%s, %s: %s %s = %d %s, want 403", name, body.ctype, r.method, r.path, status, resp)
				}
			}
		}
		status, resp := call(t, srv, r.method, r.path, `{"task_ids":["t1"]}`,
			"Content-Type", "application/json", "Sec-Fetch-Site", "same-origin", "Origin", "http://"+host)
		want := refusedRoute(r)
		switch {
		case want != "" && (status != http.StatusMethodNotAllowed || errorOf(resp) != want):
			t.Errorf("same origin: %s %s = %d %s, want 405 %q", r.method, r.path, status, resp, want)
		case want == "" && (status == http.StatusForbidden || status == http.StatusMethodNotAllowed || status == http.StatusUnsupportedMediaType):
			t.Errorf("same origin: %s %s = %d %s, want asynqmon's answer", r.method, r.path, status, resp)
		}
	}
}

// The requests of the issue: cross-site ones change nothing, whatever
// their body; form and text/plain bodies are refused from the dashboard's
// own origin too (415); JSON and bodiless requests from it, and requests
// without browser headers (curl), work; a trusted origin passes where its
// Origin does not match the Host (a proxy rewriting Host).
func TestDashboardCrossSiteRequestsChangeNothing(t *testing.T) {
	db := testredis.New(t)
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	for _, id := range []string{"p1", "p2"} {
		if _, err := client.Enqueue(leakyTask("cio:identify"), asynq.Queue("default"), asynq.TaskID(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Enqueue(leakyTask("cio:track"), asynq.Queue("default"), asynq.TaskID("s1"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"}))
	defer srv.Close()
	queue := func() *asynq.QueueInfo {
		t.Helper()
		qi, err := insp.GetQueueInfo("default")
		if err != nil {
			t.Fatal(err)
		}
		return qi
	}
	const api = "/dashboard/api/queues/default"
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	text := []string{"Content-Type", "text/plain"}
	jsonType := []string{"Content-Type", "application/json"}
	same := []string{"Sec-Fetch-Site", "same-origin"}
	cat := func(hs ...[]string) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h...)
		}
		return out
	}
	batch := `{"task_ids":["p1"],"x":"="}`

	for name, h := range crossSite {
		for _, c := range []struct {
			method, path, body string
			headers            []string
		}{
			{http.MethodPost, api + ":pause", "", form},
			{http.MethodPost, api + "/scheduled_tasks:run_all", "", form},
			{http.MethodPost, api + "/pending_tasks:batch_delete", batch, text},
			{http.MethodPost, api + "/pending_tasks:batch_delete", batch, jsonType},
			{http.MethodDelete, api + "/pending_tasks:delete_all", "", nil},
		} {
			if status, body := call(t, srv, c.method, c.path, c.body, cat(c.headers, h)...); status != http.StatusForbidden {
				t.Errorf("%s: %s %s = %d %s, want 403", name, c.method, c.path, status, body)
			}
		}
	}
	if qi := queue(); qi.Paused || qi.Pending != 2 || qi.Scheduled != 1 {
		t.Fatalf("after cross-site requests: paused=%v pending=%d scheduled=%d, want false, 2, 1", qi.Paused, qi.Pending, qi.Scheduled)
	}

	// From the dashboard's own origin, a form or text body is refused.
	for _, c := range []struct {
		path, body string
		headers    []string
	}{
		{api + ":pause", "", form},
		{api + ":pause", "x=1", form},
		{api + "/pending_tasks:batch_delete", batch, text},
		{api + "/pending_tasks:batch_delete", batch, []string{"Content-Type", "multipart/form-data; boundary=x"}},
		{api + "/pending_tasks:batch_delete", batch, nil}, // a body without a type
	} {
		status, body := call(t, srv, http.MethodPost, c.path, c.body, cat(c.headers, same)...)
		if status != http.StatusUnsupportedMediaType || errorOf(body) != ErrContentTypeMessage {
			t.Errorf("same origin %v: POST %s = %d %s, want 415", c.headers, c.path, status, body)
		}
	}
	if qi := queue(); qi.Paused || qi.Pending != 2 {
		t.Fatalf("after refused bodies: paused=%v pending=%d", qi.Paused, qi.Pending)
	}

	// JSON and bodiless requests from the dashboard's page work.
	if status, body := call(t, srv, http.MethodPost, api+"/pending_tasks:batch_delete", `{"task_ids":["p1"]}`,
		cat([]string{"Content-Type", "application/json; charset=utf-8"}, same)...); status != http.StatusOK {
		t.Errorf("same-origin JSON batch_delete = %d %s", status, body)
	}
	if status, body := call(t, srv, http.MethodPost, api+":pause", "", same...); status != http.StatusNoContent {
		t.Errorf("same-origin pause = %d %s", status, body)
	}
	if qi := queue(); !qi.Paused || qi.Pending != 1 {
		t.Fatalf("after same-origin requests: paused=%v pending=%d, want true and 1", qi.Paused, qi.Pending)
	}
	// So do requests without browser headers (curl, scripts).
	if status, body := call(t, srv, http.MethodPost, api+":resume", ""); status != http.StatusNoContent {
		t.Errorf("resume without browser headers = %d %s", status, body)
	}

	// Behind a proxy that rewrites Host, an old browser's Origin does not
	// match it: refused, unless the origin is trusted.
	proxied := []string{"Origin", "https://cioq.example.com", "Host", "127.0.0.1:8080"}
	if status, _ := call(t, srv, http.MethodPost, api+":pause", "", proxied...); status != http.StatusForbidden {
		t.Errorf("untrusted origin = %d, want 403", status)
	}
	trusted := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret",
		TrustedOrigins: []string{"https://cioq.example.com/"}}))
	defer trusted.Close()
	if status, body := call(t, trusted, http.MethodPost, api+":pause", "", proxied...); status != http.StatusNoContent {
		t.Errorf("trusted origin = %d %s, want 204", status, body)
	}
	if status, _ := call(t, trusted, http.MethodPost, api+":resume", "", crossSite["Origin only"]...); status != http.StatusForbidden {
		t.Errorf("another origin with trusted origins set = %d, want 403", status)
	}
	if _, err := NewDashboard(DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret",
		TrustedOrigins: []string{"cioq.example.com"}}); err == nil {
		t.Error("a trusted origin without a scheme: no error")
	}
}

// Deleting completed tasks would drop their idempotency holds, and
// archiving would put tasks in the archive without a dead letter: both are
// refused with 405 naming `cioq dlq`, and the hold stays (the same key is
// a duplicate and the sandbox gets one send).
func TestDashboardKeepsIdempotencyHoldsAndDeadLetters(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	sb := sandbox.NewTestServer(t)
	w, err := worker.New(worker.Config{
		Redis:         db.ConnOpt(),
		Workspaces:    map[string]customerio.Config{"": testsupport.SandboxConfig(sb.URL)},
		Logger:        testsupport.Logger(),
		ProbeInterval: -1, // the test counts the sandbox's sends
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	prod := producer.NewFromRedis(db.Client)
	send := []byte(`{"transactional_message_id":"order_confirmation","to":"ada@example.com","identifiers":{"id":"user-1"}}`)
	const key = "order-1:confirmation"
	r1, err := prod.EnqueueRaw(ctx, "cio:send_email", send, producer.IdempotencyKey(key))
	if err != nil || r1.Duplicate {
		t.Fatalf("first enqueue: %+v, %v", r1, err)
	}
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	waitFor(t, 30*time.Second, "the send to complete", func() bool {
		ti, err := insp.GetTaskInfo(r1.Queue, r1.TaskID)
		return err == nil && ti.State == asynq.TaskStateCompleted
	})
	w.Shutdown()

	// Tasks in each state that has archive actions.
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	for _, o := range [][]asynq.Option{
		{asynq.Queue("default"), asynq.TaskID("p1")},
		{asynq.Queue("default"), asynq.TaskID("s1"), asynq.ProcessIn(time.Hour)},
		{asynq.Queue("default"), asynq.TaskID("a1"), asynq.Group("g1")},
	} {
		if _, err := client.Enqueue(leakyTask("cio:identify"), o...); err != nil {
			t.Fatal(err)
		}
	}

	srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"}))
	defer srv.Close()
	done := "/dashboard/api/queues/" + r1.Queue + "/completed_tasks"
	q := "/dashboard/api/queues/default"
	ids := `{"task_ids":["p1","s1","a1","` + r1.TaskID + `"]}`
	for _, c := range []struct{ method, path, body, want string }{
		{http.MethodDelete, done + "/" + r1.TaskID, "", ErrCompletedTasksMessage},
		{http.MethodDelete, done + ":delete_all", "", ErrCompletedTasksMessage},
		{http.MethodPost, done + ":batch_delete", ids, ErrCompletedTasksMessage},
		{http.MethodDelete, "/dashboard/api/queues/" + r1.Queue + "/./completed_tasks/" + r1.TaskID, "", ErrCompletedTasksMessage},
		{http.MethodPost, q + "/pending_tasks/p1:archive", "", ErrArchiveMessage},
		{http.MethodPost, q + "/pending_tasks:archive_all", "", ErrArchiveMessage},
		{http.MethodPost, q + "/pending_tasks:batch_archive", ids, ErrArchiveMessage},
		{http.MethodPost, q + "/scheduled_tasks/s1:archive", "", ErrArchiveMessage},
		{http.MethodPost, q + "/scheduled_tasks:archive_all", "", ErrArchiveMessage},
		{http.MethodPost, q + "/scheduled_tasks:batch_archive", ids, ErrArchiveMessage},
		{http.MethodPost, q + "/retry_tasks:archive_all", "", ErrArchiveMessage},
		{http.MethodPost, q + "/groups/g1/aggregating_tasks/a1:archive", "", ErrArchiveMessage},
		{http.MethodPost, q + "/groups/g1/aggregating_tasks:archive_all", "", ErrArchiveMessage},
		{http.MethodPost, q + "/groups/g1/aggregating_tasks:batch_archive", ids, ErrArchiveMessage},
	} {
		var headers []string
		if c.body != "" {
			headers = []string{"Content-Type", "application/json"}
		}
		status, body := call(t, srv, c.method, c.path, c.body, headers...)
		if status != http.StatusMethodNotAllowed || errorOf(body) != c.want || !strings.Contains(c.want, "`cioq dlq") {
			t.Errorf("%s %s = %d %s, want 405 %q", c.method, c.path, status, body, c.want)
		}
	}
	for _, q := range []string{"default", r1.Queue} {
		if qi, err := insp.GetQueueInfo(q); err != nil || qi.Archived != 0 {
			t.Errorf("queue %s after refused archive actions: %+v, %v", q, qi, err)
		}
	}
	if ti, err := insp.GetTaskInfo(r1.Queue, r1.TaskID); err != nil || ti.State != asynq.TaskStateCompleted {
		t.Fatalf("the completed send after refused deletes: %+v, %v", ti, err)
	}
	r2, err := prod.EnqueueRaw(ctx, "cio:send_email", send, producer.IdempotencyKey(key))
	if err != nil || !r2.Duplicate || r2.TaskID != r1.TaskID {
		t.Errorf("the key enqueued again: %+v, %v, want a duplicate", r2, err)
	}
	if n := len(sb.Deliveries()); n != 1 {
		t.Errorf("the sandbox has %d transactional deliveries, want 1", n)
	}
	// Deleting tasks that are not completed still works.
	if status, body := call(t, srv, http.MethodDelete, q+"/pending_tasks/p1", ""); status != http.StatusNoContent {
		t.Errorf("DELETE a pending task = %d %s", status, body)
	}
}

// The archived-task guard holds however the path is spelled: every
// request asynqmon's router would hand to an archived_tasks handler is
// refused, and so is each spelling it would not route at all.
func TestDashboardArchivedGuardPathTricks(t *testing.T) {
	db := testredis.New(t)
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	if _, err := client.Enqueue(leakyTask("cio:identify"), asynq.Queue("default"), asynq.TaskID("dead-1")); err != nil {
		t.Fatal(err)
	}
	if err := insp.ArchiveTask("default", "dead-1"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"}))
	defer srv.Close()
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/dashboard/api/queues/default/archived_tasks/dead-1"},
		{http.MethodDelete, "/dashboard/api/queues/default//archived_tasks/dead-1"},
		{http.MethodDelete, "/dashboard/api/queues/default/x/../archived_tasks/dead-1"},
		{http.MethodDelete, "/dashboard/api/queues/default/archived_tasks/dead-1/"},
		{http.MethodDelete, "/dashboard/api/queues/default/%61rchived_tasks/dead-1"},
		{http.MethodDelete, "/dashboard//api/queues/default/archived_tasks/dead-1"},
		{http.MethodDelete, "/dashboard/api/queues/default/archived_tasks:delete_all"},
		{http.MethodPost, "/dashboard/api/queues/default/archived_tasks/dead-1:run"},
		{http.MethodPost, "/dashboard/api/queues/default/archived_tasks/dead-1%3Arun"},
		{http.MethodPost, "/dashboard/api/queues/default/archived_tasks:run_all?x=/../"},
		{http.MethodPost, "/dashboard/api/queues/default/archived_tasks:batch_run"},
	} {
		// The client must send the path as written.
		req, err := http.NewRequest(c.method, srv.URL+"/", strings.NewReader(`{"task_ids":["dead-1"]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = c.path
		if p, q, ok := strings.Cut(c.path, "?"); ok {
			req.URL.Opaque, req.URL.RawQuery = p, q
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("ops", "s3cret")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Refused, or (for a path the router would not route) not found or
		// redirected: never run.
		if resp.StatusCode/100 == 2 {
			t.Errorf("%s %s = %d %s", c.method, c.path, resp.StatusCode, b)
		}
	}
	if ti, err := insp.GetTaskInfo("default", "dead-1"); err != nil || ti.State != asynq.TaskStateArchived {
		t.Errorf("the archived task after the requests: %+v, %v", ti, err)
	}
}

// With CheckHost, a request under a name other than an IP address,
// localhost or an allowed host (a DNS-rebinding page's) gets 421 before
// authentication; those names work.
func TestDashboardRefusesUnexpectedHost(t *testing.T) {
	db := testredis.New(t)
	for _, c := range []struct {
		name string
		opts DashboardOptions
		ok   []string
		bad  []string
	}{
		{"CheckHost without credentials", DashboardOptions{AllowNoAuth: true, CheckHost: true},
			[]string{"127.0.0.1:8080", "localhost:8080", "LOCALHOST", "localhost.:8080", "[::1]:8080", "10.1.2.3"},
			[]string{"evil.example:8080", "localhost.evil.example", "cioq.example.com", "127.0.0.1.nip.io:8080", "x.localhost"}},
		{"AllowedHosts", DashboardOptions{Username: "ops", Password: "s3cret", AllowedHosts: []string{"Cioq.Example.com"}},
			[]string{"cioq.example.com:443", "cioq.example.com", "127.0.0.1:8080"},
			[]string{"evil.example", "example.com", "www.cioq.example.com"}},
		{"TrustedOrigins", DashboardOptions{Username: "ops", Password: "s3cret", CheckHost: true, TrustedOrigins: []string{"https://cioq.example.com"}},
			[]string{"cioq.example.com", "localhost:8080"},
			[]string{"evil.example"}},
	} {
		c.opts.RedisConnOpt = db.ConnOpt()
		srv := httptest.NewServer(newTestDashboard(t, c.opts))
		for _, host := range c.ok {
			if status, body := call(t, srv, http.MethodGet, "/dashboard/api/queues", "", "Host", host); status != http.StatusOK {
				t.Errorf("%s: Host %s = %d %s, want 200", c.name, host, status, body)
			}
		}
		for _, host := range c.bad {
			status, body := call(t, srv, http.MethodGet, "/dashboard/api/queues", "", "Host", host)
			if status != http.StatusMisdirectedRequest || errorOf(body) != ErrHostMessage {
				t.Errorf("%s: Host %s = %d %s, want 421", c.name, host, status, body)
			}
		}
		srv.Close()
	}
	// Without CheckHost or AllowedHosts any Host passes (serve with
	// credentials on a non-loopback address).
	srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"}))
	defer srv.Close()
	if status, _ := call(t, srv, http.MethodGet, "/dashboard/api/queues", "", "Host", "cioq.internal:8080"); status != http.StatusOK {
		t.Errorf("no host check: %d", status)
	}
	if _, err := NewDashboard(DashboardOptions{RedisConnOpt: db.ConnOpt(), AllowNoAuth: true, AllowedHosts: []string{"cioq.example.com:443"}}); err == nil {
		t.Error("an allowed host with a port: no error")
	}
}

// A page of the API lists at most MaxDashboardPageSize tasks; the UI's own
// sizes work.
func TestDashboardCapsPageSize(t *testing.T) {
	db := testredis.New(t)
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	for range MaxDashboardPageSize + 5 {
		if _, err := client.Enqueue(leakyTask("cio:identify"), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	for _, show := range []bool{false, true} {
		srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret", ShowPayloads: show}))
		for _, p := range []string{"pending_tasks?size=100000", "pending_tasks?size=101", "pending_tasks?page=1&size=5000"} {
			status, body := call(t, srv, http.MethodGet, "/dashboard/api/queues/default/"+p, "")
			if status != http.StatusBadRequest || !strings.Contains(errorOf(body), "size: at most 100") {
				t.Errorf("show payloads %v: GET %s = %d %.200s, want 400", show, p, status, body)
			}
		}
		for _, c := range []struct {
			query string
			n     int
		}{{"size=100", 100}, {"size=10", 10}, {"", 20}, {"size=100&page=2", 5}} {
			status, body := call(t, srv, http.MethodGet, "/dashboard/api/queues/default/pending_tasks?"+c.query, "")
			var page struct{ Tasks []json.RawMessage }
			if err := json.Unmarshal([]byte(body), &page); status != http.StatusOK || err != nil || len(page.Tasks) != c.n {
				t.Errorf("show payloads %v: GET ?%s = %d, %d tasks (%v), want 200 and %d", show, c.query, status, len(page.Tasks), err, c.n)
			}
		}
		srv.Close()
	}
}

// Every dashboard response, the UI's pages, its API and its refusals,
// carries the security headers, the Content-Security-Policy allowing the
// index page's own inline scripts by hash and no script from elsewhere.
func TestDashboardSecurityHeaders(t *testing.T) {
	db := testredis.New(t)
	srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"}))
	defer srv.Close()
	index, indexCSP := "", ""
	for _, c := range []struct {
		method, path string
		auth         bool
		headers      []string
	}{
		{http.MethodGet, "/dashboard/", true, nil},
		{http.MethodGet, "/dashboard/queues/default", true, nil},
		{http.MethodGet, "/dashboard/api/queues", true, nil},
		{http.MethodGet, "/dashboard/", false, nil},
		{http.MethodPost, "/dashboard/api/queues/default:pause", true, crossSite["Sec-Fetch-Site"]},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		if c.auth {
			req.SetBasicAuth("ops", "s3cret")
		}
		for i := 0; i+1 < len(c.headers); i += 2 {
			req.Header.Set(c.headers[i], c.headers[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.path == "/dashboard/" && c.auth {
			index, indexCSP = string(b), resp.Header.Get("Content-Security-Policy")
		}
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
			"Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s %s (%d): %s = %q, want %q", c.method, c.path, resp.StatusCode, k, got, want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self' 'sha256-", "frame-ancestors 'none'", "object-src 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s %s: Content-Security-Policy %q lacks %q", c.method, c.path, csp, want)
			}
		}
		scriptSrc, _, _ := strings.Cut(strings.SplitN(csp, "script-src", 2)[1], ";")
		if strings.Contains(csp, "unsafe-eval") || strings.Contains(scriptSrc, "unsafe-inline") || strings.Contains(scriptSrc, "*") {
			t.Errorf("%s %s: Content-Security-Policy allows inline or eval'd scripts: %q", c.method, c.path, csp)
		}
	}
	// The hashes are those of the index page's inline scripts.
	scripts := inlineScript.FindAllStringSubmatch(index, -1)
	if len(scripts) != 2 {
		t.Fatalf("index page has %d inline scripts, want 2 (settings and webpack's runtime)", len(scripts))
	}
	for _, m := range scripts {
		sum := sha256.Sum256([]byte(m[1]))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(indexCSP, h) {
			t.Errorf("Content-Security-Policy %q lacks %s, the hash of %.60q", indexCSP, h, m[1])
		}
	}
}

// The basic-auth check compares user and password in constant time: both
// through crypto/subtle (of fixed-length digests) and combined without
// short-circuit, and no == or != on them, which return at the first byte
// that differs.
func TestDashboardComparesCredentialsInConstantTime(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "dashboard.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "basicAuth" {
			fn = d
		}
	}
	if fn == nil {
		t.Fatal("no basicAuth in dashboard.go")
	}
	compares := 0
	ast.Inspect(fn, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "subtle" {
					compares++
				}
			}
		case *ast.BinaryExpr:
			if x.Op == token.EQL || x.Op == token.NEQ || x.Op == token.LAND {
				for _, side := range []ast.Expr{x.X, x.Y} {
					if id, ok := side.(*ast.Ident); ok && (id.Name == "u" || id.Name == "p" || id.Name == "user" || id.Name == "pass" ||
						id.Name == "userOK" || id.Name == "passOK") {
						t.Errorf("basicAuth compares %s with %s", id.Name, x.Op)
					}
				}
			}
		}
		return true
	})
	if compares != 2 {
		t.Errorf("basicAuth calls subtle.ConstantTimeCompare %d times, want 2 (user and password)", compares)
	}
	// And it works: the right pair passes, a right password with a wrong
	// user, or a prefix of the password, does not.
	db := testredis.New(t)
	srv := httptest.NewServer(newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret"}))
	defer srv.Close()
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"ops", "s3cret", 200}, {"opsx", "s3cret", 401}, {"ops", "s3cre", 401}, {"ops", "s3cretx", 401}, {"", "", 401}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/dashboard/api/queues", nil)
		req.SetBasicAuth(c.user, c.pass)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%q/%q: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
	}
}
