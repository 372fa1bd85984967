package ops

import (
	"encoding/json"
	"strings"
	"testing"
)

func envelope(payload string) []byte {
	return []byte(`{"v":1,"workspace":"eu-main","expires_at":1767225600,"enqueued_at":1767222000,"payload":` + payload + `}`)
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		hidden  []string // must not appear
		visible []string // must still appear
	}{
		{
			name: "send_email",
			in: envelope(`{"transactional_message_id":"password_reset","to":"jane@example.com","identifiers":{"id":"user-42"},` +
				`"message_data":{"reset_link":"https://example.com/r/secret-token"},"attachments":{"invoice.pdf":"SGVsbG8gd29ybGQ="},` +
				`"from":"Support <support@shop.test>","bcc":"audit@shop.test","subject":"Hi Jane"}`),
			hidden:  []string{"jane@example.com", "user-42", "secret-token", "SGVsbG8gd29ybGQ", "support@shop.test", "audit@shop.test", "Hi Jane"},
			visible: []string{`"transactional_message_id":"password_reset"`, `"workspace":"eu-main"`, `"reset_link":"[redacted]"`, `"invoice.pdf":"[16 bytes dropped]"`, `"v":1`, `"enqueued_at":1767222000`},
		},
		{
			name:    "idempotency key in the envelope",
			in:      []byte(`{"v":1,"enqueued_at":1767222000,"idempotency_key":"welcome:user-7731","payload":{"identifiers":{"id":"user-7731"}}}`),
			hidden:  []string{"welcome:user-7731", "user-7731"},
			visible: []string{`"idempotency_key":"[redacted]"`, `"enqueued_at":1767222000`},
		},
		{
			name:    "identify",
			in:      envelope(`{"identifiers":{"email":"jane@example.com"},"attributes":{"plan":"pro","nested":{"a":"b"}}}`),
			hidden:  []string{"jane@example.com", `"pro"`, `"b"`},
			visible: []string{`"identifiers":{"email":"[redacted]"}`, `"plan":"[redacted]"`, `"nested":"[redacted]"`},
		},
		{
			name:    "track",
			in:      envelope(`{"identifiers":{"id":"user-42"},"name":"purchase","id":"01JABCDEF","data":{"total":59.98}}`),
			hidden:  []string{"user-42", "59.98"},
			visible: []string{`"name":"purchase"`, `"id":"01JABCDEF"`, `"total":"[redacted]"`},
		},
		{
			name:    "track_anonymous",
			in:      envelope(`{"anonymous_id":"anon-1","name":"page_viewed","data":{"url":"/x"}}`),
			hidden:  []string{"anon-1", "/x"},
			visible: []string{`"name":"page_viewed"`},
		},
		{
			name:    "merge_people",
			in:      envelope(`{"primary":{"id":"a-person"},"secondary":{"email":"b@x.com"}}`),
			hidden:  []string{"a-person", "b@x.com"},
			visible: []string{`"primary":{"id":"[redacted]"}`, `"secondary":{"email":"[redacted]"}`},
		},
		{
			name:    "segment_add",
			in:      envelope(`{"segment_id":3,"ids":["user-1","user-2"]}`),
			hidden:  []string{"user-1", "user-2"},
			visible: []string{`"segment_id":3`, `"ids":["[redacted]","[redacted]"]`},
		},
		{
			name:    "relate",
			in:      envelope(`{"identifiers":{"id":"u-person"},"object_type_id":"1","object_id":"acme","relationship_attributes":{"role":"admin"}}`),
			hidden:  []string{"u-person", "admin"},
			visible: []string{`"object_type_id":"1"`, `"object_id":"acme"`, `"role":"[redacted]"`},
		},
		{
			name:    "object identifiers keep the type",
			in:      envelope(`{"identifiers":{"object_type_id":"2","object_id":"acme"},"attributes":{"name":"Acme"}}`),
			hidden:  []string{"Acme"},
			visible: []string{`"object_type_id":"2"`},
		},
		{
			name: "broadcast_trigger",
			in: envelope(`{"broadcast_id":7,"emails":["a@b.co"],"per_user_data":[{"id":"u-one","data":{"k":"v-secret"}},{"email":"c@d.co","data":{}}],` +
				`"data":{"headline":"Sale"}}`),
			hidden:  []string{"a@b.co", "u-one", "v-secret", "c@d.co", "Sale"},
			visible: []string{`"broadcast_id":7`, `"headline":"[redacted]"`},
		},
		{
			name: "cdp track",
			in: envelope(`{"userId":"user-42","anonymousId":"anon-9","event":"Order Completed","messageId":"m-1",` +
				`"properties":{"revenue":10},"context":{"ip":"203.0.113.9","userAgent":"Mozilla"},"traits":{"email":"x@y.io"}}`),
			hidden:  []string{"user-42", "anon-9", "203.0.113.9", "Mozilla", "x@y.io"},
			visible: []string{`"event":"Order Completed"`, `"messageId":"m-1"`, `"ip":"[redacted]"`},
		},
		{
			name:    "bare payload, email in an unknown field",
			in:      []byte(`{"name":"signup","note":"call jane@example.com or jane%40example.com"}`),
			hidden:  []string{"jane@example.com", "jane%40example.com"},
			visible: []string{`"name":"signup"`, `"note":"call [redacted] or [redacted]"`},
		},
		{
			name:    "garbage",
			in:      []byte("\x00\x01jane@example.com"),
			hidden:  []string{"jane@example.com"},
			visible: []string{"[18 bytes, not JSON]"},
		},
		{
			name:    "trailing garbage",
			in:      []byte(`{"a":1} jane@example.com`),
			hidden:  []string{"jane@example.com"},
			visible: []string{"not JSON"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.in)
			for _, h := range tt.hidden {
				if strings.Contains(got, h) {
					t.Errorf("Redact kept %q:\n%s", h, got)
				}
			}
			for _, v := range tt.visible {
				if !strings.Contains(got, v) {
					t.Errorf("Redact lost %q:\n%s", v, got)
				}
			}
			if !strings.Contains(got, "not JSON") && !json.Valid([]byte(got)) {
				t.Errorf("Redact output is not JSON: %s", got)
			}
		})
	}
	if got := Redact(nil); got != "" {
		t.Errorf("Redact(nil) = %q, want empty", got)
	}
}

func TestRedactSecretsScrubErrors(t *testing.T) {
	_, secrets := redact(envelope(`{"identifiers":{"id":"user-leak-42"},"name":"purchase"}`))
	got := scrubWith("customer.io: 400 for person user-leak-42 <leak-test@example.com>", secrets)
	if strings.Contains(got, "user-leak-42") || strings.Contains(got, "leak-test@example.com") {
		t.Fatalf("scrubWith kept a secret: %s", got)
	}
	if !strings.Contains(got, "customer.io: 400 for person") {
		t.Fatalf("scrubWith lost the message: %s", got)
	}
}
