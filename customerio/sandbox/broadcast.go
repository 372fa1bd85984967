package sandbox

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

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
		for _, p := range st.triggerRecipients(t) {
			st.nextDelivery++
			d := Delivery{Channel: "email", DeliveryID: fmt.Sprintf("sbx_%s_%d", s.instance, st.nextDelivery),
				QueuedAt: time.Unix(due.Unix(), 0), To: p.email, BroadcastID: t.BroadcastID, TriggerID: t.ID}
			if p.id != "" {
				d.Identifiers = map[string]string{"id": p.id}
			} else {
				d.Identifiers = map[string]string{"email": p.email}
			}
			settle(&d)
			t.Messages = append(t.Messages, d)
			s.reportDelivery(d)
		}
	}
}

// triggerRecipients are the people a processed trigger sends the
// broadcast's email to: those its ids, emails or per_user_data name who
// exist and have an email address, each once, in order. The default
// audience, a recipients filter and a data file send nothing here.
func (st *state) triggerRecipients(t *Trigger) []*person {
	var out []*person
	seen := map[string]bool{}
	eachNamedRecipient(t, func(_ int, typ, val string) {
		if p := st.lookupTyped(typ, val); p != nil && p.email != "" && !seen[p.cioID] {
			seen[p.cioID] = true
			out = append(out, p)
		}
	})
	return out
}

// triggerErrors lists recipients that do not exist (a trigger never
// creates people), unless the matching *_ignore_missing flag is set.
func (st *state) triggerErrors(t *Trigger) []string {
	idIgnore, _ := t.Body["id_ignore_missing"].(bool)
	emailIgnore, _ := t.Body["email_ignore_missing"].(bool)
	var errs []string
	eachNamedRecipient(t, func(line int, typ, val string) {
		if st.lookupTyped(typ, val) != nil {
			return
		}
		if (typ == "id" && idIgnore) || (typ == "email" && emailIgnore) {
			return
		}
		errs = append(errs, fmt.Sprintf("line %d: no person with %s %q", line, typ, val))
	})
	return errs
}

// eachNamedRecipient calls fn for each recipient a trigger names by
// "ids", "emails" or "per_user_data" (line: its 1-based position, typ "id"
// or "email"); other shapes name nobody.
func eachNamedRecipient(t *Trigger, fn func(line int, typ, val string)) {
	switch t.Shape {
	case "ids", "emails":
		typ := "id"
		if t.Shape == "emails" {
			typ = "email"
		}
		arr, _ := t.Body[t.Shape].([]any)
		for i, e := range arr {
			v, _ := idString(e)
			fn(i+1, typ, v)
		}
	case "per_user_data":
		arr, _ := t.Body["per_user_data"].([]any)
		for i, e := range arr {
			em, _ := e.(map[string]any)
			if id, ok := idString(em["id"]); ok && id != "" {
				fn(i+1, "id", id)
			} else if email, _ := em["email"].(string); email != "" {
				fn(i+1, "email", email)
			}
		}
	}
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
