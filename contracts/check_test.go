package contracts

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

const testFile = `{
  "workspaces": {
    "default": {
      "transactional": {
        "messages": [
          {"id": 7, "trigger": "password_reset", "channel": "email",
           "variables": {"reset_link": {"type": "string"}, "expiry_hours": {"type": "number", "optional": true}}},
          {"id": 2, "name": "order_confirmation", "channel": "email",
           "variables": {"order.id": {}, "items": {"type": "array", "optional": true}, "items[].price": {"type": "number"}, "total": {"type": "number"}}}
        ]
      },
      "attributes": {
        "people": {"attributes": {
          "total_revenue": {"type": "number"},
          "order_count": {"type": "number", "policy": "coerce"},
          "premium_features_used": {"type": "boolean", "policy": "coerce"},
          "last_active_at": {"type": "timestamp", "policy": "coerce"},
          "plan": {"type": "string", "policy": "coerce"}
        }},
        "objects": {"1": {"policy": "coerce", "attributes": {"mrr": {"type": "number"}}}}
      },
      "events": {"timestamp_policy": "coerce"}
    },
    "strict": {
      "transactional": {"strict_ids": true, "messages": [{"id": 1, "name": "welcome"}]},
      "events": {"timestamp_policy": "refuse"}
    }
  }
}`

func testSet(t *testing.T) *Set {
	t.Helper()
	f, err := Parse([]byte(testFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func email(id string, data map[string]any) tasks.SendEmail {
	return tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: customerio.MessageID(id),
		Identifiers: &customerio.Identifiers{ID: "u1"}, MessageData: data}, To: "a@example.com"}
}

// violations returns the "field: reason" of err's violations, or fails.
func violations(t *testing.T, err error) []string {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *contracts.Error", err)
	}
	var out []string
	for _, v := range ce.Violations {
		out = append(out, v.Field+": "+v.Reason)
	}
	return out
}

func TestCheckSends(t *testing.T) {
	s := testSet(t)
	cases := []struct {
		name string
		ws   string
		p    tasks.Payload
		want []string // violations; nil = accepted
	}{
		{"all there", "", email("password_reset", map[string]any{"reset_link": "https://x"}), nil},
		{"missing variable, named with its template", "", email("password_reset", nil),
			[]string{`message_data.reset_link: required by template "password_reset" (id 7), missing`}},
		{"by id, trigger name case-insensitive", "default", email("7", map[string]any{"expiry_hours": 1}),
			[]string{`message_data.reset_link: required by template "password_reset" (id 7), missing`}},
		{"null is missing", "", email("PASSWORD_RESET", map[string]any{"reset_link": nil}),
			[]string{`message_data.reset_link: required by template "password_reset" (id 7), missing`}},
		{"declared type", "", email("password_reset", map[string]any{"reset_link": "x", "expiry_hours": "24"}),
			[]string{`message_data.expiry_hours: template "password_reset" (id 7) declares a number, got a string`}},
		{"every missing variable, nested and per element", "", email("2", map[string]any{
			"items": []map[string]any{{"price": 2.5}, {"name": "b"}, {"price": "3"}},
		}), []string{
			`message_data.items[1].price: required by template "order_confirmation" (id 2), missing`,
			`message_data.items[2].price: template "order_confirmation" (id 2) declares a number, got a string`,
			`message_data.order.id: required by template "order_confirmation" (id 2), missing`,
			`message_data.total: required by template "order_confirmation" (id 2), missing`,
		}},
		{"no items: nothing to check per element", "", email("order_confirmation", map[string]any{"order": map[string]any{"id": 1}, "total": 3}), nil},
		{"not an object", "", email("order_confirmation", map[string]any{"order": "x", "total": 3, "items": "y"}), []string{
			`message_data.items: template "order_confirmation" (id 2) declares an array, got a string`,
			`message_data.order: template "order_confirmation" (id 2) needs an object (for order.id), got a string`,
		}},
		{"wrong channel", "", tasks.SendPush{SendOptions: customerio.SendOptions{TransactionalMessageID: "7", Identifiers: &customerio.Identifiers{ID: "u"}}},
			[]string{`transactional_message_id: template "password_reset" (id 7) is an email message, got a push send`}},
		{"unknown id, not strict", "", email("99", nil), nil},
		{"unknown id, strict_ids", "strict", email("99", nil),
			[]string{`transactional_message_id: must name a template of the contracts of workspace "strict" (strict_ids), got 99`}},
		{"unknown trigger name, strict_ids", "strict", email("welcom", nil),
			[]string{`transactional_message_id: must name a template of the contracts of workspace "strict" (strict_ids), got "welcom"`}},
		{"name as trigger", "strict", email("Welcome", nil), nil},
		{"no template: a body of its own", "strict", email("", nil), nil},
		{"workspace without contracts", "other", email("password_reset", nil), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := s.Check(c.ws, c.p)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !reflect.DeepEqual(res.Payload, c.p) {
					t.Errorf("payload changed")
				}
				return
			}
			if got := violations(t, err); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestErrorUnwrapsToValidationError(t *testing.T) {
	_, err := testSet(t).Check("", email("2", nil))
	var ve *customerio.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%v does not unwrap to a ValidationError", err)
	}
	if ve.Field != "message_data.order.id" || !strings.Contains(ve.Reason, "; message_data.total: required by") {
		t.Errorf("ValidationError = %q %q: want the first field, and the others in the reason", ve.Field, ve.Reason)
	}
	if want := `contracts: message_data.order.id: required by template "order_confirmation" (id 2), missing; message_data.total: required by template "order_confirmation" (id 2), missing`; err.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", err, want)
	}
}

