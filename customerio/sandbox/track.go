package sandbox

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Server) trackRoutes() *http.ServeMux {
	m := http.NewServeMux()
	a := s.trackAuth
	m.HandleFunc("PUT /api/v1/customers/{id}", a(s.v1Identify))
	m.HandleFunc("DELETE /api/v1/customers/{id}", a(s.v1Delete))
	m.HandleFunc("POST /api/v1/customers/{id}/suppress", a(s.v1Suppress))
	m.HandleFunc("POST /api/v1/customers/{id}/unsuppress", a(s.v1Unsuppress))
	m.HandleFunc("POST /api/v1/customers/{id}/events", a(s.v1Event))
	m.HandleFunc("PUT /api/v1/customers/{id}/devices", a(s.v1AddDevice))
	m.HandleFunc("DELETE /api/v1/customers/{id}/devices/{device}", a(s.v1DeleteDevice))
	m.HandleFunc("POST /api/v1/events", a(s.v1AnonymousEvent))
	m.HandleFunc("POST /api/v1/merge_customers", a(s.v1Merge))
	m.HandleFunc("POST /api/v1/segments/{segment}/add_customers", a(s.v1Segment(true)))
	m.HandleFunc("POST /api/v1/segments/{segment}/remove_customers", a(s.v1Segment(false)))
	m.HandleFunc("POST /api/v1/forms/{form}/submit", a(s.v1Form))
	m.HandleFunc("GET /api/v1/accounts/region", a(s.v1Region))
	m.HandleFunc("POST /unsubscribe/{delivery}", s.v1Unsubscribe)
	m.HandleFunc("POST /api/v1/metrics", s.v1DeliveryMetric("metrics", "metric", metricNames,
		"metric must be one of bounced, clicked, converted, deferred, delivered, dropped, opened, spammed"))
	push := s.v1DeliveryMetric("push_events", "event", pushEventNames, "event must be opened, converted or delivered")
	m.HandleFunc("POST /api/v1/push/events", push)
	m.HandleFunc("POST /push/events", push)
	m.HandleFunc("POST /api/v2/entity", a(s.v2Entity))
	m.HandleFunc("POST /api/v2/batch", a(s.v2Batch))
	return m
}

func (s *Server) v1Identify(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	if len(ref) > MaxPersonIDBytes {
		metaError(w, http.StatusBadRequest, fmt.Sprintf("id attribute cannot be longer than %d bytes", MaxPersonIDBytes))
		return
	}
	attrs, err := decodeObject(bodyOf(r), true)
	if err != nil {
		metaError(w, http.StatusBadRequest, err.Error())
		return
	}
	if msg := validateIdentify(attrs); msg != "" {
		metaError(w, http.StatusBadRequest, msg)
		return
	}
	var rels []relOp
	var relAction string
	if v, ok := attrs["cio_relationships"]; ok && v != nil {
		m, _ := v.(map[string]any)
		relAction, _ = m["action"].(string)
		if relAction != "add_relationships" && relAction != "delete_relationships" {
			metaError(w, http.StatusBadRequest, "cio_relationships.action must be add_relationships or delete_relationships")
			return
		}
		var msg string
		if rels, msg = parseObjectRels(m["relationships"]); msg != "" {
			metaError(w, http.StatusBadRequest, "cio_relationships.relationships: "+msg)
			return
		}
	}
	now := s.cfg.Now()
	// _timestamp back-dates a v1 identify (Unix seconds): it is the time
	// of the change, not an attribute.
	if ts, ok := attrs["_timestamp"]; ok {
		if sec, isInt := asInt(ts); isInt && sec >= 0 {
			now = time.Unix(sec, 0).UTC()
		}
		delete(attrs, "_timestamp")
	}
	s.mutate(func(st *state) {
		p := st.identify("ref", ref, attrs, now)
		if p == nil {
			return
		}
		st.relateAll(p.cioID, rels, relAction == "add_relationships")
	})
	okEmpty(w)
}

func (s *Server) v1Delete(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	s.mutate(func(st *state) {
		if p := st.lookup(ref); p != nil {
			st.remove(p)
		}
	})
	okEmpty(w)
}

func (s *Server) v1Suppress(w http.ResponseWriter, r *http.Request) {
	if _, err := decodeObject(bodyOf(r), true); err != nil {
		metaError(w, http.StatusBadRequest, err.Error())
		return
	}
	ref := r.PathValue("id")
	now := s.cfg.Now()
	s.mutate(func(st *state) { st.suppressRef("ref", ref, now) })
	okEmpty(w)
}

