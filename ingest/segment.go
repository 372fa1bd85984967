package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// segMsg is one Segment-spec message of a request.
type segMsg struct {
	call   string         // identify, track, page, screen, group, alias
	m      map[string]any // the message (numbers as json.Number)
	prefix string         // "" or "batch[3]." for error fields
}

func (s *Server) segment(call string, named bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		src, body, signed, ok := s.sourceBody(w, r, named, KindSegment, KindRudderStack)
		if !ok {
			return
		}
		msgs, e := splitSegment(call, body, s.cfg.MaxItems)
		if e != nil {
			s.fail(w, src.Name, e)
			return
		}
		items := make([]item, len(msgs))
		for i, m := range msgs {
			if signed {
				if e := s.checkSignedSegment(m); e != nil {
					s.fail(w, src.Name, e)
					return
				}
			}
			it, e := s.planSegment(src, m)
			if e != nil {
				s.fail(w, src.Name, e)
				return
			}
			it.mid = str(m.m, "messageId")
			items[i] = it
		}
		s.finish(w, src.Name, http.StatusOK, len(items), s.enqueueAll(r, src.Name, items), nil)
	}
}

func wrongEndpoint(src *source) *reqError {
	hint := map[string]string{
		KindSegment: "/v1/{call}", KindRudderStack: "/v1/{call}",
		KindMParticle: "/v1/mparticle", KindCustom: "/v1/custom/" + src.Name,
	}[src.Kind]
	return &reqError{status: http.StatusForbidden, code: "wrong_endpoint",
		msg: fmt.Sprintf("source %q is a %s source; send to %s", src.Name, src.Kind, hint)}
}

// checkSignedSegment refuses a signed Segment message that could be a
// replay (see checkReplay): its id is messageId, its time sentAt, or
// timestamp when it has none (Segment's webhook destination sends both).
func (s *Server) checkSignedSegment(m segMsg) *reqError {
	t := signedTime{field: m.prefix + "timestamp"}
	v, ok := m.m["sentAt"]
	if ok && v != nil && v != "" {
		t.field = m.prefix + "sentAt"
	} else {
		v = m.m["timestamp"] // checked by segMessage
	}
	sec, err := unixSeconds(v)
	if err != nil {
		return bad("invalid_timestamp", t.field, "%s must be an ISO-8601 date-time", strings.TrimPrefix(t.field, m.prefix))
	}
	t.unix = sec
	return s.checkReplay(str(m.m, "messageId"), m.prefix+"messageId", t)
}

var validCalls = map[string]bool{"identify": true, "track": true, "page": true, "screen": true, "group": true, "alias": true}

