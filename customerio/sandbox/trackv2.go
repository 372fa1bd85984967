package sandbox

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// v2 action matrix (Track v2 in Customer.io's Track API reference).
var v2Actions = map[string]map[string]bool{
	"person": {"identify": true, "delete": true, "event": true, "screen": true, "page": true,
		"add_relationships": true, "delete_relationships": true, "add_device": true,
		"delete_device": true, "merge": true, "suppress": true, "unsuppress": true},
	"object":   {"identify": true, "identify_anonymous": true, "delete": true, "add_relationships": true, "delete_relationships": true},
	"delivery": {"event": true},
}

type v2Error struct {
	BatchIndex *int   `json:"batch_index,omitempty"`
	Reason     string `json:"reason"`
	Field      string `json:"field"`
	Message    string `json:"message"`
}

// v2Apply applies a validated operation to the state. It returns an error,
// leaving the state as it was, when the operation breaks a limit on what
// the state already holds (an object's or a relationship's attributes).
type v2Apply func(st *state, now time.Time) *v2Error

func v2Refused(field, msg string) *v2Error {
	if msg == "" {
		return nil
	}
	return &v2Error{Reason: "invalid", Field: field, Message: msg}
}

func v2Invalid(field, msg string) (v2Apply, *v2Error) {
	return nil, &v2Error{Reason: "invalid", Field: field, Message: msg}
}

// parseV2 validates one operation and returns how to apply it.
func parseV2(m map[string]any) (v2Apply, *v2Error) {
	typ, _ := m["type"].(string)
	acts, ok := v2Actions[typ]
	if !ok {
		return v2Invalid("type", "type must be person, object or delivery")
	}
	action, _ := m["action"].(string)
	if !acts[action] {
		return v2Invalid("action", fmt.Sprintf("action %q is not valid for type %q", action, typ))
	}
	switch typ {
	case "person":
		return parseV2Person(action, m)
	case "object":
		return parseV2Object(action, m)
	}
	return parseV2Delivery(m)
}

// parseV2Person parses a person operation: the merge, or the one person
// identifier every other action names, then the action's own fields.
func parseV2Person(action string, m map[string]any) (v2Apply, *v2Error) {
	if action == "merge" {
		return parseV2Merge(m)
	}
	ids, _ := m["identifiers"].(map[string]any)
	it, iv, ok := oneIdentifier(ids, "id", "email", "phone", "cio_id", "anonymous_id")
	if !ok {
		return v2Invalid("identifiers", "identifiers must have exactly one of id, email, phone or cio_id")
	}
	if it == "id" && len(iv) > MaxPersonIDBytes {
		return v2Invalid("identifiers.id", fmt.Sprintf("id cannot be longer than %d bytes", MaxPersonIDBytes))
	}
	// A phone identifier is E.164 (Customer.io's Track API reference: "a
	// leading + followed by up to 15 digits"); the wording of Customer.io's
	// refusal of another is UNCONFIRMED.
	if it == "phone" && !isE164(iv) {
		return v2Invalid("identifiers.phone", "phone must be in E.164 format, like +14155552671")
	}
	switch action {
	case "identify":
		return parseV2Identify(it, iv, m)
	case "delete":
		return func(st *state, now time.Time) *v2Error {
			if p := st.find(it, iv); p != nil {
				st.remove(p)
			}
			return nil
		}, nil
	case "event", "page", "screen":
		return parseV2Event(action, it, iv, m)
	case "add_relationships", "delete_relationships":
		return parseV2PersonRelationships(action, it, iv, m)
	case "add_device", "delete_device":
		return parseV2Device(action, it, iv, m)
	case "suppress":
		return func(st *state, now time.Time) *v2Error { st.suppressRef(it, iv, now); return nil }, nil
	case "unsuppress":
		return func(st *state, now time.Time) *v2Error { st.unsuppressRef(it, iv); return nil }, nil
	}
	return v2Invalid("action", "unsupported action")
}

// parseV2Merge parses a person merge: primary and secondary, each naming
// one person.
func parseV2Merge(m map[string]any) (v2Apply, *v2Error) {
	pt, pv, msg := parseMergeSide(m, "primary")
	if msg != "" {
		return v2Invalid("primary", msg)
	}
	stt, sv, msg := parseMergeSide(m, "secondary")
	if msg != "" {
		return v2Invalid("secondary", msg)
	}
	return func(st *state, now time.Time) *v2Error { st.mergeTyped(pt, pv, stt, sv, now); return nil }, nil
}

