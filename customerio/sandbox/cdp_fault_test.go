package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestCDP(t *testing.T) {
	e := newEnv(t)
	// Auth: write key with empty password, both alphabets.
	want(t, e.call("POST", "/cdp/v1/identify", basic(DefaultPipelinesWriteKey, "x"), `{"userId":"u"}`), 401, `{"errors":[{"detail":"Unauthorized","status":"401"}]}`)
	want(t, e.call("POST", "/cdp/v1/identify", "", `{"userId":"u"}`), 401, "")
	want(t, e.call("POST", "/cdp/v1/identify", basicURL(DefaultPipelinesWriteKey, ""), `{"userId":"u1","traits":{"email":"u1@x.com","plan":"pro"}}`), 200, `{}`)
	p, ok := e.r.Person("u1")
	if !ok || p.Email != "u1@x.com" || p.Attributes["plan"] != "pro" {
		t.Fatalf("cdp identify %+v", p)
	}
	want(t, e.cdp("/track", `{"userId":"u1","event":"Bought","properties":{"sku":"a"},"messageId":"m1"}`), 200, `{}`)
	want(t, e.cdp("/track", `{"userId":"u1","event":"Bought","properties":{"sku":"a"},"messageId":"m1"}`), 200, `{}`) // dup messageId
	want(t, e.cdp("/page", `{"anonymousId":"an","name":"/home"}`), 200, `{}`)
	want(t, e.cdp("/group", `{"userId":"u1","groupId":"acme","traits":{"name":"Acme","objectTypeId":"2","relationshipAttributes":{"role":"owner"}}}`), 200, `{}`)
	// Permissive: invalid messages answer 200, stored, not applied.
	want(t, e.cdp("/track", `{"userId":"u1"}`), 200, `{}`)
	want(t, e.cdp("/alias", `not json`), 200, `{}`)
	// Strict mode validates.
	for _, tc := range []struct{ path, body, detail string }{
		{"/track", `{"userId":"u1"}`, "event is required"},
		{"/identify", `{"traits":{}}`, "userId or anonymousId is required"},
		{"/group", `{"userId":"u1"}`, "groupId is required"},
		{"/alias", `{"userId":"u1"}`, "userId and previousId are required"},
		{"/identify", `{"userId":"u1","pad":"` + strings.Repeat("x", MaxCDPMessageBytes) + `"}`, "message larger than 32000 bytes"},
		{"/batch", `{"batch":[{"userId":"u1"},{"type":"track","userId":"u1"}]}`, "batch[0]: type is required"},
	} {
		r := e.cdp(tc.path, tc.body, "X-Strict-Mode", "1")
		want(t, r, 400, "")
		if d := r.json(t)["errors"].([]any)[0].(map[string]any); d["detail"] != tc.detail || d["status"] != "400" {
			t.Fatalf("%s %s: %s", tc.path, tc.body, r.body)
		}
	}
	want(t, e.cdp("/track", `{"userId":"u1","event":"Strict ok"}`, "X-Strict-Mode", "1"), 200, `{}`)
	want(t, e.cdp("/batch", `{"batch":[{"type":"identify","userId":"u2"},{"type":"track","userId":"u2","event":"E"},{"type":"alias","userId":"u2","previousId":"an"}],"context":{"ip":"1.2.3.4"}}`), 200, `{}`)
	evs := e.r.Events("u1")
	if len(evs) != 2 || evs[0].Name != "Bought" || evs[0].Data["sku"] != "a" || evs[0].Source != "cdp" {
		t.Fatalf("u1 events %+v", evs)
	}
	if o, ok := e.r.Object("2", "acme"); !ok || o.Attributes["name"] != "Acme" {
		t.Fatalf("group object %+v", o)
	}
	if rel := e.r.Relationships("u1"); len(rel) != 1 || rel[0].Attributes["role"] != "owner" {
		t.Fatalf("group relationship %+v", rel)
	}
	// alias claimed the anonymous page view for u2.
	if evs := e.r.Events("u2"); len(evs) != 2 || evs[0].Type != "page" && evs[1].Type != "page" {
		t.Fatalf("u2 events %+v", evs)
	}
	msgs := e.r.CDPMessages()
	if len(msgs) != 10 {
		t.Fatalf("%d cdp messages", len(msgs))
	}
	if msgs[4].Applied || msgs[4].Problem != "event is required" || msgs[5].Raw != "not json" {
		t.Fatalf("permissive storage %+v %+v", msgs[4], msgs[5])
	}
	if msgs[7].Body["context"].(map[string]any)["ip"] != "1.2.3.4" {
		t.Fatal("batch context not applied to items")
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	identify := func() resp { return e.track("PUT", "/api/v1/customers/u", `{}`) }

	t.Run("next two 503", func(t *testing.T) {
		e.r.SetFault(GroupTrack, Fault{Status: 503, Times: 2})
		want(t, identify(), 503, `{"meta":{"error":"Service Unavailable"}}`)
		want(t, identify(), 503, "")
		want(t, identify(), 200, `{}`)
		if len(e.r.Faults()) != 0 {
			t.Fatal("fault not cleared after Times")
		}
	})
	t.Run("429 with body and Retry-After", func(t *testing.T) {
		e.r.SetFault(GroupApp, Fault{Status: 429, Body: `{"errors":[{"detail":"slow down","status":"429"}]}`, RetryAfter: "7", Times: 1})
		r := e.app("POST", "/v1/send/push", `{}`)
		want(t, r, 429, `{"errors":[{"detail":"slow down","status":"429"}]}`)
		if r.header.Get("Retry-After") != "7" {
			t.Fatal("Retry-After missing")
		}
	})
	t.Run("path prefix", func(t *testing.T) {
		e.r.SetFault(GroupTrack, Fault{Status: 500, PathPrefix: "/api/v1/customers/u/events"})
		want(t, identify(), 200, "")
		want(t, e.track("POST", "/api/v1/customers/u/events", `{"name":"x"}`), 500, "")
		e.r.ClearFault(GroupTrack)
		want(t, e.track("POST", "/api/v1/customers/u/events", `{"name":"x"}`), 200, "")
	})
	t.Run("rate", func(t *testing.T) {
		e.r.SetFault(GroupCDP, Fault{Status: 500, Rate: 0.5})
		n := 0
		for i := 0; i < 200; i++ {
			if e.cdp("/identify", `{"userId":"u"}`).status == 500 {
				n++
			}
		}
		e.r.ClearFaults()
		if n < 40 || n > 160 {
			t.Fatalf("%d of 200 affected at rate 0.5", n)
		}
	})
	t.Run("latency", func(t *testing.T) {
		e.r.SetFault(GroupTrack, Fault{Latency: 30 * time.Millisecond, Times: 1})
		start := time.Now()
		want(t, identify(), 200, `{}`)
		if time.Since(start) < 30*time.Millisecond {
			t.Fatal("no latency")
		}
	})
	t.Run("reset", func(t *testing.T) {
		e.r.SetFault(GroupTrack, Fault{Reset: true, Times: 1})
		req, _ := http.NewRequest("PUT", e.r.TrackURL()+"/api/v1/customers/u", strings.NewReader(`{}`))
		req.Header.Set("Authorization", e.trackAuth())
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			t.Fatalf("reset answered %d", res.StatusCode)
		}
		var ne net.Error
		if !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("want a network error, got %T: %v", err, err)
		}
		want(t, identify(), 200, "")
	})
	t.Run("hang until client timeout", func(t *testing.T) {
		e.r.SetFault(GroupTrack, Fault{Hang: true, Times: 1})
		c := &http.Client{Timeout: 100 * time.Millisecond}
		req, _ := http.NewRequest("PUT", e.r.TrackURL()+"/api/v1/customers/u", strings.NewReader(`{}`))
		req.Header.Set("Authorization", e.trackAuth())
		_, err := c.Do(req)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("want a client timeout, got %v", err)
		}
		// The hung handler returns once the client gave up and is recorded.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = e.r.WaitFor(ctx, func(s *Server) bool {
			return len(s.Requests(RequestFilter{PathContains: "/customers/u", Method: "PUT"})) > 0 &&
				s.Stats().ByStatus[0] >= 2 // the reset and the hang
		})
		if err != nil {
			t.Fatalf("hang never ended: %v %+v", err, e.r.Stats())
		}
		want(t, identify(), 200, "")
	})
}

