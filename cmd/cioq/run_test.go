package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testpg"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

func get(t *testing.T, url string, auth ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually is testsupport.Eventually with 15 s: it polls f until it
// returns true.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	testsupport.Eventually(t, 15*time.Second, what, f)
}

// The worker delivers to the sandbox, serves its admin port, reports a
// missing credential (logged and on /readyz) and exits 0 on SIGTERM.
func TestWorkerDeliversAndStops(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	sb := sandbox.NewTestServer(t)
	admin := freeAddr(t)
	// Track and Pipelines configured, App deliberately not.
	p := start(t, map[string]string{
		"REDIS_URL":                      db.URL(),
		"CUSTOMERIO_SITE_ID":             sandbox.DefaultSiteID,
		"CUSTOMERIO_TRACK_API_KEY":       sandbox.DefaultTrackAPIKey,
		"CUSTOMERIO_PIPELINES_WRITE_KEY": sandbox.DefaultPipelinesWriteKey,
		"CUSTOMERIO_TRACK_URL":           sb.TrackURL(),
		"CUSTOMERIO_APP_URL":             sb.AppURL(),
		"CUSTOMERIO_PIPELINES_URL":       sb.PipelinesURL(),
		"CIOQ_LOG_FORMAT":                "json",
	}, "worker", "--admin-addr", admin, "--concurrency", "4", "--queues", "critical=2,default=1")
	p.waitStderr(`"msg":"worker started"`, 15*time.Second)

	prod := producer.NewFromRedis(db.Client)
	ctx := context.Background()
	if _, err := prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "user-1001"},
		Attributes: map[string]any{"total_revenue": 1000}}, producer.IdempotencyKey("signup:person-1001")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := sb.WaitFor(wctx, func(s *sandbox.Server) bool {
		pp, ok := s.Person("user-1001")
		return ok && pp.Attributes["total_revenue"] != nil
	}); err != nil {
		t.Fatalf("the sandbox never received the identify: %v", err)
	}
	eventually(t, "the delivery counted on /metrics", func() bool {
		_, body := get(t, "http://"+admin+"/metrics")
		return strings.Contains(body, `cioq_deliveries_total{outcome="delivered",type="cio:identify"} 1`)
	})
	if code, _ := get(t, "http://"+admin+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, body := get(t, "http://"+admin+"/readyz"); code != 200 {
		t.Errorf("/readyz %d before any auth problem: %s", code, body)
	}

	// A send needs the App API, which has no key: kept, logged, not ready.
	if _, err := prod.SendEmail(ctx, tasks.SendEmail{SendOptions: sendOpts("password_reset", "user-1001"), To: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	p.waitStderr("no credentials configured", 15*time.Second)
	if !strings.Contains(p.stderr.String(), `"api":"app"`) {
		t.Errorf("the credentials log does not name the API:\n%s", p.stderr.String())
	}
	eventually(t, "/readyz failing", func() bool {
		code, body := get(t, "http://"+admin+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "app API")
	})
	if n, _ := worker.NewDeadLetters(db.Client, nil).Count(ctx); n != 0 {
		t.Errorf("%d dead letters: a missing credential must not dead-letter", n)
	}
	if strings.Contains(p.stderr.String(), "ada@example.com") || strings.Contains(p.stderr.String(), sandbox.DefaultTrackAPIKey) ||
		strings.Contains(p.stderr.String(), "person-1001") {
		t.Errorf("the log leaks a payload or a key:\n%s", p.stderr.String())
	}

	if code := p.stop(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "worker stopped") {
		t.Errorf("no clean stop logged:\n%s", p.stderr.String())
	}
}

// serve answers health, metrics (with the dead letter count), the
// dashboard behind auth and the ingest front door, and drains a request
// in flight on SIGTERM before exiting 0.
func TestServe(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	seedDeadLetters(t, db, 3, genericDeadLetter)
	cfgPath := filepath.Join(t.TempDir(), "ingest.json")
	if err := os.WriteFile(cfgPath, []byte(`{"sources":[{"name":"web","kind":"segment","write_key_env":"TEST_WEB_KEY"}],
		"tokens":[{"name":"backend","token_env":"TEST_TASKS_TOKEN"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, map[string]string{
		"REDIS_URL":               db.URL(),
		"CIOQ_DASHBOARD_USER":     "admin",
		"CIOQ_DASHBOARD_PASSWORD": "s3cret",
		"CIOQ_INGEST_CONFIG":      cfgPath,
		"TEST_WEB_KEY":            "web-key",
		"TEST_TASKS_TOKEN":        "tasks-token",
	}, "serve", "--addr", addr)
	p.waitStderr("msg=serving", 15*time.Second)
	if !strings.Contains(p.stderr.String(), "ingest=on") {
		t.Errorf("ingest not on:\n%s", p.stderr.String())
	}

	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("/readyz %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz", "admin", "s3cret"); code != 200 || !strings.Contains(body, `"name":"redis","ok":true`) {
		t.Errorf("/readyz with the dashboard's credentials %d %s", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "\ncioq_dead_letters 3\n") || !strings.Contains(body, "cioq_queue_collector_up") {
		t.Errorf("/metrics %d lacks cioq_dead_letters 3:\n%s", code, body)
	}
	if code, _ := get(t, base+"/dashboard/"); code != http.StatusUnauthorized {
		t.Errorf("/dashboard/ without auth: %d", code)
	}
	if code, _ := get(t, base+"/dashboard/", "admin", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("/dashboard/ with a wrong password: %d", code)
	}
	if code, _ := get(t, base+"/dashboard/", "admin", "s3cret"); code != 200 {
		t.Errorf("/dashboard/ with auth: %d", code)
	}

	// The ingest front door at /.
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/tasks",
		strings.NewReader(`{"type":"cio:identify","payload":{"identifiers":{"id":"user-9"}},"idempotency_key":"ing-1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tasks-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /v1/tasks: %d", resp.StatusCode)
	}
	if _, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo("default", generatedTaskID(t, db, "ing-1")); err != nil {
		t.Errorf("the ingested task is not in Redis: %v", err)
	}

	// A request in flight when SIGINT arrives (the ingest handler still
	// reading the body of a slow client) is served to the end; then the
	// process exits 0. The request asks for "100 Continue", which Go's
	// server sends only when the handler first reads the body: once it has
	// arrived, the handler is reading, and the signal goes out.
	body = `{"type":"cio:identify","payload":{"identifiers":{"id":"user-10"}},"idempotency_key":"ing-inflight"}`
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/tasks HTTP/1.1\r\nHost: cioq\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer tasks-token\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	if status, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(status, "HTTP/1.1 100") {
		t.Fatalf("before the body: %q, %v", status, err)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q, %v", blank, err)
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.waitStderr("shutting down", 10*time.Second)
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("new connections still accepted while draining")
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 202") {
		t.Errorf("in-flight request: %q, %v", status, err)
	}
	if _, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo("default", generatedTaskID(t, db, "ing-inflight")); err != nil {
		t.Errorf("the in-flight request's task is not in Redis: %v", err)
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
}

// --no-auth serves the dashboard without credentials, with a warning;
// --queue-metrics=false leaves the queue collector out.
func TestServeNoAuth(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	addr := freeAddr(t)
	p := start(t, map[string]string{"REDIS_URL": db.URL()}, "serve", "--addr", addr, "--no-auth", "--read-only", "--queue-metrics=false")
	p.waitStderr("msg=serving", 15*time.Second)
	if !strings.Contains(p.stderr.String(), "WITHOUT authentication") {
		t.Errorf("no warning:\n%s", p.stderr.String())
	}
	if code, _ := get(t, fmt.Sprintf("http://%s/dashboard/", addr)); code != 200 {
		t.Errorf("/dashboard/ with --no-auth: %d", code)
	}
	if _, body := get(t, fmt.Sprintf("http://%s/metrics", addr)); strings.Contains(body, "cioq_dead_letters") {
		t.Error("--queue-metrics=false still serves cioq_dead_letters")
	}
	if code := p.stop(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// request sends one request to a running serve or demo with the given
// headers ("Host" sets the Host header) and returns its status.
func request(t *testing.T, method, url, user, pass string, headers ...string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// serve on a loopback address refuses dashboard requests under a Host
// name it does not expect (a DNS-rebinding page's), but for the names in
// CIOQ_DASHBOARD_ALLOWED_HOSTS; cross-site requests that change state
// are refused, and an origin in CIOQ_DASHBOARD_TRUSTED_ORIGINS passes
// where Host was rewritten. /metrics and /healthz are not the dashboard's.
func TestServeDashboardChecksHostAndOrigin(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, map[string]string{
		"REDIS_URL": db.URL(), "CIOQ_DASHBOARD_USER": "admin", "CIOQ_DASHBOARD_PASSWORD": "s3cret",
		"CIOQ_DASHBOARD_ALLOWED_HOSTS":   "cioq.test",
		"CIOQ_DASHBOARD_TRUSTED_ORIGINS": "https://cioq.example.com",
	}, "serve", "--addr", addr, "--queue-metrics=false")
	p.waitStderr("msg=serving", 15*time.Second)
	queues := base + "/dashboard/api/queues"
	for _, c := range []struct {
		host string
		want int
	}{
		{addr, 200}, {"localhost:8080", 200}, {"cioq.test", 200}, {"cioq.example.com", 200},
		{"evil.example", http.StatusMisdirectedRequest}, {"rebind.evil.example:8080", http.StatusMisdirectedRequest},
	} {
		if code := request(t, http.MethodGet, queues, "admin", "s3cret", "Host", c.host); code != c.want {
			t.Errorf("Host %s: %d, want %d", c.host, code, c.want)
		}
	}
	if code := request(t, http.MethodGet, base+"/healthz", "", "", "Host", "evil.example"); code != 200 {
		t.Errorf("/healthz under another Host: %d", code)
	}

	ac := asynq.NewClientFromRedisClient(db.Client)
	defer ac.Close()
	if _, err := ac.Enqueue(asynq.NewTask("cio:identify", []byte(`{}`)), asynq.Queue("default"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	pause := base + "/dashboard/api/queues/default:pause"
	if code := request(t, http.MethodPost, pause, "admin", "s3cret", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example",
		"Content-Type", "application/x-www-form-urlencoded"); code != http.StatusForbidden {
		t.Errorf("cross-site pause: %d, want 403", code)
	}
	if code := request(t, http.MethodPost, pause, "admin", "s3cret", "Sec-Fetch-Site", "same-origin", "Content-Type", "text/plain"); code != http.StatusUnsupportedMediaType {
		t.Errorf("same-origin text/plain pause: %d, want 415", code)
	}
	if code := request(t, http.MethodPost, pause, "admin", "s3cret", "Origin", "https://cioq.example.com"); code != http.StatusNoContent {
		t.Errorf("pause from the trusted origin: %d, want 204", code)
	}
	if qi, err := asynq.NewInspectorFromRedisClient(db.Client).GetQueueInfo("default"); err != nil || !qi.Paused {
		t.Errorf("queue after the trusted pause: %+v, %v", qi, err)
	}
	if code := p.stop(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// The host check is on where a rebinding page could drive the dashboard:
// loopback addresses (and --no-auth, and the demo).
func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:80": true, "[::1]:8080": true, "localhost:8080": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.5:8080": false, "cioq.internal:8080": false, "bad": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

// The sandbox subcommand prints its URLs and keys and stops on a signal.
func TestSandboxCommand(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	p := start(t, nil, "sandbox", "--addr", addr)
	eventually(t, "the sandbox's URLs", func() bool { return strings.Contains(p.stdout.String(), "CUSTOMERIO_PIPELINES_WRITE_KEY=") })
	out := p.stdout.String()
	for _, want := range []string{"CUSTOMERIO_TRACK_URL=http://" + addr + "/track", "CUSTOMERIO_APP_URL=http://" + addr + "/app",
		"CUSTOMERIO_PIPELINES_URL=http://" + addr + "/cdp/v1", "CUSTOMERIO_SITE_ID=" + sandbox.DefaultSiteID} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	info, err := sandbox.Remote{BaseURL: "http://" + addr}.Info(context.Background())
	if err != nil || info.SiteID != sandbox.DefaultSiteID {
		t.Errorf("control API: %+v, %v", info, err)
	}
	if code := p.stop(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// The demo (what `make run` runs) delivers every scenario to its sandbox,
// prints what arrived, shows the outbox (a committed order's confirmation
// delivered, a rolled-back one's never sent) and exits 0 on Ctrl-C.
func TestDemo(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	pg := testpg.New(t)
	addr := freeAddr(t)
	p := start(t, map[string]string{"REDIS_URL": db.URL(), "CIOQ_OUTBOX_URL": pg.URL}, "demo", "--addr", addr, "--sandbox-addr", freeAddr(t), "--timeout", "30s")
	eventually(t, "the demo to settle", func() bool { return strings.Contains(p.stdout.String(), "Press Ctrl-C to stop.") })
	out := p.stdout.String()
	for _, want := range []string{
		"14 of 14 scenarios delivered or refused as they should be.",
		"duplicate: not enqueued again",
		"user-1001  average_order_value=100 email=ada@example.com",
		"/pricing", "(anonymous anon-7f3a, merged on signup)",
		"email  password_reset       delivered", "email  order_confirmation   delivered", "email  welcome              bounced",
		// The contracts: a refused send naming the variable, coerced attributes.
		"Contracts: 3 template(s) pulled from the sandbox",
		`[1] refused   password reset without message_data.reset_link`,
		`nothing enqueued: contracts: message_data.reset_link: required by template "password_reset" (id 1), missing`,
		"user-1006  email=barbara@example.com", "total_revenue=1250",
		// The late anonymous event, rescued by the merge record.
		"[3] delivered late page view of anon-7f3a 6 minutes after the signup merge", "user-1004  page   /checkout",
		"Transactional deliveries (3):", // the order confirmation enqueued twice is sent once
		// What the sandbox's reporting webhooks said, through serve's receiver.
		"What became of each message", "  delivered  cio:send_email         password_reset", "  bounced    cio:send_email         welcome",
		"  delivered  cio:broadcast_trigger  broadcast:1", // its three messages' webhooks
		"welcome bounced: 550 5.1.1", "$ cioq status ", "bounced   webhook  email 550 5.1.1",
		"object 1/acme", "user-1001 → object 1/acme  role=admin",
		"segment 3: user-1001, user-1003",
		"broadcast 1", "identify userId user-1005", `"Order Completed"`,
		"http://" + addr + "/dashboard/", `(user "admin", password "demo")`, "/_sandbox/state",
		"Transactional outbox", "and its confirmation email in one transaction", "(payment declined)",
		"-1 once (1 send);", "-2: 0 sends, 1 of the 2 orders in the database",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if code, _ := get(t, "http://"+addr+"/dashboard/", "admin", "demo"); code != 200 {
		t.Errorf("dashboard with the demo credentials: %d", code)
	}
	// Its credentials are well known: a DNS-rebinding page's Host is refused.
	if code := request(t, http.MethodGet, "http://"+addr+"/dashboard/api/queues", "admin", "demo", "Host", "rebind.evil.example:8080"); code != http.StatusMisdirectedRequest {
		t.Errorf("demo dashboard under another Host: %d, want 421", code)
	}
	if code := request(t, http.MethodGet, "http://"+addr+"/dashboard/api/queues", "admin", "demo", "Host", "localhost:8080"); code != 200 {
		t.Errorf("demo dashboard as localhost: %d, want 200", code)
	}
	_, body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`cioq_deliveries_total{outcome="delivered",type="cio:send_email"} 4`,
		`cioq_contract_refusals_total{rule="required",workspace="default"} 1`,
		`cioq_contract_coercions_total{type="number",workspace="default"} 1`,
		`cioq_contract_coercions_total{type="timestamp",workspace="default"} 1`,
		`cioq_anonymous_rescued_total{type="cio:track_anonymous"} 1`,
		`cioq_message_outcomes_total{outcome="bounced",template="welcome",type="cio:send_email",workspace="default"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	p.cmd.Process.Signal(os.Interrupt)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after Ctrl-C; stderr:\n%s", code, p.stderr.String())
	}
}

// A second demo on the same Redis (`make run` twice on a machine whose
// Redis keeps its data) delivers every scenario again: the first run's
// merge of its anonymous visitor does not turn the second run's anonymous
// page views into user-1004's events.
func TestDemoAgain(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	for run := 1; run <= 2; run++ {
		addr := freeAddr(t)
		p := start(t, map[string]string{"REDIS_URL": db.URL()}, "demo", "--addr", addr, "--sandbox-addr", freeAddr(t), "--timeout", "30s")
		eventually(t, "the demo to settle", func() bool { return strings.Contains(p.stdout.String(), "Press Ctrl-C to stop.") })
		out := p.stdout.String()
		for _, want := range []string{"14 of 14 scenarios delivered or refused as they should be.", "[1] delivered anonymous page views of visitor anon-7f3a"} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d: demo output lacks %q:\n%s", run, want, out)
			}
		}
		p.cmd.Process.Signal(os.Interrupt)
		if code := p.wait(20 * time.Second); code != 0 {
			t.Fatalf("run %d: exit %d after Ctrl-C; stderr:\n%s", run, code, p.stderr.String())
		}
	}
}

// A worker started with a wrong App key answers 503 on /readyz before any
// task runs, naming the workspace and API (and no key); a new worker with
// the right key answers 200 and shows what each check found.
func TestWorkerReadyzProbesCredentials(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	sb := sandbox.NewTestServer(t)
	env := map[string]string{
		"REDIS_URL":                      db.URL(),
		"CUSTOMERIO_SITE_ID":             sandbox.DefaultSiteID,
		"CUSTOMERIO_TRACK_API_KEY":       sandbox.DefaultTrackAPIKey,
		"CUSTOMERIO_APP_API_KEY":         "wrong-app-key",
		"CUSTOMERIO_PIPELINES_WRITE_KEY": sandbox.DefaultPipelinesWriteKey,
		"CUSTOMERIO_TRACK_URL":           sb.TrackURL(),
		"CUSTOMERIO_APP_URL":             sb.AppURL(),
		"CUSTOMERIO_PIPELINES_URL":       sb.PipelinesURL(),
	}
	admin := freeAddr(t)
	p := start(t, env, "worker", "--admin-addr", admin)
	p.waitStderr("msg=\"worker started\"", 15*time.Second)
	var body string
	eventually(t, "/readyz failing for the App key", func() bool {
		var code int
		code, body = get(t, "http://"+admin+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"name":"customerio:default:app","ok":false`)
	})
	if !strings.Contains(body, `workspace \"default\" app API: credentials refused (401) by GET /v1/transactional`) ||
		!strings.Contains(body, `"name":"customerio:default:track","ok":true`) || strings.Contains(body, "wrong-app-key") {
		t.Errorf("/readyz body: %s", body)
	}
	if n := len(sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack, PathContains: "/customers/"})) + len(sb.Deliveries()); n != 0 {
		t.Errorf("%d deliveries before any task", n)
	}
	if code := p.stop(20 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	env["CUSTOMERIO_APP_API_KEY"] = sandbox.DefaultAppAPIKey
	admin = freeAddr(t)
	p = start(t, env, "worker", "--admin-addr", admin)
	p.waitStderr("msg=\"worker started\"", 15*time.Second)
	eventually(t, "/readyz 200 with both probes answered", func() bool {
		var code int
		code, body = get(t, "http://"+admin+"/readyz")
		return code == http.StatusOK && strings.Contains(body, "GET /v1/transactional accepted the credentials") &&
			strings.Contains(body, "GET /api/v1/accounts/region accepted the credentials")
	})
	if !strings.Contains(body, `"name":"customerio:default:pipelines","ok":true,"detail":"not probed`) || !strings.Contains(body, `"name":"kept_tasks","ok":true`) {
		t.Errorf("/readyz body: %s", body)
	}
	if code := p.stop(20 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// serve with the workers' workspaces file refuses to start when an ingest
// source names a workspace the file does not have, naming the source.
func TestServeRefusesSourceWithUnknownWorkspace(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	dir := t.TempDir()
	ing := filepath.Join(dir, "ingest.json")
	ws := filepath.Join(dir, "workspaces.json")
	if err := os.WriteFile(ing, []byte(`{"sources":[{"name":"web","kind":"segment","write_key":"wk","workspace":"eu-shpo"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ws, []byte(`{"workspaces":{"eu-shop":{"app_api_key_env":"EU_APP_KEY"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": db.URL(), "CIOQ_INGEST_CONFIG": ing, "CIOQ_WORKSPACES_FILE": ws}
	r := cli(t, env, "", "serve", "--no-auth", "--addr", freeAddr(t))
	if r.code != 2 || !strings.Contains(r.stderr, `sources[0] "web": workspace: "eu-shpo" is not a configured workspace (configured: default, eu-shop)`) {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
