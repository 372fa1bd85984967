package sandbox

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAppAuth(t *testing.T) {
	e := newEnv(t)
	body := `{"transactional_message_id":"3","identifiers":{"id":"x"},"to":"a@b.c"}`
	for _, tc := range []struct {
		name string
		hdr  []string
		ok   bool
	}{
		{"bearer", []string{"Authorization", "Bearer " + DefaultAppAPIKey}, true},
		{"service token", []string{"Authorization", "Bearer " + DefaultServiceToken, "X-Workspace-Id", "1"}, true},
		{"service token no workspace", []string{"Authorization", "Bearer " + DefaultServiceToken}, false},
		{"service token wrong workspace", []string{"Authorization", "Bearer " + DefaultServiceToken, "X-Workspace-Id", "2"}, false},
		{"track key", []string{"Authorization", basic(DefaultSiteID, DefaultTrackAPIKey)}, false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("POST", "/app/v1/send/email", "", body, tc.hdr...)
			if tc.ok {
				want(t, r, 200, "")
				return
			}
			want(t, r, 401, `{"meta":{"error":"Unauthorized"}}`)
		})
	}
	// The service token is for sends only.
	r := e.call("POST", "/app/v1/campaigns/1/triggers", "", `{}`, "Authorization", "Bearer "+DefaultServiceToken, "X-Workspace-Id", "1")
	want(t, r, 401, "")
}

func TestSends(t *testing.T) {
	e := newEnv(t, Config{AppRateLimit: -1})
	b64 := base64.StdEncoding.EncodeToString([]byte("hello"))
	many := strings.TrimSuffix(strings.Repeat("a@x.com,", 10), ",")
	five := strings.TrimSuffix(strings.Repeat("c@x.com,", 6), ",")
	in90 := e.clock.Now().Add(89 * 24 * time.Hour).Unix()
	in91 := e.clock.Now().Add(91 * 24 * time.Hour).Unix()
	for _, tc := range []struct {
		name, channel, body string
		status              int
		msg                 string
	}{
		{"email go sdk", "email", `{"transactional_message_id":"3","identifiers":{"id":"x"},"to":"a@b.c","headers":{"X-Tag":"t"}}`, 200, ""},
		{"email no identifiers", "email", `{"transactional_message_id":3,"identifiers":null,"to":"a@b.c","headers":"{\"X-Tag\":\"t\"}"}`, 200, ""},
		{"email no to", "email", `{"transactional_message_id":3,"identifiers":{"id":"x"}}`, 400, "to is required"},
		{"two identifiers", "email", `{"transactional_message_id":3,"identifiers":{"id":"x","email":"a@b.c"},"to":"a@b.c"}`, 400, "identifiers must contain exactly one of id, email or cio_id"},
		{"16 recipients", "email", fmt.Sprintf(`{"to":%q,"cc":%q,"transactional_message_id":1}`, many, five), 400, "too many recipients: at most 15 across to, cc and bcc"},
		{"15 recipients", "email", fmt.Sprintf(`{"to":%q,"bcc":"c@x.com,d@x.com,e@x.com,f@x.com,g@x.com","transactional_message_id":1}`, many), 200, ""},
		{"attachment", "email", `{"to":"a@b.c","transactional_message_id":1,"attachments":{"a.txt":"` + b64 + `"}}`, 200, ""},
		{"attachment not base64", "email", `{"to":"a@b.c","transactional_message_id":1,"attachments":{"a.txt":"%%%"}}`, 400, `Attachment must be base64 encoded: "a.txt"`},
		{"attachment no extension", "email", `{"to":"a@b.c","transactional_message_id":1,"attachments":{"readme":"` + b64 + `"}}`, 400, `Attachment file name must have an extension: "readme"`},
		{"attachment too big", "email", `{"to":"a@b.c","transactional_message_id":1,"attachments":{"a.bin":"` + base64.StdEncoding.EncodeToString(make([]byte, 3<<19)) + `","b.bin":"` + base64.StdEncoding.EncodeToString(make([]byte, 3<<19)) + `"}}`, 413, "Total attachment size exceeds the limit"},
		{"bad headers", "email", `{"to":"a@b.c","transactional_message_id":1,"headers":"nope"}`, 400, "headers must be an object or a JSON string"},
		{"send_at 89 days", "push", fmt.Sprintf(`{"transactional_message_id":1,"identifiers":{"id":"x"},"send_at":%d}`, in90), 200, ""},
		{"send_at 91 days", "push", fmt.Sprintf(`{"transactional_message_id":1,"identifiers":{"id":"x"},"send_at":%d}`, in91), 400, "send_at cannot be more than 90 days in the future"},
		{"push no template", "push", `{"identifiers":{"id":"x"}}`, 400, "transactional_message_id is required"},
		{"push no identifiers", "push", `{"transactional_message_id":1}`, 400, "identifiers is required"},
		{"push bad template", "push", `{"transactional_message_id":1.5,"identifiers":{"id":"x"}}`, 400, "transactional_message_id must be an integer id or a trigger name"},
		{"sms", "sms", `{"transactional_message_id":"welcome","identifiers":{"email":"s@x.com"},"to":"+15551234567"}`, 200, ""},
		{"sms no to", "sms", `{"transactional_message_id":1,"identifiers":{"id":"x"}}`, 400, "to is required"},
		{"whatsapp no to", "whatsapp", `{"transactional_message_id":1,"identifiers":{"id":"x"}}`, 400, "to is required"},
		{"in_app", "in_app", `{"transactional_message_id":1,"identifiers":{"cio_id":"nope"},"message_data":{"a":1}}`, 200, ""},
		{"inbox", "inbox_message", `{"transactional_message_id":1,"identifiers":{"id":"x"}}`, 200, ""},
		{"not json", "inbox_message", `nope`, 400, "request body is not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.app("POST", "/v1/send/"+tc.channel, tc.body)
			if tc.status != 200 {
				want(t, r, tc.status, mustJSON(map[string]any{"meta": map[string]any{"error": tc.msg}}))
				return
			}
			want(t, r, 200, "")
			m := r.json(t)
			if id, _ := m["delivery_id"].(string); id == "" || m["queued_at"] != float64(e.clock.Now().Unix()) {
				t.Fatalf("response %s", r.body)
			}
			if strings.Contains(tc.body, "send_at") && m["send_at"] != float64(in90) {
				t.Fatalf("send_at not echoed: %s", r.body)
			}
		})
	}
	ds := e.r.Deliveries()
	if len(ds) != 8 {
		t.Fatalf("%d deliveries", len(ds))
	}
	if d := ds[0]; d.Channel != "email" || d.TransactionalMessageID != "3" || d.Identifiers["id"] != "x" || d.To != "a@b.c" || d.PersonCioID == "" {
		t.Fatalf("delivery %+v", d)
	}
	if _, ok := e.r.Person("x"); !ok {
		t.Fatal("send did not create the person")
	}
	if _, ok := e.r.Person("s@x.com"); !ok {
		t.Fatal("sms send did not create the person by email")
	}
	// Unsubscribe through a known delivery marks the person.
	want(t, e.call("POST", "/track/unsubscribe/"+ds[0].DeliveryID, "", `{"unsubscribe":true}`), 200, `{}`)
	if p, _ := e.r.Person("x"); p.Attributes["unsubscribed"] != true {
		t.Fatal("unsubscribe did not mark the person")
	}
}

