package customerio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// PipelinesCall is the kind of a Pipelines API call.
type PipelinesCall string

// Pipelines calls; each is also the "type" of a batch item.
const (
	CallIdentify PipelinesCall = "identify"
	CallTrack    PipelinesCall = "track"
	CallPage     PipelinesCall = "page"
	CallScreen   PipelinesCall = "screen"
	CallGroup    PipelinesCall = "group"
	CallAlias    PipelinesCall = "alias"
)

// PipelinesMessage is a Segment-spec message for Customer.io's Pipelines API
// (camelCase fields). Type is implicit in the route and required in batches.
// Timestamp is ISO-8601.
//
// Fields the struct does not name (sentAt, originalTimestamp, receivedAt,
// channel, version, ...) are kept in Extra by UnmarshalJSON and written back
// by MarshalJSON, so a message decoded and re-encoded reaches Customer.io
// whole. The client's limits (32,000 bytes per message, 500,000 per batch)
// count them.
type PipelinesMessage struct {
	Type         PipelinesCall  `json:"type,omitempty"`
	UserID       string         `json:"userId,omitempty"`
	AnonymousID  string         `json:"anonymousId,omitempty"`
	MessageID    string         `json:"messageId,omitempty"`
	Timestamp    string         `json:"timestamp,omitempty"`
	Context      map[string]any `json:"context,omitempty"`
	Integrations map[string]any `json:"integrations,omitempty"`
	Traits       map[string]any `json:"traits,omitempty"`
	Event        string         `json:"event,omitempty"`
	Properties   map[string]any `json:"properties,omitempty"`
	Name         string         `json:"name,omitempty"`
	Category     string         `json:"category,omitempty"`
	GroupID      string         `json:"groupId,omitempty"`
	PreviousID   string         `json:"previousId,omitempty"`
	// Extra holds the message's other top-level fields, by JSON name, as
	// raw JSON values. MarshalJSON writes them after the named fields in
	// key order; a key that names one of the fields above (compared as
	// encoding/json does, ignoring case) is never written from Extra: the
	// field wins. A nil or empty value is written as null.
	Extra map[string]json.RawMessage `json:"-"`
}

// pipelinesFields is PipelinesMessage without its methods.
type pipelinesFields PipelinesMessage

// pipelinesKnown are the JSON names of PipelinesMessage's named fields.
var pipelinesKnown = []string{
	"type", "userId", "anonymousId", "messageId", "timestamp", "context", "integrations",
	"traits", "event", "properties", "name", "category", "groupId", "previousId",
}

