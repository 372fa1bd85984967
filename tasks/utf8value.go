package tasks

import (
	"bytes"
	"reflect"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/cioq/cioq/customerio"
)

// checkEncoded refuses a payload whose encoding lost or kept text that is
// not UTF-8. out is p's JSON. encoding/json writes a Go string's invalid
// bytes as the escape \ufffd (a real U+FFFD it writes as itself), and copies
// a json.RawMessage's bytes as they are; so valid output with no \ufffd
// escape and no surrogate escape comes from valid strings, and only other
// output needs a closer look: p's strings first (to name the Go string at
// fault by its JSON path), then out itself (raw JSON inside p).
func checkEncoded(p Payload, out []byte) error {
	if utf8.Valid(out) {
		i := bytes.IndexByte(out, '\\') // most payloads have no escape at all
		if i < 0 || !hasSurrogateEscape(out[i:]) && !hasReplacementEscape(out[i:]) {
			return nil
		}
	}
	if err := checkStrings(reflect.ValueOf(p), ""); err != nil {
		return err
	}
	return CheckUTF8(out) // nil when the \ufffd was written as such in raw JSON
}

// hasReplacementEscape reports whether b holds the escape \ufffd (not an
// escaped backslash followed by "ufffd").
func hasReplacementEscape(b []byte) bool {
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(`\ufffd`))
		if i < 0 {
			return false
		}
		i += off
		n := 0 // backslashes before the one of the escape
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		off = i + 1
	}
}

// checkStrings walks a Go value as encoding/json encodes it and returns a
// *customerio.ValidationError for the first string (or map key) that is
// not valid UTF-8, named by its JSON path. Struct fields go by their json
// names, embedded structs are inlined, fields tagged "-" are skipped except
// a map of string keys (the convention of PipelinesMessage.Extra, whose
// keys are written inline), []byte (base64, or raw JSON that checkEncoded
// checks in the output) is skipped. Map keys are visited in order, so the
// answer is the same every time.
func checkStrings(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkStrings(v.Elem(), path)
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return &customerio.ValidationError{Field: path, Reason: "is not valid UTF-8"}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := jsonName(f)
			switch {
			case f.Tag.Get("json") == "-":
				if f.Type.Kind() == reflect.Map && f.Type.Key().Kind() == reflect.String {
					if err := checkMapKeys(v.Field(i), path); err != nil {
						return err
					}
				}
				continue
			case f.Anonymous && name == "":
				if err := checkStrings(v.Field(i), path); err != nil {
					return err
				}
				continue
			case !f.IsExported():
				continue
			case name == "":
				name = f.Name
			}
			if err := checkStrings(v.Field(i), joinPath(path, name)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil
		}
		if err := checkMapKeys(v, path); err != nil {
			return err
		}
		for _, k := range sortedKeys(v) {
			if err := checkStrings(v.MapIndex(k), joinPath(path, k.String())); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil
		}
		for i := 0; i < v.Len(); i++ {
			if err := checkStrings(v.Index(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkMapKeys(m reflect.Value, path string) error {
	for _, k := range sortedKeys(m) {
		if !utf8.ValidString(k.String()) {
			return &customerio.ValidationError{Field: path, Reason: "has a key that is not valid UTF-8"}
		}
	}
	return nil
}

func sortedKeys(m reflect.Value) []reflect.Value {
	keys := m.MapKeys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}