// suppressRef deletes the person and blocks their identifiers.
func (st *state) suppressRef(typ, val string, now time.Time) {
	if st.blocked(typ, val) {
		return
	}
	sup := &Suppression{At: now}
	if p := st.find(typ, val); p != nil {
		sup.ID, sup.Email, sup.Phone, sup.CioID = p.id, p.email, p.phone, p.cioID
		st.remove(p)
	} else {
		switch {
		case typ == "phone":
			sup.Phone = val
		case typ == "cio_id":
			sup.CioID = strings.TrimPrefix(val, "cio_")
		case typ == "ref" && strings.HasPrefix(val, "cio_"):
			sup.CioID = val[4:]
		case typ == "email" || (typ == "ref" && strings.Contains(val, "@")):
			sup.Email = val
		case typ == "anonymous_id":
			return
		default:
			sup.ID = val
		}
	}
	st.suppress(sup)
}

func (st *state) unsuppressRef(typ, val string) {
	switch typ {
	case "ref":
		if c, ok := strings.CutPrefix(val, "cio_"); ok {
			st.unsuppress("cio:" + c)
		}
		st.unsuppress("id:"+val, "email:"+strings.ToLower(val))
	case "id":
		st.unsuppress("id:" + val)
	case "email":
		st.unsuppress("email:" + strings.ToLower(val))
	case "phone":
		st.unsuppress("phone:" + val)
	case "cio_id":
		st.unsuppress("cio:" + strings.TrimPrefix(val, "cio_"))
	}
}

func (s *Server) v1Unsuppress(w http.ResponseWriter, r *http.Request) {
	if _, err := decodeObject(bodyOf(r), true); err != nil {
		metaError(w, http.StatusBadRequest, err.Error())
		return
	}
	ref := r.PathValue("id")
	s.mutate(func(st *state) { st.unsuppressRef("ref", ref) })
	okEmpty(w)
}

// v1EventBody reads the body of a v1 event (a person's or an anonymous
// one); when it is not a valid event it answers 400 itself and reports
// false.
func v1EventBody(w http.ResponseWriter, r *http.Request) (map[string]any, Event, bool) {
	m, err := decodeObject(bodyOf(r), false)
	if err != nil {
		metaError(w, http.StatusBadRequest, err.Error())
		return nil, Event{}, false
	}
	ev, _, msg := parseEvent(m, "data", "event")
	if msg != "" {
		metaError(w, http.StatusBadRequest, msg)
		return nil, Event{}, false
	}
	return m, ev, true
}

func (s *Server) v1Event(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	_, ev, ok := v1EventBody(w, r)
	if !ok {
		return
	}
	now := s.cfg.Now()
	ev.Source, ev.ReceivedAt = "track_v1", now
	s.mutate(func(st *state) {
		if p := st.findOrCreate("ref", ref, now); p != nil {
			st.addEvent(p, ev)
		}
	})
	okEmpty(w)
}

func (s *Server) v1AnonymousEvent(w http.ResponseWriter, r *http.Request) {
	m, ev, ok := v1EventBody(w, r)
	if !ok {
		return
	}
	anon := ""
	if v, ok := m["anonymous_id"]; ok && v != nil {
		a, isStr := idString(v)
		if !isStr {
			metaError(w, http.StatusBadRequest, "anonymous_id must be a string")
			return
		}
		anon = strings.TrimSpace(a)
	}
	if anon == "" {
		if rcpt, _ := ev.Data["recipient"].(string); rcpt == "" {
			metaError(w, http.StatusBadRequest, "data.recipient is required for an event without anonymous_id")
			return
		}
	}
	now := s.cfg.Now()
	ev.Source, ev.ReceivedAt, ev.AnonymousID = "track_v1", now, anon
	s.mutate(func(st *state) { st.addAnonEvent(anon, ev) })
	okEmpty(w)
}

// parseDevice validates a device object; tokenKey is "id" (v1) or "token" (v2).
func parseDevice(v any, tokenKey string) (Device, []string) {
	var d Device
	m, ok := v.(map[string]any)
	if !ok {
		return d, []string{"device is required"}
	}
	var errs []string
	tok, _ := idString(m[tokenKey])
	if tok == "" {
		errs = append(errs, "device."+tokenKey+" is required")
	}
	plat, _ := m["platform"].(string)
	if plat == "" {
		errs = append(errs, "device.platform is required")
	}
	if lu, present := m["last_used"]; present && lu != nil {
		i, ok := asUnix(lu)
		if !ok {
			errs = append(errs, "device.last_used must be a unix timestamp")
		}
		d.LastUsed = i
	}
	if a, present := m["attributes"]; present && a != nil {
		am, ok := a.(map[string]any)
		if !ok {
			errs = append(errs, "device.attributes must be an object")
		}
		d.Attributes = am
	}
	d.Token, d.Platform = tok, plat
	return d, errs
}