func isPipelinesKnown(key string) bool {
	for _, k := range pipelinesKnown {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// MarshalJSON writes the named fields as tagged, then the Extra fields in
// key order (see Extra).
func (m PipelinesMessage) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(pipelinesFields(m))
	if err != nil || len(m.Extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		if !isPipelinesKnown(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return b, nil
	}
	sort.Strings(keys)
	b = b[:len(b)-1] // drop '}'
	for _, k := range keys {
		if len(b) > 1 {
			b = append(b, ',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b = append(b, kb...)
		b = append(b, ':')
		v := m.Extra[k]
		switch {
		case len(v) == 0:
			b = append(b, "null"...)
		case !json.Valid(v):
			return nil, fmt.Errorf("customerio: pipelines message field %s: invalid JSON value", strconv.Quote(k))
		default:
			b = append(b, v...)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the named fields and keeps every other top-level
// field in Extra (nil when there is none). It replaces all of m; JSON null
// leaves m unchanged.
func (m *PipelinesMessage) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var f pipelinesFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k, v := range all {
		if isPipelinesKnown(k) {
			continue
		}
		if f.Extra == nil {
			f.Extra = make(map[string]json.RawMessage)
		}
		f.Extra[k] = v
	}
	*m = PipelinesMessage(f)
	return nil
}

// Pipelines sends one Data Pipelines (CDP) call: POST <PipelinesURL>/{call}
// (identify, track, page, screen, group or alias) with m as the body. In
// permissive mode (the default) Customer.io answers 200 even to invalid
// calls; Config.PipelinesStrict asks for 4xx instead.
func (c *Client) Pipelines(ctx context.Context, call PipelinesCall, m PipelinesMessage) error {
	if err := m.Validate(call); err != nil {
		return err
	}
	_, err := c.do(ctx, &request{api: APIPipelines, op: string(call), method: http.MethodPost, path: []string{string(call)}, body: m})
	return err
}

// PipelinesBatch sends several Pipelines messages in one request:
// POST <PipelinesURL>/batch with {"batch":[...]}. Every message needs its
// Type; the request must stay within 500,000 bytes.
func (c *Client) PipelinesBatch(ctx context.Context, msgs []PipelinesMessage) error {
	if err := validatePipelinesBatch(msgs); err != nil {
		return err
	}
	_, err := c.do(ctx, &request{api: APIPipelines, op: "batch", method: http.MethodPost, path: []string{"batch"}, body: pipelinesBatchBody{msgs}})
	return err
}

func checkCall(field string, call PipelinesCall) error {
	switch call {
	case CallIdentify, CallTrack, CallPage, CallScreen, CallGroup, CallAlias:
		return nil
	}
	return invalid(field, "must be identify, track, page, screen, group or alias")
}

// Validate checks a Pipelines message for call: type empty or equal to
// call; userId or anonymousId (alias: userId and previousId); track needs
// event, group needs groupId; encoded size at most 32,000 bytes (Pipelines'
// limit per message: a larger one is refused naming the top-level field that
// takes the most room, e.g. "properties").
func (m PipelinesMessage) Validate(call PipelinesCall) error { return m.validate("", call) }

func (m PipelinesMessage) validate(p string, call PipelinesCall) error {
	if err := checkCall(join(p, "type"), call); err != nil {
		return err
	}
	if m.Type != "" && m.Type != call {
		return invalid(join(p, "type"), "does not match the call")
	}
	switch call {
	case CallAlias:
		if strings.TrimSpace(m.UserID) == "" {
			return invalid(join(p, "userId"), "is required")
		}
		if strings.TrimSpace(m.PreviousID) == "" {
			return invalid(join(p, "previousId"), "is required")
		}
	default:
		if strings.TrimSpace(m.UserID) == "" && strings.TrimSpace(m.AnonymousID) == "" {
			if call == CallTrack && m.GroupID != "" {
				break // a group-level track event
			}
			return invalid(join(p, "userId"), "userId or anonymousId is required")
		}
	}
	switch call {
	case CallTrack:
		if strings.TrimSpace(m.Event) == "" {
			return invalid(join(p, "event"), "is required")
		}
	case CallGroup:
		if strings.TrimSpace(m.GroupID) == "" {
			return invalid(join(p, "groupId"), "is required")
		}
	}
	n := encodedSize(m)
	if n < 0 {
		return invalid(join(p, "message"), "cannot be encoded as JSON")
	}
	if n > MaxEntityBytes {
		return invalid(join(p, largestField(m)), "makes the message "+strconv.Itoa(n)+" bytes encoded; a Pipelines message must be at most 32000")
	}
	return nil
}

// largestField returns the name of the top-level field that takes the most
// room in m's encoding (as the message spells it, e.g. "properties"), to
// name it when the message is too large; "message" if there is none.
func largestField(m PipelinesMessage) string {
	b, err := m.MarshalJSON()
	if err != nil {
		return "message"
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return "message"
	}
	name, size := "message", -1
	for k, v := range fields {
		if len(v) > size || len(v) == size && k < name {
			name, size = k, len(v)
		}
	}
	return name
}

// validatePipelinesBatch: at least one message, each with its type and
// valid, the encoded request at most 500,000 bytes.
func validatePipelinesBatch(msgs []PipelinesMessage) error {
	if len(msgs) == 0 {
		return invalid("batch", "at least one message is required")
	}
	for i, m := range msgs {
		p := idx("batch", i)
		if m.Type == "" {
			return invalid(join(p, "type"), "is required in a batch")
		}
		if err := m.validate(p, m.Type); err != nil {
			return err
		}
	}
	return checkEncoded("batch", pipelinesBatchBody{msgs}, MaxBatchBytes, false, "must be at most 500000 bytes encoded")
}

type pipelinesBatchBody struct {
	Batch []PipelinesMessage `json:"batch"`
}
