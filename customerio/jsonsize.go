package customerio

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"
)

// encodeJSON is json.Marshal without HTML escaping and without the trailing
// newline; every size limit is measured on this encoding.
func encodeJSON(v any) ([]byte, error) {
	jb := getJSONBuf()
	defer putJSONBuf(jb)
	if err := jb.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimSuffix(jb.buf.Bytes(), []byte("\n"))), nil
}

// jsonBuf is a reusable buffer with its encoder (no HTML escaping), so
// measuring and encoding bodies does not grow a fresh buffer each time.
type jsonBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonBufs = sync.Pool{New: func() any {
	jb := &jsonBuf{}
	jb.enc = json.NewEncoder(&jb.buf)
	jb.enc.SetEscapeHTML(false)
	return jb
}}

func getJSONBuf() *jsonBuf {
	jb := jsonBufs.Get().(*jsonBuf)
	jb.buf.Reset()
	return jb
}

// putJSONBuf returns jb to the pool unless it grew beyond 64 KiB (a rare
// large body should not pin its memory).
func putJSONBuf(jb *jsonBuf) {
	if jb.buf.Cap() <= 64<<10 {
		jsonBufs.Put(jb)
	}
}

// encodedSize is the size of v's JSON encoding (encodeJSON's); -1 when it
// cannot be encoded. Plain JSON values are measured without encoding
// (jsonSize); anything else is encoded into a pooled buffer.
func encodedSize(v any) int {
	if n, ok := jsonSize(v, 0); ok {
		return n
	}
	jb := getJSONBuf()
	defer putJSONBuf(jb)
	if err := jb.enc.Encode(v); err != nil {
		return -1
	}
	return jb.buf.Len() - 1 // the Encoder's newline
}

// checkEncoded refuses a value that cannot be encoded or whose encoding is
// not below limit bytes (strict) or above it.
func checkEncoded(field string, v any, limit int, strict bool, reason string) error {
	n := encodedSize(v)
	if n < 0 {
		return invalid(field, "cannot be encoded as JSON")
	}
	if n > limit || strict && n == limit {
		return invalid(field, reason)
	}
	return nil
}

// jsonSize returns the length of encodeJSON(v) without encoding it, for
// the values a decoded JSON document or a literal map holds: nil, string,
// bool, float64, float32, the integer types, map[string]any, []any and
// map[string]string. It returns ok false for anything else (structs,
// json.Number, custom marshalers, pointers, a NaN or an infinity, nesting
// deeper than 32), and the caller encodes instead. The test compares it
// with encodeJSON.
func jsonSize(v any, depth int) (n int, ok bool) {
	if depth > 32 {
		return 0, false
	}
	switch x := v.(type) {
	case nil:
		return 4, true
	case string:
		return quotedSize(x), true
	case bool:
		if x {
			return 4, true
		}
		return 5, true
	case float64:
		return floatSize(x, 64)
	case float32:
		return floatSize(float64(x), 32)
	case int:
		return intSize(int64(x)), true
	case int64:
		return intSize(x), true
	case int32:
		return intSize(int64(x)), true
	case int16:
		return intSize(int64(x)), true
	case int8:
		return intSize(int64(x)), true
	case uint:
		return uintSize(uint64(x)), true
	case uint64:
		return uintSize(x), true
	case uint32:
		return uintSize(uint64(x)), true
	case uint16:
		return uintSize(uint64(x)), true
	case uint8:
		return uintSize(uint64(x)), true
	case map[string]any:
		if x == nil {
			return 4, true
		}
		n = 2 // {}
		for k, e := range x {
			m, ok := jsonSize(e, depth+1)
			if !ok {
				return 0, false
			}
			n += quotedSize(k) + 1 + m + 1 // "k":v,
		}
		if len(x) > 0 {
			n-- // no comma after the last
		}
		return n, true
	case map[string]string:
		if x == nil {
			return 4, true
		}
		n = 2
		for k, e := range x {
			n += quotedSize(k) + 1 + quotedSize(e) + 1
		}
		if len(x) > 0 {
			n--
		}
		return n, true
	case []any:
		if x == nil {
			return 4, true
		}
		n = 2
		for _, e := range x {
			m, ok := jsonSize(e, depth+1)
			if !ok {
				return 0, false
			}
			n += m + 1
		}
		if len(x) > 0 {
			n--
		}
		return n, true
	}
	return 0, false
}

func intSize(i int64) int {
	var b [24]byte
	return len(strconv.AppendInt(b[:0], i, 10))
}

func uintSize(u uint64) int {
	var b [24]byte
	return len(strconv.AppendUint(b[:0], u, 10))
}

// floatSize is the length of encoding/json's float encoding.
func floatSize(f float64, bits int) (int, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	var buf [40]byte
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			fmt = 'e'
		}
	}
	b := strconv.AppendFloat(buf[:0], f, fmt, -1, bits)
	if fmt == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			return n - 1, true
		}
	}
	return len(b), true
}

// quotedSize is the length of s as encoding/json writes it without HTML
// escaping: quoted, with \" \\ \b \f \n \r \t, \u00XX for other control
// characters, \ufffd for invalid UTF-8 and \u2028, \u2029 escaped.
func quotedSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
