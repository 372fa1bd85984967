package tasks

import (
	"encoding/json"

	gojson "github.com/goccy/go-json"
)

// Decoding payloads fast.
//
// encoding/json decodes a task's payload in about 4 µs (a cio:track with a
// few data attributes), most of the worker's CPU for a multi-operation
// task. github.com/goccy/go-json decodes the same types into the same
// values about five times faster. It is used for the success path only:
// when it refuses a payload, encoding/json decodes it again into a fresh
// value, so the error (and its description, DescribeJSONError, which reads
// encoding/json's error types) and any value it still yields are
// encoding/json's. The payload was checked for valid UTF-8 first (Decode
// calls CheckUTF8 on the whole task), where the two libraries differ.
// FuzzFastDecode checks, over every registered type, that both give the
// same value where encoding/json succeeds and that go-json does not accept
// what encoding/json refuses.

// unmarshalPayload decodes b into a new payload of spec's type (see above).
func unmarshalPayload(spec Spec, b []byte) (Payload, error) {
	p := spec.New()
	if bp, ok := p.(*Batch); ok && scanBatch(b, bp) {
		return p, nil
	}
	if fastUnmarshal(b, p) {
		return p, nil
	}
	p = spec.New()
	if err := json.Unmarshal(b, p); err != nil {
		return p, err
	}
	return p, nil
}

// fastUnmarshal decodes b into v with go-json and reports whether it did.
// A panic in go-json (none is known; a malformed task must never crash a
// worker) counts as a refusal: encoding/json decodes b again.
func fastUnmarshal(b []byte, v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return gojson.Unmarshal(b, v) == nil
}

// fastEncode encodes v with go-json's enc and reports whether it did; a
// panic counts as a refusal, as in fastUnmarshal.
func fastEncode(enc *gojson.Encoder, v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return enc.Encode(v) == nil
}
