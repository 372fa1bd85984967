package tasks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// TestCheckUTF8: strings (keys and values) that are not UTF-8 are found
// and named by their JSON path as written; valid text, including escapes
// of valid text, passes.
func TestCheckUTF8(t *testing.T) {
	for _, c := range []struct {
		name, in     string
		field, notes string // notes: "" = valid; otherwise the Reason
	}{
		{"ascii", `{"identifiers":{"id":"u1"},"name":"ev"}`, "", ""},
		{"unicode", `{"name":"café ☕ 😀"}`, "", ""},
		{"escaped pair", `{"name":"\ud83d\ude00"}`, "", ""},
		{"escaped U+FFFD", `{"name":"\ufffd"}`, "", ""},
		{"real U+FFFD", "{\"name\":\"\uFFFD\"}", "", ""},
		{"escaped backslash before ud800", `{"name":"\\ud800"}`, "", ""},
		{"invalid bytes", "{\"identifiers\":{\"id\":\"u\xff\xfe\xc31\"},\"name\":\"ev\"}", "identifiers.id", "is not valid UTF-8"},
		{"in an array", "{\"batch\":[{\"userId\":\"a\"},{\"userId\":\"b\"},{\"x\":1,\"userId\":\"\xc3\"}]}", "batch[2].userId", "is not valid UTF-8"},
		{"array in array", "[[1,\"ok\"],[\"\xff\"]]", "[1][0]", "is not valid UTF-8"},
		{"a key", "{\"data\":{\"ok\":1,\"b\xffad\":2}}", "data", "has a key that is not valid UTF-8"},
		{"a top-level key", "{\"\xff\":1}", "", "has a key that is not valid UTF-8"},
		{"encoded surrogate", "{\"name\":\"\xed\xa0\x80\"}", "name", "is not valid UTF-8"},
		{"overlong", "{\"name\":\"\xc0\xaf\"}", "name", "is not valid UTF-8"},
		{"lone high surrogate", `{"data":{"blob":"x\ud800y"}}`, "data.blob", "is not valid UTF-8"},
		{"lone low surrogate", `{"data":{"blob":"\udc00"}}`, "data.blob", "is not valid UTF-8"},
		{"high then not low", `{"n":"\ud800\u0041"}`, "n", "is not valid UTF-8"},
		{"surrogate in a key", `{"data":{"a\udc00":1}}`, "data", "has a key that is not valid UTF-8"},
		{"escaped key on the path", "{\"a\\u002eb\":{\"c\":\"\xff\"}}", "a.b.c", "is not valid UTF-8"},
		{"after other values", "{\"n\":-1.5e3,\"t\":true,\"z\":null,\"o\":{},\"a\":[],\"s\":\"\\\"\",\"bad\":\"\xff\"}", "bad", "is not valid UTF-8"},
		{"malformed JSON", "{\"a\" \xff}", "", "is not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := tasks.CheckUTF8([]byte(c.in))
			if c.notes == "" {
				if err != nil {
					t.Fatalf("CheckUTF8 = %v, want nil", err)
				}
				return
			}
			var ve *customerio.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("CheckUTF8 = %v, want a *customerio.ValidationError", err)
			}
			if ve.Field != c.field || ve.Reason != c.notes {
				t.Errorf("CheckUTF8 = field %q reason %q, want %q %q", ve.Field, ve.Reason, c.field, c.notes)
			}
		})
	}
}

