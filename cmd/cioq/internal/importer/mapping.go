package importer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// Kinds of value a mapped CSV column holds.
const (
	KindString    = "string"
	KindInt       = "int"
	KindFloat     = "float"
	KindBool      = "bool"
	KindTimestamp = "timestamp" // unix seconds, or RFC 3339, or 2006-01-02
	KindJSON      = "json"
)

// Targets of a mapping entry besides attr.<name>.
const (
	TargetID           = "id"
	TargetEmail        = "email"
	TargetCioID        = "cio_id"
	TargetName         = "name"      // event name
	TargetTimestamp    = "timestamp" // event timestamp
	TargetEventID      = "event_id"
	TargetEventType    = "event_type" // event, page, screen
	TargetObjectTypeID = "object_type_id"
	TargetObjectID     = "object_id"
	attrPrefix         = "attr."
)

// Field is one mapping entry: the CSV column that fills a target, read as
// a kind.
type Field struct {
	Target string // id, email, ..., or attr.<name>
	Column string
	Kind   string
	col    int // the column's index in the header
}

// Mapping says how CSV columns become an operation. An empty mapping maps
// the id, email and cio_id columns to the person's identifiers and every
// other column to a string attribute.
type Mapping struct {
	Fields []Field
}

// ParseMapping reads a mapping: entries TARGET=COLUMN[:KIND] separated by
// commas or newlines (a # starts a comment line). TARGET is id, email,
// cio_id, name, timestamp, event_id, event_type, object_type_id,
// object_id or attr.<name>; KIND is string (default), int, float, bool,
// timestamp or json. TARGET alone maps the column of the same name.
func ParseMapping(spec string) (Mapping, error) {
	var m Mapping
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(spec))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		for _, e := range strings.Split(l, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			target, rest, hasCol := strings.Cut(e, "=")
			target = strings.TrimSpace(target)
			col, kind := target, KindString
			if hasCol {
				col = strings.TrimSpace(rest)
			}
			if c, k, ok := strings.Cut(col, ":"); ok {
				col, kind = strings.TrimSpace(c), strings.TrimSpace(k)
			}
			if !hasCol {
				if t, _, ok := strings.Cut(target, ":"); ok {
					target = t
				}
				col = strings.TrimPrefix(target, attrPrefix)
			}
			if err := checkTarget(target); err != nil {
				return Mapping{}, fmt.Errorf("mapping %q: %w", e, err)
			}
			switch kind {
			case KindString, KindInt, KindFloat, KindBool, KindTimestamp, KindJSON:
			default:
				return Mapping{}, fmt.Errorf("mapping %q: kind %q: want string, int, float, bool, timestamp or json", e, kind)
			}
			if col == "" {
				return Mapping{}, fmt.Errorf("mapping %q: no column", e)
			}
			if seen[target] {
				return Mapping{}, fmt.Errorf("mapping %q: %s is mapped twice", e, target)
			}
			seen[target] = true
			m.Fields = append(m.Fields, Field{Target: target, Column: col, Kind: kind})
		}
	}
	return m, nil
}

// ReadMappingFile reads a mapping file (ParseMapping's syntax).
func ReadMappingFile(path string) (Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return Mapping{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return Mapping{}, err
	}
	return ParseMapping(string(b))
}

func checkTarget(t string) error {
	switch t {
	case TargetID, TargetEmail, TargetCioID, TargetName, TargetTimestamp, TargetEventID, TargetEventType, TargetObjectTypeID, TargetObjectID:
		return nil
	}
	if name, ok := strings.CutPrefix(t, attrPrefix); ok && name != "" {
		return nil
	}
	return errors.New("target must be id, email, cio_id, name, timestamp, event_id, event_type, object_type_id, object_id or attr.<name>")
}

