package customerio

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// segmentTrack is a Segment track call as a source sends it: fields
// PipelinesMessage names and fields it does not.
const segmentTrack = `{"type":"track","userId":"u1","event":"Order Completed",` +
	`"properties":{"total":3},"messageId":"m-1","timestamp":"2026-01-02T03:04:05Z",` +
	`"sentAt":"2026-01-02T03:04:06Z","originalTimestamp":"2026-01-02T03:04:04Z",` +
	`"receivedAt":"2026-01-02T03:04:07Z","channel":"server","version":2,` +
	`"writeKey":null,"_metadata":{"bundled":["Segment.io"]}}`

func TestPipelinesMessageRoundTrip(t *testing.T) {
	var m PipelinesMessage
	if err := json.Unmarshal([]byte(segmentTrack), &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != CallTrack || m.UserID != "u1" || m.Event != "Order Completed" || m.MessageID != "m-1" {
		t.Fatalf("named fields = %+v", m)
	}
	wantExtra := map[string]string{
		"sentAt": `"2026-01-02T03:04:06Z"`, "originalTimestamp": `"2026-01-02T03:04:04Z"`,
		"receivedAt": `"2026-01-02T03:04:07Z"`, "channel": `"server"`, "version": `2`,
		"writeKey": `null`, "_metadata": `{"bundled":["Segment.io"]}`,
	}
	if len(m.Extra) != len(wantExtra) {
		t.Errorf("Extra has %d fields, want %d: %v", len(m.Extra), len(wantExtra), m.Extra)
	}
	for k, v := range wantExtra {
		if string(m.Extra[k]) != v {
			t.Errorf("Extra[%q] = %s, want %s", k, m.Extra[k], v)
		}
	}

	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Named fields in struct order, then the others in key order.
	want := `{"type":"track","userId":"u1","messageId":"m-1","timestamp":"2026-01-02T03:04:05Z",` +
		`"event":"Order Completed","properties":{"total":3},` +
		`"_metadata":{"bundled":["Segment.io"]},"channel":"server","originalTimestamp":"2026-01-02T03:04:04Z",` +
		`"receivedAt":"2026-01-02T03:04:07Z","sentAt":"2026-01-02T03:04:06Z","version":2,"writeKey":null}`
	if string(b) != want {
		t.Errorf("marshal =\n%s\nwant\n%s", b, want)
	}
	var back PipelinesMessage
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip changed the message:\n%+v\n%+v", back, m)
	}
	// Deterministic: the same bytes every time.
	for range 20 {
		if again, _ := json.Marshal(m); string(again) != want {
			t.Fatalf("marshal not deterministic: %s", again)
		}
	}
	// A batch body keeps them too.
	bb, _ := json.Marshal(pipelinesBatchBody{[]PipelinesMessage{m}})
	if !strings.Contains(string(bb), `"sentAt":"2026-01-02T03:04:06Z"`) {
		t.Errorf("batch body lost extra fields: %s", bb)
	}
}