// splitSegment reads a single message (call given, or taken from "type"
// when call is "") or a batch ({"batch":[...], "context":{...}}) of at
// most maxItems messages.
func splitSegment(call string, body []byte, maxItems int) ([]segMsg, *reqError) {
	var top map[string]json.RawMessage
	if e := decodeJSON(body, &top); e != nil {
		return nil, e
	}
	if top == nil {
		return nil, bad("malformed_json", "", "the body must be a JSON object")
	}
	if call == "" {
		if _, ok := top["batch"]; ok {
			call = "batch"
		}
	}
	if call != "batch" {
		if len(body) > MaxEventBytes {
			return nil, eventTooLarge("")
		}
		var m map[string]any
		if e := decodeJSON(body, &m); e != nil {
			return nil, e
		}
		msg, e := segMessage(call, m, "")
		if e != nil {
			return nil, e
		}
		return []segMsg{msg}, nil
	}
	rawBatch, ok := top["batch"]
	if !ok {
		return nil, bad("invalid", "batch", "batch is required")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(rawBatch, &raws); err != nil || raws == nil {
		return nil, bad("invalid", "batch", "batch must be an array of messages")
	}
	if len(raws) == 0 {
		return nil, bad("invalid", "batch", "batch must hold at least one message")
	}
	if len(raws) > maxItems {
		return nil, tooManyItems("batch", maxItems)
	}
	var ctx map[string]any
	if c, ok := top["context"]; ok {
		if e := decodeJSON(c, &ctx); e != nil {
			return nil, bad("invalid", "context", "context must be an object")
		}
	}
	msgs := make([]segMsg, len(raws))
	for i, raw := range raws {
		prefix := fmt.Sprintf("batch[%d].", i)
		if len(raw) > MaxEventBytes {
			return nil, eventTooLarge(strings.TrimSuffix(prefix, "."))
		}
		var m map[string]any
		if e := decodeJSON(raw, &m); e != nil || m == nil {
			return nil, bad("invalid", strings.TrimSuffix(prefix, "."), "a batch item must be a JSON object")
		}
		if _, has := m["context"]; !has && ctx != nil {
			m["context"] = ctx
		}
		msg, e := segMessage("", m, prefix)
		if e != nil {
			return nil, e
		}
		msgs[i] = msg
	}
	return msgs, nil
}

func eventTooLarge(field string) *reqError {
	return &reqError{status: http.StatusRequestEntityTooLarge, code: "event_too_large", field: field,
		msg: fmt.Sprintf("a message must be at most %d bytes (the 32 KB event limit)", MaxEventBytes)}
}

// segMessage checks the envelope of one message: its type, the types of
// its id fields (numbers become strings) and of its object fields.
func segMessage(call string, m map[string]any, prefix string) (segMsg, *reqError) {
	if m == nil {
		return segMsg{}, bad("malformed_json", strings.TrimSuffix(prefix, "."), "a message must be a JSON object")
	}
	t, hasType := m["type"]
	ts, _ := t.(string)
	ts = strings.ToLower(strings.TrimSpace(ts))
	switch {
	case call == "" && !hasType:
		return segMsg{}, bad("missing_type", prefix+"type", "type is required (identify, track, page, screen, group or alias)")
	case call == "" && !validCalls[ts]:
		return segMsg{}, bad("unknown_type", prefix+"type", "type must be identify, track, page, screen, group or alias")
	case call == "":
		call = ts
	case hasType && t != nil && ts != call:
		return segMsg{}, bad("type_mismatch", prefix+"type", "type does not match the endpoint (%s)", call)
	}
	m["type"] = call
	for _, k := range []string{"userId", "anonymousId", "previousId", "groupId", "messageId"} {
		v, ok := m[k]
		if !ok || v == nil {
			delete(m, k)
			continue
		}
		str := idString(v)
		if str == "" {
			if _, isStr := v.(string); !isStr {
				return segMsg{}, bad("invalid", prefix+k, "%s must be a string", k)
			}
			delete(m, k)
			continue
		}
		m[k] = str
	}
	for _, k := range []string{"traits", "properties", "context", "integrations"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		if v == nil {
			delete(m, k)
			continue
		}
		if _, isObj := v.(map[string]any); !isObj {
			return segMsg{}, bad("invalid", prefix+k, "%s must be an object", k)
		}
	}
	for _, k := range []string{"event", "name", "category", "timestamp"} {
		if v, ok := m[k]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				return segMsg{}, bad("invalid", prefix+k, "%s must be a string", k)
			}
		}
	}
	if _, err := unixSeconds(m["timestamp"]); err != nil {
		return segMsg{}, bad("invalid_timestamp", prefix+"timestamp", "timestamp must be an ISO-8601 date-time")
	}
	uid, aid := str(m, "userId"), str(m, "anonymousId")
	if call == "alias" {
		if uid == "" {
			return segMsg{}, bad("missing_identity", prefix+"userId", "alias needs userId")
		}
		if str(m, "previousId") == "" {
			return segMsg{}, bad("missing_identity", prefix+"previousId", "alias needs previousId")
		}
	} else if uid == "" && aid == "" && !(call == "track" && str(m, "groupId") != "") {
		return segMsg{}, bad("missing_identity", prefix+"userId", "userId or anonymousId is required")
	}
	switch call {
	case "track":
		if strings.TrimSpace(str(m, "event")) == "" {
			return segMsg{}, bad("invalid", prefix+"event", "track needs event")
		}
	case "group":
		if str(m, "groupId") == "" {
			return segMsg{}, bad("invalid", prefix+"groupId", "group needs groupId")
		}
	}
	return segMsg{call: call, m: m, prefix: prefix}, nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

