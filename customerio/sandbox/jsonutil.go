package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// decodeObject parses b as one JSON object, numbers normalised to int64 or
// float64. An empty body (or only whitespace) gives an empty object when
// allowEmpty.
func decodeObject(b []byte, allowEmpty bool) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return map[string]any{}, nil
		}
		return nil, errors.New("request body must be a JSON object")
	}
	v, err := decodeValue(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("request body must be a JSON object")
	}
	return m, nil
}

func decodeValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("request body is not valid JSON")
	}
	return normalize(v), nil
}

func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	}
	return v
}

// asInt reports v as an integer when it is an integral JSON number.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

// asUnix accepts an integer or a string of digits (the Go SDK sends
// last_used as a string).
func asUnix(v any) (int64, bool) {
	if i, ok := asInt(v); ok {
		return i, true
	}
	if s, ok := v.(string); ok {
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// idString accepts a string or an integer identifier value.
func idString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

func jsonLen(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

// isULID checks the shape of a ULID: 26 Crockford base32 characters, the
// first at most '7'.
func isULID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		ok := c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U'
		if !ok {
			return false
		}
	}
	return s[0] <= '7'
}

// oneIdentifier checks that m holds exactly one of the allowed keys with a
// non-empty string (or integer) value and returns it.
func oneIdentifier(m map[string]any, allowed ...string) (typ, val string, ok bool) {
	n := 0
	for k, v := range m {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
			}
		}
		if !found {
			return "", "", false
		}
		s, isStr := idString(v)
		if !isStr || s == "" {
			return "", "", false
		}
		typ, val = k, s
		n++
	}
	return typ, val, n == 1
}

// isE164 reports whether s is a phone number in E.164 form: "+" and 1 to
// 15 digits, the first not 0.
func isE164(s string) bool {
	d, ok := strings.CutPrefix(s, "+")
	if !ok || len(d) < 1 || len(d) > 15 || d[0] == '0' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}