// parseV2Identify parses a person identify: its attributes and the objects
// it relates the person to. An anonymous_id identifier is tolerated and
// changes nothing.
func parseV2Identify(it, iv string, m map[string]any) (v2Apply, *v2Error) {
	attrs, verr := parseV2Attributes(m)
	if verr != nil {
		return nil, verr
	}
	if attrs == nil {
		attrs = map[string]any{}
	}
	var rels []relOp
	if v, present := m["cio_relationships"]; present && v != nil {
		var msg string
		if rels, msg = parseObjectRels(v); msg != "" {
			return v2Invalid("cio_relationships", msg)
		}
	}
	// The operation's timestamp back-dates the identify (Unix seconds);
	// an "_timestamp" attribute means nothing special in v2.
	var at time.Time
	if ts, isInt := asInt(m["timestamp"]); isInt && ts > 0 {
		at = time.Unix(ts, 0).UTC()
	}
	return func(st *state, now time.Time) *v2Error {
		if it == "anonymous_id" {
			return nil // tolerated, nothing to identify
		}
		if !at.IsZero() {
			now = at
		}
		if p := st.identify(it, iv, attrs, now); p != nil {
			st.relateAll(p.cioID, rels, true)
		}
		return nil
	}, nil
}

// parseV2Event parses a person's event, page or screen; an anonymous_id
// stores it as an anonymous event.
func parseV2Event(action, it, iv string, m map[string]any) (v2Apply, *v2Error) {
	ev, field, msg := parseEvent(m, "attributes", action)
	if msg != "" {
		return v2Invalid(field, msg)
	}
	ev.Type = action
	ev.Source = "track_v2"
	return func(st *state, now time.Time) *v2Error {
		ev.ReceivedAt = now
		if it == "anonymous_id" {
			ev.AnonymousID = iv
			st.addAnonEvent(iv, ev)
			return nil
		}
		if p := st.findOrCreate(it, iv, now); p != nil {
			st.addEvent(p, ev)
		}
		return nil
	}, nil
}

// parseV2PersonRelationships parses add_relationships and
// delete_relationships on a person (or an anonymous_id), refusing an
// addition that would break a relationship's attribute limits.
func parseV2PersonRelationships(action, it, iv string, m map[string]any) (v2Apply, *v2Error) {
	rels, msg := parseObjectRels(m["cio_relationships"])
	if msg != "" {
		return v2Invalid("cio_relationships", msg)
	}
	return func(st *state, now time.Time) *v2Error {
		who := "anon:" + iv
		if it != "anonymous_id" {
			if p := st.find(it, iv); p != nil {
				who = p.cioID
			} else {
				who = "" // a new person holds no relationship yet
			}
		}
		if action == "add_relationships" {
			for i, r := range rels {
				k, ok := st.object(r.objRef)
				if !ok {
					continue
				}
				if err := v2Refused(fmt.Sprintf("cio_relationships[%d].relationship_attributes", i),
					st.relationRefusal(who, k.typeID, k.id, r.attrs)); err != nil {
					return err
				}
			}
		}
		if it == "anonymous_id" {
			st.relateAll("anon:"+iv, rels, action == "add_relationships")
			return nil
		}
		p := st.findOrCreate(it, iv, now)
		if p == nil {
			return nil
		}
		st.relateAll(p.cioID, rels, action == "add_relationships")
		return nil
	}, nil
}

// parseV2Device parses add_device (a whole device) and delete_device (its
// token).
func parseV2Device(action, it, iv string, m map[string]any) (v2Apply, *v2Error) {
	dm, _ := m["device"].(map[string]any)
	var d Device
	if action == "add_device" {
		var errs []string
		if d, errs = parseDevice(m["device"], "token"); len(errs) > 0 {
			return v2Invalid("device", strings.Join(errs, "; "))
		}
	} else {
		tok, _ := idString(dm["token"])
		if tok == "" {
			return v2Invalid("device.token", "device.token is required")
		}
		d.Token = tok
	}
	return func(st *state, now time.Time) *v2Error {
		if action == "delete_device" {
			if p := st.find(it, iv); p != nil {
				st.deleteDevice(p, d.Token)
			}
			return nil
		}
		if p := st.findOrCreate(it, iv, now); p != nil {
			if d.LastUsed == 0 {
				d.LastUsed = now.Unix()
			}
			st.upsertDevice(p, d)
			p.updatedAt = now
		}
		return nil
	}, nil
}