// planSegment turns one message into its tasks, per the source's mode.
func (s *Server) planSegment(src *source, sm segMsg) (item, *reqError) {
	if src.mode == ModePipelines {
		return s.planPipelines(src, sm)
	}
	return s.planTrack(src, sm)
}

// baseOpts are the enqueue options of a task derived from a message.
func baseOpts(src *source, messageID, suffix string) []producer.EnqueueOption {
	var opts []producer.EnqueueOption
	if src.Workspace != "" {
		opts = append(opts, producer.Workspace(src.Workspace))
	}
	if k := idempotencyKey(src.Name, messageID, suffix); k != "" {
		opts = append(opts, producer.IdempotencyKey(k))
	}
	return opts
}

// payloadJob validates p, a task made of a message whose fields are named
// with prefix in errors, and makes its job (messageID and suffix: see
// baseOpts).
func payloadJob(src *source, prefix, messageID, suffix string, p tasks.Payload) (job, *reqError) {
	if err := p.Validate(); err != nil {
		return job{}, validation(prefix, p.TaskType(), err)
	}
	return job{typ: p.TaskType(), payload: p, opts: baseOpts(src, messageID, suffix), prefix: prefix,
		batch: tasks.Batchable(p.TaskType()), ws: src.Workspace, key: idempotencyKey(src.Name, messageID, suffix)}, nil
}

// planPipelines forwards the message as a cdp:<call> task, as received
// (batch context merged in).
func (s *Server) planPipelines(src *source, sm segMsg) (item, *reqError) {
	typ := "cdp:" + sm.call
	raw, err := json.Marshal(sm.m)
	if err != nil {
		return item{}, bad("invalid", strings.TrimSuffix(sm.prefix, "."), "the message cannot be encoded")
	}
	_, p, err := tasks.Decode(typ, raw)
	if err != nil {
		return item{}, bad("invalid", strings.TrimSuffix(sm.prefix, "."), "the message does not fit the Pipelines format")
	}
	if err := p.Validate(); err != nil {
		return item{}, validation(sm.prefix, typ, err)
	}
	return item{jobs: []job{{typ: typ, raw: raw, opts: baseOpts(src, str(sm.m, "messageId"), "cdp"), prefix: sm.prefix}}}, nil
}

// validation turns a payload's *ValidationError into a 400 naming the
// field of the message (payload names mapped back to Segment's).
func validation(prefix, typ string, err error) *reqError {
	var ve *customerio.ValidationError
	if !errors.As(err, &ve) {
		return bad("invalid", strings.TrimSuffix(prefix, "."), "%s: invalid", typ)
	}
	code := "invalid"
	if ve.Field == "message" || ve.Field == "batch" {
		code = "event_too_large"
	}
	return bad(code, prefix+segmentField(ve.Field), "%s: %s", typ, ve.Reason)
}

// segmentField maps a task payload's field name to the Segment field it
// came from.
func segmentField(f string) string {
	for _, p := range []struct{ from, to string }{
		{"identifiers.id", "userId"}, {"identifiers", "userId"}, {"primary.id", "userId"}, {"primary", "userId"},
		{"secondary.id", "previousId"}, {"secondary", "previousId"}, {"anonymous_id", "anonymousId"},
		{"attributes", "traits"}, {"data", "properties"}, {"object_id", "groupId"},
		{"object_type_id", "traits.objectTypeId"}, {"relationship_attributes", "traits.relationshipAttributes"},
		{"device.id", "context.device.token"}, {"device.platform", "context.device.type"},
	} {
		if f == p.from {
			return p.to
		}
		if strings.HasPrefix(f, p.from+".") {
			return p.to + f[len(p.from):]
		}
	}
	return f
}

