package tasks_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cioq/cioq/tasks"
)

// Every documented example passes DecodeStrict as written, and with one
// field added (top level, and inside identifiers where the type has them)
// every cio:* example is refused naming that field as the user wrote it,
// bare and inside an envelope; cdp:* payloads keep unknown fields.
func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	for typ, js := range docExamples(t) {
		t.Run(typ, func(t *testing.T) {
			if _, _, err := tasks.DecodeStrict(typ, []byte(js)); err != nil {
				t.Fatalf("documented example refused: %v", err)
			}
			body := strings.TrimSpace(js)
			typo := `{"trackd":true,` + body[1:]
			cases := map[string]string{"trackd": typo, "payload.trackd": `{"v":1,"payload":` + typo + `}`}
			if strings.Contains(body, `"identifiers":{`) {
				cases["identifiers.idd"] = strings.Replace(body, `"identifiers":{`, `"identifiers":{"idd":"x",`, 1)
			}
			for field, in := range cases {
				_, p, err := tasks.DecodeStrict(typ, []byte(in))
				if strings.HasPrefix(typ, "cdp:") {
					if err != nil {
						t.Errorf("%s: a Segment-spec payload keeps unknown fields, got %v", field, err)
					}
					continue
				}
				var de *tasks.DecodeError
				if !errors.As(err, &de) || de.Field != field || p != nil {
					t.Errorf("%s: got payload %v, error %v; want a DecodeError naming %q", field, p, err, field)
					continue
				}
				if want := "not a field of " + typ; de.Reason != want {
					t.Errorf("%s: reason %q, want %q", field, de.Reason, want)
				}
				// The worker's Decode stays tolerant (a newer producer's field).
				if _, _, err := tasks.Decode(typ, []byte(in)); err != nil {
					t.Errorf("%s: Decode refused it: %v", field, err)
				}
			}
		})
	}
}

// BenchmarkDecodeStrict against Decode of the same send: the cost of the
// unknown-field walk on the enqueue paths that take raw JSON.
func BenchmarkDecodeStrict(b *testing.B) {
	in := []byte(`{"transactional_message_id":"password_reset","to":"ada@example.com","identifiers":{"id":"user-123"},"message_data":{"reset_link":"https://app.example.com/reset?token=abc123","expiry_hours":1}}`)
	for _, c := range []struct {
		name string
		fn   func(string, []byte) (*tasks.Envelope, tasks.Payload, error)
	}{{"Decode", tasks.Decode}, {"DecodeStrict", tasks.DecodeStrict}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.fn(tasks.TypeSendEmail, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
