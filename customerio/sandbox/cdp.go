package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

func (s *Server) cdpRoutes() *http.ServeMux {
	m := http.NewServeMux()
	for _, t := range []string{"identify", "track", "page", "screen", "group", "alias"} {
		m.HandleFunc("POST /"+t, s.cdpAuth(s.cdpSingle(t)))
	}
	m.HandleFunc("POST /batch", s.cdpAuth(s.cdpBatch))
	return m
}

func strictMode(r *http.Request) bool {
	v := strings.TrimSpace(r.Header.Get("X-Strict-Mode"))
	return v == "1" || strings.EqualFold(v, "true")
}

// validateCDP checks one message of type typ; "" means valid.
func validateCDP(typ string, m map[string]any) string {
	userID, _ := idString(m["userId"])
	anonID, _ := idString(m["anonymousId"])
	switch typ {
	case "identify", "track", "page", "screen", "group":
		if typ == "track" {
			if ev, _ := m["event"].(string); strings.TrimSpace(ev) == "" {
				return "event is required"
			}
		}
		if typ == "group" {
			if g, _ := idString(m["groupId"]); g == "" {
				return "groupId is required"
			}
		}
		if userID == "" && anonID == "" {
			if typ == "track" {
				if g, _ := idString(m["groupId"]); g != "" {
					return "" // group track variant
				}
			}
			return "userId or anonymousId is required"
		}
	case "alias":
		prev, _ := idString(m["previousId"])
		if userID == "" || prev == "" {
			return "userId and previousId are required"
		}
	default:
		return fmt.Sprintf("type %q is not valid", typ)
	}
	for _, k := range []string{"traits", "properties", "context", "integrations"} {
		if v, ok := m[k]; ok && v != nil {
			if _, isObj := v.(map[string]any); !isObj {
				return k + " must be an object"
			}
		}
	}
	return ""
}

func cdpBad(w http.ResponseWriter, msgs ...string) {
	errs := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		errs[i] = map[string]any{"detail": m, "status": "400"}
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"errors": errs})
}

func (s *Server) cdpSingle(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		strict := strictMode(r)
		body := bodyOf(r)
		now := s.cfg.Now()
		msg := CDPMessage{Type: typ, ReceivedAt: now}
		m, err := decodeObject(body, false)
		switch {
		case len(body) > MaxCDPMessageBytes:
			msg.Problem = fmt.Sprintf("message larger than %d bytes", MaxCDPMessageBytes)
		case err != nil:
			msg.Problem = err.Error()
		default:
			msg.Problem = validateCDP(typ, m)
		}
		if m != nil {
			msg.Body = m
		} else {
			msg.Raw = string(body)
		}
		if strict && msg.Problem != "" {
			cdpBad(w, msg.Problem)
			return
		}
		s.mutate(func(st *state) { st.storeCDP(msg, now) })
		okEmpty(w)
	}
}

func (s *Server) cdpBatch(w http.ResponseWriter, r *http.Request) {
	strict := strictMode(r)
	body := bodyOf(r)
	now := s.cfg.Now()
	var env struct {
		Batch   []json.RawMessage `json:"batch"`
		Context map[string]any    `json:"context"`
	}
	problem := ""
	if len(body) > MaxCDPBatchBytes {
		problem = fmt.Sprintf("batch larger than %d bytes", MaxCDPBatchBytes)
	} else if err := json.NewDecoder(bytes.NewReader(body)).Decode(&env); err != nil || env.Batch == nil {
		problem = "request body must be {\"batch\":[...]}"
	}
	if problem != "" {
		if strict {
			cdpBad(w, problem)
			return
		}
		s.mutate(func(st *state) {
			st.cdp = append(st.cdp, CDPMessage{Type: "batch", Raw: truncate(string(body), 4096), Problem: problem, ReceivedAt: now})
		})
		okEmpty(w)
		return
	}
	msgs := make([]CDPMessage, 0, len(env.Batch))
	var errs []string
	for i, raw := range env.Batch {
		msg := CDPMessage{ReceivedAt: now}
		m, err := decodeObject(raw, false)
		switch {
		case len(raw) > MaxCDPMessageBytes:
			msg.Problem = fmt.Sprintf("message larger than %d bytes", MaxCDPMessageBytes)
		case err != nil:
			msg.Problem = "batch item must be a JSON object"
		default:
			msg.Type, _ = m["type"].(string)
			if msg.Type == "" {
				msg.Problem = "type is required"
			} else {
				msg.Problem = validateCDP(msg.Type, m)
			}
			if _, has := m["context"]; !has && env.Context != nil {
				m["context"] = normalize(copyValue(env.Context))
			}
		}
		if m != nil {
			msg.Body = m
		} else {
			msg.Raw = string(raw)
		}
		if msg.Problem != "" {
			errs = append(errs, fmt.Sprintf("batch[%d]: %s", i, msg.Problem))
		}
		msgs = append(msgs, msg)
	}
	if strict && len(errs) > 0 {
		cdpBad(w, errs...)
		return
	}
	s.mutate(func(st *state) {
		for _, msg := range msgs {
			st.storeCDP(msg, now)
		}
	})
	okEmpty(w)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// storeCDP stores a message (deduplicated on messageId) and applies valid
// ones to state.
func (st *state) storeCDP(msg CDPMessage, now time.Time) {
	if msg.Body != nil {
		if id, _ := msg.Body["messageId"].(string); id != "" {
			if _, dup := st.cdpIDs[id]; dup {
				return
			}
			st.cdpIDs[id] = struct{}{}
		}
	}
	if msg.Problem == "" && msg.Body != nil {
		msg.Applied = st.applyCDP(msg.Type, msg.Body, now)
	}
	st.cdp = append(st.cdp, msg)
}

func cdpTimestamp(m map[string]any) int64 {
	if ts, _ := m["timestamp"].(string); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			return t.Unix()
		}
	}
	return 0
}

