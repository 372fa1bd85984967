package tasks

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	gojson "github.com/goccy/go-json"
)

// fastDecodeSeeds are payloads of several types, valid and not, that the
// fast path must decode as encoding/json does.
var fastDecodeSeeds = []string{
	`{"identifiers":{"id":"u1"},"name":"signed_up","id":"01J0000000000000000000000A","timestamp":1700000000,"data":{"plan":"pro","n":3,"ok":true,"f":1.5,"nested":{"a":[1,"x",null,{"b":false}]}}}`,
	`{"identifiers":{"email":"a@example.com"},"attributes":{"created_at":1700000000,"big":9007199254740993,"neg":-0,"exp":1e300,"s":"\u00e9\n\t\"\\\/"}}`,
	`{"transactional_message_id":"welcome","to":"a@example.com","identifiers":{"id":"u1"},"message_data":{"first_name":"A","items":[{"n":1}]}}`,
	`{"Identifiers":{"ID":"u1"},"NAME":"case","Timestamp":5}`,
	`{"name":"dup","name":"dup2","data":{"k":1,"k":2}}`,
	`{"timestamp":"1700000000"}`,
	`{"timestamp":1.5}`,
	`{"timestamp":1e3}`,
	`{"timestamp":99999999999999999999}`,
	`{"identifiers":"u1"}`,
	`{"data":[1,2]}`,
	`{"data":null,"identifiers":null}`,
	`{"name":"x"} trailing`,
	`{"name":"x"}{"name":"y"}`,
	`{"name":"x",}`,
	`{"name":"x"`,
	`{"name":"\ud83d\ude00"}`,
	`{"name":"x","data":{"a":1e400}}`,
	`{"name":"x","data":{"a":01}}`,
	`{"name":"x","data":{"a":-}}`,
	`{"name":"x","data":{"a":tru}}`,
	`{"name":"x","data":{"a":"\x01"}}`,
	`[]`,
	`null`,
	`{}`,
	` {"name" : "sp" } `,
	`{"operations":[{"type":"cio:track","payload":{"identifiers":{"id":"u1"},"name":"e"}}]}`,
	`{"type":"page","name":"/x","properties":{"a":1},"userId":"u1","extra":{"k":[1]}}`,
	`{"message_id":123,"message_id":"abc"}`,
	`{"message_id":1.5}`,
}

// FuzzFastDecode checks unmarshalPayload against encoding/json for every
// registered payload type: where encoding/json decodes b, the result is
// the same value; where it refuses b, so does unmarshalPayload (with
// encoding/json's error).
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckUTF8(b) != nil {
			return // refused before any payload is decoded
		}
		for _, spec := range types {
			want := spec.New()
			werr := json.Unmarshal(b, want)
			got, gerr := unmarshalPayload(spec, b)
			switch {
			case werr != nil && gerr == nil:
				t.Fatalf("%s: encoding/json refuses %q (%v), the fast path decodes it to %#v", spec.Type, b, werr, got)
			case werr == nil && gerr != nil:
				t.Fatalf("%s: encoding/json decodes %q, the fast path refuses it: %v", spec.Type, b, gerr)
			case werr != nil && gerr.Error() != werr.Error():
				t.Fatalf("%s: %q: error %q, want encoding/json's %q", spec.Type, b, gerr, werr)
			case werr == nil && !reflect.DeepEqual(got, want):
				t.Fatalf("%s: %q decodes to\n%#v\nwant (encoding/json)\n%#v", spec.Type, b, got, want)
			}
		}
	})
}

// BenchmarkDecodeTrack compares decoding a cio:track payload with
// encoding/json and with the fast path.
func BenchmarkDecodeTrack(b *testing.B) {
	payload := []byte(fastDecodeSeeds[0])
	spec := registry[TypeTrack]
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := json.Unmarshal(payload, spec.New()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unmarshalPayload(spec, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzFastEncode checks that github.com/goccy/go-json, which
// marshalPooled encodes with, writes exactly json.Marshal's bytes for a
// payload of every registered type (read from the fuzzer's JSON with
// encoding/json), and refuses what json.Marshal refuses.
func FuzzFastEncode(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"data":{"html":"<b>&amp;</b>","ls":"\u2028\u2029","ctl":"\u0001\u007f","f1":1e21,"f2":1e-7,"f3":0.000001,"f4":-0.0,"f5":123456789.125}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, spec := range types {
			p := spec.New()
			if json.Unmarshal(b, p) != nil {
				continue
			}
			want, werr := json.Marshal(p)
			got, gerr := gojson.Marshal(p)
			switch {
			case werr != nil && gerr == nil:
				t.Fatalf("%s: %q: go-json writes %s, json.Marshal refuses it: %v", spec.Type, b, got, werr)
			case werr == nil && gerr == nil && !bytes.Equal(got, want):
				t.Fatalf("%s: %q: go-json writes\n%s\njson.Marshal writes\n%s", spec.Type, b, got, want)
			}
			if werr != nil {
				continue
			}
			eb, out, err := marshalPooled(p)
			if err == nil {
				if !bytes.Equal(out, want) {
					t.Fatalf("%s: %q: marshalPooled writes\n%s\njson.Marshal writes\n%s", spec.Type, b, out, want)
				}
				eb.release()
			}
		}
	})
}

// panicky panics in go-json's hands (its methods are called by both
// libraries; here they stand in for a go-json bug).
type panicky struct{}

func (*panicky) UnmarshalJSON([]byte) error  { panic("boom") }
func (panicky) MarshalJSON() ([]byte, error) { panic("boom") }

// TestFastPathPanicIsARefusal checks that a panic inside go-json is
// recovered as a refusal, so the caller falls back to encoding/json.
func TestFastPathPanicIsARefusal(t *testing.T) {
	if fastUnmarshal([]byte(`{}`), &panicky{}) {
		t.Error("fastUnmarshal: a panic reported as success")
	}
	var buf bytes.Buffer
	if fastEncode(gojson.NewEncoder(&buf), panicky{}) {
		t.Error("fastEncode: a panic reported as success")
	}
}
