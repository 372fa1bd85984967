package customerio

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// Test credentials. They are distinctive so a leak into an error text is
// easy to detect.
const (
	testSiteID    = "site-7f3a"
	testTrackKey  = "trackkey-SECRET-91b2"
	testAppKey    = "appkey-SECRET-55c1"
	testWriteKey  = "writekey-SECRET-0d4e"
	wantTrackAuth = "Basic c2l0ZS03ZjNhOnRyYWNra2V5LVNFQ1JFVC05MWIy" // base64("site-7f3a:trackkey-SECRET-91b2")
	wantAppAuth   = "Bearer appkey-SECRET-55c1"
	wantCDPAuth   = "Basic d3JpdGVrZXktU0VDUkVULTBkNGU6" // base64("writekey-SECRET-0d4e:")
)

// recorded is one request as the test server saw it.
type recorded struct {
	Method  string
	RawPath string // escaped path, as on the wire
	Path    string // decoded path
	Query   string
	Header  http.Header
	Body    string
}

// recorder is a test server that records requests and answers with a
// replaceable handler.
type recorder struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	handler http.HandlerFunc
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	reqs := r.requests()
	if len(reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	return reqs[len(reqs)-1]
}

func (r *recorder) setHandler(h http.HandlerFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handler = h
}

// respond returns a handler answering status with body (JSON content type
// when body starts with { or [).
func respond(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if len(body) > 0 && (body[0] == '{' || body[0] == '[') {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// newTestServer starts a recorder answering 200 {} by default.
func newTestServer(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{handler: respond(200, "{}")}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{
			Method: r.Method, RawPath: r.URL.EscapedPath(), Path: r.URL.Path, Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: string(body),
		})
		h := rec.handler
		rec.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(rec.Close)
	return rec
}

// testConfig points every API at srv with all credentials set.
func testConfig(srv *recorder) Config {
	return Config{
		SiteID: testSiteID, TrackAPIKey: testTrackKey, AppAPIKey: testAppKey, PipelinesWriteKey: testWriteKey,
		TrackURL: srv.URL, AppURL: srv.URL, PipelinesURL: srv.URL + "/v1",
	}
}

// setup returns a Client talking to a fresh recorder.
func setup(t *testing.T) (*Client, *recorder) {
	t.Helper()
	srv := newTestServer(t)
	c, err := New(testConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func testMethod(t *testing.T, r recorded, want string) {
	t.Helper()
	if r.Method != want {
		t.Errorf("method = %s, want %s", r.Method, want)
	}
}

func testRawPath(t *testing.T, r recorded, want string) {
	t.Helper()
	if r.RawPath != want {
		t.Errorf("path on the wire = %s, want %s", r.RawPath, want)
	}
}

func testQuery(t *testing.T, r recorded, want string) {
	t.Helper()
	if r.Query != want {
		t.Errorf("query = %q, want %q", r.Query, want)
	}
}

func testHeader(t *testing.T, r recorded, name, want string) {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Errorf("header %s = %q, want %q", name, got, want)
	}
}

// testBody compares the exact body bytes; want "" means no body and no
// Content-Type.
func testBody(t *testing.T, r recorded, want string) {
	t.Helper()
	if r.Body != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
	if want == "" {
		testHeader(t, r, "Content-Type", "")
	} else {
		testHeader(t, r, "Content-Type", "application/json")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func asAPIError(err error, target **APIError) bool { return errors.As(err, target) }
