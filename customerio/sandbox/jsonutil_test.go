package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

// refDecodeValue is decodeValue as it was (encoding/json's Decoder with
// UseNumber, then normalize): the reference the one-pass parser must
// match.
func refDecodeValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("request body is not valid JSON")
	}
	return normalize(v), nil // normalize is unchanged
}

// refV2Envelope is v2Batch's envelope decoding as it was.
func refV2Envelope(body []byte) ([]v2Item, bool) {
	var env struct {
		Batch []json.RawMessage `json:"batch"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&env); err != nil || env.Batch == nil {
		return nil, false
	}
	items := make([]v2Item, 0, len(env.Batch))
	for _, raw := range env.Batch {
		v, err := refDecodeValue(raw)
		if err != nil {
			panic("an element encoding/json took is not valid JSON: " + string(raw))
		}
		m, _ := v.(map[string]any)
		items = append(items, v2Item{size: len(raw), obj: m})
	}
	return items, true
}

// jsonSeeds are inputs for the differential test and the fuzz test's
// corpus.
var jsonSeeds = []string{
	``, ` `, `{}`, `[]`, `null`, `true`, `false`, `nul`, `tru`, `nullx`, `0`, `-0`, `-`, `01`, `1.`, `.5`, `1.0`, `1e2`,
	`1E+2`, `1e-2`, `-1.5e-300`, `1e400`, `-1e400`, `1e-400`, `9007199254740993`, `9223372036854775807`,
	`9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`, `999999999999999999`,
	`1000000000000000000`, `-999999999999999999`, `123456789012345678901234567890`, `0.1`, `+1`, `Infinity`, `NaN`,
	`""`, `"a"`, `"\ud800"`, `"\ud800\udc00"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800x"`, `"\uD83D\uDE00"`,
	`"\u00e9"`, `"\u0000"`, `"\x"`, `"\'"`, `"\u12"`, `"\u12G4"`, `"a\"b\\c\/d\b\f\n\r\t"`, "\"\xff\"", "\"\xed\xa0\x80\"",
	"\"\xc3\xa9\"", "\"\xe2\x82\"", "\"\x01\"", "\"\x7f\"", `"unterminated`, `"\`, "\"a\x00\"",
	`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":null}]},"a":[true]}`, `{"a":1,}`, `[1,]`, `[,1]`, `{"a" 1}`, `{1:2}`,
	`{"a":1}}`, `{"a":1} {"b":2}`, `{"a":1} x`, "{\"a\":1}\t\r\n ", " \n{\"a\" : [ 1 , 2 ] }", `{"a":1}]`,
	"\ufeff{}", "\v{}", "{}\v", `[[[[]]]]`, `{"":""}`, `{"\u0061":1,"a":2}`, "{\"\xff\":1,\"\ufffd\":2}",
	`{"type":"person","identifiers":{"id":"user-123"},"action":"event","name":"signed_up","id":"01HF3ZJ4T3W9Y6Y1V2E3K4M5N6","timestamp":1700000000,"attributes":{"plan":"pro","n":3,"ok":true}}`,
	`{"batch":[]}`, `{"batch":null}`, `{"batch":{}}`, `{"batch":5}`, `{"BATCH":[1]}`, `{"Batch":[{}]}`,
	`{"b\u0061tch":[{"a":1}]}`, `{"batch":[1],"batch":null}`, `{"batch":null,"batch":[{}]}`, `{"batch":5,"batch":[]}`,
	`{"batch":[{"a":1}],"batch":[2]}`, `{"batch":[]} trailing`, `{"batch":[]}}`, `{"batch":[]`, `{"batch":[1 2]}`,
	`{"other":{"x":[1,2]},"batch":[ {"a":1} , 2 ,"s",null,[] ,{"b":[{}]}],"more":"x"}`, `{"batch":[{"a":1},]}`,
	`{"batch":[nul]}`, `{"batch":[{"a":"\ud800"}]}`, `{"batch":"x"}`, `{"batch":[],"x":}`, `{,"batch":[]}`,
	"{\"batch\":[{\"a\":\"\xff\"}]}", `{"batch":[{"type":"person","action":"event","name":"x"}]}`, `{"batchx":[]}`,
}

func deep(n int, open, close string) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

// checkJSON fails when decodeValue or v2Envelope judge b otherwise than
// their reference.
func checkJSON(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := decodeValue(b)
	ref, refErr := refDecodeValue(b)
	if (gotErr != nil) != (refErr != nil) || !reflect.DeepEqual(got, ref) {
		t.Fatalf("decodeValue(%q) = %#v, %v; encoding/json gives %#v, %v", b, got, gotErr, ref, refErr)
	}
	checkJSONLen(t, got)
	if s, ok := got.(string); ok {
		checkJSONLen(t, string(b)) // raw bytes, invalid UTF-8 kept
		checkJSONLen(t, s)
	}
	for _, body := range [][]byte{b, append(append([]byte(`{"batch":[`), b...), "]}"...)} {
		items, ok := v2Envelope(body)
		refItems, refOK := refV2Envelope(body)
		if ok != refOK || !reflect.DeepEqual(items, refItems) {
			t.Fatalf("v2Envelope(%q) = %#v, %v; encoding/json gives %#v, %v", body, items, ok, refItems, refOK)
		}
	}
}

func TestDecodeValueMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkJSON(t, []byte(s))
	}
	// encoding/json's nesting limit: 10,000 levels, the envelope's two
	// included.
	for _, n := range []int{9997, 9998, 9999, 10000, 10001} {
		checkJSON(t, []byte(deep(n, "[", "]")))
		checkJSON(t, []byte(strings.Repeat(`{"a":`, n)+"1"+strings.Repeat("}", n)))
	}
	checkJSON(t, v2BatchBody(3))
}

