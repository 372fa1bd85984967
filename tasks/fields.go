package tasks

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/cioq/cioq/customerio"
)

// DecodeStrict is [Decode] for what a caller is about to enqueue: it also
// refuses a field the type's payload does not have, anywhere in the payload
// ("payload.trackd: not a field of cio:send_whatsapp"), so a typo is an
// error instead of a value that silently vanishes. Only cio:* payloads are
// checked this way; cdp:* payloads (Spec.API customerio.APIPipelines)
// follow the Segment spec, which keeps unknown fields and sends them on (as
// does any value typed as a JSON object of free keys: attributes,
// message_data, data). The worker decodes
// with Decode, so a task written by a newer producer with a field this
// version does not know is still delivered.
func DecodeStrict(typ string, b []byte) (*Envelope, Payload, error) {
	env, p, err := Decode(typ, b)
	if err != nil || registry[typ].API == customerio.APIPipelines {
		return env, p, err
	}
	prefix := ""
	if len(env.Payload) != len(bytes.TrimSpace(b)) {
		prefix = "payload"
	}
	if path, ok := unknownField(env.Payload, reflect.TypeOf(p), prefix); ok {
		return env, nil, malformedField(typ, path, "not a field of "+typ)
	}
	return env, p, nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// unknownField walks raw (valid JSON) along t and returns the path of the
// first object key that matches no field of the struct it is decoded into,
// the way encoding/json matches names (exact, then case-insensitive).
// Types with their own UnmarshalJSON, maps of free values and interfaces
// accept anything.
func unknownField(raw json.RawMessage, t reflect.Type, path string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return "", false
	}
	switch t.Kind() {
	case reflect.Struct:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return "", false // null, or not an object: Decode judged it
		}
		fields := structFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sortStrings(keys) // the same answer every time
		for _, k := range keys {
			ft, ok := fields.lookup(k)
			if !ok {
				return joinPath(path, k), true
			}
			if p, bad := unknownField(m[k], ft, joinPath(path, k)); bad {
				return p, true
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "", false // []byte: a base64 string
		}
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return "", false
		}
		for i, it := range items {
			if p, bad := unknownField(it, t.Elem(), path+"["+strconv.Itoa(i)+"]"); bad {
				return p, true
			}
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return "", false
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sortStrings(keys)
		for _, k := range keys {
			if p, bad := unknownField(m[k], t.Elem(), joinPath(path, k)); bad {
				return p, true
			}
		}
	}
	return "", false
}

// fieldSet is a struct's JSON field names and types, embedded structs'
// fields promoted.
type fieldSet map[string]reflect.Type

func (f fieldSet) lookup(k string) (reflect.Type, bool) {
	if t, ok := f[k]; ok {
		return t, true
	}
	for name, t := range f {
		if strings.EqualFold(name, k) {
			return t, true
		}
	}
	return nil, false
}

var fieldSets sync.Map // reflect.Type → fieldSet

func structFields(t reflect.Type) fieldSet {
	if f, ok := fieldSets.Load(t); ok {
		return f.(fieldSet)
	}
	f := fieldSet{}
	collectFields(t, f)
	fieldSets.Store(t, f)
	return f
}

func collectFields(t reflect.Type, f fieldSet) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				collectFields(et, f)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := f[name]; !dup {
			f[name] = sf.Type
		}
	}
}
