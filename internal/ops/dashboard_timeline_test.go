package ops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// TestDashboardTimelinePage: a password reset a real worker delivers to
// the sandbox (reporting webhooks on, to a real receiver) has its timeline
// on the dashboard's page, fetched through the real handler on a real
// HTTP server: 200 with the states cioq status shows and no email unless
// payloads are shown; an unknown task is 404; the key form answers 303 to
// the task's page (same origin) and 403 cross-site; asynqmon's pages carry
// the link to it, and the page needs the dashboard's credentials.
func TestDashboardTimelinePage(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	store := status.NewStore(db.Client, status.Options{})

	rc, err := status.NewReceiver(status.ReceiverConfig{Store: store, SigningKeys: map[string]string{"": "wh-key"}})
	if err != nil {
		t.Fatal(err)
	}
	hooksMux := http.NewServeMux()
	rc.Mount(hooksMux)
	hooks := httptest.NewServer(hooksMux)
	t.Cleanup(hooks.Close)
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, Webhooks: sandbox.Webhooks{URL: hooks.URL + status.WebhookPath, SigningKey: "wh-key"}})
	sbs := httptest.NewServer(sb)
	t.Cleanup(func() { sbs.Close(); sb.Close() })

	w, err := worker.New(worker.Config{Redis: db.ConnOpt(), Workspaces: map[string]customerio.Config{"": testsupport.SandboxConfig(sbs.URL)},
		Concurrency: 2, Logger: testsupport.Logger(), ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)

	prod := producer.NewFromRedis(db.Client)
	const key = "reset:person-7731"
	r, err := prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome",
		Identifiers: &customerio.Identifiers{ID: "person-7731"}}, To: leakEmail}, producer.IdempotencyKey(key))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the send delivered and reported", func() bool {
		tl, err := store.Lookup(ctx, r.TaskID, status.LookupOptions{})
		return err == nil && tl.State == status.MetricDelivered
	})

	resolve := func(ctx context.Context, k string) (string, error) { return prod.TaskIDForKey(ctx, k) }
	serve := func(show bool) *httptest.Server {
		h := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), Username: "ops", Password: "s3cret",
			ShowPayloads: show, Timelines: store, TaskIDForKey: resolve})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	srv := serve(false)
	page := "/dashboard/timeline?task=" + url.QueryEscape(r.TaskID)

	code, body := call(t, srv, http.MethodGet, page, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", page, code, body)
	}
	for _, want := range []string{r.TaskID, "delivered (final)", "cio:send_email", ">enqueued<", ">accepted<", ">sent<", ">delivered<", "webhook", "delivery:sbx_"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, leakEmail) || strings.Contains(body, "person-7731") {
		t.Errorf("the redacted page shows the recipient:\n%s", body)
	}
	if strings.Contains(body, "<script") {
		t.Errorf("the page has a script")
	}
	_, shown := call(t, serve(true), http.MethodGet, page, "")
	if !strings.Contains(shown, leakEmail) {
		t.Errorf("with payloads shown, the recipient is missing:\n%s", shown)
	}

	// The same headers as the rest of the dashboard, and its credentials.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+page, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: %d", resp.StatusCode)
	}
	req.SetBasicAuth("ops", "s3cret")
	if resp, err = srv.Client().Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self' 'sha256-") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", resp.Header)
	}

	if code, body := call(t, srv, http.MethodGet, "/dashboard/timeline?task=no-such-task", ""); code != http.StatusNotFound || !strings.Contains(body, "No task no-such-task") {
		t.Errorf("unknown task: %d %s", code, body)
	}

	// The key form: a same-origin POST is redirected to the task's page;
	// the key never appears in the URL.
	noRedirect := srv.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	post := func(headers ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dashboard/timeline", strings.NewReader(url.Values{"key": {key}}.Encode()))
		req.SetBasicAuth("ops", "s3cret")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp = post("Sec-Fetch-Site", "same-origin", "Origin", srv.URL)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != page || strings.Contains(loc, "7731") {
		t.Errorf("same-origin POST: %d Location %q, want 303 %s", resp.StatusCode, loc, page)
	}
	for name, h := range crossSite {
		if resp := post(h...); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST (%s): %d, want 403", name, resp.StatusCode)
		}
	}

	// asynqmon's pages link to it, and keep their own scripts allowed.
	code, index := call(t, srv, http.MethodGet, "/dashboard/queues/critical", "")
	if code != http.StatusOK || !strings.Contains(index, `id="cioq-timeline-link" href="/dashboard/timeline"`) || !strings.Contains(index, `<div id="root">`) {
		t.Errorf("asynqmon's page: %d, no timeline link:\n%.600s", code, index)
	}
}

// TestDashboardTimelineKeyUnknown: without a key secret in Redis no task
// has a key; the form answers 404 at once, and an empty key 400.
func TestDashboardTimelineKeyUnknown(t *testing.T) {
	db := testredis.New(t)
	h := newTestDashboard(t, DashboardOptions{RedisConnOpt: db.ConnOpt(), AllowNoAuth: true, Timelines: status.NewStore(db.Client, status.Options{}),
		TaskIDForKey: func(context.Context, string) (string, error) { return "", ErrNoSuchKey }})
	for _, c := range []struct {
		form string
		want int
	}{{"key=order%3A1", http.StatusNotFound}, {"key=", http.StatusBadRequest}} {
		req := httptest.NewRequest(http.MethodPost, "/dashboard/timeline", strings.NewReader(c.form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || !strings.Contains(rec.Body.String(), `id="problem"`) {
			t.Errorf("POST %s = %d %s, want %d", c.form, rec.Code, rec.Body.String(), c.want)
		}
	}
	if resp := do(t, h, http.MethodGet, "/dashboard/timeline", "", ""); resp.status != http.StatusOK || !strings.Contains(resp.body, `name="key"`) {
		t.Errorf("the form: %d %s", resp.status, resp.body)
	}
}
