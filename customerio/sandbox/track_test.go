package sandbox

import (
	"fmt"
	"strings"
	"testing"
)

func TestTrackAuth(t *testing.T) {
	e := newEnv(t, Config{SiteID: "s>?", TrackAPIKey: "k~~>"}) // chars whose base64 differs by alphabet
	std, url := basic("s>?", "k~~>"), basicURL("s>?", "k~~>")
	if std == url {
		t.Fatal("test credentials do not exercise both alphabets")
	}
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"standard", std, 200},
		{"url-safe", url, 200},
		{"missing", "", 401},
		{"wrong key", basic("s>?", "nope"), 401},
		{"bearer", "Bearer k~~>", 401},
		{"app key", "Bearer " + DefaultAppAPIKey, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("PUT", "/track/api/v1/customers/u1", tc.auth, `{"a":1}`)
			if tc.status == 401 {
				want(t, r, 401, `{"meta":{"error":"Unauthorized request"}}`)
				return
			}
			want(t, r, 200, `{}`)
		})
	}
	// Unauthenticated endpoints.
	want(t, e.call("POST", "/track/api/v1/metrics", "", `{"delivery_id":"d1","metric":"opened"}`), 200, "")
	want(t, e.call("POST", "/track/api/v1/push/events", "", `{"delivery_id":"d1","event":"opened"}`), 200, "")
	want(t, e.call("POST", "/track/push/events", "", `{"delivery_id":"d1","event":"delivered"}`), 200, "")
	want(t, e.call("POST", "/track/unsubscribe/d1", "", `{"unsubscribe":true}`), 200, "")
	if n := len(e.r.DeliveryEvents()); n != 4 {
		t.Fatalf("delivery events %d, want 4", n)
	}
}

func TestIdentifyPathEscaping(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("PUT", "/api/v1/customers/a+b@c.com%2Fx%20y", `{"created_at":1700000000}`), 200, `{}`)
	p, ok := e.r.Person("a+b@c.com/x y")
	if !ok || p.ID != "a+b@c.com/x y" || p.Attributes["created_at"] != int64(1700000000) {
		t.Fatalf("person %+v %v", p, ok)
	}
	reqs := e.r.Requests(RequestFilter{Group: GroupTrack})
	if len(reqs) != 1 || reqs[0].Path != "/track/api/v1/customers/a+b@c.com%2Fx%20y" {
		t.Fatalf("recorded %+v", reqs)
	}
	if _, leaked := reqs[0].Header["Authorization"]; leaked {
		t.Fatal("Authorization recorded")
	}
	// %40 and literal @ address the same id; + is never a space.
	want(t, e.track("PUT", "/api/v1/customers/a%2Bb%40c.com%2Fx%20y", `{"x":2}`), 200, `{}`)
	p, _ = e.r.Person("a+b@c.com/x y")
	if p.Attributes["x"] != int64(2) || len(e.r.People()) != 1 {
		t.Fatalf("%%-encoded path addressed someone else: %+v", e.r.People())
	}
	// cio_ refs address by cio_id and may change the id.
	want(t, e.track("PUT", "/api/v1/customers/cio_"+p.CioID, `{"id":"new-id","email":"A@B.com"}`), 200, `{}`)
	q, ok := e.r.Person("new-id")
	if !ok || q.CioID != p.CioID || q.Email != "A@B.com" {
		t.Fatalf("after cio_ update: %+v %v", q, ok)
	}
	if q2, ok := e.r.Person("a@b.com"); !ok || q2.CioID != p.CioID {
		t.Fatal("email lookup is not case-insensitive")
	}
	// Device token with a slash.
	want(t, e.track("PUT", "/api/v1/customers/new-id/devices", `{"device":{"id":"tok/1","platform":"ios","last_used":"1700000000"}}`), 200, `{}`)
	q, _ = e.r.Person("new-id")
	if len(q.Devices) != 1 || q.Devices[0].Token != "tok/1" || q.Devices[0].LastUsed != 1700000000 {
		t.Fatalf("devices %+v", q.Devices)
	}
	want(t, e.track("DELETE", "/api/v1/customers/new-id/devices/tok%2F1", ""), 200, `{}`)
	q, _ = e.r.Person("new-id")
	if len(q.Devices) != 0 {
		t.Fatalf("device not deleted: %+v", q.Devices)
	}
	// Unknown cio_ is dropped.
	want(t, e.track("PUT", "/api/v1/customers/cio_ffff", `{"a":1}`), 200, `{}`)
	if len(e.r.People()) != 1 {
		t.Fatal("unknown cio_id created a person")
	}
}

