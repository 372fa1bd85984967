package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TaskRequest is one task of POST /v1/tasks: a task type, its payload (a
// Customer.io body) and the producer's options.
type TaskRequest struct {
	// Type is the task type, e.g. "cio:send_email" (required).
	Type string `json:"type"`
	// Payload is the task's JSON payload (required).
	Payload json.RawMessage `json:"payload"`
	// IdempotencyKey, when set, makes a repeat within the idempotency
	// window (24 h after completion) a duplicate instead of a new task.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Workspace names the Customer.io workspace ("" = default).
	Workspace string `json:"workspace,omitempty"`
	// Queue overrides the type's queue.
	Queue string `json:"queue,omitempty"`
	// ProcessIn delays the task by a duration: "90s", "15m", "1h30m", or a
	// number of seconds (not negative). Not with ProcessAt.
	ProcessIn json.RawMessage `json:"process_in,omitempty"`
	// ProcessAt delays the task until a moment: an ISO-8601 date-time or
	// unix seconds (a moment past means now). Not with ProcessIn.
	ProcessAt json.RawMessage `json:"process_at,omitempty"`
	// ExpiresIn makes the task stale after a duration from now (as
	// ProcessIn, positive): past it, the worker dead-letters it as expired
	// instead of sending it late. Not with ExpiresAt.
	ExpiresIn json.RawMessage `json:"expires_in,omitempty"`
	// ExpiresAt makes the task stale at a moment (as ProcessAt, in the
	// future, not before the process time). Not with ExpiresIn.
	ExpiresAt json.RawMessage `json:"expires_at,omitempty"`
}

// TaskReceipt says where a task of POST /v1/tasks went.
type TaskReceipt struct {
	// TaskID is the asynq task id: with an idempotency key, the producer's
	// keyed hash of it (producer.Client.TaskIDForKey), never the key itself.
	TaskID string `json:"task_id"`
	// Queue is the asynq queue the task is in.
	Queue string `json:"queue"`
	// Type is the task type.
	Type string `json:"type"`
	// Duplicate is true when the idempotency key was taken: nothing was
	// enqueued and the receipt describes the first task.
	Duplicate bool `json:"duplicate"`
}

var errNoToken = &reqError{status: http.StatusUnauthorized, code: "unauthorized", msg: "missing or wrong bearer token (Authorization: Bearer <token>)"}

// tasks serves POST /v1/tasks.
func (s *Server) tasks(w http.ResponseWriter, r *http.Request) {
	tok := s.authToken(r)
	if tok == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cioq ingest"`)
		s.count("unknown", "unauthorized")
		writeJSON(w, errNoToken.status, map[string]any{"error": errorJSON{Code: errNoToken.code, Message: errNoToken.msg}})
		return
	}
	name := tok.name
	_, body, e := s.readBody(w, r)
	if e == nil {
		e = checkUTF8(body)
	}
	if e != nil {
		s.fail(w, name, e)
		return
	}
	reqs, e := decodeTaskRequests(body)
	if e == nil && len(reqs) > s.cfg.MaxItems {
		e = tooManyItems(fmt.Sprintf("[%d]", s.cfg.MaxItems), s.cfg.MaxItems)
	}
	if e != nil {
		s.fail(w, name, e)
		return
	}
	items := make([]item, len(reqs))
	for i, tr := range reqs {
		j, e := s.checkTask(tok, tr, fmt.Sprintf("[%d].", i), len(reqs) > 1 || body[firstNonSpace(body)] == '[')
		if e != nil {
			s.fail(w, name, e)
			return
		}
		items[i] = item{jobs: []job{j}}
	}
	res := s.enqueueAll(r, name, items)
	receipts := make([]TaskReceipt, len(res.receipts))
	for i, rc := range res.receipts {
		receipts[i] = TaskReceipt{TaskID: rc.TaskID, Queue: rc.Queue, Type: rc.Type, Duplicate: rc.Duplicate}
	}
	s.finish(w, name, http.StatusAccepted, len(items), res, map[string]any{"receipts": receipts})
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return i
		}
	}
	return 0
}

// authToken finds the token of "Authorization: Bearer <token>", comparing
// with every configured token in constant time; nil when none matches.
func (s *Server) authToken(r *http.Request) *token {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil
	}
	got := []byte(strings.TrimSpace(h[len(prefix):]))
	var found *token
	for i := range s.conf.tokens {
		if equalSecret(got, s.conf.tokens[i].value) && found == nil {
			found = &s.conf.tokens[i]
		}
	}
	return found
}