// semantic are Customer.io's semantic events that Track mode turns into
// their own operations.
const (
	evUserDeleted       = "User Deleted"
	evUserSuppressed    = "User Suppressed"
	evUserUnsuppressed  = "User Unsuppressed"
	evDeviceUpdated     = "Device Created or Updated"
	evDeviceDeleted     = "Device Deleted"
	evRelationshipGone  = "Relationship Deleted"
	evObjectDeleted     = "Object Deleted"
	defaultObjectTypeID = "1"
)

// trackPlan is one message being translated into Track API tasks.
type trackPlan struct {
	src           *source
	sm            segMsg
	m             map[string]any // sm.m
	p             string         // sm.prefix
	uid, aid, mid string         // userId, anonymousId, messageId
	ts            int64          // timestamp in unix seconds (0: none)
	person        customerio.Identifiers
}

// planTrack translates a message into Track API tasks: one function per
// Segment call.
func (s *Server) planTrack(src *source, sm segMsg) (item, *reqError) {
	m := sm.m
	t := &trackPlan{src: src, sm: sm, m: m, p: sm.prefix,
		uid: str(m, "userId"), aid: str(m, "anonymousId"), mid: str(m, "messageId")}
	t.ts, _ = unixSeconds(m["timestamp"])
	t.person = customerio.Identifiers{ID: t.uid}
	switch sm.call {
	case "identify":
		return t.identify()
	case "track":
		return t.track()
	case "page":
		return t.page()
	case "screen":
		return t.screen()
	case "group":
		return t.group()
	case "alias":
		return t.one("merge", tasks.MergePeople{Primary: t.person, Secondary: customerio.Identifiers{ID: str(m, "previousId")}})
	}
	return item{}, bad("unknown_type", t.p+"type", "unknown type")
}

// one is the item of the single task pl (suffix: see baseOpts).
func (t *trackPlan) one(suffix string, pl tasks.Payload) (item, *reqError) {
	j, e := payloadJob(t.src, t.p, t.mid, suffix, pl)
	if e != nil {
		return item{}, e
	}
	return item{jobs: []job{j}}, nil
}

// needUser refuses a message without userId for what.
func (t *trackPlan) needUser(what string) *reqError {
	if t.uid == "" {
		return bad("missing_identity", t.p+"userId", "%s needs userId", what)
	}
	return nil
}

// identify: attributes of a person (merging the anonymous profile when
// both ids are given); an anonymous identify makes no task.
func (t *trackPlan) identify() (item, *reqError) {
	attrs, e := attributes(obj(t.m, "traits"), t.p+"traits")
	if e != nil {
		return item{}, e
	}
	switch {
	case t.uid != "" && t.aid != "":
		return t.one("merge", tasks.MergeAnonymous{Identifiers: t.person, AnonymousID: t.aid, Attributes: attrs})
	case t.uid != "":
		return t.one("identify", tasks.Identify{Identifiers: t.person, Attributes: attrs})
	}
	return item{skipped: "anonymous identify: the Track API has no anonymous profiles"}, nil
}

// track: an event, or the operation of one of Customer.io's semantic events.
func (t *trackPlan) track() (item, *reqError) {
	props := obj(t.m, "properties")
	name := strings.TrimSpace(str(t.m, "event"))
	switch name {
	case evUserDeleted, evUserSuppressed, evUserUnsuppressed:
		return t.personOp(name)
	case evDeviceUpdated, evDeviceDeleted:
		return t.device(name, props)
	case evRelationshipGone, evObjectDeleted:
		return t.objectGone(name, props)
	}
	return t.event(name, customerio.EventTypeEvent, props)
}

