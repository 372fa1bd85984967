package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (s *Server) appRoutes() *http.ServeMux {
	m := http.NewServeMux()
	for _, ch := range []string{"email", "push", "sms", "in_app", "inbox_message", "whatsapp"} {
		m.HandleFunc("POST /v1/send/"+ch, s.appAuth(true, s.send(ch)))
	}
	m.HandleFunc("POST /v1/campaigns/{broadcast}/triggers", s.appAuth(false, s.trigger))
	m.HandleFunc("GET /v1/campaigns/{broadcast}/triggers/{trigger}", s.appAuth(false, s.triggerStatus))
	m.HandleFunc("GET /v1/campaigns/{broadcast}/triggers/{trigger}/errors", s.appAuth(false, s.triggerErrors))
	m.HandleFunc("GET /v1/broadcasts/{broadcast}/triggers", s.appAuth(false, s.triggerList))
	m.HandleFunc("GET /v1/transactional", s.appAuth(false, s.transactionalList))
	m.HandleFunc("GET /v1/transactional/{id}/contents", s.appAuth(false, s.transactionalContents))
	m.HandleFunc("GET /v1/messages/{message_id}", s.appAuth(false, s.message))
	return m
}

// transactionalList answers GET /v1/transactional: the configured
// transactional messages, {"messages":[...]} (an App API read: Bearer key,
// App rate limit).
func (s *Server) transactionalList(w http.ResponseWriter, r *http.Request) {
	msgs := s.cfg.TransactionalMessages
	if msgs == nil {
		msgs = []TransactionalMessage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func countRecipients(v any) int {
	s, _ := v.(string)
	n := 0
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) != "" {
			n++
		}
	}
	return n
}