// parseV2Attributes reads an operation's attributes: nil when absent or
// null, else an object within the attribute limits.
func parseV2Attributes(m map[string]any) (map[string]any, *v2Error) {
	a, present := m["attributes"]
	if !present || a == nil {
		return nil, nil
	}
	am, ok := a.(map[string]any)
	if !ok {
		return nil, v2Refused("attributes", "attributes must be an object")
	}
	if err := v2Refused("attributes", validateAttributes(am)); err != nil {
		return nil, err
	}
	return am, nil
}

// parseV2Object parses an object operation. The object is named by
// object_type_id and object_id, or by cio_object_id alone, which names
// only an existing object: an operation naming a cio_object_id no object
// has changes nothing (Customer.io's answer is UNCONFIRMED; its reference
// says only that identify by cio_object_id updates and cannot create).
func parseV2Object(action string, m map[string]any) (v2Apply, *v2Error) {
	ids, _ := m["identifiers"].(map[string]any)
	ref, msg := parseObjectRef(ids)
	if msg != "" {
		return v2Invalid("identifiers", "identifiers "+msg)
	}
	if len(ref.objID) > MaxPersonIDBytes {
		return v2Invalid("identifiers.object_id", fmt.Sprintf("object_id cannot be longer than %d bytes", MaxPersonIDBytes))
	}
	attrs, verr := parseV2Attributes(m)
	if verr != nil {
		return nil, verr
	}
	var rels []personRel
	relsV, hasRels := m["cio_relationships"]
	needRels := action == "add_relationships" || action == "delete_relationships" || action == "identify_anonymous"
	if needRels || (hasRels && relsV != nil && action == "identify") {
		allowed := []string{"id", "email", "cio_id"}
		if action == "identify_anonymous" {
			allowed = []string{"anonymous_id"}
		}
		var msg string
		if rels, msg = parsePersonRels(relsV, allowed...); msg != "" {
			return v2Invalid("cio_relationships", msg)
		}
	}
	return func(st *state, now time.Time) *v2Error {
		k, known := st.object(ref)
		if !known {
			return nil
		}
		typeID, objID := k.typeID, k.id
		if action == "delete" {
			st.deleteObject(typeID, objID)
			return nil
		}
		if err := v2Refused("attributes", st.objectRefusal(typeID, objID, attrs)); err != nil {
			return err
		}
		o := st.ensureObject(typeID, objID)
		mergeAttrs(o, copyMap(attrs))
		for _, r := range rels {
			who := ""
			if r.typ == "anonymous_id" {
				if p := st.lookupTyped("anonymous_id", r.val); p != nil {
					who = p.cioID
				} else {
					who = "anon:" + r.val
				}
			} else if action == "delete_relationships" {
				if p := st.find(r.typ, r.val); p != nil {
					who = p.cioID
				}
			} else if p := st.findOrCreate(r.typ, r.val, now); p != nil {
				who = p.cioID
			}
			if who == "" {
				continue
			}
			if action == "delete_relationships" {
				delete(st.rels, relKey{who, typeID, objID})
			} else {
				st.relate(who, typeID, objID, r.attrs)
			}
		}
		return nil
	}, nil
}

func parseV2Delivery(m map[string]any) (v2Apply, *v2Error) {
	ids, _ := m["identifiers"].(map[string]any)
	id, _ := idString(ids["id"])
	if id == "" || len(ids) != 1 {
		return v2Invalid("identifiers", "identifiers must have the delivery id")
	}
	name, _ := m["name"].(string)
	if strings.TrimSpace(name) == "" {
		return v2Invalid("name", "name is required")
	}
	attrs, _ := m["attributes"].(map[string]any)
	if tok, _ := attrs["device_token"].(string); tok == "" {
		return v2Invalid("attributes.device_token", "attributes.device_token is required")
	}
	return func(st *state, now time.Time) *v2Error {
		st.devents = append(st.devents, DeliveryEvent{Source: "track_v2", DeliveryID: id, Metric: name, Body: m, At: now})
		return nil
	}, nil
}

func v2Malformed(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []v2Error{{Reason: "malformed", Field: field, Message: msg}}})
}