// TestDecodeRefusesInvalidUTF8: two payloads whose person ids differ only
// in invalid bytes would both decode to "u\uFFFD1", the same person; Decode
// refuses both, naming the field, in a bare payload and in an envelope.
func TestDecodeRefusesInvalidUTF8(t *testing.T) {
	for _, c := range []struct{ in, field string }{
		{"{\"identifiers\":{\"id\":\"u\xff1\"},\"name\":\"ev\"}", "identifiers.id"},
		{"{\"identifiers\":{\"id\":\"u\xfe1\"},\"name\":\"ev\"}", "identifiers.id"},
		{"{\"identifiers\":{\"id\":\"u\"},\"name\":\"ev\",\"data\":{\"blob\":\"\xc3\"}}", "data.blob"},
		{"{\"v\":1,\"payload\":{\"identifiers\":{\"id\":\"u\xff1\"},\"name\":\"ev\"}}", "payload.identifiers.id"},
		{"{\"v\":1,\"workspace\":\"eu\",\"payload\":{\"identifiers\":{\"id\":\"u\"},\"name\":\"ev\",\"data\":{\"l\":[\"a\",\"\xff\"]}}}", "payload.data.l[1]"},
	} {
		_, _, err := tasks.Decode(tasks.TypeTrack, []byte(c.in))
		var de *tasks.DecodeError
		if !errors.As(err, &de) || !errors.Is(err, tasks.ErrMalformed) {
			t.Fatalf("Decode(%q) = %v, want a malformed *DecodeError", c.in, err)
		}
		if de.Field != c.field || de.Reason != "is not valid UTF-8" {
			t.Errorf("Decode(%q): field %q reason %q, want %q", c.in, de.Field, de.Reason, c.field)
		}
		if want := `tasks: decode cio:track: invalid field "` + c.field + `": is not valid UTF-8`; err.Error() != want {
			t.Errorf("Error() = %q, want %q", err, want)
		}
	}
}

// TestEncodeRefusesInvalidUTF8: a Go string that is not UTF-8 anywhere in
// a payload (json.Marshal would write U+FFFD for it) is refused by Encode,
// MarshalPayload and EncodeRaw with a *customerio.ValidationError naming its
// JSON path; valid text with U+FFFD in it passes.
func TestEncodeRefusesInvalidUTF8(t *testing.T) {
	bad := "u\xff\xfe\xc31"
	person := customerio.Identifiers{ID: "u1"}
	for _, c := range []struct {
		name   string
		p      tasks.Payload
		field  string
		reason string
	}{
		{"person id", tasks.Track{Identifiers: customerio.Identifiers{ID: bad}, Event: customerio.Event{Name: "ev"}}, "identifiers.id", ""},
		{"event name (embedded struct)", tasks.Track{Identifiers: person, Event: customerio.Event{Name: bad}}, "name", ""},
		{"event data", &tasks.Track{Identifiers: person, Event: customerio.Event{Name: "ev", Data: map[string]any{"blob": bad}}}, "data.blob", ""},
		{"nested attribute in a list", tasks.Identify{Identifiers: person, Attributes: map[string]any{"a": 1, "tags": []any{"ok", map[string]any{"x": bad}}}}, "attributes.tags[1].x", ""},
		{"attribute key", tasks.Identify{Identifiers: person, Attributes: map[string]any{"ok": 1, bad: 2}}, "attributes", "has a key that is not valid UTF-8"},
		{"message data (embedded SendOptions)", tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "1", Identifiers: &person, MessageData: map[string]any{"name": bad}}, To: "a@example.com"}, "message_data.name", ""},
		{"transactional message id", tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: customerio.MessageID(bad)}, To: "a@example.com"}, "transactional_message_id", ""},
		{"header key", tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "1"}, To: "a@example.com", Headers: map[string]string{bad: "v"}}, "headers", "has a key that is not valid UTF-8"},
		{"device attribute", tasks.DeviceAdd{Identifiers: person, Device: customerio.Device{ID: "tok", Platform: "ios", Attributes: map[string]string{"os": bad}}}, "device.attributes.os", ""},
		{"per user data row", tasks.BroadcastTrigger{BroadcastID: 1, TriggerBroadcastRequest: customerio.TriggerBroadcastRequest{PerUserData: []customerio.PerUserData{{ID: "a"}, {ID: "b", Data: map[string]any{"x": bad}}}}}, "per_user_data[1].data.x", ""},
		{"segment ids", tasks.SegmentAdd{SegmentID: 1, IDs: []string{"a", bad}}, "ids[1]", ""},
		{"cdp property", tasks.CDPTrack{UserID: "u1", Event: "E", Properties: map[string]any{"p": bad}}, "properties.p", ""},
		{"cdp extra key", tasks.CDPTrack{UserID: "u1", Event: "E", Extra: map[string]json.RawMessage{bad: json.RawMessage(`1`)}}, "", "has a key that is not valid UTF-8"},
		{"cdp extra raw value", tasks.CDPTrack{UserID: "u1", Event: "E", Extra: map[string]json.RawMessage{"channel": json.RawMessage("\"\xff\"")}}, "channel", ""},
		{"cdp extra lone surrogate", tasks.CDPTrack{UserID: "u1", Event: "E", Extra: map[string]json.RawMessage{"channel": json.RawMessage(`{"a":"\ud800"}`)}}, "channel.a", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.reason == "" {
				c.reason = "is not valid UTF-8"
			}
			check := func(what string, err error) {
				t.Helper()
				var ve *customerio.ValidationError
				if !errors.As(err, &ve) || ve.Field != c.field || ve.Reason != c.reason {
					t.Errorf("%s = %v, want field %q: %s", what, err, c.field, c.reason)
				}
			}
			_, err := tasks.Encode(c.p, tasks.Meta{})
			check("Encode", err)
			_, err = tasks.MarshalPayload(c.p)
			check("MarshalPayload", err)
		})
	}

	// Valid text with a real U+FFFD, and raw JSON that writes the escape
	// \ufffd itself, are text the sender chose: accepted.
	for _, p := range []tasks.Payload{
		tasks.Track{Identifiers: person, Event: customerio.Event{Name: "ev", Data: map[string]any{"s": "a\uFFFDb"}}},
		tasks.CDPTrack{UserID: "u1", Event: "E", Extra: map[string]json.RawMessage{"channel": json.RawMessage(`"\ufffd \\ufffd"`)}},
	} {
		if _, err := tasks.Encode(p, tasks.Meta{}); err != nil {
			t.Errorf("Encode(%T) = %v, want nil", p, err)
		}
	}

	// EncodeRaw checks the bytes it is given.
	_, err := tasks.EncodeRaw(json.RawMessage("{\"identifiers\":{\"id\":\"\xff\"}}"), tasks.Meta{})
	var ve *customerio.ValidationError
	if !errors.As(err, &ve) || ve.Field != "identifiers.id" {
		t.Errorf("EncodeRaw = %v, want identifiers.id refused", err)
	}
}

