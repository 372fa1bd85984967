package tasks

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzJSONWalk: the scanner never panics, whatever the input; CheckUTF8
// passes valid text without escapes; a JSON text encoding/json reads
// without replacing anything (all strings valid) passes; and a type
// error's path is found inside the input.
func FuzzJSONWalk(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x",{"b":true}]}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `[[],{},""]`, `{"a\u002e":{"b":[null,-1.5e3]}}`, `{"a":`, `"\`} {
		f.Add([]byte(s), int64(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, off int64) {
		err := CheckUTF8(b)
		if utf8.Valid(b) && bytes.IndexByte(b, '\\') < 0 && err != nil {
			t.Fatalf("CheckUTF8(%q) = %v on valid text without escapes", b, err)
		}
		if json.Valid(b) && utf8.Valid(b) && !bytes.Contains(b, []byte(`\u`)) && err != nil {
			t.Fatalf("CheckUTF8(%q) = %v on valid JSON without \\u escapes", b, err)
		}
		if json.Valid(b) && !utf8.Valid(b) && err == nil {
			t.Fatalf("CheckUTF8(%q) = nil on JSON that is not UTF-8", b)
		}
		if _, val, ok := pathAt(b, off); ok && !bytes.Contains(b, val) {
			t.Fatalf("pathAt found %q, not in the input", val)
		}
	})
}
