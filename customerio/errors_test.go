package customerio

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func identify(ctx context.Context, c *Client) error {
	return c.Identify(ctx, "u1", map[string]any{"plan": "pro"})
}

// TestErrorShapes maps each status and documented body shape to the
// APIError's message, class and Retry-After.
func TestErrorShapes(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		wantMsg    string
		wantClass  Class
		wantRetry  time.Duration // approximate for HTTP dates
		wantText   string        // expected Error(), when given
	}{
		{"400 meta.error", 400, `{"meta":{"error":"event name must not be blank"}}`, "", "event name must not be blank", ClassPermanent, 0,
			"customerio: track identify: 400 Bad Request: event name must not be blank"},
		{"400 meta.errors", 400, `{"meta":{"errors":["platform must be one of: ios, android","device id missing"]}}`, "",
			"platform must be one of: ios, android; device id missing", ClassPermanent, 0, ""},
		{"400 v2 errors", 400, `{"errors":[{"reason":"invalid","field":"identifiers","message":"must have exactly one identifier"}]}`, "",
			"identifiers: must have exactly one identifier", ClassPermanent, 0, ""},
		{"401 unauthorized", 401, `{"meta":{"error":"Unauthorized request"}}`, "", "Unauthorized request", ClassAuth, 0,
			"customerio: track identify: 401 Unauthorized: Unauthorized request"},
		{"403 forbidden", 403, `{"meta":{"error":"Forbidden file type xyz for attachment"}}`, "", "Forbidden file type xyz for attachment", ClassPermanent, 0, ""},
		{"404 plain text", 404, "Segment not found", "", "Segment not found", ClassPermanent, 0, ""},
		{"404 json string", 404, `"Segment not found"`, "", "Segment not found", ClassPermanent, 0, ""},
		{"404 json:api", 404, `{"errors":[{"detail":"broadcast with id 1 does not exist","status":"404"}]}`, "",
			"broadcast with id 1 does not exist", ClassPermanent, 0, ""},
		{"408 timeout", 408, "", "", "", ClassTransient, 0, "customerio: track identify: 408 Request Timeout"},
		{"413 too large", 413, `{"meta":{"error":"Total attachment size exceeds the limit"}}`, "", "Total attachment size exceeds the limit", ClassPermanent, 0, ""},
		{"422 json:api", 422, `{"errors":[{"detail":"empty recipients filter is not valid","source":{"pointer":"/data/attributes/recipients"},"status":"422"}]}`, "",
			"empty recipients filter is not valid", ClassPermanent, 0, ""},
		{"429 retry seconds", 429, `{"errors":[{"detail":"rate limited to 10 requests per 1s (reference a1b2c3)","status":"429"}]}`, "7",
			"rate limited to 10 requests per 1s (reference a1b2c3)", ClassTransient, 7 * time.Second,
			"customerio: track identify: 429 Too Many Requests: rate limited to 10 requests per 1s (reference a1b2c3) (retry after 7s)"},
		{"429 retry http date", 429, "", httpDate, "", ClassTransient, 90 * time.Second, ""},
		{"429 retry garbage", 429, "", "soon", "", ClassTransient, 0, ""},
		{"500", 500, "Internal Server Error", "", "Internal Server Error", ClassTransient, 0, ""},
		{"502 html", 502, "<html><body>Bad   Gateway</body></html>", "", "<html><body>Bad Gateway</body></html>", ClassTransient, 0, ""},
		{"503 retry", 503, `{"error":"maintenance"}`, "30", "maintenance", ClassTransient, 30 * time.Second, ""},
		{"522", 522, "", "", "", ClassTransient, 0, "customerio: track identify: 522"},
		{"524", 524, "", "", "", ClassTransient, 0, ""},
		{"301 redirect not followed", 301, "", "", "", ClassAuth, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := setup(t)
			srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == 301 {
					w.Header().Set("Location", "https://elsewhere.invalid/api")
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			err := identify(context.Background(), c)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if ae.StatusCode != tt.status || ae.API != APITrack || ae.Operation != "identify" {
				t.Errorf("status/api/op = %d/%s/%s", ae.StatusCode, ae.API, ae.Operation)
			}
			if ae.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", ae.Message, tt.wantMsg)
			}
			if ae.Class != tt.wantClass || ClassOf(err) != tt.wantClass {
				t.Errorf("Class = %v, want %v", ae.Class, tt.wantClass)
			}
			if d := ae.RetryAfter - tt.wantRetry; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("RetryAfter = %v, want about %v", ae.RetryAfter, tt.wantRetry)
			}
			if tt.wantText != "" && err.Error() != tt.wantText {
				t.Errorf("Error() = %q\nwant      %q", err.Error(), tt.wantText)
			}
			if n := len(srv.requests()); n != 1 {
				t.Errorf("%d requests, want exactly 1 (no retries inside)", n)
			}
		})
	}
}