// TestDecodeTypeErrors: every payload type, a wrong-typed field at the top
// level, nested, inside an array and inside an embedded struct: the error
// names the JSON path as written (never a Go name), says what was expected
// and what was found, and never quotes a string of the input.
func TestDecodeTypeErrors(t *testing.T) {
	const secret = "pii-ada@example.com"
	for _, c := range []struct {
		typ, in, field, reason string
	}{
		// transactional sends: SendOptions is embedded in every one
		{tasks.TypeSendEmail, `{"transactional_message_id":{"a":1},"to":"x"}`, "transactional_message_id", "must be a number or a string, got an object"},
		{tasks.TypeSendEmail, `{"transactional_message_id":[1]}`, "transactional_message_id", "must be a number or a string, got an array"},
		{tasks.TypeSendEmail, `{"transactional_message_id":1,"message_data":["` + secret + `"]}`, "message_data", "must be an object, got an array"},
		{tasks.TypeSendEmail, `{"transactional_message_id":1,"send_at":1.5}`, "send_at", "must be an integer, got 1.5"},
		{tasks.TypeSendEmail, `{"to":5}`, "to", "must be a string, got a number"},
		{tasks.TypeSendEmail, `{"identifiers":{"id":7}}`, "identifiers.id", "must be a string, got a number"},
		{tasks.TypeSendEmail, `{"headers":{"X-A":"ok","X-B":1}}`, "headers.X-B", "must be a string, got a number"},
		{tasks.TypeSendEmail, `{"fake_bcc":"` + secret + `"}`, "fake_bcc", "must be a boolean, got a string"},
		{tasks.TypeSendPush, `{"custom_device":{"token":1}}`, "custom_device.token", "must be a string, got a number"},
		{tasks.TypeSendPush, `{"custom_device":{"token":"t","attributes":{"os":true}}}`, "custom_device.attributes.os", "must be a string, got a boolean"},
		{tasks.TypeSendPush, `{"disable_message_retention":"no"}`, "disable_message_retention", "must be a boolean, got a string"},
		{tasks.TypeSendSMS, `{"tracked":1}`, "tracked", "must be a boolean, got a number"},
		{tasks.TypeSendInApp, `{"language":{}}`, "language", "must be a string, got an object"},
		{tasks.TypeSendInbox, `{"to":[]}`, "to", "must be a string, got an array"},
		{tasks.TypeSendWhatsApp, `{"from":{"` + secret + `":1}}`, "from", "must be a string, got an object"},
		// people and events
		{tasks.TypeIdentify, `{"identifiers":{"id":"u"},"attributes":[]}`, "attributes", "must be an object, got an array"},
		{tasks.TypeIdentify, `{"identifiers":{"email":false}}`, "identifiers.email", "must be a string, got a boolean"},
		{tasks.TypeTrack, `{"identifiers":{"id":"u"},"name":"ev","timestamp":1.5}`, "timestamp", "must be an integer, got 1.5"},
		{tasks.TypeTrack, `{"identifiers":{"id":"u"},"name":"ev","timestamp":"` + secret + `"}`, "timestamp", "must be an integer, got a string"},
		{tasks.TypeTrack, `{"identifiers":{"id":"u"},"name":5}`, "name", "must be a string, got a number"},
		{tasks.TypeTrack, `{"identifiers":{"cio_id":1},"name":"ev"}`, "identifiers.cio_id", "must be a string, got a number"},
		{tasks.TypeTrack, `{"identifiers":{"id":"u"},"name":"ev","data":"` + secret + `"}`, "data", "must be an object, got a string"},
		{tasks.TypeTrack, `{"identifiers":{"id":"u"},"name":"ev","timestamp":123456789012345678901234567890}`, "timestamp", "must be an integer, got a number out of range"},
		{tasks.TypeTrackAnonymous, `{"anonymous_id":1,"name":"ev"}`, "anonymous_id", "must be a string, got a number"},
		{tasks.TypeTrackAnonymous, `{"name":"ev","timestamp":true}`, "timestamp", "must be an integer, got a boolean"},
		{tasks.TypeMergeAnonymous, `{"identifiers":{"id":"u"},"anonymous_id":{}}`, "anonymous_id", "must be a string, got an object"},
		{tasks.TypeMergePeople, `{"primary":{"id":1},"secondary":{"id":"b"}}`, "primary.id", "must be a string, got a number"},
		{tasks.TypeMergePeople, `{"primary":{"id":"a"},"secondary":[]}`, "secondary", "must be an object, got an array"},
		{tasks.TypeDelete, `{"identifiers":[]}`, "identifiers", "must be an object, got an array"},
		{tasks.TypeSuppress, `{"identifiers":{"id":true}}`, "identifiers.id", "must be a string, got a boolean"},
		{tasks.TypeUnsuppress, `{"identifiers":"` + secret + `"}`, "identifiers", "must be an object, got a string"},
		{tasks.TypeDeviceAdd, `{"identifiers":{"id":"u"},"device":{"id":"t","platform":"ios","last_used":1.5}}`, "device.last_used", "must be an integer, got 1.5"},
		{tasks.TypeDeviceAdd, `{"identifiers":{"id":"u"},"device":{"id":"t","attributes":{"a":"1","os":2}}}`, "device.attributes.os", "must be a string, got a number"},
		{tasks.TypeDeviceDelete, `{"identifiers":{"id":"u"},"device":{"id":5}}`, "device.id", "must be a string, got a number"},
		// objects
		{tasks.TypeObjectUpsert, `{"object_type_id":1,"object_id":"acme"}`, "object_type_id", "must be a string, got a number"},
		{tasks.TypeObjectUpsert, `{"object_type_id":"1","object_id":"acme","attributes":5}`, "attributes", "must be an object, got a number"},
		{tasks.TypeObjectDelete, `{"object_type_id":"1","object_id":5}`, "object_id", "must be a string, got a number"},
		{tasks.TypeRelate, `{"identifiers":{"id":"u"},"object_type_id":"1","object_id":"a","relationship_attributes":"x"}`, "relationship_attributes", "must be an object, got a string"},
		{tasks.TypeUnrelate, `{"identifiers":{"id":"u"},"object_type_id":true}`, "object_type_id", "must be a string, got a boolean"},
		// broadcasts and segments: TriggerBroadcastRequest is embedded
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":"7"}`, "broadcast_id", "must be an integer, got a string"},
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":1.5}`, "broadcast_id", "must be an integer, got 1.5"},
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":1,"per_user_data":[{"id":"x"},{"id":5}]}`, "per_user_data[1].id", "must be a string, got a number"},
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":1,"per_user_data":[{"id":"x","data":[]}]}`, "per_user_data[0].data", "must be an object, got an array"},
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":1,"emails":["a@example.com",1]}`, "emails[1]", "must be a string, got a number"},
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":1,"recipients":{"and":[{"segment":{"id":3}},{"segment":{"id":"` + secret + `"}}]}}`, "recipients.and[1].segment.id", "must be an integer, got a string"},
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":1,"id_ignore_missing":"yes"}`, "id_ignore_missing", "must be a boolean, got a string"},
		{tasks.TypeBroadcastTrigger, `{"broadcast_id":1,"data":{"a":1},"ids":{}}`, "ids", "must be an array, got an object"},
		{tasks.TypeSegmentAdd, `{"segment_id":"1","ids":["a"]}`, "segment_id", "must be an integer, got a string"},
		{tasks.TypeSegmentAdd, `{"segment_id":1,"ids":["a",2]}`, "ids[1]", "must be a string, got a number"},
		{tasks.TypeSegmentAdd, `{"segment_id":1,"ids":["a"],"id_type":1}`, "id_type", "must be a string, got a number"},
		{tasks.TypeSegmentRemove, `{"segment_id":1,"ids":"` + secret + `"}`, "ids", "must be an array, got a string"},
		{tasks.TypeFormSubmit, `{"form_id":"f","data":{"email":"` + secret + `","age":42}}`, "data.age", "must be a string, got a number"},
		{tasks.TypeMetric, `{"delivery_id":"d","metric":"opened","timestamp":"` + secret + `"}`, "timestamp", "must be an integer, got a string"},
		{tasks.TypeBatch, `{"operations":[{"type":"cio:track","payload":{}},{"type":7}]}`, "operations[1].type", "must be a string, got a number"},
		// Pipelines (decoded by PipelinesMessage.UnmarshalJSON)
		{tasks.TypeCDPIdentify, `{"userId":5}`, "userId", "must be a string, got a number"},
		{tasks.TypeCDPIdentify, `{"userId":"u","traits":[]}`, "traits", "must be an object, got an array"},
		{tasks.TypeCDPTrack, `{"userId":"u","event":"E","properties":[]}`, "properties", "must be an object, got an array"},
		{tasks.TypeCDPTrack, `{"userId":"u","event":"E","timestamp":1700000000}`, "timestamp", "must be a string, got a number"},
		{tasks.TypeCDPPage, `{"anonymousId":"a","context":1}`, "context", "must be an object, got a number"},
		{tasks.TypeCDPScreen, `{"userId":"u","name":{}}`, "name", "must be a string, got an object"},
		{tasks.TypeCDPGroup, `{"userId":"u","groupId":5}`, "groupId", "must be a string, got a number"},
		{tasks.TypeCDPAlias, `{"userId":"u","previousId":["` + secret + `"]}`, "previousId", "must be a string, got an array"},
		// in an envelope the path starts at the envelope
		{tasks.TypeTrack, `{"v":1,"payload":{"identifiers":{"id":"u"},"name":"ev","timestamp":1.5}}`, "payload.timestamp", "must be an integer, got 1.5"},
		{tasks.TypeBroadcastTrigger, `{"v":1,"workspace":"eu","payload":{"broadcast_id":1,"per_user_data":[{},{"id":5}]}}`, "payload.per_user_data[1].id", "must be a string, got a number"},
		{tasks.TypeCDPTrack, `{"v":1,"payload":{"userId":"u","event":"E","properties":"` + secret + `"}}`, "payload.properties", "must be an object, got a string"},
		{tasks.TypeTrack, `{"v":1,"expires_at":"` + secret + `","payload":{}}`, "expires_at", "must be an integer, got a string"},
		{tasks.TypeTrack, `{"v":"1","payload":{}}`, "v", "must be an integer, got a string"},
		{tasks.TypeTrack, `{"v":1,"payload":[]}`, "payload", "must be a JSON object"},
	} {
		t.Run(c.typ+" "+c.field, func(t *testing.T) {
			_, _, err := tasks.Decode(c.typ, []byte(c.in))
			var de *tasks.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tasks.ErrMalformed) {
				t.Fatalf("Decode = %v, want a malformed *DecodeError", err)
			}
			if de.Field != c.field || de.Reason != c.reason {
				t.Errorf("Decode(%s) = field %q reason %q, want %q %q", c.in, de.Field, de.Reason, c.field, c.reason)
			}
			msg := err.Error()
			if want := "tasks: decode " + c.typ + ": invalid field \"" + c.field + "\": " + c.reason; msg != want {
				t.Errorf("Error() = %q, want %q", msg, want)
			}
			for _, leak := range []string{secret, "SendOptions", "Event", "TriggerBroadcastRequest", "customerio", "tasks.", "int64", "map["} {
				if strings.Contains(strings.TrimPrefix(msg, "tasks: decode "), leak) {
					t.Errorf("Error() %q contains %q", msg, leak)
				}
			}
		})
	}
	// Every registered type is covered above.
	covered := map[string]bool{}
	for _, s := range tasks.Types() {
		covered[s.Type] = false
	}
	for _, typ := range []string{tasks.TypeSendEmail, tasks.TypeSendPush, tasks.TypeSendSMS, tasks.TypeSendInApp, tasks.TypeSendInbox, tasks.TypeSendWhatsApp,
		tasks.TypeIdentify, tasks.TypeTrack, tasks.TypeTrackAnonymous, tasks.TypeMergeAnonymous, tasks.TypeMergePeople, tasks.TypeDelete, tasks.TypeSuppress,
		tasks.TypeUnsuppress, tasks.TypeDeviceAdd, tasks.TypeDeviceDelete, tasks.TypeObjectUpsert, tasks.TypeObjectDelete, tasks.TypeRelate, tasks.TypeUnrelate,
		tasks.TypeBroadcastTrigger, tasks.TypeSegmentAdd, tasks.TypeSegmentRemove, tasks.TypeFormSubmit, tasks.TypeMetric, tasks.TypeBatch,
		tasks.TypeCDPIdentify, tasks.TypeCDPTrack, tasks.TypeCDPPage, tasks.TypeCDPScreen, tasks.TypeCDPGroup, tasks.TypeCDPAlias} {
		covered[typ] = true
	}
	for typ, ok := range covered {
		if !ok {
			t.Errorf("type %s has no type-error case", typ)
		}
	}
}