// refDecodeObject is decodeObject as it was, over refDecodeValue.
func refDecodeObject(b []byte, allowEmpty bool) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return map[string]any{}, nil
		}
		return nil, errors.New("request body must be a JSON object")
	}
	v, err := refDecodeValue(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("request body must be a JSON object")
	}
	return m, nil
}

func TestDecodeObject(t *testing.T) {
	for _, s := range []string{"", " \v\u00a0", "\v{}", "[]", "1", "{}", `{"a":1}`, "{"} {
		for _, allowEmpty := range []bool{false, true} {
			got, err := decodeObject([]byte(s), allowEmpty)
			want, wantErr := refDecodeObject([]byte(s), allowEmpty)
			if !reflect.DeepEqual(got, want) || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Errorf("decodeObject(%q, %v) = %v, %v; want %v, %v", s, allowEmpty, got, err, want, wantErr)
			}
		}
	}
}

// refJSONLen is jsonLen as it was.
func refJSONLen(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

func checkJSONLen(t *testing.T, v any) {
	t.Helper()
	if got, want := jsonLen(v), refJSONLen(v); got != want {
		t.Fatalf("jsonLen(%#v) = %d, json.Marshal writes %d bytes", v, got, want)
	}
}

func TestJSONLenMatchesMarshal(t *testing.T) {
	for c := range 256 {
		checkJSONLen(t, string([]byte{byte(c)}))
		checkJSONLen(t, map[string]any{string([]byte{'k', byte(c)}): "x" + string([]byte{byte(c)})})
	}
	for _, s := range []string{"\u2028", "\u2029", "\u2027", "é", "日本", "😀", "\xed\xa0\x80", "\xe2\x82", "a<b>&c", "\ufffd"} {
		checkJSONLen(t, s)
	}
	inf := math.Inf(1)
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 123.456, 1e-6, 9.99e-7, 1e-7, 1.5e-7, 1e20, 1e21, 9.99e20,
		-1e21, 1.5e300, 5e-324, math.MaxFloat64, -math.SmallestNonzeroFloat64, 1e-10, 1e-100, 123456789.125, inf, -inf, math.NaN()} {
		checkJSONLen(t, f)
		checkJSONLen(t, map[string]any{"a": []any{f, "x"}, "b": true})
	}
	for _, v := range []any{
		int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), true, false, nil,
		map[string]any(nil), []any(nil), map[string]any{}, []any{}, []any{nil, []any{}, map[string]any{"": nil}},
		map[string]any{"a": 1, "b": []string{"x"}}, []any{int64(1), 2}, map[string]any{"a": map[string]any{"b": inf}},
		json.Number("1"), []any{"a", map[string]any{"t": func() {}}},
	} {
		checkJSONLen(t, v)
	}
}

// FuzzDecodeValue compares decodeValue and v2Envelope with encoding/json
// (run: go test -run X -fuzz FuzzDecodeValue ./customerio/sandbox).
func FuzzDecodeValue(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkJSON(t, b)
	})
}

// FuzzJSONLen compares jsonLen with json.Marshal on numbers and strings
// (run: go test -run X -fuzz FuzzJSONLen ./customerio/sandbox).
func FuzzJSONLen(f *testing.F) {
	f.Add(0.0, int64(0), "")
	f.Add(1e-7, int64(-1), "a<b>\u2028")
	f.Add(1e21, int64(math.MaxInt64), "\xff\xed\xa0\x80")
	f.Add(123.456, int64(math.MinInt64), "\x00\x1f\"\\")
	f.Fuzz(func(t *testing.T, x float64, i int64, s string) {
		checkJSONLen(t, map[string]any{s: []any{x, i, s}})
	})
}
