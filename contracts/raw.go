package contracts

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// PrepareRaw fixes, before decoding, what decoding would refuse but the
// workspace's timestamp policy coerces: a Track event's timestamp written
// as text (an ISO-8601 time or digits) where Unix seconds are a number, and
// a Pipelines message's written as a number where it is ISO-8601 text. It
// returns payload with the timestamp rewritten (coerce), an *Error
// (refuse), or payload unchanged (no contract, no such timestamp, or text
// that is no time: decoding then names the field). payload is a bare
// payload or a full envelope; workspace maps the envelope's workspace
// ("" when none) to the workspace the task will have.
func (s *Set) PrepareRaw(typ string, payload json.RawMessage, workspace func(envelope string) string, observe bool) (json.RawMessage, error) {
	if s == nil || !bytes.Contains(payload, []byte(`"timestamp"`)) {
		return payload, nil
	}
	spec, ok := tasks.Lookup(typ)
	if !ok {
		return payload, nil
	}
	if _, ok := spec.New().(tasks.Timestamped); !ok {
		return payload, nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil || top == nil {
		return payload, nil
	}
	inner, env := top, false
	var envWS string
	if _, hasPayload := top["payload"]; hasPayload {
		if _, hasV := top["v"]; hasV {
			env = true
			_ = json.Unmarshal(top["workspace"], &envWS)
			var m map[string]json.RawMessage
			if json.Unmarshal(top["payload"], &m) != nil || m == nil {
				return payload, nil
			}
			inner = m
		}
	}
	w := s.ws[canonical(workspace(envWS))]
	if w == nil || w.tsPolicy == "" {
		return payload, nil
	}
	ts := bytes.TrimSpace(inner["timestamp"])
	if len(ts) == 0 {
		return payload, nil
	}
	wantText := spec.API == customerio.APIPipelines
	var fixed json.RawMessage
	switch {
	case !wantText && ts[0] == '"':
		var text string
		if json.Unmarshal(ts, &text) != nil {
			return payload, nil
		}
		sec, what, ok := textSeconds(text)
		if !ok {
			return payload, nil // decoding names it
		}
		if w.tsPolicy != Coerce {
			return nil, s.refused(w, observe, Violation{Field: "timestamp", Rule: RuleTimestamp, Reason: "must be Unix seconds (a number), got " + what})
		}
		fixed = json.RawMessage(strconv.FormatInt(sec, 10))
	case wantText && (ts[0] == '-' || ts[0] >= '0' && ts[0] <= '9'):
		f, err := strconv.ParseFloat(string(ts), 64)
		if err != nil {
			return payload, nil
		}
		sec, what, ok := toSeconds(f)
		if !ok {
			return nil, s.refused(w, observe, Violation{Field: "timestamp", Rule: RuleTimestamp, Reason: "must be an ISO-8601 time, got a number that is no Unix time"})
		}
		if w.tsPolicy != Coerce {
			return nil, s.refused(w, observe, Violation{Field: "timestamp", Rule: RuleTimestamp, Reason: "must be an ISO-8601 time, got a number (Unix " + what + ")"})
		}
		b, _ := json.Marshal(rfc3339(sec))
		fixed = b
	default:
		return payload, nil
	}
	inner["timestamp"] = fixed
	out, err := json.Marshal(inner)
	if err != nil {
		return payload, nil
	}
	if env {
		top["payload"] = out
		if out, err = json.Marshal(top); err != nil {
			return payload, nil
		}
	}
	if observe {
		if o := s.obs.Load(); o != nil {
			(*o).Coerced(w.name, TypeTimestamp)
		}
	}
	return out, nil
}

// textSeconds reads a timestamp written as text: digits (seconds or
// milliseconds) or an ISO-8601 time; what says which.
func textSeconds(text string) (int64, string, bool) {
	t := strings.TrimSpace(text)
	if numberText(t) {
		f, _ := strconv.ParseFloat(t, 64)
		sec, what, ok := toSeconds(f)
		return sec, "Unix " + what + " as text", ok
	}
	if tm, ok := parseISO(t); ok && tm.Unix() >= 0 {
		return tm.Unix(), "an ISO-8601 string", true
	}
	return 0, "", false
}

// rfc3339 writes a unix second as Pipelines timestamps are written.
func rfc3339(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }

func (s *Set) refused(w *workspace, observe bool, v Violation) error {
	if observe {
		if o := s.obs.Load(); o != nil {
			(*o).Refused(w.name, v.Rule)
		}
	}
	return &Error{Workspace: w.name, Violations: []Violation{v}}
}