func (s *Server) v1AddDevice(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	m, err := decodeObject(bodyOf(r), false)
	if err != nil {
		metaErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	d, errs := parseDevice(m["device"], "id")
	if len(errs) > 0 {
		metaErrors(w, http.StatusBadRequest, errs...)
		return
	}
	now := s.cfg.Now()
	if d.LastUsed == 0 {
		d.LastUsed = now.Unix()
	}
	s.mutate(func(st *state) {
		if p := st.findOrCreate("ref", ref, now); p != nil {
			st.upsertDevice(p, d)
			p.updatedAt = now
		}
	})
	okEmpty(w)
}

func (s *Server) v1DeleteDevice(w http.ResponseWriter, r *http.Request) {
	ref, tok := r.PathValue("id"), r.PathValue("device")
	if tok == "" {
		metaErrors(w, http.StatusBadRequest, "device id is required")
		return
	}
	s.mutate(func(st *state) {
		if p := st.lookup(ref); p != nil {
			st.deleteDevice(p, tok)
		}
	})
	okEmpty(w)
}

// parseMergeSide validates a merge primary/secondary object.
func parseMergeSide(m map[string]any, key string) (string, string, string) {
	side, ok := m[key].(map[string]any)
	if !ok {
		return "", "", key + " is required"
	}
	typ, val, ok := oneIdentifier(side, "id", "email", "cio_id")
	if !ok {
		return "", "", key + " must have exactly one of id, email or cio_id"
	}
	return typ, val, ""
}

func (st *state) mergeTyped(pt, pv, stt, sv string, now time.Time) {
	rec := Merge{Primary: map[string]string{pt: pv}, Secondary: map[string]string{stt: sv}, At: now}
	pri, sec := st.find(pt, pv), st.find(stt, sv)
	if pri != nil && sec != nil && pri != sec {
		st.merge(pri, sec, now)
		rec.Applied = true
	}
	st.merges = append(st.merges, rec)
}

func (s *Server) v1Merge(w http.ResponseWriter, r *http.Request) {
	m, err := decodeObject(bodyOf(r), false)
	if err != nil {
		metaError(w, http.StatusBadRequest, err.Error())
		return
	}
	pt, pv, msg := parseMergeSide(m, "primary")
	if msg != "" {
		metaError(w, http.StatusBadRequest, msg)
		return
	}
	stt, sv, msg := parseMergeSide(m, "secondary")
	if msg != "" {
		metaError(w, http.StatusBadRequest, msg)
		return
	}
	now := s.cfg.Now()
	s.mutate(func(st *state) { st.mergeTyped(pt, pv, stt, sv, now) })
	okEmpty(w)
}

func (s *Server) v1Segment(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		segID, err := strconv.Atoi(r.PathValue("segment"))
		notFound := func() {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("Segment not found"))
		}
		if err != nil {
			notFound()
			return
		}
		s.mu.Lock()
		_, exists := s.st.segments[segID]
		s.mu.Unlock()
		if !exists {
			notFound()
			return
		}
		idType := r.URL.Query().Get("id_type")
		switch idType {
		case "":
			idType = "id"
		case "id", "email", "cio_id":
		default:
			metaError(w, http.StatusBadRequest, "id_type must be id, email or cio_id")
			return
		}
		m, err := decodeObject(bodyOf(r), false)
		if err != nil {
			metaError(w, http.StatusBadRequest, err.Error())
			return
		}
		raw, _ := m["ids"].([]any)
		if len(raw) < 1 || len(raw) > MaxSegmentIDs {
			metaError(w, http.StatusBadRequest, fmt.Sprintf("ids must contain between 1 and %d identifiers", MaxSegmentIDs))
			return
		}
		ids := make([]string, 0, len(raw))
		for _, v := range raw {
			id, ok := idString(v)
			if !ok {
				metaError(w, http.StatusBadRequest, "ids must be strings")
				return
			}
			ids = append(ids, id)
		}
		s.mutate(func(st *state) {
			members := st.segments[segID]
			if members == nil {
				return
			}
			for _, id := range ids {
				p := st.lookupTyped(idType, id)
				if p == nil {
					continue // unknown ids are ignored
				}
				if add {
					members[p.cioID] = struct{}{}
				} else {
					delete(members, p.cioID)
				}
			}
		})
		okEmpty(w)
	}
}

