package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
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

// ---- transactional sends ----

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
			st.deliveryIdx[d.DeliveryID] = len(st.deliveries)
			st.deliveries = append(st.deliveries, d)
		})
		resp := map[string]any{"delivery_id": d.DeliveryID, "queued_at": now.Unix()}
		if !d.SendAt.IsZero() && d.SendAt.After(now) {
			resp["send_at"] = d.SendAt.Unix()
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// validateSend checks a transactional request (contract §5.1) and returns
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

// ---- broadcasts ----

var broadcastShapes = []string{"recipients", "emails", "ids", "per_user_data", "data_file_url"}

var broadcastFlags = map[string]map[string]bool{
	"id_ignore_missing":    {"ids": true, "per_user_data": true, "data_file_url": true},
	"email_ignore_missing": {"emails": true, "per_user_data": true, "data_file_url": true},
	"email_add_duplicates": {"emails": true, "per_user_data": true, "data_file_url": true},
}

func unprocessable(w http.ResponseWriter, msg string) {
	apiError(w, http.StatusUnprocessableEntity, msg)
}

// validateFilter checks the recipients filter grammar.
func validateFilter(v any, where string) string {
	m, ok := v.(map[string]any)
	if !ok {
		return where + " must be an object"
	}
	if len(m) != 1 {
		return where + " must have exactly one of and, or, not, segment, attribute"
	}
	for k, x := range m {
		switch k {
		case "and", "or":
			arr, ok := x.([]any)
			if !ok || len(arr) == 0 {
				return where + "." + k + " must be a non-empty array"
			}
			for i, e := range arr {
				if msg := validateFilter(e, fmt.Sprintf("%s.%s[%d]", where, k, i)); msg != "" {
					return msg
				}
			}
		case "not":
			return validateFilter(x, where+".not")
		case "segment":
			sm, ok := x.(map[string]any)
			if _, isInt := asInt(sm["id"]); !ok || !isInt {
				return where + ".segment must be {\"id\": <integer>}"
			}
		case "attribute":
			am, ok := x.(map[string]any)
			field, _ := am["field"].(string)
			op, _ := am["operator"].(string)
			if !ok || field == "" {
				return where + ".attribute.field is required"
			}
			switch op {
			case "exists":
			case "eq":
				switch am["value"].(type) {
				case string, int64, float64, bool:
				default:
					return where + ".attribute.value is required for eq (string, number or boolean)"
				}
			default:
				return where + ".attribute.operator must be eq or exists"
			}
		default:
			return fmt.Sprintf("%s has unknown key %q", where, k)
		}
	}
	return ""
}

// validateTrigger returns the recipient shape or a 422 message.
func validateTrigger(m map[string]any) (string, string) {
	shape := ""
	for _, k := range broadcastShapes {
		if v, ok := m[k]; ok && v != nil {
			if shape != "" {
				return "", "only one of recipients, emails, ids, per_user_data or data_file_url may be given"
			}
			shape = k
		}
	}
	if d, ok := m["data"]; ok && d != nil {
		if _, isObj := d.(map[string]any); !isObj {
			return "", "data must be an object"
		}
	}
	switch shape {
	case "recipients":
		rm, ok := m["recipients"].(map[string]any)
		if ok && len(rm) == 0 {
			return "", "empty recipients filter is not valid"
		}
		if msg := validateFilter(m["recipients"], "recipients"); msg != "" {
			return "", msg
		}
	case "emails", "ids":
		arr, ok := m[shape].([]any)
		if !ok || len(arr) == 0 {
			return "", shape + " must be a non-empty array of strings"
		}
		if shape == "ids" && len(arr) > MaxBroadcastIDs {
			return "", fmt.Sprintf("ids cannot contain more than %d entries", MaxBroadcastIDs)
		}
		for _, e := range arr {
			if s, ok := idString(e); !ok || s == "" {
				return "", shape + " must be a non-empty array of strings"
			}
		}
	case "per_user_data":
		arr, ok := m[shape].([]any)
		if !ok || len(arr) == 0 {
			return "", "per_user_data must be a non-empty array"
		}
		if len(arr) > MaxBroadcastIDs {
			return "", fmt.Sprintf("per_user_data cannot contain more than %d entries", MaxBroadcastIDs)
		}
		for i, e := range arr {
			em, _ := e.(map[string]any)
			id, hasID := idString(em["id"])
			email, _ := em["email"].(string)
			if (hasID && id != "") == (email != "") {
				return "", fmt.Sprintf("per_user_data[%d] must have exactly one of id or email", i)
			}
			if d, ok := em["data"]; ok && d != nil {
				if _, isObj := d.(map[string]any); !isObj {
					return "", fmt.Sprintf("per_user_data[%d].data must be an object", i)
				}
			}
		}
	case "data_file_url":
		u, _ := m[shape].(string)
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return "", "data_file_url must be an http(s) URL"
		}
	}
	for flag, allowed := range broadcastFlags {
		v, ok := m[flag]
		if !ok || v == nil {
			continue
		}
		if _, isBool := v.(bool); !isBool {
			return "", flag + " must be a boolean"
		}
		if !allowed[shape] {
			s := shape
			if s == "" {
				s = "the default audience"
			}
			return "", fmt.Sprintf("%s is not valid with %s", flag, s)
		}
	}
	if shape == "" {
		shape = "default"
	}
	return shape, ""
}

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	bid, err := strconv.Atoi(r.PathValue("broadcast"))
	if err != nil {
		apiError(w, http.StatusNotFound, fmt.Sprintf("broadcast with id %s does not exist", r.PathValue("broadcast")))
		return
	}
	s.mu.Lock()
	_, exists := s.st.broadcasts[bid]
	s.mu.Unlock()
	if !exists {
		apiError(w, http.StatusNotFound, fmt.Sprintf("broadcast with id %d does not exist", bid))
		return
	}
	m, err := decodeObject(bodyOf(r), true)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	shape, msg := validateTrigger(m)
	if msg != "" {
		unprocessable(w, msg)
		return
	}
	now := s.cfg.Now()
	var retry time.Duration
	var limitMsg string
	var id int
	s.mutate(func(st *state) {
		s.processTriggers(now)
		b := st.broadcasts[bid]
		if b == nil {
			limitMsg = "gone"
			return
		}
		if iv := s.cfg.BroadcastInterval; iv > 0 && !b.lastTrigger.IsZero() {
			if wait := b.lastTrigger.Add(iv).Sub(now); wait > 0 {
				retry, limitMsg = wait, fmt.Sprintf("broadcast %d can be triggered at most once every %s", bid, iv)
				return
			}
		}
		queued := 0
		var oldest time.Time
		for _, t := range b.triggers {
			if t.ProcessedAt.IsZero() {
				if queued == 0 {
					oldest = t.CreatedAt
				}
				queued++
			}
		}
		if queued >= MaxBroadcastQueued {
			retry = oldest.Add(s.cfg.TriggerProcessingDelay).Sub(now)
			limitMsg = fmt.Sprintf("broadcast %d already has %d queued triggers", bid, queued)
			return
		}
		st.nextTrigger++
		t := &Trigger{ID: st.nextTrigger, BroadcastID: bid, CreatedAt: now, Shape: shape, Body: m}
		b.lastTrigger = now
		b.triggers = append(b.triggers, t)
		st.triggers = append(st.triggers, t)
		id = t.ID
		s.processTriggers(now)
	})
	switch {
	case limitMsg == "gone":
		apiError(w, http.StatusNotFound, fmt.Sprintf("broadcast with id %d does not exist", bid))
		return
	case limitMsg != "":
		secs := int(math.Ceil(retry.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		apiError(w, http.StatusTooManyRequests, limitMsg)
		return
	}
	if d := s.cfg.TriggerProcessingDelay; d > 0 {
		// Wake WaitFor callers when the trigger becomes due on a real clock.
		time.AfterFunc(d, func() { s.mutate(func(*state) { s.processTriggers(s.cfg.Now()) }) })
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
}

// processTriggers processes every trigger due at now. Callers hold s.mu.
func (s *Server) processTriggers(now time.Time) {
	st := s.st
	for _, t := range st.triggers {
		if !t.ProcessedAt.IsZero() {
			continue
		}
		due := t.CreatedAt.Add(s.cfg.TriggerProcessingDelay)
		if now.Before(due) {
			continue
		}
		t.ProcessedAt = due
		t.Errors = st.triggerErrors(t)
	}
}

// triggerErrors lists recipients that do not exist (a trigger never
// creates people), unless the matching *_ignore_missing flag is set.
func (st *state) triggerErrors(t *Trigger) []string {
	idIgnore, _ := t.Body["id_ignore_missing"].(bool)
	emailIgnore, _ := t.Body["email_ignore_missing"].(bool)
	var errs []string
	check := func(line int, typ, val string) {
		if st.lookupTyped(typ, val) != nil {
			return
		}
		if (typ == "id" && idIgnore) || (typ == "email" && emailIgnore) {
			return
		}
		errs = append(errs, fmt.Sprintf("line %d: no person with %s %q", line, typ, val))
	}
	switch t.Shape {
	case "ids", "emails":
		typ := "id"
		if t.Shape == "emails" {
			typ = "email"
		}
		arr, _ := t.Body[t.Shape].([]any)
		for i, e := range arr {
			v, _ := idString(e)
			check(i+1, typ, v)
		}
	case "per_user_data":
		arr, _ := t.Body["per_user_data"].([]any)
		for i, e := range arr {
			em, _ := e.(map[string]any)
			if id, ok := idString(em["id"]); ok && id != "" {
				check(i+1, "id", id)
			} else if email, _ := em["email"].(string); email != "" {
				check(i+1, "email", email)
			}
		}
	}
	return errs
}

func triggerJSON(t *Trigger) map[string]any {
	out := map[string]any{"id": t.ID, "broadcast_id": t.BroadcastID, "created_at": t.CreatedAt.Unix(), "processed_at": nil}
	if !t.ProcessedAt.IsZero() {
		out["processed_at"] = t.ProcessedAt.Unix()
	}
	return out
}

// findTrigger resolves the path ids; it writes the error itself.
func (s *Server) findTrigger(w http.ResponseWriter, r *http.Request, f func(t *Trigger)) {
	bid, err1 := strconv.Atoi(r.PathValue("broadcast"))
	tid, err2 := strconv.Atoi(r.PathValue("trigger"))
	if err1 != nil || err2 != nil {
		apiError(w, http.StatusBadRequest, "broadcast and trigger ids must be integers")
		return
	}
	found, bexists := false, false
	s.read(func(st *state) {
		b := st.broadcasts[bid]
		if b == nil {
			return
		}
		bexists = true
		for _, t := range b.triggers {
			if t.ID == tid {
				found = true
				f(t)
				return
			}
		}
	})
	switch {
	case !bexists:
		apiError(w, http.StatusNotFound, fmt.Sprintf("broadcast with id %d does not exist", bid))
	case !found:
		apiError(w, http.StatusNotFound, fmt.Sprintf("trigger with id %d does not exist", tid))
	}
}

func (s *Server) triggerStatus(w http.ResponseWriter, r *http.Request) {
	s.findTrigger(w, r, func(t *Trigger) { writeJSON(w, http.StatusOK, triggerJSON(t)) })
}

func (s *Server) triggerErrors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, limit := 0, defaultTriggerErrorLimit
	var err error
	if v := q.Get("start"); v != "" {
		if start, err = strconv.Atoi(v); err != nil || start < 0 {
			apiError(w, http.StatusBadRequest, "start must be a non-negative integer")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			apiError(w, http.StatusBadRequest, "limit must be a positive integer")
			return
		}
	}
	s.findTrigger(w, r, func(t *Trigger) {
		errs := []string{}
		if start < len(t.Errors) {
			end := min(start+limit, len(t.Errors))
			errs = append(errs, t.Errors[start:end]...)
		}
		writeJSON(w, http.StatusOK, map[string]any{"errors": errs, "next": start + len(errs)})
	})
}

func (s *Server) triggerList(w http.ResponseWriter, r *http.Request) {
	bid, err := strconv.Atoi(r.PathValue("broadcast"))
	if err != nil {
		apiError(w, http.StatusBadRequest, "broadcast id must be an integer")
		return
	}
	var out []map[string]any
	exists := false
	s.read(func(st *state) {
		b := st.broadcasts[bid]
		if b == nil {
			return
		}
		exists = true
		out = []map[string]any{}
		for _, t := range b.triggers {
			out = append(out, triggerJSON(t))
		}
	})
	if !exists {
		apiError(w, http.StatusNotFound, fmt.Sprintf("broadcast with id %d does not exist", bid))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"triggers": out})
}