func (s *Server) v2Entity(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	if len(body) >= MaxEntityBytes {
		v2Malformed(w, "", fmt.Sprintf("request must be smaller than %d bytes", MaxEntityBytes))
		return
	}
	m, err := decodeObject(body, false)
	if err != nil {
		v2Malformed(w, "", err.Error())
		return
	}
	apply, verr := parseV2(m)
	if verr != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []*v2Error{verr}})
		return
	}
	now := s.cfg.Now()
	s.mutate(func(st *state) { verr = apply(st, now) })
	if verr != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []*v2Error{verr}})
		return
	}
	okEmpty(w)
}

func (s *Server) v2Batch(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	if len(body) >= MaxBatchBytes {
		v2Malformed(w, "", fmt.Sprintf("request must be smaller than %d bytes", MaxBatchBytes))
		return
	}
	batch, ok := v2Envelope(body)
	if !ok {
		v2Malformed(w, "batch", "request body must be {\"batch\":[...]}")
		return
	}
	var errs []v2Error
	type indexed struct {
		idx   int
		apply v2Apply
	}
	var applies []indexed
	for i, item := range batch {
		idx := i
		var verr *v2Error
		var apply v2Apply
		if item.size >= MaxEntityBytes {
			verr = &v2Error{Reason: "invalid", Field: "", Message: fmt.Sprintf("batch item must be smaller than %d bytes", MaxEntityBytes)}
		} else if item.obj == nil {
			verr = &v2Error{Reason: "invalid", Field: "", Message: "batch item must be a JSON object"}
		} else {
			apply, verr = parseV2(item.obj)
		}
		if verr != nil {
			verr.BatchIndex = &idx
			errs = append(errs, *verr)
			continue
		}
		applies = append(applies, indexed{idx, apply})
	}
	now := s.cfg.Now()
	if len(applies) > 0 {
		s.mutate(func(st *state) {
			for _, a := range applies {
				if verr := a.apply(st, now); verr != nil {
					verr.BatchIndex = &a.idx
					errs = append(errs, *verr)
				}
			}
		})
		sort.Slice(errs, func(i, j int) bool { return *errs[i].BatchIndex < *errs[j].BatchIndex })
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusMultiStatus, map[string]any{"errors": errs})
		return
	}
	okEmpty(w)
}

// v2Item is one element of a v2 batch: its size in the body and its value
// when it is an object.
type v2Item struct {
	size int
	obj  map[string]any
}

// v2Envelope parses a v2 batch body, {"batch":[...]}, in one pass, judging
// it as encoding/json's Decoder decoding into struct{ Batch
// []json.RawMessage } does: the body's first JSON value must be a valid
// object (what follows it is not read); every key matching "batch" without
// regard to case (encoding/json's field matching) must hold an array or
// null, the last one wins and must be an array. Each element is parsed as
// decodeValue does.
func v2Envelope(body []byte) ([]v2Item, bool) {
	p := jsonParser{b: body}
	p.skipSpace()
	if p.i >= len(body) || body[p.i] != '{' {
		return nil, false
	}
	p.enter()
	p.i++
	p.skipSpace()
	if p.i < len(body) && body[p.i] == '}' {
		return nil, false
	}
	var items []v2Item
	mistyped := false
	for {
		if p.i >= len(body) || body[p.i] != '"' {
			return nil, false
		}
		k, ok := p.key()
		if !ok {
			return nil, false
		}
		p.skipSpace()
		if p.i >= len(body) || body[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.skipSpace()
		switch {
		case !strings.EqualFold(k, "batch"):
			_, ok = p.value()
		case p.i < len(body) && body[p.i] == '[':
			items, ok = p.v2Items()
		case p.i < len(body) && body[p.i] == 'n':
			items, ok = nil, p.literal("null")
		default:
			_, ok = p.value()
			mistyped = true
		}
		if !ok {
			return nil, false
		}
		closed, ok := p.next('}')
		if !ok {
			return nil, false
		}
		if closed {
			break
		}
	}
	if mistyped || items == nil {
		return nil, false
	}
	return items, true
}

// v2Items parses the batch array at p.i.
func (p *jsonParser) v2Items() ([]v2Item, bool) {
	if !p.enter() {
		return nil, false
	}
	p.i++ // [
	items := make([]v2Item, 0, 64)
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return items, true
	}
	for {
		start := p.i
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		m, _ := v.(map[string]any)
		items = append(items, v2Item{size: p.i - start, obj: m})
		closed, ok := p.next(']')
		if !ok {
			return nil, false
		}
		if closed {
			p.depth--
			return items, true
		}
	}
}