// bind resolves the mapping against a CSV header. An empty mapping makes
// the default one (see Mapping).
func (m Mapping) bind(header []string) (Mapping, error) {
	idx := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := idx[h]; dup {
			return Mapping{}, fmt.Errorf("header: column %q appears twice", h)
		}
		idx[h] = i
	}
	if len(m.Fields) == 0 {
		var out Mapping
		for i, h := range header {
			h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
			switch h {
			case TargetID, TargetEmail, TargetCioID:
				out.Fields = append(out.Fields, Field{Target: h, Column: h, Kind: KindString, col: i})
			default:
				out.Fields = append(out.Fields, Field{Target: attrPrefix + h, Column: h, Kind: KindString, col: i})
			}
		}
		return out, nil
	}
	out := Mapping{Fields: make([]Field, len(m.Fields))}
	for i, f := range m.Fields {
		c, ok := idx[f.Column]
		if !ok {
			return Mapping{}, fmt.Errorf("mapping: column %q is not in the header", f.Column)
		}
		f.col = c
		out.Fields[i] = f
	}
	return out, nil
}

// value reads a cell as kind; ok false for an empty cell (not set).
func value(kind, s string) (v any, ok bool, err error) {
	if kind != KindString {
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return nil, false, nil
	}
	switch kind {
	case KindString:
		return s, true, nil
	case KindInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, false, errors.New("is not an integer")
		}
		return n, true, nil
	case KindFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false, errors.New("is not a number")
		}
		return f, true, nil
	case KindBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, false, errors.New("is not true or false")
		}
		return b, true, nil
	case KindTimestamp:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, true, nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.Unix(), true, nil
			}
		}
		return nil, false, errors.New("is not a timestamp (unix seconds, RFC 3339 or YYYY-MM-DD)")
	case KindJSON:
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, false, errors.New("is not JSON")
		}
		return v, true, nil
	}
	return nil, false, fmt.Errorf("unknown kind %q", kind)
}

// fieldError is a row's refusal naming the column.
func fieldError(f Field, reason string) error {
	return fmt.Errorf("column %q (%s): %s", f.Column, f.Target, reason)
}

// operation makes the operation of type typ of a CSV record.
func (m Mapping) operation(typ string, rec []string) (tasks.Payload, error) {
	var ids customerio.Identifiers
	attrs := map[string]any{}
	var name, eventID, eventType, otype, oid string
	var ts int64
	for _, f := range m.Fields {
		if f.col >= len(rec) {
			continue
		}
		v, ok, err := value(f.Kind, rec[f.col])
		if err != nil {
			return nil, fieldError(f, err.Error())
		}
		if !ok {
			continue
		}
		if name, isAttr := strings.CutPrefix(f.Target, attrPrefix); isAttr {
			attrs[name] = v
			continue
		}
		s, isString := v.(string)
		if f.Target == TargetTimestamp {
			n, isInt := v.(int64)
			if !isInt {
				return nil, fieldError(f, "must be of kind timestamp or int")
			}
			ts = n
			continue
		}
		if !isString {
			return nil, fieldError(f, "must be of kind string")
		}
		switch f.Target {
		case TargetID:
			ids.ID = s
		case TargetEmail:
			ids.Email = s
		case TargetCioID:
			ids.CioID = s
		case TargetName:
			name = s
		case TargetEventID:
			eventID = s
		case TargetEventType:
			eventType = s
		case TargetObjectTypeID:
			otype = s
		case TargetObjectID:
			oid = s
		}
	}
	if len(attrs) == 0 {
		attrs = nil
	}
	switch typ {
	case tasks.TypeIdentify:
		// A row may give both an id and an email: the id names the
		// person, the email is set as an attribute.
		if ids.ID != "" && ids.Email != "" {
			if attrs == nil {
				attrs = map[string]any{}
			}
			if _, set := attrs["email"]; !set {
				attrs["email"] = ids.Email
			}
			ids.Email = ""
		}
		return &tasks.Identify{Identifiers: ids, Attributes: attrs}, nil
	case tasks.TypeTrack:
		if ids.ID != "" {
			ids.Email, ids.CioID = "", ""
		}
		return &tasks.Track{Identifiers: ids, Event: customerio.Event{Name: name, ID: eventID,
			Type: customerio.EventType(eventType), Timestamp: ts, Data: attrs}}, nil
	case tasks.TypeObjectUpsert:
		return &tasks.ObjectUpsert{ObjectTypeID: otype, ObjectID: oid, Attributes: attrs}, nil
	}
	return nil, fmt.Errorf("a CSV row cannot make a %s (want cio:identify, cio:track or cio:object_upsert)", typ)
}
