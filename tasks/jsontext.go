package tasks

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/cioq/cioq/customerio"
)

// This file is a small JSON scanner that knows where it is (the JSON path
// of every value, as written: keys and array indices). encoding/json tells
// neither where a string is not UTF-8 (it replaces the bytes by U+FFFD and
// goes on) nor the array indices of a type error (UnmarshalTypeError.Field
// is a path of Go struct fields), and a path is what a user needs to find
// the problem. It reads valid JSON only as far as it needs; malformed JSON
// is the decoder's to report.

// CheckUTF8 checks that every string of the JSON text b, keys included, is
// valid UTF-8. encoding/json replaces invalid bytes (and lone UTF-16
// surrogate escapes such as \ud800, which no UTF-8 text can hold) by U+FFFD
// without a word, so two different invalid identifiers would become the
// same person; cioq refuses them instead.
//
// It returns nil, or a *customerio.ValidationError whose Field is the JSON
// path of the first string at fault as written in b ("identifiers.id",
// "batch[3].userId"; for a key, the path of its object, "" at the top
// level) and whose Reason is "is not valid UTF-8" or "has a key that is not
// valid UTF-8". The text never quotes the input. Valid input costs one pass
// of utf8.Valid and a search for '\'. When b is not valid JSON and no
// string at fault is found before the syntax error, CheckUTF8 still refuses
// bytes that are not UTF-8, with Field "".
func CheckUTF8(b []byte) error {
	if utf8.Valid(b) {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || !hasSurrogateEscape(b[i:]) {
			return nil
		}
	}
	w := jsonWalk{b: b, mode: walkUTF8}
	w.walk()
	switch {
	case w.found && w.key:
		return &customerio.ValidationError{Field: w.path(), Reason: "has a key that is not valid UTF-8"}
	case w.found:
		return &customerio.ValidationError{Field: w.path(), Reason: "is not valid UTF-8"}
	case !utf8.Valid(b):
		return &customerio.ValidationError{Field: "", Reason: "is not valid UTF-8"}
	}
	return nil // only valid surrogate pairs
}