// hijack returns a handler that takes the connection and ends it: with a
// reset (SO_LINGER 0) or a plain close, before any response.
func hijack(reset bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	}
}

func TestNetworkErrors(t *testing.T) {
	const id = "net-person-4242/x"
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"connection reset", hijack(true)},
		{"connection closed", hijack(false)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := setup(t)
			srv.setHandler(tt.handler)
			err := c.Delete(context.Background(), id)
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 0 || ae.Class != ClassTransient || ae.Err == nil {
				t.Fatalf("err = %#v", err)
			}
			assertClean(t, err, "net-person-4242", srv.URL, "/api/v1/")
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := newTestServer(t)
		cfg := testConfig(srv)
		srv.Close()
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Delete(context.Background(), id)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Class != ClassTransient {
			t.Fatalf("err = %v", err)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			t.Errorf("error chain still holds a URL")
		}
		assertClean(t, err, "net-person-4242", "/api/v1/")
	})
}

// hang returns a handler that answers only when the client gives up.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestTimeout(t *testing.T) {
	t.Run("config timeout", func(t *testing.T) {
		srv := newTestServer(t)
		srv.setHandler(hang)
		cfg := testConfig(srv)
		cfg.Timeout = 100 * time.Millisecond
		c, _ := New(cfg)
		start := time.Now()
		err := c.Track(context.Background(), "timeout-person-77", Event{Name: "e"})
		if time.Since(start) > 5*time.Second {
			t.Errorf("took %v", time.Since(start))
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Class != ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		assertClean(t, err, "timeout-person-77", "/api/v1/")
	})
	t.Run("shorter caller deadline wins", func(t *testing.T) {
		c, srv := setup(t) // default 10s timeout
		srv.setHandler(hang)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := identify(ctx, c)
		if time.Since(start) > 5*time.Second || ClassOf(err) != ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
	})
	t.Run("slow body", func(t *testing.T) {
		// The 200 arrived, the body did not: the request was accepted.
		// A call that needs no body has succeeded; a send, whose delivery
		// id is lost, reports that (never a transient error: a retry
		// would send it again).
		srv := newTestServer(t)
		srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "{")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		cfg := testConfig(srv)
		cfg.Timeout = 100 * time.Millisecond
		c, _ := New(cfg)
		if err := identify(context.Background(), c); err != nil {
			t.Fatalf("identify: err = %v, want nil (a 200 is accepted)", err)
		}
		_, err := c.SendEmail(context.Background(), &SendEmailRequest{To: "slow-body@example.com"})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Class != ClassPermanent || ae.StatusCode != 200 ||
			!errors.Is(err, ErrUnreadableResponse) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("send: err = %v, want a permanent 200 wrapping ErrUnreadableResponse and the deadline", err)
		}
		assertClean(t, err, "slow-body@example.com")
	})
}