// personOp deletes, suppresses or unsuppresses the person.
func (t *trackPlan) personOp(name string) (item, *reqError) {
	if e := t.needUser(name); e != nil {
		return item{}, e
	}
	switch name {
	case evUserDeleted:
		return t.one("delete", tasks.Delete{Identifiers: t.person})
	case evUserSuppressed:
		return t.one("suppress", tasks.Suppress{Identifiers: t.person})
	}
	return t.one("unsuppress", tasks.Unsuppress{Identifiers: t.person})
}

// device adds or updates, or deletes, the device of context.device.token.
func (t *trackPlan) device(name string, props map[string]any) (item, *reqError) {
	if e := t.needUser(name); e != nil {
		return item{}, e
	}
	dev := obj(obj(t.m, "context"), "device")
	tok := idString(dev["token"])
	if tok == "" {
		return item{}, bad("invalid", t.p+"context.device.token", "%s needs context.device.token", name)
	}
	if name == evDeviceDeleted {
		return t.one("device", tasks.DeviceDelete{Identifiers: t.person, Device: tasks.DeviceRef{ID: tok}})
	}
	return t.one("device", tasks.DeviceAdd{Identifiers: t.person, Device: customerio.Device{
		ID: tok, Platform: strings.ToLower(idString(dev["type"])), LastUsed: t.ts,
		Attributes: deviceAttributes(t.m, props),
	}})
}

// objectGone deletes the object of properties.objectId, or the person's
// relationship to it.
func (t *trackPlan) objectGone(name string, props map[string]any) (item, *reqError) {
	oid := idString(props["objectId"])
	if oid == "" {
		return item{}, bad("invalid", t.p+"properties.objectId", "%s needs properties.objectId", name)
	}
	otype := idString(props["objectTypeId"])
	if otype == "" {
		otype = defaultObjectTypeID
	}
	if name == evObjectDeleted {
		return t.one("object_delete", tasks.ObjectDelete{ObjectTypeID: otype, ObjectID: oid})
	}
	if e := t.needUser(name); e != nil {
		return item{}, e
	}
	return t.one("unrelate", tasks.Unrelate{Identifiers: t.person, ObjectTypeID: otype, ObjectID: oid})
}

// page: a page event named by its URL or path.
func (t *trackPlan) page() (item, *reqError) {
	props := obj(t.m, "properties")
	page := obj(obj(t.m, "context"), "page")
	name := firstString(props["url"], props["path"], t.m["name"], page["url"], page["path"])
	if name == "" {
		return item{}, bad("invalid", t.p+"properties.url", "page needs properties.url, properties.path or name")
	}
	return t.event(name, customerio.EventTypePage, withName(props, t.m))
}

// screen: a screen event.
func (t *trackPlan) screen() (item, *reqError) {
	props := obj(t.m, "properties")
	name := firstString(t.m["name"], props["name"])
	if name == "" {
		return item{}, bad("invalid", t.p+"name", "screen needs name")
	}
	return t.event(name, customerio.EventTypeScreen, props)
}

// group: the object groupId with the traits as attributes and, with a
// userId, the person's relationship to it.
func (t *trackPlan) group() (item, *reqError) {
	traits := obj(t.m, "traits")
	otype := idString(traits["objectTypeId"])
	if otype == "" {
		otype = defaultObjectTypeID
	}
	var rel map[string]any
	if v, ok := traits["relationshipAttributes"]; ok && v != nil {
		r, isObj := v.(map[string]any)
		if !isObj {
			return item{}, bad("invalid", t.p+"traits.relationshipAttributes", "relationshipAttributes must be an object")
		}
		rel = r
	}
	rest := make(map[string]any, len(traits))
	for k, v := range traits {
		if k != "objectTypeId" && k != "relationshipAttributes" {
			rest[k] = v
		}
	}
	attrs, e := attributes(rest, t.p+"traits")
	if e != nil {
		return item{}, e
	}
	gid := str(t.m, "groupId")
	up, e := payloadJob(t.src, t.p, t.mid, "object", tasks.ObjectUpsert{ObjectTypeID: otype, ObjectID: gid, Attributes: attrs})
	if e != nil {
		return item{}, e
	}
	it := item{jobs: []job{up}}
	if t.uid != "" {
		rl, e := payloadJob(t.src, t.p, t.mid, "relate", tasks.Relate{Identifiers: t.person, ObjectTypeID: otype, ObjectID: gid, RelationshipAttributes: rel})
		if e != nil {
			return item{}, e
		}
		it.jobs = append(it.jobs, rl)
	}
	return it, nil
}

