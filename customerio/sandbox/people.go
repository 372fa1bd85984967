package sandbox

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Person resolution shared by Track v1, Track v2, App and CDP. typ is "ref"
// for a v1 path identifier (id, email or cio_<x>; a phone number there is
// an id, as Customer.io's Track API reference says), or one of id, email,
// phone (Track v2 only), cio_id, anonymous_id for typed identifiers.

func (st *state) find(typ, val string) *person {
	if typ == "ref" {
		return st.lookup(val)
	}
	return st.lookupTyped(typ, val)
}

func (st *state) blocked(typ, val string) bool {
	switch typ {
	case "ref":
		return st.refSuppressed(val)
	case "id":
		return st.isSuppressed(val, "", "")
	case "email":
		return st.isSuppressed("", val, "")
	case "phone":
		return st.suppressed["phone:"+val] != nil
	case "cio_id":
		return st.isSuppressed("", "", strings.TrimPrefix(val, "cio_"))
	}
	return false
}

// findOrCreate returns the person an identifier addresses, creating them
// for an id, email or phone; nil when the identifier is blocked, an unknown
// cio_id or an anonymous id no person claimed.
func (st *state) findOrCreate(typ, val string, now time.Time) *person {
	if st.blocked(typ, val) {
		return nil
	}
	if p := st.find(typ, val); p != nil {
		return p
	}
	switch typ {
	case "ref":
		if strings.HasPrefix(val, "cio_") {
			return nil
		}
		return st.create(val, "", now)
	case "id":
		return st.create(val, "", now)
	case "email":
		return st.create("", val, now)
	case "phone":
		p := st.create("", "", now)
		st.setPhone(p, val)
		return p
	}
	return nil
}

// identify applies an identify call: the identify resolution rules of
// Customer.io's Track API reference, then the attributes. It returns the
// person or nil when nothing happened.
func (st *state) identify(typ, val string, attrs map[string]any, now time.Time) *person {
	bodyID, _ := idString(attrs["id"])
	bodyEmail, _ := attrs["email"].(string)
	updateOnly, _ := attrs["_update"].(bool)
	if st.blocked(typ, val) || st.isSuppressed(bodyID, bodyEmail, "") {
		return nil
	}
	p := st.find(typ, val)
	if p == nil {
		if typ == "cio_id" || (typ == "ref" && strings.HasPrefix(val, "cio_")) || typ == "anonymous_id" {
			return nil // unknown cio_id: dropped
		}
		if bodyID != "" {
			p = st.lookupTyped("id", bodyID)
		}
		if p == nil && bodyEmail != "" {
			p = st.lookupTyped("email", bodyEmail)
		}
		if p != nil {
			// Rule 3: the matching person gets the path identifier.
			switch {
			case typ == "phone":
				if p.phone == "" {
					st.setPhone(p, val)
				}
			case typ == "email" || (typ == "ref" && strings.Contains(val, "@") && p.email == ""):
				if p.email == "" {
					st.setEmail(p, val)
				}
			case p.id == "":
				st.setID(p, val)
			}
		} else {
			if updateOnly {
				return nil
			}
			switch typ {
			case "email":
				p = st.create(bodyID, val, now)
			case "phone":
				p = st.create(bodyID, bodyEmail, now)
				st.setPhone(p, val)
			default:
				p = st.create(val, bodyEmail, now)
			}
		}
	} else if bodyID != "" && bodyID != p.id {
		// Changing the id needs a cio_ address (or a person without one).
		if other := st.lookupTyped("id", bodyID); other != nil && other != p {
			return nil // Attribute Update Failure
		}
		if p.id == "" || typ == "cio_id" || (typ == "ref" && strings.HasPrefix(val, "cio_")) {
			st.setID(p, bodyID)
		}
	}
	if bodyEmail != "" {
		if other := st.lookupTyped("email", bodyEmail); other != nil && other != p {
			return nil // Attribute Update Failure: the email belongs to someone else
		}
		st.setEmail(p, bodyEmail)
	}
	st.setAttrs(p, attrs)
	p.updatedAt = now
	return p
}

