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
		src, body, ok := s.sourceBody(w, r, named, KindMParticle)
		if !ok {
			return
		}
		batches, _, e := decodeObjects(body, "a batch must be a JSON object", "the body must be an mParticle batch or an array of batches")
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
	var events []any
	if v, ok := b["events"]; ok && v != nil {
		evs, ok := v.([]any)
		if !ok {
			return nil, bad("invalid", prefix+"events", "events must be an array")
		}
		events = evs
	}
	var uattrs map[string]any
	if v, ok := b["user_attributes"]; ok && v != nil {
		ua, ok := v.(map[string]any)
		if !ok {
			return nil, bad("invalid", prefix+"user_attributes", "user_attributes must be an object")
		}
		uattrs = ua
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
	reqID := idString(b["source_request_id"])
	if reqID == "" {
		reqID = idString(b["batch_id"])
	}
	var items []item
	one := func(mid, suffix string, p tasks.Payload, field string) *reqError {
		if err := p.Validate(); err != nil {
			return validation(field, p.TaskType(), err)
		}
		items = append(items, item{jobs: []job{{typ: p.TaskType(), payload: p, opts: baseOpts(src, mid, suffix)}}})
		return nil
	}
	attrs := map[string]any{}
	for k, v := range uattrs {
		attrs[mpAttribute(k)] = v
	}
	if email != "" {
		attrs["email"] = email
	}
	if len(attrs) > 0 {
		mid := ""
		if reqID != "" {
			mid = "batch:" + reqID
		}
		if e := one(mid, "attributes", tasks.Identify{Identifiers: person, Attributes: attrs}, prefix+"user_attributes."); e != nil {
			return nil, e
		}
	}
	for i, ev := range events {
		f := fmt.Sprintf("%sevents[%d].", prefix, i)
		m, ok := ev.(map[string]any)
		if !ok {
			return nil, bad("invalid", strings.TrimSuffix(f, "."), "an event must be an object")
		}
		data := obj(m, "data")
		mid := firstString(data["source_message_id"], data["event_id"])
		ts, err := unixSeconds(data["timestamp_unixtime_ms"])
		if err != nil {
			return nil, bad("invalid_timestamp", f+"data.timestamp_unixtime_ms", "timestamp_unixtime_ms must be unix milliseconds")
		}
		id := eventID(src.Name, mid)
		switch idString(m["event_type"]) {
		case "custom_event":
			name := mpName(idString(data["event_name"]))
			if name == "" {
				return nil, bad("invalid", f+"data.event_name", "a custom event needs event_name")
			}
			ca, _ := data["custom_attributes"].(map[string]any)
			if e := one(mid, "event", tasks.Track{Identifiers: person, Event: customerio.Event{
				Name: name, ID: id, Type: customerio.EventTypeEvent, Timestamp: ts, Data: ca}}, f); e != nil {
				return nil, e
			}
		case "screen_view":
			name := mpName(idString(data["screen_name"]))
			if name == "" {
				return nil, bad("invalid", f+"data.screen_name", "a screen view needs screen_name")
			}
			ca, _ := data["custom_attributes"].(map[string]any)
			if e := one(mid, "event", tasks.Track{Identifiers: person, Event: customerio.Event{
				Name: name, ID: id, Type: customerio.EventTypeScreen, Timestamp: ts, Data: ca}}, f); e != nil {
				return nil, e
			}
		case "user_attribute_change":
			name := idString(data["user_attribute_name"])
			if strings.TrimSpace(name) == "" {
				return nil, bad("invalid", f+"data.user_attribute_name", "a user attribute change needs user_attribute_name")
			}
			val := data["new"]
			if del, _ := data["deleted"].(bool); del || val == nil {
				val = "" // an empty value removes the attribute
			}
			if e := one(mid, "attribute", tasks.Identify{Identifiers: person, Attributes: map[string]any{mpAttribute(name): val}}, f); e != nil {
				return nil, e
			}
		case "opt_out":
			out, _ := data["is_opted_out"].(bool)
			if e := one(mid, "opt_out", tasks.Identify{Identifiers: person, Attributes: map[string]any{"unsubscribed": out}}, f); e != nil {
				return nil, e
			}
		default:
			st.ignored++
		}
	}
	return items, nil
}