func TestPipelinesMessageExtraEdges(t *testing.T) {
	// No extra fields: Extra stays nil and the encoding is the plain struct's.
	var m PipelinesMessage
	if err := json.Unmarshal([]byte(`{"userId":"u1","traits":{"a":1}}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.Extra != nil {
		t.Errorf("Extra = %v, want nil", m.Extra)
	}
	if b, _ := json.Marshal(m); string(b) != `{"userId":"u1","traits":{"a":1}}` {
		t.Errorf("marshal = %s", b)
	}

	// Keys encoding/json matches to a named field (any case) are not extra.
	m = PipelinesMessage{}
	if err := json.Unmarshal([]byte(`{"UserID":"u2","EVENT":"e","Channel":"web"}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.UserID != "u2" || m.Event != "e" || len(m.Extra) != 1 || string(m.Extra["Channel"]) != `"web"` {
		t.Errorf("m = %+v", m)
	}

	// Named fields win over Extra entries of the same name, set or not; only
	// Extra entries go after them; nil values are null.
	m = PipelinesMessage{UserID: "u1", Extra: map[string]json.RawMessage{
		"userId": json.RawMessage(`"other"`), "event": json.RawMessage(`"x"`), "b": nil, "a": json.RawMessage(` [1, 2] `),
	}}
	if b, err := json.Marshal(m); err != nil || string(b) != `{"userId":"u1","a":[1,2],"b":null}` {
		t.Errorf("marshal = %s, %v", b, err)
	}

	// Only Extra.
	m = PipelinesMessage{Extra: map[string]json.RawMessage{"sentAt": json.RawMessage(`"t"`)}}
	if b, err := json.Marshal(m); err != nil || string(b) != `{"sentAt":"t"}` {
		t.Errorf("marshal = %s, %v", b, err)
	}

	// An invalid raw value is an error, not corrupt JSON.
	m = PipelinesMessage{UserID: "u1", Extra: map[string]json.RawMessage{"bad": json.RawMessage(`{`)}}
	if _, err := m.MarshalJSON(); err == nil {
		t.Error("MarshalJSON accepted an invalid Extra value")
	}
	if err := m.Validate(CallIdentify); err == nil {
		t.Error("Validate accepted a message that cannot be encoded")
	}

	// Type errors in named fields still fail, naming the field.
	err := json.Unmarshal([]byte(`{"userId":"u1","traits":[1]}`), &m)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field != "traits" {
		t.Errorf("err = %v, want an UnmarshalTypeError on traits", err)
	}
	if err := json.Unmarshal([]byte(`[1]`), &m); err == nil {
		t.Error("accepted an array")
	}
}

// TestPipelinesSendsExtra: the client sends the fields PipelinesMessage does
// not name, alone and in a batch.
func TestPipelinesSendsExtra(t *testing.T) {
	c, srv := setup(t)
	var m PipelinesMessage
	if err := json.Unmarshal([]byte(segmentTrack), &m); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(m)
	if err := c.Pipelines(context.Background(), CallTrack, m); err != nil {
		t.Fatal(err)
	}
	r := srv.last(t)
	testRawPath(t, r, "/v1/track")
	testBody(t, r, string(want))
	for _, f := range []string{`"sentAt":"2026-01-02T03:04:06Z"`, `"originalTimestamp":"2026-01-02T03:04:04Z"`, `"channel":"server"`, `"version":2`, `"receivedAt":"2026-01-02T03:04:07Z"`} {
		if !strings.Contains(r.Body, f) {
			t.Errorf("body lacks %s: %s", f, r.Body)
		}
	}

	if err := c.PipelinesBatch(context.Background(), []PipelinesMessage{m}); err != nil {
		t.Fatal(err)
	}
	r = srv.last(t)
	testRawPath(t, r, "/v1/batch")
	testBody(t, r, `{"batch":[`+string(want)+`]}`)
}

// TestPipelinesExtraCountsTowardLimit: the 32,000-byte limit is on the
// encoded message, extra fields included.
func TestPipelinesExtraCountsTowardLimit(t *testing.T) {
	c, srv := setup(t)
	base := PipelinesMessage{UserID: "u1"}
	overhead := len(`{"userId":"u1","pad":""}`)
	pad := func(n int) PipelinesMessage {
		m := base
		v, _ := json.Marshal(strings.Repeat("x", n))
		m.Extra = map[string]json.RawMessage{"pad": v}
		return m
	}
	if err := pad(MaxEntityBytes - overhead).Validate(CallIdentify); err != nil {
		t.Errorf("message of exactly %d bytes refused: %v", MaxEntityBytes, err)
	}
	err := c.Pipelines(context.Background(), CallIdentify, pad(MaxEntityBytes-overhead+1))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "pad" {
		t.Fatalf("err = %v, want a ValidationError naming the field that takes the room (pad)", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests sent for an oversized message", n)
	}
	err = c.PipelinesBatch(context.Background(), []PipelinesMessage{{Type: CallIdentify, UserID: "u1", Extra: pad(MaxEntityBytes).Extra}})
	if !errors.As(err, &ve) || ve.Field != "batch[0].pad" {
		t.Errorf("batch err = %v, want a ValidationError on batch[0].pad", err)
	}
}