// TestDescribeJSONErrorFromField: a type error without a usable offset
// (one a custom UnmarshalJSON returned from inside a struct) is named from
// encoding/json's Go-ish Field, embedded struct names dropped.
func TestDescribeJSONErrorFromField(t *testing.T) {
	var p tasks.SendEmail
	err := json.Unmarshal([]byte(`{"transactional_message_id":true}`), &p)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || !strings.Contains(te.Field, "SendOptions") {
		t.Fatalf("encoding/json no longer reports the embedded struct's name (%v); this test checks dropping it", err)
	}
	field, reason := tasks.DescribeJSONError([]byte(`{"transactional_message_id":true}`), err, &p)
	if field != "transactional_message_id" || reason != "must be a number or a string, got a boolean" {
		t.Errorf("DescribeJSONError = %q %q", field, reason)
	}
	var b tasks.BroadcastTrigger
	te = &json.UnmarshalTypeError{Value: "number", Type: te.Type, Field: "TriggerBroadcastRequest.per_user_data.id"}
	if field, _ := tasks.DescribeJSONError(nil, te, &b); field != "per_user_data.id" {
		t.Errorf("DescribeJSONError from Field = %q, want per_user_data.id", field)
	}
}

// BenchmarkCheckUTF8 is the cost of the UTF-8 check on valid input: what
// Decode, EncodeRaw, the CLI and every ingest request pay (Encode pays the
// same scan over its output, see BenchmarkEncode).
func BenchmarkCheckUTF8(b *testing.B) {
	p := tasks.Track{Identifiers: customerio.Identifiers{ID: "user-123"}, Event: customerio.Event{Name: "order_completed", ID: "01HZY8V4Q6W5M3K2J1N0P9R8S7", Data: map[string]any{"order_id": "ORD-1", "total": 59.98, "note": "café <b>"}}}
	in, _ := tasks.Encode(p, tasks.Meta{Workspace: "eu"})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := tasks.CheckUTF8(in); err != nil {
			b.Fatal(err)
		}
	}
}