func TestAppRateLimit(t *testing.T) {
	e := newEnv(t)
	// The App API's 10 req/s: the 11th call within a second gets a 429.
	status := "/v1/campaigns/1/triggers/1"
	for i := 0; i < 10; i++ {
		want(t, e.app("GET", status, ""), 404, "")
		e.clock.Add(50 * time.Millisecond) // 10 calls within 0.5 s
	}
	r := e.app("GET", status, "")
	want(t, r, 429, "")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	d := r.json(t)["errors"].([]any)[0].(map[string]any)
	if d["status"] != "429" || !strings.HasPrefix(d["detail"].(string), "rate limited to 10 requests per 1s (reference ") {
		t.Fatalf("429 body %s", r.body)
	}
	// Transactional sends have their own limit (100/s): not affected.
	body := `{"transactional_message_id":1,"identifiers":{"id":"x"}}`
	for i := 0; i < 20; i++ {
		want(t, e.app("POST", "/v1/send/push", body), 200, "")
	}
	e.clock.Add(501 * time.Millisecond) // the first call leaves the window
	want(t, e.app("GET", status, ""), 404, "")
	want(t, e.app("GET", status, ""), 429, "")
	if s := e.r.Stats(); s.TooManyRequests != 2 || s.ByGroupStatusClass[GroupApp]["4xx"] != 13 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTransactionalRateLimit(t *testing.T) {
	e := newEnv(t, Config{TransactionalRateLimit: 3})
	body := `{"transactional_message_id":1,"identifiers":{"id":"x"}}`
	for i := 0; i < 3; i++ {
		want(t, e.app("POST", "/v1/send/push", body), 200, "")
	}
	r := e.app("POST", "/v1/send/push", body)
	want(t, r, 429, "")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Another key is not affected; a service token counts separately.
	r = e.call("POST", "/app/v1/send/push", "", body, "Authorization", "Bearer "+DefaultServiceToken, "X-Workspace-Id", "1")
	want(t, r, 200, "")
	// Nor is the rest of the App API.
	want(t, e.app("GET", "/v1/campaigns/1/triggers/1", ""), 404, "")
	e.clock.Add(1001 * time.Millisecond)
	want(t, e.app("POST", "/v1/send/push", body), 200, "")
}

func TestTrackRateLimit(t *testing.T) {
	e := newEnv(t, Config{TrackRateLimit: 2})
	want(t, e.track("PUT", "/api/v1/customers/a", `{}`), 200, "")
	want(t, e.track("PUT", "/api/v1/customers/a", `{}`), 200, "")
	r := e.track("PUT", "/api/v1/customers/a", `{}`)
	want(t, r, 429, `{"meta":{"error":"rate limited"}}`)
	if r.header.Get("Retry-After") != "1" {
		t.Fatal("no Retry-After")
	}
	e.clock.Add(time.Second)
	want(t, e.track("PUT", "/api/v1/customers/a", `{}`), 200, "")
}

// TestTrackRateWindow: TrackRateLimit counts in TrackRateWindow (3 per
// 3 s here): a fourth request within 3 s of the first is refused, one 3 s
// after the first is not.
func TestTrackRateWindow(t *testing.T) {
	e := newEnv(t, Config{TrackRateLimit: 3, TrackRateWindow: 3 * time.Second})
	for i := 0; i < 3; i++ {
		want(t, e.track("PUT", "/api/v1/customers/a", `{}`), 200, "")
		e.clock.Add(time.Second)
	}
	e.clock.Add(-10 * time.Millisecond) // 2.99 s after the first
	want(t, e.track("PUT", "/api/v1/customers/a", `{}`), 429, "")
	e.clock.Add(10 * time.Millisecond)
	want(t, e.track("PUT", "/api/v1/customers/a", `{}`), 200, "")
}

func TestTransactionalList(t *testing.T) {
	e := newEnv(t)
	r := e.app("GET", "/v1/transactional", "")
	want(t, r, 200, "")
	msgs := r.json(t)["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("default messages: %s", r.body)
	}
	m := msgs[0].(map[string]any)
	for _, k := range []string{"id", "name", "description", "send_to_unsubscribed", "link_tracking", "open_tracking", "hide_message_body", "queue_drafts", "created_at", "updated_at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("message lacks %q: %s", k, r.body)
		}
	}
	if m["id"] != float64(1) || m["name"] != "password_reset" {
		t.Errorf("first message %v", m)
	}
	// App auth: a wrong key, the Track credentials or a service token get 401.
	want(t, e.call("GET", "/app/v1/transactional", "Bearer wrong", ""), 401, `{"meta":{"error":"Unauthorized"}}`)
	want(t, e.call("GET", "/app/v1/transactional", basic(DefaultSiteID, DefaultTrackAPIKey), ""), 401, "")
	want(t, e.call("GET", "/app/v1/transactional", "", "", "Authorization", "Bearer "+DefaultServiceToken, "X-Workspace-Id", "1"), 401, "")

	// A configured list, and an empty one.
	e = newEnv(t, Config{TransactionalMessages: []TransactionalMessage{{ID: 7, Name: "welcome"}}})
	want(t, e.app("GET", "/v1/transactional", ""), 200, "")
	if msgs := e.app("GET", "/v1/transactional", "").json(t)["messages"].([]any); len(msgs) != 1 || msgs[0].(map[string]any)["name"] != "welcome" {
		t.Errorf("configured list: %v", msgs)
	}
	e = newEnv(t, Config{TransactionalMessages: []TransactionalMessage{}})
	want(t, e.app("GET", "/v1/transactional", ""), 200, `{"messages":[]}`)
}

// The transactional list is an App API read: it counts against the App
// API's 10 requests per second.
func TestTransactionalListRateLimited(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 10; i++ {
		want(t, e.app("GET", "/v1/transactional", ""), 200, "")
	}
	want(t, e.app("GET", "/v1/transactional", ""), 429, "")
}
