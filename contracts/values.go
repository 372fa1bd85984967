package contracts

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The values a contract looks at come from JSON decoded by cioq
// (map[string]any, []any, json.Number or float64, string, bool, nil) or
// from Go code calling the producer (any Go value json.Marshal accepts).
// These helpers read both without encoding the common cases.

// jsonKind returns the JSON type of v: TypeString, TypeNumber, TypeBoolean,
// TypeArray, TypeObject, or "null".
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return TypeString
	case bool:
		return TypeBoolean
	case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return TypeNumber
	case map[string]any:
		return TypeObject
	case []any:
		return TypeArray
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return "null"
		}
		rv = rv.Elem()
	}
	if _, ok := v.(json.Marshaler); ok {
		return roundTripKind(v)
	}
	switch rv.Kind() {
	case reflect.String:
		return TypeString
	case reflect.Bool:
		return TypeBoolean
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return TypeNumber
	case reflect.Map, reflect.Struct:
		return TypeObject
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return "null"
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 { // []byte encodes as a base64 string
			return TypeString
		}
		return TypeArray
	}
	return roundTripKind(v)
}

func roundTripKind(v any) string {
	n, ok := normalize(v)
	if !ok {
		return "null"
	}
	return jsonKind(n)
}

// normalize returns v as decoded JSON (objects map[string]any, numbers
// json.Number), by encoding and decoding it.
func normalize(v any) (any, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if dec.Decode(&out) != nil {
		return nil, false
	}
	return out, true
}

// asObject returns v as an object.
func asObject(v any) (map[string]any, bool) {
	if m, ok := v.(map[string]any); ok {
		return m, true
	}
	if jsonKind(v) != TypeObject {
		return nil, false
	}
	if m, ok := v.(map[string]string); ok {
		out := make(map[string]any, len(m))
		for k, s := range m {
			out[k] = s
		}
		return out, true
	}
	n, ok := normalize(v)
	if !ok {
		return nil, false
	}
	m, ok := n.(map[string]any)
	return m, ok
}

// asArray returns v as an array.
func asArray(v any) ([]any, bool) {
	if a, ok := v.([]any); ok {
		return a, true
	}
	if jsonKind(v) != TypeArray {
		return nil, false
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		n, ok := normalize(v)
		a, _ := n.([]any)
		return a, ok && a != nil
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// number returns v as a float64 and its JSON text, when v is a number.
func number(v any) (float64, string, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, x.String(), err == nil
	case float64:
		return x, strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return float64(x), strconv.Itoa(x), true
	case int64:
		return float64(x), strconv.FormatInt(x, 10), true
	}
	if jsonKind(v) != TypeNumber {
		return 0, "", false
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		rv = rv.Elem()
	}
	switch {
	case rv.CanInt():
		return float64(rv.Int()), strconv.FormatInt(rv.Int(), 10), true
	case rv.CanUint():
		return float64(rv.Uint()), strconv.FormatUint(rv.Uint(), 10), true
	case rv.CanFloat():
		return rv.Float(), strconv.FormatFloat(rv.Float(), 'f', -1, 64), true
	}
	return 0, "", false
}

// numberText reports whether s is a JSON number (what "1000" is coerced
// from: no spaces inside, no hex, no NaN or Inf, no leading "+").
func numberText(s string) bool {
	if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && json.Valid([]byte(s))
}

// Unix time ranges: a value below secondsLimit is seconds (up to the year
// 5138), below millisLimit milliseconds (a millisecond timestamp read as
// seconds is a date around the year 55,000).
const (
	secondsLimit = 1e11
	millisLimit  = 1e14
)

// tsKind says what a number means as a Unix time.
type tsKind int

const (
	tsSeconds tsKind = iota
	tsMillis
	tsOutOfRange
)

func unixKind(f float64) tsKind {
	switch {
	case f < 0 || math.IsNaN(f) || math.IsInf(f, 0):
		return tsOutOfRange
	case f < secondsLimit:
		return tsSeconds
	case f < millisLimit:
		return tsMillis
	}
	return tsOutOfRange
}

// isoLayouts are the ISO-8601 forms a timestamp string may take.
var isoLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05Z0700", "2006-01-02"}

// parseISO reads an ISO-8601 time (a zone-less time is UTC).
func parseISO(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range isoLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
