package sandbox

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBroadcasts(t *testing.T) {
	e := newEnv(t, Config{AppRateLimit: -1})
	want(t, e.app("POST", "/v1/campaigns/99/triggers", `{}`), 404, `{"errors":[{"detail":"broadcast with id 99 does not exist","status":"404"}]}`)
	want(t, e.app("POST", "/v1/campaigns/1/triggers", `{"data":null,"recipients":{}}`), 422, `{"errors":[{"detail":"empty recipients filter is not valid","status":"422"}]}`)
	ids := make([]string, 10001)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	for _, body := range []string{
		mustJSON(map[string]any{"ids": ids}),
		`{"ids":["a"],"emails":["b@x"]}`,
		`{"ids":["a"],"email_ignore_missing":true}`,
		`{"id_ignore_missing":true}`,
		`{"recipients":{"segment":{"id":"x"}}}`,
		`{"recipients":{"and":[{"attribute":{"field":"plan","operator":"gt","value":1}}]}}`,
		`{"recipients":{"or":[]}}`,
		`{"recipients":{"segment":{"id":1},"not":{"segment":{"id":2}}}}`,
		`{"per_user_data":[{"id":"a","email":"b@x"}]}`,
		`{"data_file_url":"ftp://x/y"}`,
		`{"data":"x"}`,
	} {
		r := e.app("POST", "/v1/campaigns/1/triggers", body)
		if r.status != 422 || !strings.Contains(r.body, `"status":"422"`) {
			t.Fatalf("%.80s: %d %s", body, r.status, r.body)
		}
	}
	want(t, e.app("PUT", "/v1/send/push", ""), 405, "")
	ok := `{"recipients":{"and":[{"segment":{"id":1}},{"not":{"attribute":{"field":"plan","operator":"eq","value":"free"}}},{"attribute":{"field":"x","operator":"exists"}}]},"data":{"a":1}}`
	r := e.app("POST", "/v1/campaigns/1/triggers", ok)
	want(t, r, 200, `{"id":1}`)
	r = e.app("POST", "/v1/campaigns/1/triggers", `{"ids":["u1"],"id_ignore_missing":true}`)
	want(t, r, 429, "")
	if r.header.Get("Retry-After") != "10" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	e.clock.Add(7500 * time.Millisecond)
	if ra := e.app("POST", "/v1/campaigns/1/triggers", `{}`).header.Get("Retry-After"); ra != "3" {
		t.Fatalf("Retry-After %q after 7.5 s", ra)
	}
	// Other broadcasts have their own interval.
	want(t, e.track("PUT", "/api/v1/customers/u1", `{}`), 200, "")
	want(t, e.app("POST", "/v1/campaigns/2/triggers", `{"ids":["u1","nobody"]}`), 200, `{"id":2}`)
	r = e.app("GET", "/v1/campaigns/2/triggers/2", "")
	want(t, r, 200, fmt.Sprintf(`{"broadcast_id":2,"created_at":%d,"id":2,"processed_at":%d}`, e.clock.Now().Unix(), e.clock.Now().Unix()))
	want(t, e.app("GET", "/v1/campaigns/2/triggers/2/errors", ""), 200, `{"errors":["line 2: no person with id \"nobody\""],"next":1}`)
	want(t, e.app("GET", "/v1/campaigns/2/triggers/2/errors?start=1&limit=5", ""), 200, `{"errors":[],"next":1}`)
	want(t, e.app("GET", "/v1/campaigns/2/triggers/1", ""), 404, "")
	want(t, e.app("GET", "/v1/campaigns/77/triggers/1", ""), 404, "")
	want(t, e.app("GET", "/v1/campaigns/x/triggers/1", ""), 400, "")
	if tr := e.r.Triggers(); len(tr) != 2 || tr[0].Shape != "recipients" || tr[1].Shape != "ids" {
		t.Fatalf("triggers %+v", tr)
	}
	if len(e.r.People()) != 1 {
		t.Fatal("a trigger created people")
	}
}

func TestBroadcastQueueLimit(t *testing.T) {
	e := newEnv(t, Config{AppRateLimit: -1, BroadcastInterval: time.Second, TriggerProcessingDelay: time.Hour})
	for i := 1; i <= 5; i++ {
		want(t, e.app("POST", "/v1/campaigns/3/triggers", `{}`), 200, fmt.Sprintf(`{"id":%d}`, i))
		e.clock.Add(time.Second)
	}
	r := e.app("POST", "/v1/campaigns/3/triggers", `{}`)
	want(t, r, 429, "")
	if ra := r.header.Get("Retry-After"); ra != "3595" {
		t.Fatalf("Retry-After %q", ra)
	}
	r = e.app("GET", "/v1/campaigns/3/triggers/1", "")
	if r.json(t)["processed_at"] != nil {
		t.Fatalf("processed too early: %s", r.body)
	}
	e.clock.Add(time.Hour)
	if e.app("GET", "/v1/campaigns/3/triggers/1", "").json(t)["processed_at"] == nil {
		t.Fatal("not processed after the delay")
	}
	want(t, e.app("POST", "/v1/campaigns/3/triggers", `{}`), 200, `{"id":6}`)
	want(t, e.app("GET", "/v1/broadcasts/3/triggers", ""), 200, "")
}