// decodeTaskRequests reads one TaskRequest or an array of them; unknown
// keys are refused.
func decodeTaskRequests(body []byte) ([]TaskRequest, *reqError) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil, bad("malformed_json", "", "the body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var reqs []TaskRequest
	var one TaskRequest
	var err error
	var into any = &one
	if b[0] == '[' {
		into = &reqs
		err = dec.Decode(&reqs)
	} else {
		err = dec.Decode(&one)
		reqs = []TaskRequest{one}
	}
	if err != nil {
		if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
			field := strings.Trim(strings.TrimPrefix(s, "json: unknown field "), `"`)
			return nil, bad("unknown_field", field, "unknown field %q", field)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field, reason := tasks.DescribeJSONError(b, err, into)
			if field == "" {
				return nil, bad("malformed_json", "", "the body must be a task (a JSON object) or an array of tasks")
			}
			return nil, bad("invalid", field, "invalid field %q: %s", field, reason)
		}
		return nil, bad("malformed_json", "", "the body is not valid JSON: %s", jsonReason(err))
	}
	if dec.More() {
		return nil, bad("malformed_json", "", "the body is not valid JSON: unexpected data after the value")
	}
	if len(reqs) == 0 {
		return nil, bad("invalid", "", "at least one task is required")
	}
	return reqs, nil
}

// checkTask validates a task exactly as producer.EnqueueRaw will (type,
// payload decoding and Validate, envelope expiry, workspace, queue, key:
// the last word is producer.Check's), so nothing of a request is enqueued
// when any task is invalid; and its queue is one tok may use.
func (s *Server) checkTask(tok *token, tr TaskRequest, prefix string, many bool) (job, *reqError) {
	if !many {
		prefix = ""
	}
	if tr.Type == "" {
		return job{}, bad("invalid", prefix+"type", "type is required")
	}
	if _, ok := tasks.Lookup(tr.Type); !ok {
		return job{}, bad("unknown_type", prefix+"type", "unknown task type")
	}
	if len(bytes.TrimSpace(tr.Payload)) == 0 || string(bytes.TrimSpace(tr.Payload)) == "null" {
		return job{}, bad("invalid", prefix+"payload", "payload is required")
	}
	// A full envelope as payload is still accepted (its workspace and
	// expires_at apply unless the request says otherwise), but no longer
	// documented: the request's own fields say the same.
	env, p, err := tasks.DecodeStrict(tr.Type, tr.Payload)
	if err != nil {
		field, reason := prefix+"payload", "cannot be decoded"
		var de *tasks.DecodeError
		if errors.As(err, &de) {
			if de.Field != "" {
				field += "." + de.Field
			}
			reason = de.Reason
		}
		return job{}, bad("invalid", field, "%s: invalid field %q: %s", tr.Type, field, reason)
	}
	if err := p.Validate(); err != nil {
		var ve *customerio.ValidationError
		if errors.As(err, &ve) {
			return job{}, bad("invalid", prefix+"payload."+ve.Field, "%s: %s", tr.Type, ve.Reason)
		}
		return job{}, bad("invalid", prefix+"payload", "%s: invalid", tr.Type)
	}
	now := s.cfg.Now()
	timing, e := requestTiming(tr, prefix)
	if e != nil {
		return job{}, e
	}
	// The CLI's rules for --in and --expires-in, and the same for the
	// absolute forms (producer.Timing).
	opts, err := timing.Options(now)
	if err != nil {
		var ve *producer.ValidationError
		if errors.As(err, &ve) {
			return job{}, bad("invalid", prefix+ve.Field, "%s %s", ve.Field, ve.Reason)
		}
		return job{}, bad("invalid", prefix+"process_at", "%s: invalid timing", tr.Type)
	}
	if timing.ExpiresIn == "" && timing.ExpiresAt == "" && env.ExpiresAt != 0 && !time.Unix(env.ExpiresAt, 0).After(now) {
		return job{}, bad("invalid", prefix+"payload.expires_at", "expires_at must be in the future")
	}
	ws := tr.Workspace
	if ws == "" {
		ws = env.Workspace
	}
	if err := tasks.ValidateWorkspace(ws); err != nil {
		return job{}, bad("invalid", prefix+"workspace", "workspace must be 1 to 64 characters of a-z, 0-9, '_' and '-'")
	}
	if tr.Workspace != "" {
		opts = append(opts, producer.Workspace(tr.Workspace))
	}
	if tr.Queue != "" {
		opts = append(opts, producer.Queue(tr.Queue))
	}
	if tr.IdempotencyKey != "" {
		opts = append(opts, producer.IdempotencyKey(tr.IdempotencyKey))
	}
	// The producer's own check of everything EnqueueRaw will check (queue
	// and idempotency key rules among them), without enqueueing.
	if err := s.cfg.Producer.Check(tr.Type, tr.Payload, opts...); err != nil {
		return job{}, checkError(prefix, tr.Type, timing, err)
	}
	if e := s.checkQueue(tok, tr, prefix); e != nil {
		return job{}, e
	}
	return job{typ: tr.Type, raw: tr.Payload, opts: opts, checked: true}, nil
}