// event makes a person's event (userId) or an anonymous one (anonymousId
// only) of the given type.
func (t *trackPlan) event(name string, typ customerio.EventType, data map[string]any) (item, *reqError) {
	id := eventID(t.src.Name, t.mid)
	if t.uid == "" && t.aid == "" {
		return item{}, bad("missing_identity", t.p+"userId", "the Track API needs userId or anonymousId")
	}
	var it item
	var e *reqError
	if t.uid != "" {
		it, e = t.one("event", tasks.Track{Identifiers: customerio.Identifiers{ID: t.uid},
			Event: customerio.Event{Name: name, ID: id, Type: typ, Timestamp: t.ts, Data: data}})
	} else {
		it, e = t.one("event", tasks.TrackAnonymous{AnonymousID: t.aid, Name: name, ID: id, Type: typ, Timestamp: t.ts, Data: data})
	}
	if e != nil && e.field == t.p+"name" {
		switch t.sm.call { // the Segment field the name came from
		case "track":
			e.field = t.p + "event"
		case "page":
			e.field = t.p + "properties.url"
		}
	}
	return it, e
}

// withName adds a page's name and category to its data when set.
func withName(props, m map[string]any) map[string]any {
	name, cat := str(m, "name"), str(m, "category")
	if name == "" && cat == "" {
		return props
	}
	out := make(map[string]any, len(props)+2)
	for k, v := range props {
		out[k] = v
	}
	if _, ok := out["name"]; !ok && name != "" {
		out["name"] = name
	}
	if _, ok := out["category"]; !ok && cat != "" {
		out["category"] = cat
	}
	return out
}

func firstString(vs ...any) string {
	for _, v := range vs {
		if s := strings.TrimSpace(idString(v)); s != "" {
			return s
		}
	}
	return ""
}

// attributes turns Segment traits into Customer.io attributes: createdAt
// (ISO-8601 or a number) becomes created_at in unix seconds; other traits
// are copied as they are.
func attributes(traits map[string]any, field string) (map[string]any, *reqError) {
	if len(traits) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(traits))
	for k, v := range traits {
		switch k {
		case "createdAt", "created_at":
			sec, err := unixSeconds(v)
			if err != nil {
				return nil, bad("invalid_timestamp", field+"."+k, "%s must be an ISO-8601 date-time or unix seconds", k)
			}
			if sec > 0 {
				out["created_at"] = sec
			}
		default:
			out[k] = v
		}
	}
	return out, nil
}

// deviceAttributes are the device attributes of a "Device Created or
// Updated" event: the event's properties (as strings) and what context says
// of the app and the OS.
func deviceAttributes(m, props map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range props {
		switch t := v.(type) {
		case string:
			out[k] = t
		case json.Number:
			out[k] = t.String()
		case bool:
			out[k] = fmt.Sprint(t)
		}
	}
	ctx := obj(m, "context")
	if v := idString(obj(ctx, "app")["version"]); v != "" {
		out["app_version"] = v
	}
	if v := idString(obj(ctx, "os")["version"]); v != "" {
		out["device_os"] = v
	}
	if v := idString(obj(ctx, "device")["model"]); v != "" {
		out["device_model"] = v
	}
	if v := idString(ctx["locale"]); v != "" {
		out["device_locale"] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