func TestFaultsConcurrent(t *testing.T) {
	// Many concurrent requests with latency and a Times budget: exactly
	// Times of them fail, and latency does not serialise requests.
	e := newEnv(t, Config{AppRateLimit: -1})
	e.r.SetFault(GroupTrack, Fault{Latency: 50 * time.Millisecond})
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", e.r.TrackURL()+fmt.Sprintf("/api/v1/customers/c%d", i), strings.NewReader(`{}`))
			req.Header.Set("Authorization", e.trackAuth())
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}(i)
	}
	wg.Wait()
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Logf("20 parallel 50 ms requests took %v (latency should not serialise)", d)
	}
	if len(e.r.People()) != 20 {
		t.Fatalf("%d people", len(e.r.People()))
	}
	e.r.SetFault(GroupTrack, Fault{Status: 503, Times: 7})
	var mu sync.Mutex
	codes := map[int]int{}
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", e.r.TrackURL()+"/api/v1/customers/x", strings.NewReader(`{}`))
			req.Header.Set("Authorization", e.trackAuth())
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
				mu.Lock()
				codes[res.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[503] != 7 || codes[200] != 23 {
		t.Fatalf("codes %v", codes)
	}
}

func TestGroupHandlersStandalone(t *testing.T) {
	s := New(Config{})
	for _, tc := range []struct {
		h          http.Handler
		path, auth string
	}{
		{s.TrackHandler(), "/api/v1/customers/a%2Fb", basic(DefaultSiteID, DefaultTrackAPIKey)},
		{s.CDPHandler(), "/identify", basic(DefaultPipelinesWriteKey, "")},
	} {
		srv := httptest.NewServer(tc.h)
		method := "POST"
		body := `{"userId":"c"}`
		if strings.HasPrefix(tc.path, "/api") {
			method, body = "PUT", `{}`
		}
		req, _ := http.NewRequest(method, srv.URL+tc.path, strings.NewReader(body))
		req.Header.Set("Authorization", tc.auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: %v %v", tc.path, err, res)
		}
		res.Body.Close()
		srv.Close()
	}
	srv := httptest.NewServer(s.AppHandler())
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/campaigns/1/triggers", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+DefaultAppAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("app: %v %v", err, res)
	}
	res.Body.Close()
	if _, ok := s.Person("a/b"); !ok {
		t.Fatal("standalone track handler did not decode the path")
	}
	if reqs := s.Requests(RequestFilter{Group: GroupTrack}); len(reqs) != 1 || reqs[0].Path != "/api/v1/customers/a%2Fb" {
		t.Fatalf("recorded %+v", reqs)
	}
}
