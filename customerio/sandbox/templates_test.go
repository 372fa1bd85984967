package sandbox

import (
	"strings"
	"testing"
	"time"
)

// TestTemplatesRender: a send whose message_data lacks a variable its
// template uses is accepted (200 with a delivery_id, as Customer.io does)
// and its delivery is marked failed with the reason, visible in
// /_sandbox/deliveries; one carrying everything is sent; a default filter,
// a conditional and an empty loop need nothing.
func TestTemplatesRender(t *testing.T) {
	e := newEnv(t)
	r := e.app("POST", "/v1/send/email", `{"transactional_message_id":"password_reset","to":"a@example.com","identifiers":{"id":"u1"}}`)
	want(t, r, 200, "")
	if r.json(t)["delivery_id"] == "" {
		t.Fatal("no delivery_id")
	}
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":1,"to":"a@example.com","identifiers":{"id":"u1"},"message_data":{"reset_link":"https://x"}}`), 200, "")
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":"Order_Confirmation","to":"a@example.com","identifiers":{"id":"u2"},"message_data":{"order_id":"O-1","total":3,"items":[{"name":"a","quantity":1,"price":3},{"name":"b","quantity":1}]}}`), 200, "")
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":2,"to":"a@example.com","identifiers":{"id":"u2"},"message_data":{"order_id":"O-2","total":0,"items":[]}}`), 200, "")
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":"unknown","to":"a@example.com","identifiers":{"id":"u3"}}`), 200, "")

	ds := e.r.Deliveries()
	type st struct{ status, failure string }
	var got []st
	for _, d := range ds {
		got = append(got, st{d.Status, d.FailureMessage})
	}
	wantStates := []struct{ status, failureHas string }{
		{DeliveryFailed, "undefined variable in {{ trigger.reset_link }}"},
		{DeliveryDelivered, ""},
		{DeliveryFailed, "undefined variable in {{ item.price }}"},
		{DeliveryDelivered, ""},
		{DeliveryDelivered, ""}, // an id the sandbox does not know: not rendered (Config.CheckTemplates is off)
	}
	if len(got) != len(wantStates) {
		t.Fatalf("deliveries %+v", got)
	}
	for i, w := range wantStates {
		if got[i].status != w.status || !strings.Contains(got[i].failure, w.failureHas) || (w.failureHas == "") != (got[i].failure == "") {
			t.Errorf("delivery %d: %+v, want %s with %q", i, got[i], w.status, w.failureHas)
		}
	}
	if ds[0].TemplateID != 1 || ds[2].TemplateID != 2 || ds[4].TemplateID != 0 {
		t.Errorf("template ids %d %d %d", ds[0].TemplateID, ds[2].TemplateID, ds[4].TemplateID)
	}
	// The control API shows them.
	r = e.call("GET", "/_sandbox/deliveries", "", "")
	if !strings.Contains(r.body, `"status":"failed"`) || !strings.Contains(r.body, `"failure_message":"Liquid error: undefined variable in {{ trigger.reset_link }}`) {
		t.Errorf("/_sandbox/deliveries: %s", r.body)
	}
}

// TestTemplatesUnknownID: with CheckTemplates, a send naming no template
// is answered as Customer.io answers it, 400 "transactional_message_id"
// not found, and nothing is recorded.
func TestTemplatesUnknownID(t *testing.T) {
	e := newEnv(t, Config{CheckTemplates: true})
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":99,"to":"a@example.com","identifiers":{"id":"u"}}`),
		400, `{"meta":{"error":"\"transactional_message_id\" not found"}}`)
	want(t, e.app("POST", "/v1/send/push", `{"transactional_message_id":"welcome","identifiers":{"id":"u"}}`), 400, "")
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":"PASSWORD_RESET","to":"a@example.com","identifiers":{"id":"u"},"message_data":{"reset_link":"x"}}`), 200, "")
	// An email with its own body names no template.
	want(t, e.app("POST", "/v1/send/email", `{"to":"a@example.com","identifiers":{"id":"u"},"from":"x@example.com","subject":"s","body":"b"}`), 200, "")
	if n := len(e.r.Deliveries()); n != 2 {
		t.Errorf("%d deliveries recorded, want 2", n)
	}
}

// TestTransactionalContents: GET /v1/transactional/{id}/contents serves
// each message's content variants with Customer.io's field names; 404 for
// an unknown id.
func TestTransactionalContents(t *testing.T) {
	e := newEnv(t)
	r := e.app("GET", "/v1/transactional/2/contents", "")
	want(t, r, 200, "")
	cs := r.json(t)["contents"].([]any)
	c := cs[0].(map[string]any)
	for _, k := range []string{"id", "name", "type", "language", "subject", "body", "preheader_text"} {
		if _, ok := c[k]; !ok {
			t.Errorf("content lacks %q: %s", k, r.body)
		}
	}
	if c["type"] != "email" || !strings.Contains(c["body"].(string), "{% for item in trigger.items %}") {
		t.Errorf("content %v", c)
	}
	want(t, e.app("GET", "/v1/transactional/9/contents", ""), 404, `{"errors":[{"detail":"transactional message not found","status":"404"}]}`)
	want(t, e.call("GET", "/app/v1/transactional/1/contents", "Bearer wrong", ""), 401, "")
}

// TestAnonymousMergeWindow: the anonymous events of an anonymous_id are
// associated with the person who was identified with it only when they
// arrive up to five minutes after that identify (Track v1, Track v2,
// Pipelines); later ones stay anonymous, marked orphaned, until another
// identify carries the id again.
func TestAnonymousMergeWindow(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"anonymous_id":"a1"}`), 200, "")
	e.clock.Add(5 * time.Minute)
	want(t, e.track("POST", "/api/v1/events", `{"anonymous_id":"a1","name":"at_five_minutes"}`), 200, "")
	e.clock.Add(time.Second)
	want(t, e.track("POST", "/api/v1/events", `{"anonymous_id":"a1","name":"late_v1"}`), 200, "")
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"event","identifiers":{"anonymous_id":"a1"},"name":"late_v2"}`), 200, "")
	want(t, e.cdp("/track", `{"anonymousId":"a1","event":"late_cdp"}`), 200, "")

	if evs := e.r.Events("u1"); len(evs) != 1 || evs[0].Name != "at_five_minutes" {
		t.Fatalf("person's events %+v, want only the one within five minutes", evs)
	}
	anon := e.r.AnonymousEvents("a1")
	if len(anon) != 3 {
		t.Fatalf("anonymous events %+v", anon)
	}
	for _, ev := range anon {
		if !ev.Orphaned {
			t.Errorf("%s not marked orphaned", ev.Name)
		}
	}
	// Identifying with the id again associates them (and opens a new window).
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"anonymous_id":"a1"}`), 200, "")
	if evs := e.r.Events("u1"); len(evs) != 4 || evs[1].Orphaned {
		t.Errorf("after a new identify: %+v", evs)
	}

	// A negative window is the old behaviour: always merged.
	e = newEnv(t, Config{AnonymousMergeWindow: -1})
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"anonymous_id":"a1"}`), 200, "")
	e.clock.Add(24 * time.Hour)
	want(t, e.track("POST", "/api/v1/events", `{"anonymous_id":"a1","name":"a day later"}`), 200, "")
	if evs := e.r.Events("u1"); len(evs) != 1 {
		t.Errorf("events %+v", evs)
	}
}