func (s *Server) send(channel string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := decodeObject(bodyOf(r), false)
		if err != nil {
			metaError(w, http.StatusBadRequest, err.Error())
			return
		}
		now := s.cfg.Now()
		status, msg, d := s.validateSend(channel, m, now)
		if msg != "" {
			metaError(w, status, msg)
			return
		}
		tpl, known := s.template(d.TransactionalMessageID)
		if d.TransactionalMessageID != "" && !known && s.cfg.CheckTemplates {
			metaError(w, http.StatusBadRequest, `"transactional_message_id" not found`)
			return
		}
		switch {
		case d.SendAt.After(now):
			d.Status = DeliveryScheduled
		case m["queue_draft"] == true:
			d.Status = DeliveryDrafted
		}
		if known {
			d.TemplateID = tpl.ID
		}
		if d.Status == "" && s.cfg.DeliveryFailure != nil {
			if reason := s.cfg.DeliveryFailure(d); reason != "" {
				d.Status, d.FailureMessage = DeliveryFailed, reason
			}
		}
		s.mutate(func(st *state) {
			st.nextDelivery++
			d.DeliveryID = fmt.Sprintf("sbx_%s_%d", s.instance, st.nextDelivery)
			if len(d.Identifiers) == 1 {
				for typ, val := range d.Identifiers {
					if p := st.findOrCreate(typ, val, now); p != nil {
						d.PersonCioID = p.cioID
						if cd, ok := m["custom_device"].(map[string]any); ok && channel == "push" {
							if dev, errs := parseDevice(cd, "token"); len(errs) == 0 {
								st.upsertDevice(p, dev)
							}
						}
					}
				}
			}
			if known {
				var attrs map[string]any
				if p := st.people[d.PersonCioID]; p != nil {
					attrs = customerBinding(p)
				}
				lang, _ := m["language"].(string)
				if err := render(tpl, lang, d.MessageData, attrs); err != nil && d.Status != DeliveryFailed {
					d.Status, d.FailureMessage = DeliveryFailed, err.Error()
				}
			}
			settle(&d)
			st.deliveryIdx[d.DeliveryID] = len(st.deliveries)
			st.deliveries = append(st.deliveries, d)
		})
		s.reportDelivery(d)
		resp := map[string]any{"delivery_id": d.DeliveryID, "queued_at": now.Unix()}
		if !d.SendAt.IsZero() && d.SendAt.After(now) {
			resp["send_at"] = d.SendAt.Unix()
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// validateSend checks a transactional request (the send endpoints of
// Customer.io's App API reference) and returns
// the status and message of the first problem, or the delivery to record.
func (s *Server) validateSend(channel string, m map[string]any, now time.Time) (int, string, Delivery) {
	bad := func(msg string) (int, string, Delivery) { return http.StatusBadRequest, msg, Delivery{} }
	d := Delivery{Channel: channel, QueuedAt: time.Unix(now.Unix(), 0), Request: m}
	if v, present := m["transactional_message_id"]; present && v != nil {
		switch x := v.(type) {
		case string:
			if strings.TrimSpace(x) == "" {
				return bad("transactional_message_id cannot be blank")
			}
			d.TransactionalMessageID = x
		default:
			i, ok := asInt(v)
			if !ok || i <= 0 {
				return bad("transactional_message_id must be an integer id or a trigger name")
			}
			d.TransactionalMessageID = strconv.FormatInt(i, 10)
		}
	} else if channel != "email" {
		return bad("transactional_message_id is required")
	}
	if v, present := m["identifiers"]; present && v != nil {
		ids, _ := v.(map[string]any)
		typ, val, ok := oneIdentifier(ids, "id", "email", "cio_id")
		if !ok {
			return bad("identifiers must contain exactly one of id, email or cio_id")
		}
		d.Identifiers = map[string]string{typ: val}
	} else if channel != "email" {
		return bad("identifiers is required")
	}
	if v, present := m["to"]; present && v != nil {
		to, ok := v.(string)
		if !ok {
			return bad("to must be a string")
		}
		d.To = to
	}
	if d.To == "" && (channel == "email" || channel == "sms" || channel == "whatsapp") {
		return bad("to is required")
	}
	if v, present := m["message_data"]; present && v != nil {
		md, ok := v.(map[string]any)
		if !ok {
			return bad("message_data must be an object")
		}
		d.MessageData = md
	}
	if v, present := m["send_at"]; present && v != nil {
		at, ok := asInt(v)
		if !ok {
			return bad("send_at must be a unix timestamp")
		}
		t := time.Unix(at, 0)
		if t.After(now.Add(MaxSendAhead)) {
			return bad("send_at cannot be more than 90 days in the future")
		}
		d.SendAt = t
	}
	if channel == "email" {
		if status, msg := emailProblem(m); msg != "" {
			return status, msg, Delivery{}
		}
	}
	return 0, "", d
}

// emailProblem checks what only a transactional email has: at most 15
// recipients across to, cc and bcc, headers as an object or a JSON
// string, attachments with an extension and base64 content below the
// total limit (413 over it). It returns the status and message of the
// first problem, or 0 and "".
func emailProblem(m map[string]any) (int, string) {
	if n := countRecipients(m["to"]) + countRecipients(m["cc"]) + countRecipients(m["bcc"]); n > MaxEmailRecipients {
		return http.StatusBadRequest, fmt.Sprintf("too many recipients: at most %d across to, cc and bcc", MaxEmailRecipients)
	}
	if v, present := m["headers"]; present && v != nil {
		switch x := v.(type) {
		case map[string]any:
		case string:
			var parsed any
			if json.Unmarshal([]byte(x), &parsed) != nil {
				return http.StatusBadRequest, "headers must be an object or a JSON string"
			}
			switch parsed.(type) {
			case map[string]any, []any:
			default:
				return http.StatusBadRequest, "headers must be an object or a JSON string"
			}
		default:
			return http.StatusBadRequest, "headers must be an object or a JSON string"
		}
	}
	if v, present := m["attachments"]; present && v != nil {
		att, ok := v.(map[string]any)
		if !ok {
			return http.StatusBadRequest, "attachments must be an object of file names to base64 content"
		}
		names := make([]string, 0, len(att))
		for k := range att {
			names = append(names, k)
		}
		sort.Strings(names)
		total := 0
		for _, name := range names {
			content, _ := att[name].(string)
			if _, err := base64.StdEncoding.DecodeString(content); err != nil || content == "" {
				return http.StatusBadRequest, fmt.Sprintf("Attachment must be base64 encoded: %q", name)
			}
			if ext := path.Ext(name); ext == "" || ext == "." {
				return http.StatusBadRequest, fmt.Sprintf("Attachment file name must have an extension: %q", name)
			}
			total += len(content)
		}
		if total >= MaxAttachmentBytes {
			return http.StatusRequestEntityTooLarge, "Total attachment size exceeds the limit"
		}
	}
	return 0, ""
}

// customerBinding is a person as Liquid's customer object: the attributes,
// with id and email.
func customerBinding(p *person) map[string]any {
	out := make(map[string]any, len(p.attrs)+2)
	for k, v := range p.attrs {
		out[k] = v
	}
	if p.id != "" {
		out["id"] = p.id
	}
	if p.email != "" {
		out["email"] = p.email
	}
	return out
}