func TestCheckAttributes(t *testing.T) {
	s := testSet(t)
	caller := map[string]any{"order_count": "12", "premium_features_used": "TRUE", "last_active_at": int64(1767222000123), "plan": 3, "email": "x"}
	res, err := s.Check("", tasks.Identify{Identifiers: customerio.Identifiers{ID: "u"}, Attributes: caller})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Payload.(tasks.Identify).Attributes
	want := map[string]any{"order_count": json.Number("12"), "premium_features_used": true, "last_active_at": int64(1767222000), "plan": "3", "email": "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %#v\nwant %#v", got, want)
	}
	if caller["order_count"] != "12" {
		t.Error("the caller's map was modified")
	}
	var fields []string
	for _, c := range res.Coerced {
		fields = append(fields, c.Field+"<-"+c.From)
	}
	if w := []string{"attributes.last_active_at<-milliseconds", "attributes.order_count<-a string", "attributes.plan<-a number", "attributes.premium_features_used<-a string"}; !reflect.DeepEqual(fields, w) {
		t.Errorf("coerced %v, want %v", fields, w)
	}

	// Refused: the default policy, and what coercion cannot convert.
	_, err = s.Check("", &tasks.Identify{Identifiers: customerio.Identifiers{ID: "u"}, Attributes: map[string]any{
		"total_revenue": "1000", "order_count": "12 orders", "last_active_at": "yesterday", "premium_features_used": 1, "plan": nil}})
	want2 := []string{
		"attributes.last_active_at: declared a timestamp (Unix seconds) (people attributes), got a string that cannot be coerced",
		"attributes.order_count: declared a number (people attributes), got a string that cannot be coerced",
		"attributes.premium_features_used: declared a boolean (people attributes), got a number that cannot be coerced",
		"attributes.total_revenue: declared a number (people attributes), got a string",
	}
	if got := violations(t, err); !reflect.DeepEqual(got, want2) {
		t.Errorf("got  %q\nwant %q", got, want2)
	}

	// ISO-8601 → seconds; objects by type; Pipelines traits; a pointer stays a pointer.
	res, err = s.Check("", &tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: map[string]any{"mrr": "4200.50"}})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := res.Payload.(*tasks.ObjectUpsert); !ok || p.Attributes["mrr"] != json.Number("4200.50") {
		t.Errorf("object upsert = %#v", res.Payload)
	}
	res, err = s.Check("", tasks.CDPIdentify{UserID: "u", Traits: map[string]any{"last_active_at": "2026-01-01T00:00:00Z"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Payload.(tasks.CDPIdentify).Traits["last_active_at"]; got != int64(1767225600) {
		t.Errorf("traits.last_active_at = %#v", got)
	}
	if res.Coerced[0].Field != "traits.last_active_at" {
		t.Errorf("field = %q", res.Coerced[0].Field)
	}
	if _, err := s.Check("", tasks.ObjectUpsert{ObjectTypeID: "2", ObjectID: "x", Attributes: map[string]any{"mrr": "x"}}); err != nil {
		t.Errorf("object type 2 has no rules: %v", err)
	}
}

func TestCheckTimestamps(t *testing.T) {
	s := testSet(t)
	ms := int64(1767222000123)
	res, err := s.Check("", &tasks.Track{Identifiers: customerio.Identifiers{ID: "u"}, Event: customerio.Event{Name: "e", Timestamp: ms}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Payload.(*tasks.Track).Timestamp; got != 1767222000 {
		t.Errorf("timestamp = %d", got)
	}
	_, err = s.Check("strict", tasks.TrackAnonymous{AnonymousID: "a", Name: "e", Timestamp: ms})
	if got := violations(t, err); len(got) != 1 || !strings.HasPrefix(got[0], "timestamp: must be Unix seconds, got milliseconds") {
		t.Errorf("got %q", got)
	}
	res, err = s.Check("", tasks.CDPTrack{UserID: "u", Event: "e", Timestamp: "1767222000123"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Payload.(tasks.CDPTrack).Timestamp; got != "2025-12-31T23:00:00Z" {
		t.Errorf("timestamp = %q", got)
	}
	for _, ok := range []string{"2026-01-01T00:00:00.123Z", "2026-01-01T01:00:00+01:00", ""} {
		if _, err := s.Check("strict", tasks.CDPTrack{UserID: "u", Event: "e", Timestamp: ok}); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	_, err = s.Check("", tasks.CDPTrack{UserID: "u", Event: "e", Timestamp: "last tuesday"})
	if got := violations(t, err); len(got) != 1 || !strings.HasPrefix(got[0], "timestamp: must be an ISO-8601 time") {
		t.Errorf("got %q", got)
	}
}

func TestPatch(t *testing.T) {
	s := testSet(t)
	raw := json.RawMessage(`{"identifiers":{"id":"u"},"attributes":{"order_count":"12","email":"a<b@x"},"extra":1}`)
	res, err := s.Check("", tasks.Identify{Identifiers: customerio.Identifiers{ID: "u"}, Attributes: map[string]any{"order_count": "12", "email": "a<b@x"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.Patch(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"identifiers": map[string]any{"id": "u"}, "attributes": map[string]any{"order_count": 12.0, "email": "a<b@x"}, "extra": 1.0}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patched = %s", out)
	}
}

func TestParseStrict(t *testing.T) {
	cases := []struct{ file, want string }{
		{`{"workspaces":{"default":{"attributes":{"people":{"attributes":{"x":{"type":"number","polcy":"coerce"}}}}}}}`,
			`workspaces.default.attributes.people.attributes.x.polcy: is not a known key (want type, policy)`},
		{`{"workspaces":{"default":{"attributes":{"people":{"attributes":{"x":{"type":"int"}}}}}}}`,
			`workspaces.default.attributes.people.attributes.x.type: must be one of string, number, boolean, timestamp, array, object, got "int"`},
		{`{"workspaces":{"default":{"attributes":{"policy":"fix"}}}}`,
			`workspaces.default.attributes.policy: must be "refuse" or "coerce", got "fix"`},
		{`{"workspaces":{"default":{"transactional":{"messages":[{"id":1,"variables":{"items[]":{}}}]}}}}`,
			`workspaces.default.transactional.messages[0].variables.items[]: cannot end with "[]"`},
		{`{"workspaces":{"default":{"transactional":{"messages":[{"id":1},{"id":1}]}}}}`,
			`workspaces.default.transactional.messages[1].id: 1 is also the id of messages[0]`},
		{`{"workspaces":{"default":{"transactional":{"messages":[{"channel":"email"}]}}}}`,
			`workspaces.default.transactional.messages[0]: needs an id, a trigger or a name`},
		{`{"workspaces":{"Default":{}}}`, `workspaces.Default: is not a workspace name`},
		{`{"workspace":{}}`, `workspace: is not a known key (want workspaces)`},
		{`{"workspaces":{"default":{"events":{"timestamp_policy":"coerce","x":1}}}}`, `workspaces.default.events.x: is not a known key`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s)\n  = %v\n want %q", c.file, err, c.want)
		}
	}
}
