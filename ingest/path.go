package ingest

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// checkPath checks a dotted path: segments separated by '.', none empty.
func checkPath(p string) error {
	if p == "" {
		return errors.New("path is empty")
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return errors.New("path has an empty segment")
		}
	}
	return nil
}

// Lookup evaluates a dotted path such as "a.b.c" or "items.0.name" in a
// decoded JSON value (maps, slices, scalars): each segment names an object
// key, or a zero-based index into an array. It reports false when a segment
// is missing, an index is out of range, or a scalar is in the way.
func Lookup(v any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	cur := v
	for _, seg := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// lookupString evaluates path and returns a string or a number as a string
// ("" when absent, null or another type).
func lookupString(v any, path string) string {
	x, ok := Lookup(v, path)
	if !ok {
		return ""
	}
	return scalarString(x)
}

func scalarString(x any) string {
	switch s := x.(type) {
	case string:
		return s
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	case json.Number:
		return s.String()
	}
	return ""
}
