package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// mparticle serves POST /v1/mparticle and /v1/mparticle/{source}: one
// mParticle server-to-server batch, or an array of them.
func (s *Server) mparticle(named bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// mParticle does not sign: the configuration gives its sources a
		// write key only, so signed is always false here.
		src, body, _, ok := s.sourceBody(w, r, named, KindMParticle)
		if !ok {
			return
		}
		batches, _, e := decodeObjects(body, "a batch must be a JSON object", "the body must be an mParticle batch or an array of batches")
		if e == nil && len(batches) > s.cfg.MaxItems {
			e = tooManyItems(fmt.Sprintf("[%d]", s.cfg.MaxItems), s.cfg.MaxItems)
		}
		if e != nil {
			s.fail(w, src.Name, e)
			return
		}
		var items []item
		stats := mpStats{}
		for i, b := range batches {
			prefix := ""
			if len(batches) > 1 {
				prefix = fmt.Sprintf("[%d].", i)
			}
			its, e := s.planMParticle(src, b, prefix, &stats)
			if e == nil && len(items)+len(its) > s.cfg.MaxItems {
				e = tooManyItems(prefix+"events", s.cfg.MaxItems)
			}
			if e != nil {
				s.fail(w, src.Name, e)
				return
			}
			items = append(items, its...)
		}
		res := s.enqueueAll(r, src.Name, items)
		s.finish(w, src.Name, http.StatusAccepted, len(items), res, map[string]any{
			"skipped_users": stats.skippedUsers, "skipped_events": stats.skippedEvents, "ignored_events": stats.ignored,
		})
	}
}

type mpStats struct {
	skippedUsers  int // batches whose user has neither customer id nor (usable) email
	skippedEvents int // events of those users
	ignored       int // events of types Customer.io's integration does not forward
}

// mpIdentities reads user_identities: an object ({"customer_id": ...,
// "email": ...}) or the older array of {"identity_type", "identity"}.
func mpIdentities(v any) (customerID, email string) {
	switch t := v.(type) {
	case map[string]any:
		return idString(t["customer_id"]), idString(t["email"])
	case []any:
		for _, x := range t {
			m, _ := x.(map[string]any)
			switch strings.ToLower(idString(m["identity_type"])) {
			case "customer_id", "customerid", "1":
				customerID = idString(m["identity"])
			case "email", "7":
				email = idString(m["identity"])
			}
		}
	}
	return customerID, email
}

// mpName is an event name as mParticle's Customer.io integration sends it:
// trimmed, spaces replaced by underscores.
func mpName(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), " ", "_") }

