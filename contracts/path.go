package contracts

import (
	"errors"
	"strings"
)

// seg is one step of a variable path: a key, and whether the value there
// is an array whose every element the rest of the path applies to.
type seg struct {
	key  string
	each bool // "items[]": the rest applies to every element of items
}

// parsePath reads a variable path: keys separated by dots, a key followed
// by "[]" when it holds an array ("order.id", "items[].price").
func parsePath(p string) ([]seg, error) {
	if p == "" {
		return nil, errors.New("is not a variable path (empty)")
	}
	parts := strings.Split(p, ".")
	out := make([]seg, 0, len(parts))
	for i, part := range parts {
		s := seg{key: part}
		if k, ok := strings.CutSuffix(part, "[]"); ok {
			s = seg{key: k, each: true}
		}
		if s.key == "" || strings.ContainsAny(s.key, "[]") {
			return nil, errors.New(`is not a variable path (keys separated by ".", a key followed by "[]" for every element of an array, like "items[].price")`)
		}
		if s.each && i == len(parts)-1 {
			return nil, errors.New(`cannot end with "[]": name the key of the elements ("items[].price"), or declare "items" with type array`)
		}
		out = append(out, s)
	}
	return out, nil
}

// pathString writes a path back.
func pathString(p []seg) string {
	var b strings.Builder
	for i, s := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
		if s.each {
			b.WriteString("[]")
		}
	}
	return b.String()
}
