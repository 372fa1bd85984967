package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
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

// decodeValue parses b as one JSON value (surrounded by JSON whitespace
// only) in a single pass. Its result is what encoding/json's Decoder with
// UseNumber then normalize give: objects as map[string]any (a duplicate
// key's last value wins), arrays as []any, numbers as int64 when
// strconv.ParseInt takes them, float64 otherwise (±Inf past the range),
// strings with invalid UTF-8 and lone surrogate escapes replaced by
// U+FFFD, and an error for whatever encoding/json refuses (including
// nesting deeper than its 10,000 levels).
//
// A hand-written parser rather than a library such as
// github.com/valyala/fastjson: fastjson accepts text encoding/json
// refuses (NaN and Inf numbers; a separate Validate pass would be a second
// scan), keeps invalid UTF-8 and lone surrogates as they are, and its
// Value tree keeps no offsets, which the v2 batch needs for each item's
// size as sent (v2Envelope).
func decodeValue(b []byte) (any, error) {
	p := jsonParser{b: b}
	p.skipSpace()
	v, ok := p.value()
	p.skipSpace()
	if !ok || p.i != len(b) {
		return nil, errors.New("request body is not valid JSON")
	}
	return v, nil
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// jsonParser is a recursive-descent JSON parser over b from offset i.
type jsonParser struct {
	b     []byte
	i     int
	depth int
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses the value at p.i (no whitespace before it).
func (p *jsonParser) value() (any, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; c {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		return p.strValue()
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return p.number()
		}
	}
	return nil, false
}

func (p *jsonParser) literal(lit string) bool {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// enter counts one more level of nesting, refusing what encoding/json
// refuses.
func (p *jsonParser) enter() bool {
	p.depth++
	return p.depth <= maxJSONDepth
}

func (p *jsonParser) object() (any, bool) {
	if !p.enter() {
		return nil, false
	}
	p.i++ // {
	m := map[string]any{}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return m, true
	}
	for {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, false
		}
		k, ok := p.key()
		if !ok {
			return nil, false
		}
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.skipSpace()
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		m[k] = v
		if closed, ok := p.next('}'); !ok {
			return nil, false
		} else if closed {
			p.depth--
			return m, true
		}
	}
}

// next consumes the comma (and the whitespace after it) or the closing
// byte that follows a member or an element, reporting which.
func (p *jsonParser) next(closing byte) (closed, ok bool) {
	p.skipSpace()
	if p.i >= len(p.b) {
		return false, false
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		p.skipSpace()
		return false, true
	case closing:
		p.i++
		return true, true
	}
	return false, false
}

func (p *jsonParser) array() (any, bool) {
	if !p.enter() {
		return nil, false
	}
	p.i++ // [
	a := make([]any, 0)
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return a, true
	}
	for {
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if closed, ok := p.next(']'); !ok {
			return nil, false
		} else if closed {
			p.depth--
			return a, true
		}
	}
}

// number parses a number of JSON's grammar and converts it as
// json.Number's Int64, then its Float64 (error ignored), do.
func (p *jsonParser) number() (any, bool) {
	start := p.i
	b := p.b
	if b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case p.i < len(b) && b[p.i] >= '1' && b[p.i] <= '9':
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	default:
		return nil, false
	}
	integral := true
	if p.i < len(b) && b[p.i] == '.' {
		integral = false
		p.i++
		if !p.digits() {
			return nil, false
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		integral = false
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return nil, false
		}
	}
	if integral && p.i-digits <= 18 { // fits in int64 whatever the digits
		var n int64
		for _, c := range b[digits:p.i] {
			n = n*10 + int64(c-'0')
		}
		if digits > start {
			n = -n
		}
		return n, true
	}
	s := string(b[start:p.i])
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f, true
}