// TestMissingCredentials: ClassAuth, ErrMissingCredentials, no request.
func TestMissingCredentials(t *testing.T) {
	srv := newTestServer(t)
	full := testConfig(srv)
	calls := []struct {
		name string
		cfg  func(*Config)
		call func(context.Context, *Client) error
	}{
		{"track without key", func(c *Config) { c.TrackAPIKey = "" }, identify},
		{"track without site", func(c *Config) { c.SiteID = "" }, func(ctx context.Context, c *Client) error {
			_, err := c.Batch(ctx, []Operation{{Type: EntityPerson, Action: ActionDelete, Identifiers: person("u1")}})
			return err
		}},
		{"app without key", func(c *Config) { c.AppAPIKey = "" }, func(ctx context.Context, c *Client) error {
			_, err := c.TriggerStatus(ctx, 1, 2)
			return err
		}},
		{"pipelines without key", func(c *Config) { c.PipelinesWriteKey = "" }, func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, CallIdentify, PipelinesMessage{UserID: "u1"})
		}},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			cfg := full
			tt.cfg(&cfg)
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.call(context.Background(), c)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Class != ClassAuth || ae.StatusCode != 0 || !errors.Is(err, ErrMissingCredentials) || ClassOf(err) != ClassAuth {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests made, want 0", n)
	}
}

// assertClean fails when err's text contains any of the given strings.
func assertClean(t *testing.T, err error, forbidden ...string) {
	t.Helper()
	s := err.Error()
	for _, f := range forbidden {
		if f != "" && strings.Contains(s, f) {
			t.Errorf("error text contains %q: %s", f, s)
		}
	}
}

