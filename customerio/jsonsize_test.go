package customerio

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestJSONSizeMatchesEncoding checks jsonSize against encodeJSON, the
// encoding every size limit is defined on.
func TestJSONSizeMatchesEncoding(t *testing.T) {
	strs := []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\x7f", "\b\f\n\r\t", "<a href='x'>&amp;</a>",
		"é ü 日本 🎉", "bad\xffutf8\xc3", "sep\u2028\u2029", strings.Repeat("x", 1000)}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 59.98, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.5e300, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.123456789, 1e-9}
	vals := []any{nil, true, false, int(-42), int64(math.MinInt64), uint64(math.MaxUint64), int8(-8), uint16(65535), float32(3.14), float32(1e-7), float32(1e21), float32(16777216),
		map[string]any(nil), []any(nil), map[string]any{}, []any{}, map[string]string{"a": "b", `"`: "\n"}, map[string]string(nil)}
	for _, s := range strs {
		vals = append(vals, s, map[string]any{s: s})
	}
	for _, f := range floats {
		vals = append(vals, f, -f)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var gen func(d int) any
	gen = func(d int) any {
		switch k := r.IntN(8); {
		case d > 3 || k < 2:
			return strs[r.IntN(len(strs))]
		case k == 2:
			return floats[r.IntN(len(floats))] * float64(r.IntN(1000)-500)
		case k == 3:
			return r.IntN(2) == 0
		case k == 4:
			return nil
		case k == 5:
			a := make([]any, r.IntN(4))
			for i := range a {
				a[i] = gen(d + 1)
			}
			return a
		default:
			m := map[string]any{}
			for i := r.IntN(5); i > 0; i-- {
				m[strs[r.IntN(len(strs))]+string(rune('a'+i))] = gen(d + 1)
			}
			return m
		}
	}
	for i := 0; i < 2000; i++ {
		vals = append(vals, gen(0))
	}
	for _, v := range vals {
		b, err := encodeJSON(v)
		n, ok := jsonSize(v, 0)
		if (err == nil) != ok {
			t.Errorf("%#v: encodeJSON err %v, jsonSize ok %v", v, err, ok)
			continue
		}
		if err != nil {
			continue // an infinity from the generator: both refuse
		}
		if n != len(b) {
			t.Errorf("%#v: jsonSize %d, encoding %d: %s", v, n, len(b), b)
		}
	}
	// Refused: the caller falls back to the encoder.
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for _, v := range []any{math.NaN(), math.Inf(1), struct{ A int }{1}, []string{"a"}, cyclic, map[string]any{"x": make(chan int)}} {
		if _, ok := jsonSize(v, 0); ok {
			t.Errorf("%#v: jsonSize ok, want a fallback to the encoder", v)
		}
	}
	if encodedSize(math.NaN()) != -1 || encodedSize(cyclic) != -1 {
		t.Error("encodedSize of a value that cannot be encoded must be -1")
	}
}
