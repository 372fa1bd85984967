package tasks

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// batchBody is the payload of a cio:batch task as EncodeBatch writes it.
func batchBody(t testing.TB, items []BatchItem) []byte {
	t.Helper()
	b, err := EncodeBatch(items, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	env, ok := scanEnvelope(b)
	if !ok {
		t.Fatalf("scanEnvelope refused %s", b)
	}
	return env.Payload
}

// stdBatch decodes b with encoding/json.
func stdBatch(b []byte) (Batch, error) {
	var p Batch
	err := json.Unmarshal(b, &p)
	return p, err
}

// TestScanBatchReadsWhatEncodeBatchWrites: the operations scanBatch reads
// are the ones encoding/json reads, their payloads slices of the task's
// bytes, not copies.
func TestScanBatchReadsWhatEncodeBatchWrites(t *testing.T) {
	items := []BatchItem{
		{Type: TypeTrack, Payload: json.RawMessage(`{"identifiers":{"id":"p1"},"name":"a}]\"{[","data":{"list":[1,[2,{"x":"]"}]],"s":"\\\\"}}`)},
		{Type: TypeIdentify, Payload: json.RawMessage(`{"identifiers":{"email":"a@example.com"},"attributes":{}}`)},
		{Type: TypeTrack, Payload: json.RawMessage(`{}`)},
	}
	b := batchBody(t, items)
	var p Batch
	if !scanBatch(b, &p) {
		t.Fatalf("scanBatch refused %s", b)
	}
	want, err := stdBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("scanBatch read %+v, encoding/json %+v", p, want)
	}
	lo, hi := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[len(b)-1]))
	for i, it := range p.Operations {
		if at := uintptr(unsafe.Pointer(&it.Payload[0])); at < lo || at > hi || cap(it.Payload) != len(it.Payload) {
			t.Errorf("operation %d's payload is not a capped slice of the task's bytes", i)
		}
	}
	var empty Batch
	if !scanBatch([]byte(`{"operations":[]}`), &empty) || len(empty.Operations) != 0 {
		t.Errorf("scanBatch misread an empty list: %+v", empty)
	}
}

// TestScanBatchLeavesTheRestToJSON: whatever EncodeBatch does not write
// is left to the JSON decoders, valid JSON or not.
func TestScanBatchLeavesTheRestToJSON(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `{"operations":null}`, `{"operations":[]} `, `{"operations": []}`,
		`{"operations":[{"type":"cio:track","payload":{}},]}`,
		`{"operations":[{"type":"cio:track","payload":{}}{"type":"cio:track","payload":{}}]}`,
		`{"operations":[{"type":"cio:track","payload":{}}],"x":1}`,
		`{"operations":[{"type":"cio:track","payload":{}}]`,
		`{"operations":[{"type":"cio:track","payload":{}}]}}`,
		`{"operations":[{"type":"cio:tr\u0061ck","payload":{}}]}`,
		`{"operations":[{"type":"cio:track","payload":{"a":"}]}`,
		`{"operations":[{"type":"cio:track","payload":{},"x":1}]}`,
		`{"operations":[{"payload":{},"type":"cio:track"}]}`,
		`{"operations":[{"type":"cio:track","payload":[]}]}`,
		`{"operations":[{"type":"cio:track", "payload":{}}]}`,
		`{"operations":[{"type":"cio:track","payload":{"a":1}`,
	} {
		var p Batch
		if scanBatch([]byte(in), &p) {
			t.Errorf("scanBatch accepted %q: %+v", in, p)
		}
	}
}

// FuzzScanBatch: where scanBatch accepts valid JSON it reads what
// encoding/json reads, and it accepts whatever EncodeBatch writes of the
// operations encoding/json reads.
func FuzzScanBatch(f *testing.F) {
	f.Add([]byte(`{"operations":[{"type":"cio:track","payload":{"identifiers":{"id":"p1"},"name":"x"}}]}`))
	f.Add([]byte(`{"operations":[{"type":"cio:identify","payload":{"a":"}\"]"}},{"type":"x","payload":{"b":[{}]}}]}`))
	f.Add([]byte(`{"operations":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return // Decode refuses it before (CheckUTF8)
		}
		var p Batch
		if scanBatch(b, &p) && json.Valid(b) {
			want, err := stdBatch(b)
			if err != nil {
				t.Fatalf("encoding/json refused what scanBatch read: %v", err)
			}
			if len(want.Operations) != len(p.Operations) {
				t.Fatalf("scanBatch read %d operations, encoding/json %d", len(p.Operations), len(want.Operations))
			}
			for i := range want.Operations {
				if want.Operations[i].Type != p.Operations[i].Type || !bytes.Equal(want.Operations[i].Payload, p.Operations[i].Payload) {
					t.Fatalf("operation %d: scanBatch %q, encoding/json %q", i, p.Operations[i], want.Operations[i])
				}
			}
		}
		want, err := stdBatch(b)
		if err != nil || len(want.Operations) == 0 {
			return
		}
		for _, it := range want.Operations {
			if !json.Valid(it.Payload) || len(bytes.TrimSpace(it.Payload)) == 0 || bytes.TrimSpace(it.Payload)[0] != '{' {
				return
			}
			if strings.ContainsAny(it.Type, `"\`) || !json.Valid([]byte(`"`+it.Type+`"`)) {
				return
			}
		}
		again, err := EncodeBatch(want.Operations, Meta{})
		if err != nil {
			return
		}
		env, _ := scanEnvelope(again)
		var q Batch
		if env == nil || !scanBatch(env.Payload, &q) || len(q.Operations) != len(want.Operations) {
			t.Fatalf("scanBatch refused what EncodeBatch wrote: %s", again)
		}
	})
}