// applyCDP maps a Pipelines message onto the state: each call's fields
// as Customer.io's Pipelines API reference gives them, and its semantic
// events ("Customer.io Semantic Events").
func (st *state) applyCDP(typ string, m map[string]any, now time.Time) bool {
	userID, _ := idString(m["userId"])
	anonID, _ := idString(m["anonymousId"])
	props, _ := m["properties"].(map[string]any)
	traits, _ := m["traits"].(map[string]any)
	msgID, _ := m["messageId"].(string)
	event := func(name, evType string) bool {
		ev := Event{Name: name, Type: evType, Data: copyMap(props), Source: "cdp", ReceivedAt: now, Timestamp: cdpTimestamp(m)}
		if isULID(msgID) {
			ev.ID = strings.ToUpper(msgID)
		}
		if userID != "" {
			if p := st.findOrCreate("id", userID, now); p != nil {
				st.addEvent(p, ev)
				if anonID != "" {
					st.claimAnonymous(p, anonID)
				}
				return true
			}
			return false
		}
		ev.AnonymousID = anonID
		return st.addAnonEvent(anonID, ev)
	}
	switch typ {
	case "identify":
		if userID == "" {
			return false
		}
		attrs := copyMap(traits)
		if attrs == nil {
			attrs = map[string]any{}
		}
		delete(attrs, "id")
		p := st.identify("id", userID, attrs, now)
		if p != nil && anonID != "" {
			st.claimAnonymous(p, anonID)
		}
		return p != nil
	case "track":
		name, _ := m["event"].(string)
		name = strings.TrimSpace(name)
		if st.semantic(name, userID, m, props, now) {
			return true
		}
		if userID == "" && anonID == "" {
			return false
		}
		return event(name, "event")
	case "page", "screen":
		name, _ := m["name"].(string)
		return event(name, typ)
	case "group":
		gid, _ := idString(m["groupId"])
		typeID := "1"
		if t, ok := idString(traits["objectTypeId"]); ok && t != "" {
			typeID = t
		}
		attrs := copyMap(traits)
		delete(attrs, "objectTypeId")
		relAttrs, _ := attrs["relationshipAttributes"].(map[string]any)
		delete(attrs, "relationshipAttributes")
		mergeAttrs(st.ensureObject(typeID, gid), attrs)
		if userID != "" {
			if p := st.findOrCreate("id", userID, now); p != nil {
				st.relate(p.cioID, typeID, gid, relAttrs)
			}
		} else if anonID != "" {
			st.relate("anon:"+anonID, typeID, gid, relAttrs)
		}
		return true
	case "alias":
		prev, _ := idString(m["previousId"])
		if st.lookupTyped("id", prev) != nil {
			st.mergeTyped("id", userID, "id", prev, now)
			return true
		}
		if p := st.findOrCreate("id", userID, now); p != nil {
			st.claimAnonymous(p, prev)
			return true
		}
	}
	return false
}

// semantic applies Customer.io's semantic track events; it reports whether
// name was one it handled.
func (st *state) semantic(name, userID string, m, props map[string]any, now time.Time) bool {
	ctx, _ := m["context"].(map[string]any)
	dev, _ := ctx["device"].(map[string]any)
	switch name {
	case "User Deleted":
		if p := st.lookup(userID); p != nil {
			st.remove(p)
		}
	case "User Suppressed":
		st.suppressRef("ref", userID, now)
	case "User Unsuppressed":
		st.unsuppressRef("ref", userID)
	case "Device Created or Updated":
		tok, _ := dev["token"].(string)
		if tok == "" {
			return true
		}
		plat, _ := dev["type"].(string)
		d := Device{Token: tok, Platform: plat, LastUsed: now.Unix(), Attributes: copyMap(props)}
		if p := st.findOrCreate("ref", userID, now); p != nil {
			st.upsertDevice(p, d)
		}
	case "Device Deleted":
		tok, _ := dev["token"].(string)
		if p := st.lookup(userID); p != nil {
			st.deleteDevice(p, tok)
		}
	case "Object Deleted":
		tid, oid := semanticObject(props)
		st.deleteObject(tid, oid)
	case "Relationship Deleted":
		tid, oid := semanticObject(props)
		if p := st.lookup(userID); p != nil {
			delete(st.rels, relKey{p.cioID, tid, oid})
		}
	case "Report Delivery Event":
		id, _ := props["deliveryId"].(string)
		metric, _ := props["metric"].(string)
		st.devents = append(st.devents, DeliveryEvent{Source: "cdp", DeliveryID: id, Metric: metric, Body: m, At: now})
	default:
		return false
	}
	return true
}

// semanticObject reads the object a semantic event names:
// properties.objectTypeId ("1" when absent or empty) and
// properties.objectId.
func semanticObject(props map[string]any) (typeID, id string) {
	id, _ = idString(props["objectId"])
	typeID, ok := idString(props["objectTypeId"])
	if !ok || typeID == "" {
		typeID = "1"
	}
	return typeID, id
}