// hasSurrogateEscape reports whether b holds an escape \uD800–\uDFFF
// (valid in pairs, not alone): only then must CheckUTF8 look closer.
func hasSurrogateEscape(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u`))
		if i < 0 || i+3 >= len(b) {
			return false
		}
		if (b[i+2] == 'd' || b[i+2] == 'D') && isHex89ToF(b[i+3]) {
			return true
		}
		b = b[i+2:]
	}
}

func isHex89ToF(c byte) bool {
	return c == '8' || c == '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// validJSONString reports whether the contents of a JSON string (between
// its quotes, escapes as written) decode to valid UTF-8 text: raw bytes
// valid UTF-8, every \u surrogate escape part of a pair.
func validJSONString(s []byte) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
			continue
		}
		if c != '\\' {
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == 'u' && i+6 <= len(s) {
			r := hex4(s[i+2 : i+6])
			switch {
			case r >= 0xD800 && r < 0xDC00: // high surrogate: a low one must follow
				if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
					if lo := hex4(s[i+8 : i+12]); lo >= 0xDC00 && lo < 0xE000 {
						i += 12
						continue
					}
				}
				return false
			case r >= 0xDC00 && r < 0xE000: // a low surrogate alone
				return false
			}
			i += 6
			continue
		}
		i += 2
	}
	return true
}

// hex4 reads four hex digits; -1 when they are not.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// pathAt returns the JSON path (as written in b) of the innermost value
// that encoding/json's error offset off points into, and that value's
// bytes: a literal ends at off, an object or array starts at off-1.
func pathAt(b []byte, off int64) (path string, val []byte, ok bool) {
	if off <= 0 || off > int64(len(b)) {
		return "", nil, false
	}
	w := jsonWalk{b: b, mode: walkAt, off: int(off)}
	w.walk()
	if !w.found {
		return "", nil, false
	}
	return w.path(), b[w.start:w.end], true
}

const (
	walkUTF8 = iota // stop at the first string that is not valid UTF-8
	walkAt          // stop at the innermost value containing off
	walkSkip        // read one value, to find where it ends (skipValue)
)

// skipValue returns the index after the JSON value at w.b[i:] (its
// syntax checked, not its strings' contents), reusing w's stack.
func (w *jsonWalk) skipValue(i int) (int, bool) {
	w.i, w.mode, w.stack, w.bad = i, walkSkip, w.stack[:0], false
	w.value()
	return w.i, !w.bad
}

// jsonWalk is one walk over a JSON text.
type jsonWalk struct {
	b    []byte
	i    int
	mode int
	off  int

	stack []pathElem // where the walk is
	found bool       // it stopped at what it looked for
	key   bool       // walkUTF8: the string at fault is a key
	start int        // walkAt: the value found
	end   int
	bad   bool // a syntax error: stop
}

// pathElem is one step of a path: an object key as written (without its
// quotes) or an array index.
type pathElem struct {
	key   []byte
	index int
	isKey bool
}

func (w *jsonWalk) walk() {
	w.space()
	w.value()
}

func (w *jsonWalk) stop() bool { return w.found || w.bad }

func (w *jsonWalk) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value reads the value at w.i.
func (w *jsonWalk) value() {
	if w.i >= len(w.b) {
		w.bad = true
		return
	}
	start := w.i
	switch w.b[w.i] {
	case '{':
		w.object()
	case '[':
		w.array()
	case '"':
		s, ok := w.str()
		if !ok {
			return
		}
		if w.mode == walkUTF8 && !validJSONString(s) {
			w.found = true
			return
		}
	default:
		for w.i < len(w.b) && !isDelim(w.b[w.i]) {
			w.i++
		}
		if w.i == start {
			w.bad = true
			return
		}
	}
	if w.stop() {
		return
	}
	if w.mode == walkAt && start < w.off && w.off <= w.i {
		w.found, w.start, w.end = true, start, w.i
	}
}

func isDelim(c byte) bool {
	switch c {
	case ',', ']', '}', ':', ' ', '\t', '\n', '\r', '"', '{', '[':
		return true
	}
	return false
}

// str reads the string at w.i and returns its contents.
func (w *jsonWalk) str() ([]byte, bool) {
	start := w.i + 1
	for j := start; j < len(w.b); j++ {
		switch w.b[j] {
		case '\\':
			j++
		case '"':
			w.i = j + 1
			return w.b[start:j], true
		}
	}
	w.bad = true
	return nil, false
}

func (w *jsonWalk) object() {
	w.i++ // {
	w.space()
	if w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		return
	}
	for {
		if w.i >= len(w.b) || w.b[w.i] != '"' {
			w.bad = true
			return
		}
		k, ok := w.str()
		if !ok {
			return
		}
		if w.mode == walkUTF8 && !validJSONString(k) {
			w.found, w.key = true, true
			return
		}
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != ':' {
			w.bad = true
			return
		}
		w.i++
		w.space()
		w.stack = append(w.stack, pathElem{key: k, isKey: true})
		w.value()
		if w.stop() {
			return
		}
		w.stack = w.stack[:len(w.stack)-1]
		w.space()
		if w.i >= len(w.b) {
			w.bad = true
			return
		}
		switch w.b[w.i] {
		case ',':
			w.i++
			w.space()
		case '}':
			w.i++
			return
		default:
			w.bad = true
			return
		}
	}
}

func (w *jsonWalk) array() {
	w.i++ // [
	w.space()
	if w.i < len(w.b) && w.b[w.i] == ']' {
		w.i++
		return
	}
	for n := 0; ; n++ {
		w.stack = append(w.stack, pathElem{index: n})
		w.value()
		if w.stop() {
			return
		}
		w.stack = w.stack[:len(w.stack)-1]
		w.space()
		if w.i >= len(w.b) {
			w.bad = true
			return
		}
		switch w.b[w.i] {
		case ',':
			w.i++
			w.space()
		case ']':
			w.i++
			return
		default:
			w.bad = true
			return
		}
	}
}

// path formats w.stack: keys joined by '.', indices as [i]
// ("batch[3].userId"). A key with escapes is decoded.
func (w *jsonWalk) path() string {
	var b []byte
	for _, e := range w.stack {
		if !e.isKey {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(e.index), 10)
			b = append(b, ']')
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		if bytes.IndexByte(e.key, '\\') >= 0 {
			var s string
			if json.Unmarshal(append(append([]byte{'"'}, e.key...), '"'), &s) == nil {
				b = append(b, s...)
				continue
			}
		}
		b = append(b, e.key...)
	}
	return string(b)
}

// joinPath joins a path prefix and a path relative to it; an index path
// ("[2].x") joins without a dot.
func joinPath(prefix, rel string) string {
	switch {
	case prefix == "":
		return rel
	case rel == "":
		return prefix
	case rel[0] == '[':
		return prefix + rel
	}
	return prefix + "." + rel
}
