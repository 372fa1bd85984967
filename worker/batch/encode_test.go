package batch

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/cioq/cioq/customerio"
)

// FuzzEncode checks that encode writes exactly encoding/json's bytes for
// any operation (read from the fuzzer's JSON with encoding/json).
func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		`{"type":"person","action":"event","identifiers":{"id":"u1"},"name":"signed_up","id":"01J0000000000000000000000A","timestamp":1700000000,"attributes":{"plan":"pro","n":3,"ok":true,"f":1.5,"z":null,"nested":{"b":[1,"x",null,{"c":false}],"a":1e21}}}`,
		`{"type":"person","action":"identify","identifiers":{"email":"a<b>&c@example.com"},"attributes":{"html":"<script>&amp;</script>","ls":"\u2028\u2029","ctl":"\u0001\u001f\t\n","big":9007199254740993,"small":1e-7,"neg":-0.0,"exp":123456789012345678901234567890}}`,
		`{"type":"object","action":"identify","identifiers":{"object_type_id":"1","object_id":"acme"},"attributes":{"k":"v"},"cio_relationships":[{"identifiers":{"id":"u1"},"relationship_attributes":{"role":"admin"}}]}`,
		`{"type":"person","action":"merge","primary":{"id":"u1"},"secondary":{"email":"x@example.com"}}`,
		`{"type":"person","action":"add_device","identifiers":{"id":"u1"},"device":{"token":"t","platform":"ios","last_used":1700000000,"attributes":{"app_version":"1.0"}}}`,
		`{"type":"person","action":"event","identifiers":{"id":"u1"},"name":"\ud83d\ude00 é","attributes":{"":"empty key","\u00e9":1,"a\"b":2}}`,
		`{"attributes":{"f1":0.1,"f2":100000000000000000000,"f3":1e20,"f4":1e-6,"f5":123.456e-10,"f6":-1.7976931348623157e308}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var op customerio.Operation
		if json.Unmarshal(b, &op) != nil {
			return
		}
		want, werr := encodeStd(&op)
		got, gerr := encode(&op)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encode error %v, encoding/json's %v", b, gerr, werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: encode wrote\n%s\nencoding/json writes\n%s", b, got, want)
		}
	})
}

// BenchmarkEncode compares encode with encoding/json for a cio:track
// operation.
func BenchmarkEncode(b *testing.B) {
	op := customerio.Operation{Type: "person", Action: "event", Identifiers: &customerio.Identifiers{ID: "user-123"},
		Name: "signed_up", ID: "01J0000000000000000000000A", Timestamp: 1700000000,
		Attributes: map[string]any{"plan": "pro", "n": 3.0, "ok": true}}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeStd(&op); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encode(&op); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestEncodeOddStrings checks encode against encoding/json on strings a
// decoder never yields: invalid UTF-8, lone surrogates, NUL.
func TestEncodeOddStrings(t *testing.T) {
	for _, s := range []string{"\xff", "a\xc3", "\xed\xa0\x80", "\x00", "\u2028<>&", "\x7f"} {
		op := customerio.Operation{Type: "person", Action: "identify", Identifiers: &customerio.Identifiers{ID: s},
			Attributes: map[string]any{s: s, "n": []any{s, 1.5, int64(3), uint8(2), nil}}}
		want, werr := encodeStd(&op)
		got, gerr := encode(&op)
		if werr != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: encode wrote %s (%v), encoding/json %s (%v)", s, got, gerr, want, werr)
		}
	}
}

// TestEncodeUnsupported checks that encode refuses what encoding/json
// refuses.
func TestEncodeUnsupported(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), math.Inf(-1), make(chan int), func() {}, complex(1, 2)} {
		op := customerio.Operation{Type: "person", Action: "identify", Attributes: map[string]any{"v": v}}
		if _, err := encodeStd(&op); err == nil {
			t.Fatalf("%T: encoding/json encodes it", v)
		}
		if b, err := encode(&op); err == nil {
			t.Errorf("%T: encode wrote %s, encoding/json refuses it", v, b)
		}
	}
}

// panicky's MarshalJSON panics, standing in for a go-json bug.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom") }

// TestEncodePanicIsARefusal checks that a panic inside go-json is
// recovered as a refusal (encode then falls back to encoding/json).
func TestEncodePanicIsARefusal(t *testing.T) {
	op := customerio.Operation{Type: "person", Action: "identify", Attributes: map[string]any{"v": panicky{}}}
	if b, ok := fastEncode(&op); ok {
		t.Errorf("fastEncode: a panic reported as success (%s)", b)
	}
}