var reservedFormKeys = map[string]bool{"form_id": true, "form_name": true, "form_type": true, "form_url": true, "form_url_param": true}

func (s *Server) v1Form(w http.ResponseWriter, r *http.Request) {
	formID := r.PathValue("form")
	m, err := decodeObject(bodyOf(r), false)
	if err != nil {
		metaErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	data, ok := m["data"].(map[string]any)
	if !ok {
		metaErrors(w, http.StatusBadRequest, "data must be an object")
		return
	}
	fields := map[string]string{}
	for k, v := range data {
		sv, isStr := v.(string)
		if !isStr {
			metaErrors(w, http.StatusBadRequest, fmt.Sprintf("value for field '%s' must be a string", k))
			return
		}
		fields[k] = sv
	}
	email, id := fields["email"], fields["id"]
	if (email == "") == (id == "") {
		metaErrors(w, http.StatusBadRequest, "data must contain exactly one of email or id")
		return
	}
	now := s.cfg.Now()
	s.mutate(func(st *state) {
		st.forms = append(st.forms, FormSubmission{FormID: formID, Data: fields, At: now})
		typ, val := "id", id
		if email != "" {
			typ, val = "email", email
		}
		attrs := map[string]any{}
		for k, v := range fields {
			if !reservedFormKeys[k] && k != "id" {
				attrs[k] = v
			}
		}
		if p := st.findOrCreate(typ, val, now); p != nil {
			st.setAttrs(p, attrs)
			p.updatedAt = now
		}
	})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) v1Region(w http.ResponseWriter, r *http.Request) {
	url := "https://track.customer.io"
	if s.cfg.Region == "eu" {
		url = "https://track-eu.customer.io"
	}
	writeJSON(w, http.StatusOK, map[string]any{"url": url, "region": s.cfg.Region, "environment_id": s.cfg.WorkspaceID})
}

func (s *Server) v1Unsubscribe(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		metaError(w, http.StatusBadRequest, "Content-Type must be application/json")
		return
	}
	m, err := decodeObject(bodyOf(r), false)
	if err != nil {
		metaError(w, http.StatusBadRequest, err.Error())
		return
	}
	id := r.PathValue("delivery")
	if strings.TrimSpace(id) == "" {
		metaError(w, http.StatusBadRequest, "invalid delivery id")
		return
	}
	now := s.cfg.Now()
	s.mutate(func(st *state) {
		st.devents = append(st.devents, DeliveryEvent{Source: "unsubscribe", DeliveryID: id, Metric: "unsubscribed", Body: m, At: now})
		if unsub, _ := m["unsubscribe"].(bool); !unsub {
			return
		}
		if i, ok := st.deliveryIdx[id]; ok {
			if p := st.people[st.deliveries[i].PersonCioID]; p != nil {
				p.attrs["unsubscribed"] = true
				p.updatedAt = now
			}
		}
	})
	okEmpty(w)
}

var metricNames = map[string]bool{"bounced": true, "clicked": true, "converted": true, "deferred": true, "delivered": true, "dropped": true, "opened": true, "spammed": true}

var pushEventNames = map[string]bool{"opened": true, "converted": true, "delivered": true}

// v1DeliveryMetric answers a delivery metric report (POST /api/v1/metrics,
// POST /push/events): a delivery_id and, under key, one of names (refusal
// says which), recorded as a DeliveryEvent from source. No auth.
func (s *Server) v1DeliveryMetric(source, key string, names map[string]bool, refusal string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := decodeObject(bodyOf(r), false)
		if err != nil {
			metaError(w, http.StatusBadRequest, err.Error())
			return
		}
		id, _ := m["delivery_id"].(string)
		name, _ := m[key].(string)
		if id == "" {
			metaError(w, http.StatusBadRequest, "delivery_id is required")
			return
		}
		if !names[name] {
			metaError(w, http.StatusBadRequest, refusal)
			return
		}
		s.recordDeliveryEvent(source, id, name, m)
		okEmpty(w)
	}
}

func (s *Server) recordDeliveryEvent(source, id, metric string, body map[string]any) {
	now := s.cfg.Now()
	s.mutate(func(st *state) {
		st.devents = append(st.devents, DeliveryEvent{Source: source, DeliveryID: id, Metric: metric, Body: body, At: now})
	})
}
