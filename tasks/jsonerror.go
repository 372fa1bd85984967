package tasks

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/cioq/cioq/customerio"
)

// DescribeJSONError describes an error of encoding/json decoding the JSON
// text b into v (the pointer given to json.Unmarshal; nil when unknown) the
// way cioq's errors name things: field is the JSON path of the offending
// value as written in b ("timestamp", "per_user_data[1].id",
// "device.attributes.os"; "" for the top level or when not known) and
// reason says what was expected and what was found ("must be an integer,
// got 1.5", "must be a string, got an object").
//
// The reason never quotes a string of b. A number is shown only when the
// field expects a number (it is then fractional or out of range, as in
// "timestamp": 1.5); identifiers are strings in every payload, so a number
// given for one is "got a number", never its digits.
func DescribeJSONError(b []byte, err error, v any) (field, reason string) {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return typeErrorPath(b, te, v), typeReason(te)
	case errors.As(err, &se):
		return "", "malformed JSON at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "", "truncated JSON"
	case errors.Is(err, io.EOF):
		return "", "empty"
	}
	return "", "has an invalid value"
}

// typeErrorPath finds the JSON path of a type error: from its offset in b
// when that points at a value of the kind the error found (it does for
// every error encoding/json itself makes), else from its Field, a dotted
// path of Go struct fields in which embedded structs appear by their Go
// name (dropped here) and array indices are missing.
func typeErrorPath(b []byte, te *json.UnmarshalTypeError, v any) string {
	if p, val, ok := pathAt(b, te.Offset); ok && kindMatches(te.Value, val) {
		return p
	}
	if te.Field == "" {
		return ""
	}
	return fieldPath(reflect.TypeOf(v), te.Field)
}

// kindMatches reports whether val (JSON) is of the kind an
// UnmarshalTypeError's Value names ("string", "number 1.5", "object", ...).
func kindMatches(kind string, val []byte) bool {
	if len(val) == 0 {
		return false
	}
	c := val[0]
	switch k, _, _ := strings.Cut(kind, " "); k {
	case "string":
		return c == '"'
	case "number":
		return c == '-' || c >= '0' && c <= '9'
	case "bool":
		return c == 't' || c == 'f'
	case "object":
		return c == '{'
	case "array":
		return c == '['
	}
	return false
}

// fieldPath maps encoding/json's Go-ish Field ("SendOptions.message_data",
// "TriggerBroadcastRequest.per_user_data.id") to JSON names by walking t:
// embedded structs' names are dropped. An index or map key it cannot know
// is left out.
func fieldPath(t reflect.Type, goField string) string {
	var out []string
	for _, seg := range strings.Split(goField, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(seg); ok && f.Anonymous && jsonName(f) == "" {
				t = f.Type
				continue
			}
			if f, ok := fieldByJSONName(t, seg); ok {
				out = append(out, seg)
				t = f.Type
				continue
			}
		}
		out = append(out, seg)
		t = nil
	}
	return strings.Join(out, ".")
}

// jsonName is the name a struct field's json tag gives it ("" when none).
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		n := jsonName(f)
		if n == "" && !f.Anonymous {
			n = f.Name
		}
		if n == name && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

var messageIDType = reflect.TypeFor[customerio.MessageID]()

// typeReason is "must be <expected>, got <found>".
func typeReason(te *json.UnmarshalTypeError) string {
	return "must be " + expectedKind(te.Type) + ", got " + foundKind(te)
}

func expectedKind(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == messageIDType {
		return "a number or a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON type"
}

func isNumber(t reflect.Type) bool {
	if t == nil {
		return false
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// maxShownNumber bounds the digits of a number shown in a reason.
const maxShownNumber = 24

func foundKind(te *json.UnmarshalTypeError) string {
	kind, num, _ := strings.Cut(te.Value, " ")
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "object":
		return "an object"
	case "array":
		return "an array"
	case "number":
		switch {
		case num == "" || !isNumber(te.Type):
			return "a number"
		case len(num) > maxShownNumber:
			return "a number out of range"
		}
		return num
	}
	return "another JSON type"
}
