package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a hand-stepped clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	r     *Running
	clock *clock
}

func newEnv(t *testing.T, cfg ...Config) *env {
	t.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	ck := newClock()
	if c.Now == nil {
		c.Now = ck.Now
	}
	return &env{t: t, r: NewTestServer(t, c), clock: ck}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func basicURL(user, pass string) string {
	return "Basic " + base64.URLEncoding.EncodeToString([]byte(user+":"+pass))
}

func (e *env) trackAuth() string { return basic(DefaultSiteID, DefaultTrackAPIKey) }
func (e *env) appAuth() string   { return "Bearer " + DefaultAppAPIKey }
func (e *env) cdpAuth() string   { return basic(DefaultPipelinesWriteKey, "") }

// call sends a raw request; path is appended to the root URL as is (so it
// may carry escapes).
func (e *env) call(method, path, auth, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.r.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

func (e *env) track(method, path, body string) resp {
	e.t.Helper()
	return e.call(method, "/track"+path, e.trackAuth(), body)
}

func (e *env) app(method, path, body string) resp {
	e.t.Helper()
	return e.call(method, "/app"+path, e.appAuth(), body)
}

func (e *env) cdp(path, body string, hdr ...string) resp {
	e.t.Helper()
	return e.call("POST", "/cdp/v1"+path, e.cdpAuth(), body, hdr...)
}

func want(t *testing.T, r resp, status int, body string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if body != "" && strings.TrimSpace(r.body) != body {
		t.Fatalf("body %s, want %s", r.body, body)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