// mpAttribute names a user attribute: mParticle's reserved "$FirstName"
// becomes "first_name"; other names are kept.
func mpAttribute(name string) string {
	if !strings.HasPrefix(name, "$") {
		return name
	}
	var b strings.Builder
	for i, r := range strings.TrimPrefix(name, "$") {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// planMParticle turns one batch into items: the user's attributes (one
// identify) and one item per event.
func (s *Server) planMParticle(src *source, b map[string]any, prefix string, st *mpStats) ([]item, *reqError) {
	events, uattrs, e := mpBatchFields(b, prefix)
	if e != nil {
		return nil, e
	}
	cid, email := mpIdentities(b["user_identities"])
	var person customerio.Identifiers
	switch {
	case cid != "":
		person.ID = cid
	case src.EmailFallback && strings.Contains(email, "@"):
		person.Email = email
	default:
		st.skippedUsers++
		st.skippedEvents += len(events)
		return []item{{skipped: "user has neither a customer id nor an email"}}, nil
	}
	t := &mpPlan{src: src, person: person}
	if e := t.userAttributes(b, uattrs, email, prefix); e != nil {
		return nil, e
	}
	for i, ev := range events {
		if e := t.event(ev, fmt.Sprintf("%sevents[%d].", prefix, i), st); e != nil {
			return nil, e
		}
	}
	return t.items, nil
}

// mpBatchFields reads a batch's events and user_attributes (nil when
// absent), refusing other JSON types.
func mpBatchFields(b map[string]any, prefix string) (events []any, uattrs map[string]any, e *reqError) {
	if v, ok := b["events"]; ok && v != nil {
		evs, ok := v.([]any)
		if !ok {
			return nil, nil, bad("invalid", prefix+"events", "events must be an array")
		}
		events = evs
	}
	if v, ok := b["user_attributes"]; ok && v != nil {
		ua, ok := v.(map[string]any)
		if !ok {
			return nil, nil, bad("invalid", prefix+"user_attributes", "user_attributes must be an object")
		}
		uattrs = ua
	}
	return events, uattrs, nil
}

// mpPlan is one batch's user being translated into Track API tasks.
type mpPlan struct {
	src    *source
	person customerio.Identifiers
	items  []item
}

// add validates the task p (error fields prefixed with field) and adds its
// item (mid and suffix: see baseOpts).
func (t *mpPlan) add(mid, suffix string, p tasks.Payload, field string) *reqError {
	j, e := payloadJob(t.src, field, mid, suffix, p)
	if e != nil {
		return e
	}
	t.items = append(t.items, item{jobs: []job{j}, mid: mid})
	return nil
}

// userAttributes adds one identify with the batch's user attributes and
// email, when there are any.
func (t *mpPlan) userAttributes(b, uattrs map[string]any, email, prefix string) *reqError {
	attrs := map[string]any{}
	for k, v := range uattrs {
		attrs[mpAttribute(k)] = v
	}
	if email != "" {
		attrs["email"] = email
	}
	if len(attrs) == 0 {
		return nil
	}
	reqID := idString(b["source_request_id"])
	if reqID == "" {
		reqID = idString(b["batch_id"])
	}
	mid := ""
	if reqID != "" {
		mid = "batch:" + reqID
	}
	return t.add(mid, "attributes", tasks.Identify{Identifiers: t.person, Attributes: attrs}, prefix+"user_attributes.")
}

// mpEvent is one event of a batch.
type mpEvent struct {
	f    string         // field prefix: "events[3]."
	data map[string]any // its data
	mid  string         // source_message_id or event_id
	id   string         // the Customer.io event id made of mid
	ts   int64          // timestamp in unix seconds
}

// event adds the task of one event: custom events and screen views become
// events, attribute changes and opt-outs identifies; other types are
// counted as ignored.
func (t *mpPlan) event(ev any, f string, st *mpStats) *reqError {
	m, ok := ev.(map[string]any)
	if !ok {
		return bad("invalid", strings.TrimSuffix(f, "."), "an event must be an object")
	}
	e := mpEvent{f: f, data: obj(m, "data")}
	e.mid = firstString(e.data["source_message_id"], e.data["event_id"])
	ts, err := unixSeconds(e.data["timestamp_unixtime_ms"])
	if err != nil {
		return bad("invalid_timestamp", f+"data.timestamp_unixtime_ms", "timestamp_unixtime_ms must be unix milliseconds")
	}
	e.ts, e.id = ts, eventID(t.src.Name, e.mid)
	switch idString(m["event_type"]) {
	case "custom_event":
		return t.track(e, "event_name", "a custom event needs event_name", customerio.EventTypeEvent)
	case "screen_view":
		return t.track(e, "screen_name", "a screen view needs screen_name", customerio.EventTypeScreen)
	case "user_attribute_change":
		return t.attributeChange(e)
	case "opt_out":
		out, _ := e.data["is_opted_out"].(bool)
		return t.add(e.mid, "opt_out", tasks.Identify{Identifiers: t.person, Attributes: map[string]any{"unsubscribed": out}}, f)
	}
	st.ignored++
	return nil
}

// track adds an event named by data[nameKey] (missing: the reason given)
// with the event's custom attributes as its data.
func (t *mpPlan) track(e mpEvent, nameKey, missing string, typ customerio.EventType) *reqError {
	name := mpName(idString(e.data[nameKey]))
	if name == "" {
		return bad("invalid", e.f+"data."+nameKey, "%s", missing)
	}
	ca, _ := e.data["custom_attributes"].(map[string]any)
	return t.add(e.mid, "event", tasks.Track{Identifiers: t.person, Event: customerio.Event{
		Name: name, ID: e.id, Type: typ, Timestamp: e.ts, Data: ca}}, e.f)
}

// attributeChange sets (or, deleted, removes) one user attribute.
func (t *mpPlan) attributeChange(e mpEvent) *reqError {
	name := idString(e.data["user_attribute_name"])
	if strings.TrimSpace(name) == "" {
		return bad("invalid", e.f+"data.user_attribute_name", "a user attribute change needs user_attribute_name")
	}
	val := e.data["new"]
	if del, _ := e.data["deleted"].(bool); del || val == nil {
		val = "" // an empty value removes the attribute
	}
	return t.add(e.mid, "attribute", tasks.Identify{Identifiers: t.person, Attributes: map[string]any{mpAttribute(name): val}}, e.f)
}