// checkQueue refuses a task whose queue (its "queue", or its type's) is
// not one tok may use: its own queues, or else the queues the workers
// serve (Config.Queues). A queue no worker serves would keep the task
// forever, and every made-up name would add a queue to asynq's list and
// series to the metrics. The name sent is not echoed.
func (s *Server) checkQueue(tok *token, tr TaskRequest, prefix string) *reqError {
	allowed, whose := s.queues, "the workers serve"
	if tok.queues != nil {
		allowed, whose = tok.queues, "this token may use"
	}
	q := tr.Queue
	if q == "" {
		spec, _ := tasks.Lookup(tr.Type)
		q = spec.Defaults.Queue
	}
	if allowed[q] {
		return nil
	}
	list := strings.Join(sortedQueues(allowed), ", ")
	if tr.Queue == "" {
		return bad("invalid", prefix+"queue", "%s goes to queue %q by default, which is not one %s (%s): name one of them in queue", tr.Type, q, whose, list)
	}
	return bad("invalid", prefix+"queue", "queue is not one %s (%s)", whose, list)
}

// sortedQueues lists a set of queue names, sorted.
func sortedQueues(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for q := range set {
		out = append(out, q)
	}
	sort.Strings(out)
	return out
}

// requestTiming reads the request's process_in, process_at, expires_in and
// expires_at: a JSON string, or a number (seconds; unix seconds for the
// *_at fields).
func requestTiming(tr TaskRequest, prefix string) (producer.Timing, *reqError) {
	var t producer.Timing
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"process_in", tr.ProcessIn, &t.ProcessIn}, {"process_at", tr.ProcessAt, &t.ProcessAt},
		{"expires_in", tr.ExpiresIn, &t.ExpiresIn}, {"expires_at", tr.ExpiresAt, &t.ExpiresAt},
	} {
		raw := bytes.TrimSpace(f.raw)
		switch {
		case len(raw) == 0 || string(raw) == "null":
		case raw[0] == '"':
			if json.Unmarshal(raw, f.dst) != nil || strings.TrimSpace(*f.dst) == "" {
				return t, bad("invalid", prefix+f.name, "%s must not be empty", f.name)
			}
		case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
			*f.dst = string(raw)
		default:
			return t, bad("invalid", prefix+f.name, "%s must be a string or a number", f.name)
		}
	}
	return t, nil
}

// checkError turns a producer.Check error into the request error: option
// fields keep their names, the payload's under payload. An expires_at the
// producer refuses is the request's expiry field when it gave one, else
// the envelope's.
func checkError(prefix, typ string, timing producer.Timing, err error) *reqError {
	var ve *producer.ValidationError
	if !errors.As(err, &ve) {
		return bad("invalid", prefix+"payload", "%s: invalid", typ)
	}
	switch ve.Field {
	case "queue", "idempotency_key", "workspace":
		return bad("invalid", prefix+ve.Field, "%s %s", ve.Field, ve.Reason)
	case "expires_at":
		switch {
		case timing.ExpiresIn != "":
			return bad("invalid", prefix+"expires_in", "expires_in %s", ve.Reason)
		case timing.ExpiresAt != "":
			return bad("invalid", prefix+"expires_at", "expires_at %s", ve.Reason)
		}
		return bad("invalid", prefix+"payload.expires_at", "expires_at %s", ve.Reason)
	case "payload":
		return bad("invalid", prefix+"payload", "payload: %s", ve.Reason)
	}
	return bad("invalid", prefix+"payload."+ve.Field, "%s: %s", typ, ve.Reason)
}
