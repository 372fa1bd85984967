package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// custom serves POST /v1/custom/{source}: a JSON object or an array of
// them, read through the source's Mappings.
func (s *Server) custom(w http.ResponseWriter, r *http.Request) {
	src, body, signed, ok := s.sourceBody(w, r, true, KindCustom)
	if !ok {
		return
	}
	objs, isArray, e := decodeObjects(body, "each item must be a JSON object", "the body must be a JSON object or an array of objects")
	switch {
	case e != nil:
	case isArray && len(objs) == 0:
		e = bad("invalid", "", "at least one object is required")
	case len(objs) > s.cfg.MaxItems:
		e = tooManyItems(fmt.Sprintf("[%d]", s.cfg.MaxItems), s.cfg.MaxItems)
	}
	if e != nil {
		s.fail(w, src.Name, e)
		return
	}
	prefix := func(int) string { return "" }
	if isArray {
		prefix = func(i int) string { return fmt.Sprintf("[%d].", i) }
	}
	items := make([]item, len(objs))
	for i, o := range objs {
		it, e := s.planCustom(src, o, prefix(i), signed)
		if e != nil {
			s.fail(w, src.Name, e)
			return
		}
		items[i] = it
	}
	s.finish(w, src.Name, http.StatusAccepted, len(items), s.enqueueAll(r, src.Name, items), nil)
}

// planCustom maps one object: a person update (email and custom
// attributes) and, when the event path holds a name, an event. A signed
// object must hold a message id and a time at the mapped paths (see
// checkReplay).
func (s *Server) planCustom(src *source, o map[string]any, prefix string, signed bool) (item, *reqError) {
	mp := src.Mappings
	uid := strings.TrimSpace(lookupString(o, mp.UserID))
	email := strings.TrimSpace(lookupString(o, mp.Email))
	if uid == "" && email == "" {
		field := mp.UserID
		if field == "" {
			field = mp.Email
		}
		return item{}, bad("missing_identity", prefix+field, "no user id or email at the mapped paths")
	}
	attrs := map[string]any{}
	if email != "" {
		attrs["email"] = email
	}
	for name, p := range mp.CustomAttributes {
		if v, ok := Lookup(o, p); ok {
			attrs[name] = v
		}
	}
	name := ""
	if mp.Event != "" {
		name = strings.TrimSpace(lookupString(o, mp.Event))
	}
	var data map[string]any
	if mp.EventProperties != "" {
		if v, ok := Lookup(o, mp.EventProperties); ok && v != nil {
			d, isObj := v.(map[string]any)
			if !isObj {
				return item{}, bad("invalid", prefix+mp.EventProperties, "event properties must be an object")
			}
			data = d
		}
	}
	var ts int64
	if mp.Timestamp != "" {
		if v, ok := Lookup(o, mp.Timestamp); ok {
			sec, err := unixSeconds(v)
			if err != nil {
				return item{}, bad("invalid_timestamp", prefix+mp.Timestamp, "the timestamp must be an ISO-8601 date-time or unix seconds")
			}
			ts = sec
		}
	}
	mid := ""
	if mp.MessageID != "" {
		mid = lookupString(o, mp.MessageID)
	}
	if signed { // the configuration requires both mappings for a source with a shared secret
		if e := s.checkReplay(mid, prefix+mp.MessageID, signedTime{field: prefix + mp.Timestamp, unix: ts}); e != nil {
			return item{}, e
		}
	}
	type derived struct {
		suffix string
		p      tasks.Payload
	}
	var pls []derived
	add := func(suffix string, p tasks.Payload) { pls = append(pls, derived{suffix, p}) }
	if src.mode == ModePipelines {
		userID := uid
		if userID == "" {
			userID = email
		}
		if len(attrs) > 0 {
			add("cdp_identify", tasks.CDPIdentify{UserID: userID, MessageID: suffixed(mid, "identify"), Traits: attrs})
		}
		if name != "" {
			m := tasks.CDPTrack{UserID: userID, MessageID: suffixed(mid, "track"), Event: name, Properties: data}
			if ts > 0 {
				m.Timestamp = time.Unix(ts, 0).UTC().Format(time.RFC3339)
			}
			add("cdp_track", m)
		}
	} else {
		person := customerio.Identifiers{ID: uid}
		if uid == "" {
			person = customerio.Identifiers{Email: email}
		}
		if len(attrs) > 0 {
			add("identify", tasks.Identify{Identifiers: person, Attributes: attrs})
		}
		if name != "" {
			add("event", tasks.Track{Identifiers: person, Event: customerio.Event{
				Name: name, ID: eventID(src.Name, mid), Type: customerio.EventTypeEvent, Timestamp: ts, Data: data}})
		}
	}
	if len(pls) == 0 {
		return item{skipped: "nothing mapped: no attributes and no event"}, nil
	}
	it := item{mid: mid}
	for _, x := range pls {
		j, e := payloadJob(src, prefix, mid, x.suffix, x.p)
		if e != nil {
			return item{}, e
		}
		it.jobs = append(it.jobs, j)
	}
	return it, nil
}

// suffixed is a Pipelines messageId derived from a custom message id.
func suffixed(mid, suffix string) string {
	if mid == "" {
		return ""
	}
	return mid + ":" + suffix
}

// decodeObjects decodes a body holding one JSON object or an array of
// objects; isArray tells which. elemMsg is the error for an array element
// that is not an object, shapeMsg the one for any other JSON value.
func decodeObjects(body []byte, elemMsg, shapeMsg string) (objs []map[string]any, isArray bool, e *reqError) {
	var v any
	if e := decodeJSON(body, &v); e != nil {
		return nil, false, e
	}
	switch t := v.(type) {
	case map[string]any:
		return []map[string]any{t}, false, nil
	case []any:
		objs = make([]map[string]any, 0, len(t))
		for i, x := range t {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, true, bad("invalid", fmt.Sprintf("[%d]", i), "%s", elemMsg)
			}
			objs = append(objs, m)
		}
		return objs, true, nil
	}
	return nil, false, bad("malformed_json", "", "%s", shapeMsg)
}