// digits consumes one or more decimal digits.
func (p *jsonParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// key parses the string at p.i (its opening quote), an object's key, as
// encoding/json unquotes it, sharing the common keys' strings.
func (p *jsonParser) key() (string, bool) {
	start, ok := p.plainString()
	if !ok {
		return p.strSlow(start)
	}
	raw := p.b[start : p.i-1]
	if k, ok := sharedKey(raw); ok {
		return k, true
	}
	return string(raw), true
}

// strValue parses a string value as key does, sharing the common values.
func (p *jsonParser) strValue() (any, bool) {
	start, ok := p.plainString()
	if !ok {
		s, ok := p.strSlow(start)
		return s, ok
	}
	raw := p.b[start : p.i-1]
	if v, ok := sharedValue(raw); ok {
		return v, true
	}
	return string(raw), true
}

// plainString skips the string at p.i when it holds printable ASCII only
// (nothing to unquote), leaving p.i after its closing quote. Otherwise it
// stops where the string needs more (ok false); start is after the opening
// quote.
func (p *jsonParser) plainString() (start int, ok bool) {
	p.i++ // "
	start = p.i
	b := p.b
	for p.i < len(b) {
		c := b[p.i]
		if c == '"' {
			p.i++
			return start, true
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			break
		}
		p.i++
	}
	return start, false
}

// sharedKey and sharedValue give the strings the Track and App APIs'
// bodies repeat (keys, entity types and actions), allocated once rather
// than per request; strings being immutable, sharing them changes nothing.
// (A switch on string(b) neither allocates nor hashes.)
func sharedKey(b []byte) (string, bool) {
	switch string(b) {
	case "type":
		return "type", true
	case "action":
		return "action", true
	case "identifiers":
		return "identifiers", true
	case "id":
		return "id", true
	case "email":
		return "email", true
	case "cio_id":
		return "cio_id", true
	case "name":
		return "name", true
	case "timestamp":
		return "timestamp", true
	case "attributes":
		return "attributes", true
	case "data":
		return "data", true
	case "object_type_id":
		return "object_type_id", true
	case "object_id":
		return "object_id", true
	case "cio_relationships":
		return "cio_relationships", true
	case "batch":
		return "batch", true
	}
	return "", false
}

// Boxed strings for sharedValue.
var (
	boxedPerson   any = "person"
	boxedObject   any = "object"
	boxedDelivery any = "delivery"
	boxedEvent    any = "event"
	boxedIdentify any = "identify"
	boxedDelete   any = "delete"
)

func sharedValue(b []byte) (any, bool) {
	switch string(b) {
	case "person":
		return boxedPerson, true
	case "object":
		return boxedObject, true
	case "delivery":
		return boxedDelivery, true
	case "event":
		return boxedEvent, true
	case "identify":
		return boxedIdentify, true
	case "delete":
		return boxedDelete, true
	}
	return nil, false
}

// strSlow goes on with a string holding escapes, non-ASCII bytes or
// control characters (refused), from p.i.
func (p *jsonParser) strSlow(start int) (string, bool) {
	b := p.b
	out := make([]byte, p.i-start, p.i-start+32)
	copy(out, b[start:p.i])
	for p.i < len(b) {
		c := b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c < ' ':
			return "", false
		case c == '\\':
			if p.i+1 >= len(b) {
				return "", false
			}
			switch e := b[p.i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(b[p.i+2:])
				if r < 0 {
					return "", false
				}
				p.i += 6
				if utf16.IsSurrogate(r) {
					if r2 := u4(b[p.i:]); r2 >= 0 {
						if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
							p.i += 6
							out = utf8.AppendRune(out, d)
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			p.i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(b[p.i:])
			p.i += size
			out = utf8.AppendRune(out, r)
		}
	}
	return "", false
}

// hex4 reads four hex digits (the code unit of a \u escape), or -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// u4 reads a whole \uXXXX escape, or -1.
func u4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	return hex4(b[2:])
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

// jsonLen is len(json.Marshal(v)), 0 when Marshal fails. The values
// decodeValue gives are measured without encoding them; any other type,
// and ±Inf or NaN (which Marshal refuses), go through Marshal.
func jsonLen(v any) int {
	if n, ok := encodedLen(v); ok {
		return n
	}
	b, _ := json.Marshal(v)
	return len(b)
}

// encodedLen is how many bytes json.Marshal writes for v, when v is made
// of the types decodeValue gives (ok false otherwise).
func encodedLen(v any) (int, bool) {
	switch x := v.(type) {
	case nil:
		return len("null"), true
	case bool:
		if x {
			return len("true"), true
		}
		return len("false"), true
	case string:
		return encodedStringLen(x), true
	case int64:
		var buf [24]byte
		return len(strconv.AppendInt(buf[:0], x, 10)), true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return 0, false
		}
		// encoding/json's floatEncoder: ES6 number formatting.
		var buf [32]byte
		format := byte('f')
		if abs := math.Abs(x); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			format = 'e'
		}
		b := strconv.AppendFloat(buf[:0], x, format, -1, 64)
		n := len(b)
		if format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			n-- // e-09 is written e-9
		}
		return n, true
	case map[string]any:
		if x == nil {
			return len("null"), true
		}
		n := len("{}")
		if len(x) > 1 {
			n += len(x) - 1 // commas
		}
		for k, e := range x {
			en, ok := encodedLen(e)
			if !ok {
				return 0, false
			}
			n += encodedStringLen(k) + 1 + en // "k":e
		}
		return n, true
	case []any:
		if x == nil {
			return len("null"), true
		}
		n := len("[]")
		if len(x) > 1 {
			n += len(x) - 1
		}
		for _, e := range x {
			en, ok := encodedLen(e)
			if !ok {
				return 0, false
			}
			n += en
		}
		return n, true
	}
	return 0, false
}

// encodedStringLen is the length of s as encoding/json's Marshal quotes
// it (HTML characters escaped, invalid UTF-8 as \ufffd).
func encodedStringLen(s string) int {
	n := len(`""`)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&':
				n++
			case c == '"', c == '\\', c == '\b', c == '\f', c == '\n', c == '\r', c == '\t':
				n += 2
			default:
				n += len(`\u0000`)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += len(`\ufffd`)
		default:
			n += size
		}
		i += size
	}
	return n
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
