package sandbox

import (
	"testing"
)

// TestMessages: a send to a bounce address is recorded bounced with a
// reason, another one delivered, and GET /v1/messages/{id} reports each in
// the shape of Customer.io's "Get a message".
func TestMessages(t *testing.T) {
	e := newEnv(t)
	ok := e.app("POST", "/v1/send/email", `{"transactional_message_id":"welcome","to":"ada@example.com","identifiers":{"id":"u1"}}`)
	bad := e.app("POST", "/v1/send/email", `{"transactional_message_id":"welcome","to":"Bounce <bounce@example.com>","identifiers":{"id":"u2"}}`)
	want(t, ok, 200, "")
	want(t, bad, 200, "")
	ds := e.r.Deliveries()
	if len(ds) != 2 || ds[0].Status != DeliveryDelivered || ds[1].Status != DeliveryBounced || ds[1].FailureMessage != BounceReason {
		t.Fatalf("deliveries %+v", ds)
	}
	m := e.app("GET", "/v1/messages/"+ds[0].DeliveryID, "").json(t)["message"].(map[string]any)
	metrics := m["metrics"].(map[string]any)
	if m["id"] != ds[0].DeliveryID || metrics["sent"] == nil || metrics["delivered"] == nil || m["failure_message"] != nil || m["type"] != "email" {
		t.Errorf("delivered message %v", m)
	}
	m = e.app("GET", "/v1/messages/"+ds[1].DeliveryID, "").json(t)["message"].(map[string]any)
	metrics = m["metrics"].(map[string]any)
	if metrics["bounced"] == nil || metrics["delivered"] != nil || m["failure_message"] != BounceReason {
		t.Errorf("bounced message %v", m)
	}
	want(t, e.app("GET", "/v1/messages/nope", ""), 404, "")
	want(t, e.call("GET", "/app/v1/messages/"+ds[0].DeliveryID, "", ""), 401, "")
}