func TestIdentifyValidation(t *testing.T) {
	e := newEnv(t)
	many := map[string]any{}
	for i := 0; i < 301; i++ {
		many[fmt.Sprintf("a%d", i)] = i
	}
	long := strings.Repeat("x", 151)
	for _, tc := range []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"ok 300 attrs", "u1", mustJSON(func() map[string]any {
			m := map[string]any{}
			for i := 0; i < 300; i++ {
				m[fmt.Sprint("a", i)] = i
			}
			return m
		}()), 200, ""},
		{"301 attrs", "u1", mustJSON(many), 400, "cannot identify more than 300 attributes in one request"},
		{"long name", "u1", `{"` + long + `":1}`, 400, "attribute name cannot be longer than 150 bytes"},
		{"long value", "u1", `{"v":"` + strings.Repeat("y", 1001) + `"}`, 400, "value for attribute 'v' cannot be longer than 1000 bytes"},
		{"1000 value ok", "u1", `{"v":"` + strings.Repeat("y", 1000) + `"}`, 200, ""},
		{"long path id", long, `{}`, 400, "id attribute cannot be longer than 150 bytes"},
		{"id not string", "u1", `{"id":5}`, 400, "id attribute must be a string value"},
		{"id empty", "u1", `{"id":""}`, 400, "id attribute cannot be an empty string"},
		{"not object", "u1", `[1]`, 400, "request body must be a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.track("PUT", "/api/v1/customers/"+tc.path, tc.body)
			if tc.status == 200 {
				want(t, r, 200, `{}`)
				return
			}
			want(t, r, tc.status, mustJSON(map[string]any{"meta": map[string]any{"error": tc.msg}}))
		})
	}
}