// TestNoLeaks: a server that echoes the credentials, the path and the body
// back as its error message, in every documented shape. No error text may
// contain a key, the email, the person id or the message data.
func TestNoLeaks(t *testing.T) {
	const (
		email = "jane.doe+vip@example.com"
		pid   = "person/8675 309+x"
		data  = "reset-code-918273"
		other = "Ms Secretname"
	)
	forbidden := []string{testTrackKey, testAppKey, testWriteKey, strings.TrimPrefix(wantTrackAuth, "Basic "),
		strings.TrimPrefix(wantCDPAuth, "Basic "), email, "jane.doe", pid, "8675", "person%2F8675", data, "Secretname"}
	shapes := []func(echo string) string{
		func(e string) string { return jsonString(map[string]any{"meta": map[string]any{"error": e}}) },
		func(e string) string {
			return jsonString(map[string]any{"meta": map[string]any{"errors": []string{e}}})
		},
		func(e string) string {
			return jsonString(map[string]any{"errors": []any{map[string]any{"detail": e, "status": "422"}}})
		},
		func(e string) string {
			return jsonString(map[string]any{"errors": []any{map[string]any{"reason": e, "field": "x", "message": e}}})
		},
		func(e string) string { return e },
	}
	calls := []func(context.Context, *Client) error{
		func(ctx context.Context, c *Client) error {
			return c.Identify(ctx, pid, map[string]any{"email": email, "note": data, "name": other})
		},
		func(ctx context.Context, c *Client) error {
			return c.Track(ctx, pid, Event{Name: "reset", Data: map[string]any{"code": data, "to": email}})
		},
		func(ctx context.Context, c *Client) error { return c.Track(ctx, email, Event{Name: "reset"}) },
		func(ctx context.Context, c *Client) error { return c.DeleteDevice(ctx, pid, data) },
		func(ctx context.Context, c *Client) error {
			return c.MergeCustomers(ctx, Identifiers{Email: email}, Identifiers{ID: pid})
		},
		func(ctx context.Context, c *Client) error {
			return c.AddToSegment(ctx, 3, IDTypeEmail, []string{email, pid})
		},
		func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionIdentify, Identifiers: &Identifiers{Email: email},
				Attributes: map[string]any{"code": data, "id": pid}})
		},
		func(ctx context.Context, c *Client) error {
			_, err := c.Batch(ctx, []Operation{{Type: EntityPerson, Action: ActionEvent, Identifiers: person(pid), Name: "e",
				Attributes: map[string]any{"code": data, "email": email}}})
			return err
		},
		func(ctx context.Context, c *Client) error {
			_, err := c.SendEmail(ctx, &SendEmailRequest{SendOptions: SendOptions{TransactionalMessageID: "reset",
				Identifiers: person(pid), MessageData: map[string]any{"code": data, "name": other}}, To: email})
			return err
		},
		func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 9, &TriggerBroadcastRequest{PerUserData: []PerUserData{{Email: email, Data: map[string]any{"code": data}}, {ID: pid}}})
			return err
		},
		func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, CallIdentify, PipelinesMessage{UserID: pid, Traits: map[string]any{"email": email, "code": data}})
		},
	}
	for si, shape := range shapes {
		for _, status := range []int{400, 401, 422, 503} {
			c, srv := setup(t)
			srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				echo := r.Header.Get("Authorization") + " " + r.URL.EscapedPath() + " " + r.URL.Path + " " + r.URL.RawQuery + " " + string(b)
				w.WriteHeader(status)
				_, _ = io.WriteString(w, shape(echo))
			})
			for ci, call := range calls {
				err := call(context.Background(), c)
				if err == nil {
					t.Fatalf("shape %d status %d call %d: no error", si, status, ci)
				}
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != status {
					t.Fatalf("shape %d call %d: err = %v", si, ci, err)
				}
				s := err.Error()
				for _, f := range forbidden {
					if strings.Contains(s, f) {
						t.Errorf("shape %d status %d call %d: error text contains %q: %s", si, status, ci, f, s)
					}
				}
			}
		}
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestBatchItemsScrubbedUnder207(t *testing.T) {
	c, srv := setup(t)
	srv.setHandler(respond(207, `{"errors":[{"batch_index":0,"reason":"invalid","message":"no person u-1234567 (a@b.example.org)"}]}`))
	res, err := c.Batch(context.Background(), []Operation{{Type: EntityPerson, Action: ActionDelete, Identifiers: person("u-1234567")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.ItemError(0).Message; got != "no person [redacted] ([email])" {
		t.Errorf("Message = %q", got)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"bad region", Config{Region: "ap"}, "Config.Region"},
		{"bad track url", Config{TrackURL: "track.example.com"}, "Config.TrackURL"},
		{"bad app url", Config{AppURL: "ftp://x"}, "Config.AppURL"},
		{"pipelines url with userinfo", Config{PipelinesURL: "https://user:pw@cdp.example.com/v1"}, "Config.PipelinesURL"},
		{"negative timeout", Config{Timeout: -1}, "Config.Timeout"},
	} {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.field) || strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: err = %v, want it to name %s", tt.name, err, tt.field)
		}
	}
	for _, tt := range []struct {
		region               Region
		track, app, pipeline string
	}{
		{"", "https://track.customer.io", "https://api.customer.io", "https://cdp.customer.io/v1"},
		{RegionUS, "https://track.customer.io", "https://api.customer.io", "https://cdp.customer.io/v1"},
		{RegionEU, "https://track-eu.customer.io", "https://api-eu.customer.io", "https://cdp-eu.customer.io/v1"},
	} {
		c, err := New(Config{Region: tt.region})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.endpoints[APITrack].base.String(); got != tt.track {
			t.Errorf("%q track = %s", tt.region, got)
		}
		if got := c.endpoints[APIApp].base.String(); got != tt.app {
			t.Errorf("%q app = %s", tt.region, got)
		}
		if got := c.endpoints[APIPipelines].base.String(); got != tt.pipeline {
			t.Errorf("%q pipelines = %s", tt.region, got)
		}
	}
	c, _ := New(Config{TrackURL: "http://127.0.0.1:9/prefix/"})
	if got := c.endpoints[APITrack].base.String(); got != "http://127.0.0.1:9/prefix" {
		t.Errorf("override = %s", got)
	}
	if c.timeout != DefaultTimeout {
		t.Errorf("timeout = %v", c.timeout)
	}
}

// TestBaseURLWithPath: a base path is kept in front of the API path.
func TestBaseURLWithPath(t *testing.T) {
	srv := newTestServer(t)
	cfg := testConfig(srv)
	cfg.TrackURL = srv.URL + "/proxy/cio"
	c, _ := New(cfg)
	if err := c.Delete(context.Background(), "a/b"); err != nil {
		t.Fatal(err)
	}
	testRawPath(t, srv.last(t), "/proxy/cio/api/v1/customers/a%2Fb")
}

// TestConnectionReuse: sequential calls share one connection, also after
// error responses with bodies.
func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 0 {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, strings.Repeat("x", 4096))
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, _ := New(Config{SiteID: "s", TrackAPIKey: "k", TrackURL: srv.URL})
	for i := 0; i < 10; i++ {
		_ = identify(context.Background(), c)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 sequential calls, want 1", n)
	}
}

