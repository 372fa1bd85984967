package tasks

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestScanEnvelopeAgreesWithMap checks the fast path of Decode against the
// general one: wherever scanEnvelope accepts an envelope whose payload is
// valid JSON, envelopeFromMap reads the same envelope; and what cioq writes
// is accepted.
func TestScanEnvelopeAgreesWithMap(t *testing.T) {
	written, err := EncodeRaw(json.RawMessage(`{"identifiers":{"id":"p1"},"name":"x"}`), Meta{
		Workspace: "eu-1", ExpiresAt: time.Unix(1767225600, 0), EnqueuedAt: time.UnixMilli(1767222000123),
		OrderKey: "0123abcd", Seq: 7, IdempotencyKey: "order:person-7731",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
	})
	if err != nil {
		t.Fatal(err)
	}
	if env, ok := scanEnvelope(written); !ok || env.TraceParent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || env.TraceState != "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7" {
		t.Fatalf("scanEnvelope refused (or misread) what EncodeRaw wrote: %s", written)
	}
	plain, _ := EncodeRaw(json.RawMessage(`{}`), Meta{})
	if _, ok := scanEnvelope(plain); !ok {
		t.Fatalf("scanEnvelope refused what EncodeRaw wrote: %s", plain)
	}
	inputs := []string{
		string(written), string(plain),
		`{"v":1,"payload":{"a":1}}`,
		`{"v":1,"enqueued_at":-0,"payload":{"a":1}}`,
		`{"v":1,"seq":3,"order_key":"k","payload":{}}`,
		`{"v":1,"idempotency_key":"order:1","payload":{}}`,
		`{"v":1,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","payload":{}}`,
		`{"v":1,"traceparent":"00-a-b-01","tracestate":"k=v","payload":{}}`,
		`{"v":1,"tracestate":"k=v","payload":{}}`,
		`{"v":1,"traceparent":"a","traceparent":"b","payload":{}}`,
		`{"v":1,"traceparent":1,"payload":{}}`,
		`{"v":1,"tracestate":"k=\u0076","payload":{}}`,
		`{"v":1,"idempotency_key":"a","idempotency_key":"b","payload":{}}`,
		`{"v":1,"idempotency_key":7,"payload":{}}`,
		`{"v":1,"payload":{"a":1},"x":{"b":2}}`,
		`{"v":1,"payload":{"a":1},"v":2}`,
		`{"v":1,"v":2,"payload":{}}`,
		`{"v":1,"workspace":"a","workspace":"b","payload":{}}`,
		`{"v":1,"workspace":"A","payload":{}}`,
		`{"v":1,"workspace":"a\"b","payload":{}}`,
		`{"v":1,"workspace":"é","payload":{}}`,
		`{"v":1,"expires_at":1.5,"payload":{}}`,
		`{"v":1,"expires_at":01,"payload":{}}`,
		`{"v":1,"expires_at":"1","payload":{}}`,
		`{"v":1,"expires_at":99999999999999999999,"payload":{}}`,
		`{"v":1,"p\u0061yload":{},"payload":{}}`,
		`{"v":1,"V":2,"payload":{}}`,
		`{"v":1,"payload":{} }`,
		`{"v":1, "payload":{}}`,
		`{"v":1,"payload":null}`,
		`{"v":1,"payload":[]}`,
		`{"v":10,"payload":{}}`,
		`{"v":1,"payload":{"a":"}"}}`,
		`{"v":1,"extra":true,"payload":{}}`,
		`{"v":1,"payload":{"x":1}`,
	}
	for _, in := range inputs {
		b := []byte(in)
		fast, ok := scanEnvelope(b)
		if !ok || !json.Valid(fast.Payload) {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("%s: scanEnvelope accepted invalid JSON: %v", in, err)
			continue
		}
		slow, err := envelopeFromMap("t", m)
		if err != nil {
			t.Errorf("%s: scanEnvelope accepted, envelopeFromMap refused: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s:\nfast %+v\nslow %+v", in, fast, slow)
		}
	}
}

// TestTraceContextRoundTrip: the trace context a producer writes is read
// back by Decode (fast and general path) and kept by MarshalJSON, next to
// an unknown field.
func TestTraceContextRoundTrip(t *testing.T) {
	const tp, ts = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rojo=00f067aa0ba902b7"
	b, err := EncodeRaw(json.RawMessage(`{"identifiers":{"id":"p1"},"name":"x"}`), Meta{TraceParent: tp, TraceState: ts})
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := Decode(TypeTrack, b)
	if err != nil || env.TraceParent != tp || env.TraceState != ts {
		t.Fatalf("Decode: %+v, %v", env, err)
	}
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	m["future"] = json.RawMessage(`{"x":1}`)
	withExtra, _ := json.Marshal(m)
	env, _, err = Decode(TypeTrack, withExtra)
	if err != nil || env.TraceParent != tp || env.Extra["future"] == nil {
		t.Fatalf("Decode with an unknown field: %+v, %v", env, err)
	}
	again, _ := env.MarshalJSON()
	env2, _, err := Decode(TypeTrack, again)
	if err != nil || env2.TraceParent != tp || env2.TraceState != ts || string(env2.Extra["future"]) != `{"x":1}` {
		t.Fatalf("after MarshalJSON: %+v, %v (%s)", env2, err, again)
	}
}