func TestIdentifyUpdateOnlyAndAnonymousMerge(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("PUT", "/api/v1/customers/ghost", `{"_update":true,"a":1}`), 200, `{}`)
	if _, ok := e.r.Person("ghost"); ok {
		t.Fatal("_update created a person")
	}
	id1, id2 := "01HZY8J6E7W5S9Q3T2V1X0ABCD", "01HZY8J6E7W5S9Q3T2V1X0ABCE"
	want(t, e.track("POST", "/api/v1/events", `{"name":"viewed","anonymous_id":"anon1","id":"`+id1+`"}`), 200, `{}`)
	want(t, e.track("POST", "/api/v1/events", `{"name":"viewed2","anonymous_id":"anon1","type":"page","id":"`+id2+`"}`), 200, `{}`)
	if n := len(e.r.AnonymousEvents("anon1")); n != 2 {
		t.Fatalf("anon events %d", n)
	}
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"anonymous_id":"anon1"}`), 200, `{}`)
	if n := len(e.r.AnonymousEvents("anon1")); n != 0 {
		t.Fatalf("anon events left %d", n)
	}
	evs := e.r.Events("u1")
	if len(evs) != 2 || evs[1].Type != "page" || evs[0].AnonymousID != "anon1" {
		t.Fatalf("merged events %+v", evs)
	}
	// Later anonymous events for a claimed anonymous id go to the person.
	want(t, e.track("POST", "/api/v1/events", `{"name":"later","anonymous_id":"anon1"}`), 200, `{}`)
	if len(e.r.Events("u1")) != 3 {
		t.Fatal("anonymous event for a claimed id not attached")
	}
	// Invite events need data.recipient.
	want(t, e.track("POST", "/api/v1/events", `{"name":"invite","data":null}`), 400, `{"meta":{"error":"data.recipient is required for an event without anonymous_id"}}`)
	want(t, e.track("POST", "/api/v1/events", `{"name":"invite","data":{"recipient":"a@b.c"}}`), 200, `{}`)
	if len(e.r.AnonymousEvents("")) != 1 {
		t.Fatal("invite event not stored")
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	ulid := "01HZY8J6E7W5S9Q3T2V1X0ABCD"
	for _, tc := range []struct {
		name, body string
		status     int
		msg        string
	}{
		{"ok go sdk shape", `{"data":null,"id":"` + ulid + `","name":" ev ","timestamp":1700000000}`, 200, ""},
		{"duplicate id", `{"name":"ev","id":"` + ulid + `"}`, 200, ""},
		{"blank name", `{"name":"  "}`, 400, "event name must not be blank"},
		{"missing name", `{}`, 400, "event name must not be blank"},
		{"long name", `{"name":"` + strings.Repeat("n", 101) + `"}`, 400, "event name cannot be longer than 100 bytes"},
		{"data string", `{"name":"e","data":"x"}`, 400, "event data must be a hash"},
		{"data too big", `{"name":"e","data":{"x":"` + strings.Repeat("d", 100_000) + `"}}`, 400, "event data cannot be longer than 100000 bytes"},
		{"bad type", `{"name":"e","type":"click"}`, 400, "event type must be one of event, page or screen"},
		{"bad id", `{"name":"e","id":"not-a-ulid"}`, 400, "event id must be a ULID"},
		{"bad timestamp", `{"name":"e","timestamp":"yesterday"}`, 400, "timestamp must be an integer (unix seconds)"},
		{"screen", `{"name":"Home","type":"screen"}`, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.track("POST", "/api/v1/customers/u1/events", tc.body)
			if tc.status == 200 {
				want(t, r, 200, `{}`)
				return
			}
			want(t, r, tc.status, mustJSON(map[string]any{"meta": map[string]any{"error": tc.msg}}))
		})
	}
	evs := e.r.Events("u1")
	if len(evs) != 2 || evs[0].Name != "ev" || evs[0].Timestamp != 1700000000 || evs[0].ID != ulid || evs[1].Type != "screen" {
		t.Fatalf("events %+v", evs)
	}
}

// TestDeliveryMetricRefusals: the metrics and push events endpoints refuse
// a report without a delivery_id or with a name they do not know, each
// with its own message.
func TestDeliveryMetricRefusals(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ path, body, msg string }{
		{"/track/api/v1/metrics", `{"metric":"opened"}`, "delivery_id is required"},
		{"/track/api/v1/metrics", `{"delivery_id":"d1","metric":"exploded"}`,
			"metric must be one of bounced, clicked, converted, deferred, delivered, dropped, opened, spammed"},
		{"/track/api/v1/metrics", `[]`, "request body must be a JSON object"},
		{"/track/api/v1/push/events", `{"event":"opened"}`, "delivery_id is required"},
		{"/track/push/events", `{"delivery_id":"d1","event":"clicked"}`, "event must be opened, converted or delivered"},
	} {
		want(t, e.call("POST", c.path, "", c.body), 400, mustJSON(map[string]any{"meta": map[string]any{"error": c.msg}}))
	}
	want(t, e.call("POST", "/track/push/events", "", `{"delivery_id":"d1","event":"converted"}`), 200, `{}`)
	if evs := e.r.DeliveryEvents(); len(evs) != 1 || evs[0].Source != "push_events" || evs[0].Metric != "converted" {
		t.Fatalf("delivery events %+v", evs)
	}
}