// TestResponseCap: a huge error body is read only up to 1 MiB and the
// message is short.
func TestResponseCap(t *testing.T) {
	c, srv := setup(t)
	srv.setHandler(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(500)
		chunk := strings.Repeat("y", 64<<10)
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	err := identify(context.Background(), c)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 || len(ae.Message) > maxMessageBytes+len("…") {
		t.Fatalf("err = %.200v", err)
	}
}

func TestClassOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want Class
	}{
		{&APIError{Class: ClassAuth}, ClassAuth},
		{&ValidationError{Field: "x"}, ClassPermanent},
		{ErrMissingCredentials, ClassAuth},
		{context.DeadlineExceeded, ClassTransient},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, ClassTransient},
		{errors.Join(errors.New("wrapped"), &APIError{Class: ClassPermanent}), ClassPermanent},
	} {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("ClassOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if ClassTransient.String() != "transient" || ClassAuth.String() != "auth" || ClassPermanent.String() != "permanent" {
		t.Error("Class.String")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-5":                            0,
		"120":                           2 * time.Minute,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
		"tomorrow":                      0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestUnreadableSuccess: a 2xx whose body is not the documented JSON is a
// permanent error (the send may have happened; a retry could duplicate it).
func TestUnreadableSuccess(t *testing.T) {
	c, srv := setup(t)
	srv.setHandler(respond(200, "<html>ok</html>"))
	_, err := c.SendSMS(context.Background(), &SendSMSRequest{SendOptions: SendOptions{TransactionalMessageID: "3", Identifiers: person("u1")}, To: "+15555550100"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 200 || ae.Class != ClassPermanent || !errors.Is(err, ErrUnreadableResponse) {
		t.Fatalf("err = %v", err)
	}
}

// TestBatchUnattributed: a batch answer whose errors cannot be pinned on
// items is an error with the answer's status, never a result that blames
// item 0 (a missing batch_index) or acknowledges every item (an index past
// the batch).
func TestBatchUnattributed(t *testing.T) {
	ops := []Operation{
		{Type: EntityPerson, Action: ActionDelete, Identifiers: person("u1")},
		{Type: EntityPerson, Action: ActionDelete, Identifiers: person("u2")},
	}
	for _, tt := range []struct {
		name       string
		status     int
		body       string
		unreadable bool
	}{
		{"missing batch_index", 207, `{"errors":[{"reason":"invalid","message":"bad"}]}`, false},
		{"missing batch_index under 200", 200, `{"errors":[{"reason":"invalid","message":"bad"}]}`, false},
		{"batch_index past the batch", 207, `{"errors":[{"batch_index":2,"reason":"invalid"}]}`, false},
		{"negative batch_index", 207, `{"errors":[{"batch_index":-1,"reason":"invalid"}]}`, false},
		{"one good one missing", 207, `{"errors":[{"batch_index":1,"reason":"invalid"},{"reason":"invalid"}]}`, false},
		{"batch_index not a number", 207, `{"errors":[{"batch_index":"1","reason":"invalid"}]}`, true},
		{"207 not JSON", 207, `<html>oops</html>`, true},
		{"207 without errors", 207, `{}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := setup(t)
			srv.setHandler(respond(tt.status, tt.body))
			res, err := c.Batch(context.Background(), ops)
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tt.status || ae.Class != ClassPermanent || errors.Is(err, ErrUnreadableResponse) != tt.unreadable {
				t.Fatalf("res %+v, err = %v; want a permanent %d (unreadable %v)", res, err, tt.status, tt.unreadable)
			}
		})
	}
	t.Run("body cut after 200", func(t *testing.T) {
		c, srv := setup(t)
		srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"errors":[`)
		})
		_, err := c.Batch(context.Background(), ops)
		if ClassOf(err) != ClassPermanent || !errors.Is(err, ErrUnreadableResponse) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestNetworkErrorTimeout(t *testing.T) {
	srv := newTestServer(t)
	srv.setHandler(hang)
	cfg := testConfig(srv)
	cfg.Timeout = 50 * time.Millisecond
	c, _ := New(cfg)
	err := identify(context.Background(), c)
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Errorf("err = %v, want a Timeout() error in the chain", err)
	}
}