func (st *state) setAttrs(p *person, attrs map[string]any) {
	for k, v := range attrs {
		switch k {
		case "id", "cio_id", "_update", "cio_relationships":
			continue
		}
		if rest, ok := strings.CutPrefix(k, "cio_subscription_preferences."); ok {
			setPath(p.attrs, append([]string{"cio_subscription_preferences"}, strings.Split(rest, ".")...), v)
			continue
		}
		if v == nil {
			delete(p.attrs, k)
			continue
		}
		p.attrs[k] = copyValue(v)
	}
	if anon, ok := attrs["anonymous_id"].(string); ok {
		st.claimAnonymous(p, anon)
	}
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// validateIdentify checks the limits of Customer.io's "Invalid API
// requests" page on an identify body.
func validateIdentify(attrs map[string]any) string {
	if v, ok := attrs["id"]; ok {
		s, isStr := v.(string)
		switch {
		case !isStr:
			return "id attribute must be a string value"
		case s == "":
			return "id attribute cannot be an empty string"
		case len(s) > MaxPersonIDBytes:
			return fmt.Sprintf("id attribute cannot be longer than %d bytes", MaxPersonIDBytes)
		}
	}
	return validateAttributes(attrs)
}

func validateAttributes(attrs map[string]any) string {
	n := 0
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
		if k != "_update" && k != "cio_relationships" {
			n++
		}
	}
	if n > MaxAttributes {
		return fmt.Sprintf("cannot identify more than %d attributes in one request", MaxAttributes)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) > MaxAttributeNameBytes {
			return fmt.Sprintf("attribute name cannot be longer than %d bytes", MaxAttributeNameBytes)
		}
		if k == "cio_relationships" || k == "cio_subscription_preferences" {
			continue
		}
		size := 0
		if s, ok := attrs[k].(string); ok {
			size = len(s)
		} else {
			size = jsonLen(attrs[k])
		}
		if size > MaxAttributeValueBytes {
			return fmt.Sprintf("value for attribute '%s' cannot be longer than %d bytes", k, MaxAttributeValueBytes)
		}
	}
	return ""
}

// parseEvent validates an event body: name (trimmed, ≤100 bytes), data
// (object or null, ≤100000 bytes), type, ULID id, integer timestamp.
// dataKey is "data" for v1 and "attributes" for v2. It returns the event
// and the field and message of the first problem.
func parseEvent(m map[string]any, dataKey, defType string) (Event, string, string) {
	var ev Event
	nameV, ok := m["name"]
	name, isStr := nameV.(string)
	if !ok || !isStr {
		return ev, "name", "event name must not be blank"
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return ev, "name", "event name must not be blank"
	}
	if len(name) > MaxEventNameBytes {
		return ev, "name", fmt.Sprintf("event name cannot be longer than %d bytes", MaxEventNameBytes)
	}
	ev.Name, ev.Type = name, defType
	if d, present := m[dataKey]; present && d != nil {
		dm, isObj := d.(map[string]any)
		if !isObj {
			return ev, dataKey, "event data must be a hash"
		}
		if jsonLen(dm) > MaxEventDataBytes {
			return ev, dataKey, fmt.Sprintf("event data cannot be longer than %d bytes", MaxEventDataBytes)
		}
		ev.Data = dm
	}
	if t, present := m["type"]; present && t != nil && dataKey == "data" { // v2: type is the entity type
		ts, _ := t.(string)
		switch ts {
		case "event", "page", "screen":
			ev.Type = ts
		default:
			return ev, "type", "event type must be one of event, page or screen"
		}
	}
	if id, present := m["id"]; present && id != nil {
		s, _ := id.(string)
		if !isULID(s) {
			return ev, "id", "event id must be a ULID"
		}
		ev.ID = strings.ToUpper(s)
	}
	if ts, present := m["timestamp"]; present && ts != nil {
		i, ok := asInt(ts)
		if !ok {
			return ev, "timestamp", "timestamp must be an integer (unix seconds)"
		}
		ev.Timestamp = i
	}
	return ev, "", ""
}

// objRef is how an operation names an object: object_type_id and
// object_id, or cio_object_id.
type objRef struct{ typeID, objID, cio string }

type relOp struct {
	objRef
	attrs map[string]any
}

// parseObjectRef reads object identifiers: {"object_type_id","object_id"}
// or {"cio_object_id"} alone (the two forms of Customer.io's
// object_identifiers). It returns the message of a problem.
func parseObjectRef(ids map[string]any) (objRef, string) {
	if v, present := ids["cio_object_id"]; present {
		cio, ok := idString(v)
		_, hasType := ids["object_type_id"]
		_, hasID := ids["object_id"]
		if !ok || cio == "" || hasType || hasID {
			return objRef{}, "must have object_type_id and object_id, or cio_object_id alone"
		}
		return objRef{cio: cio}, ""
	}
	typeID, ok1 := idString(ids["object_type_id"])
	objID, ok2 := idString(ids["object_id"])
	if !ok1 || !ok2 || typeID == "" || objID == "" {
		return objRef{}, "must have object_type_id and object_id, or cio_object_id"
	}
	return objRef{typeID: typeID, objID: objID}, ""
}

// parseRels validates a cio_relationships array: non-empty, each item's
// identifiers read by ident (which gets the item's index, identifiers and
// relationship_attributes and returns the message of a problem), then its
// relationship_attributes within the attribute limits.
func parseRels[R any](v any, ident func(i int, ids, attrs map[string]any) (R, string)) ([]R, string) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, "cio_relationships must be a non-empty array"
	}
	var out []R
	for i, it := range arr {
		m, _ := it.(map[string]any)
		ids, _ := m["identifiers"].(map[string]any)
		ra, _ := m["relationship_attributes"].(map[string]any)
		rel, msg := ident(i, ids, ra)
		if msg != "" {
			return nil, msg
		}
		if msg := validateAttributes(ra); msg != "" {
			return nil, fmt.Sprintf("cio_relationships[%d].relationship_attributes: %s", i, msg)
		}
		out = append(out, rel)
	}
	return out, ""
}

// parseObjectRels validates [{"identifiers":{"object_type_id","object_id"}
// or {"cio_object_id"},"relationship_attributes":{...}}].
func parseObjectRels(v any) ([]relOp, string) {
	return parseRels(v, func(i int, ids, attrs map[string]any) (relOp, string) {
		ref, msg := parseObjectRef(ids)
		if msg != "" {
			return relOp{}, fmt.Sprintf("cio_relationships[%d].identifiers %s", i, msg)
		}
		return relOp{ref, attrs}, ""
	})
}

// relateAll applies relationships of the person (or "anon:<id>") who to
// objects: added (an object named by object_type_id and object_id is
// created when missing) or deleted. A cio_object_id no object has is
// skipped: Customer.io's answer to one is UNCONFIRMED; the sandbox accepts
// the operation and changes nothing for that relationship.
func (st *state) relateAll(who string, rels []relOp, add bool) {
	for _, r := range rels {
		k, ok := st.object(r.objRef)
		switch {
		case !ok:
		case add:
			st.relate(who, k.typeID, k.id, r.attrs)
		default:
			delete(st.rels, relKey{who, k.typeID, k.id})
		}
	}
}

type personRel struct {
	typ, val string
	attrs    map[string]any
}

// parsePersonRels validates [{"identifiers":{id|email|cio_id|anonymous_id},
// "relationship_attributes":{...}}] on an object operation.
func parsePersonRels(v any, allowed ...string) ([]personRel, string) {
	return parseRels(v, func(i int, ids, attrs map[string]any) (personRel, string) {
		typ, val, ok := oneIdentifier(ids, allowed...)
		if !ok {
			return personRel{}, fmt.Sprintf("cio_relationships[%d].identifiers must have exactly one of %s", i, strings.Join(allowed, ", "))
		}
		return personRel{typ, val, attrs}, ""
	})
}
