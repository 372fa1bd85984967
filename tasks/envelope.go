package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/cioq/cioq/customerio"
)

// Version is the envelope version this package writes and the newest it
// reads.
const Version = 1

// Meta is what a producer says about a task besides its payload.
type Meta struct {
	// Workspace names the Customer.io workspace (credentials) that delivers
	// the task; "" is the default workspace. See ValidateWorkspace.
	Workspace string
	// ExpiresAt, when not zero, is the moment after which the task is
	// dead-lettered as expired instead of delivered (transactional sends:
	// a password reset an hour late is worse than none). Stored as unix
	// seconds.
	ExpiresAt time.Time
	// EnqueuedAt is when the task was enqueued; zero means now. Stored as
	// unix milliseconds; the worker measures the retry window from it.
	EnqueuedAt time.Time
	// OrderKey and Seq place the task in a per-person sequence (producer
	// WithOrdering): OrderKey names the person (a hash, never the
	// identifier itself), Seq is the task's position, from 1. A worker
	// whose workspace is ordered delivers a task only after the person's
	// earlier tasks finished or left the queue. Zero: not ordered.
	OrderKey string
	Seq      int64
	// IdempotencyKey is the producer's idempotency key, kept so that views
	// which show payloads can show it too; the task id is a keyed hash of
	// it (see producer.IdempotencyKey). It names a person as often as not,
	// so it is treated like payload data: redacted wherever payloads are.
	// "" when the task has none.
	IdempotencyKey string
	// TraceParent and TraceState are the W3C trace context the task was
	// enqueued in ("00-<trace id>-<span id>-<flags>" and its vendor
	// state), so the worker's spans continue the producer's trace. ""
	// when the task was enqueued outside a trace. The producer writes them
	// from its context's span (producer.Client methods) or an ingest
	// request's traceparent header; both are ASCII.
	TraceParent, TraceState string
}

// Envelope is the decoded form of a task's bytes:
//
//	{"v":1,"workspace":"eu","expires_at":1767225600,"enqueued_at":1767222000123,"order_key":"…","seq":7,"idempotency_key":"…",
//	 "traceparent":"00-…-…-01","tracestate":"…","payload":{...}}
//
// workspace, expires_at, order_key, seq, idempotency_key, traceparent and tracestate are omitted when empty. Payload keeps the
// payload's bytes as written, unknown fields included, and Extra keeps
// unknown top-level fields, so MarshalJSON loses nothing.
type Envelope struct {
	// V is the envelope version (1).
	V int
	// Workspace is the Customer.io workspace; "" = default.
	Workspace string
	// ExpiresAt is the expiry in unix seconds; 0 = none.
	ExpiresAt int64
	// EnqueuedAt is the enqueue time in unix milliseconds; 0 = unknown (a
	// bare payload enqueued by something other than cioq).
	EnqueuedAt int64
	// OrderKey and Seq are the per-person sequence (see Meta); "" and 0
	// when the task is not ordered.
	OrderKey string
	Seq      int64
	// IdempotencyKey is the producer's idempotency key (see Meta); "" when
	// the task has none.
	IdempotencyKey string
	// TraceParent and TraceState are the W3C trace context (see Meta); ""
	// when none.
	TraceParent, TraceState string
	// Payload is the payload's JSON, exactly as enqueued.
	Payload json.RawMessage
	// Extra holds top-level fields this version does not know.
	Extra map[string]json.RawMessage
}

// Expiry returns ExpiresAt as a time, and false when the envelope has none.
func (e *Envelope) Expiry() (time.Time, bool) {
	if e.ExpiresAt == 0 {
		return time.Time{}, false
	}
	return time.Unix(e.ExpiresAt, 0), true
}

// Expired reports whether the envelope has an expiry at or before now.
func (e *Envelope) Expired(now time.Time) bool {
	return e.ExpiresAt != 0 && now.Unix() >= e.ExpiresAt
}

// Enqueued returns EnqueuedAt as a time, and false when it is unknown.
func (e *Envelope) Enqueued() (time.Time, bool) {
	if e.EnqueuedAt == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(e.EnqueuedAt), true
}

// MarshalJSON writes the envelope with its unknown fields.
func (e Envelope) MarshalJSON() ([]byte, error) {
	v := e.V
	if v == 0 {
		v = Version
	}
	b := appendHead(make([]byte, 0, 96+len(e.IdempotencyKey)+len(e.TraceParent)+len(e.TraceState)+len(e.Payload)), v, e.Workspace, e.ExpiresAt, e.EnqueuedAt, e.OrderKey, e.Seq, e.IdempotencyKey, e.TraceParent, e.TraceState)
	if len(e.Extra) > 0 {
		keys := make([]string, 0, len(e.Extra))
		for k := range e.Extra {
			keys = append(keys, k)
		}
		sortStrings(keys)
		for _, k := range keys {
			kb, _ := json.Marshal(k)
			b = append(b, kb...)
			b = append(b, ':')
			b = append(b, e.Extra[k]...)
			b = append(b, ',')
		}
	}
	b = append(b, `"payload":`...)
	if len(e.Payload) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Payload...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads an envelope; unlike Decode it does not accept a bare
// payload.
func (e *Envelope) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	env, err := envelopeFromMap("", m)
	if err != nil {
		return err
	}
	*e = *env
	return nil
}

func appendHead(b []byte, v int, workspace string, expiresAt, enqueuedAt int64, orderKey string, seq int64, key, traceParent, traceState string) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(v), 10)
	if workspace != "" {
		b = append(b, `,"workspace":`...)
		b = strconv.AppendQuote(b, workspace)
	}
	if expiresAt != 0 {
		b = append(b, `,"expires_at":`...)
		b = strconv.AppendInt(b, expiresAt, 10)
	}
	if enqueuedAt != 0 {
		b = append(b, `,"enqueued_at":`...)
		b = strconv.AppendInt(b, enqueuedAt, 10)
	}
	if orderKey != "" && seq > 0 {
		b = append(b, `,"order_key":`...)
		b = strconv.AppendQuote(b, orderKey)
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, seq, 10)
	}
	if key != "" {
		b = append(b, `,"idempotency_key":`...)
		b = appendJSONString(b, key)
	}
	if traceParent != "" {
		b = append(b, `,"traceparent":`...)
		b = appendJSONString(b, traceParent)
	}
	if traceState != "" {
		b = append(b, `,"tracestate":`...)
		b = appendJSONString(b, traceState)
	}
	return append(b, ',')
}

// appendJSONString appends s as a JSON string: strconv's quoting where it
// is JSON too (printable ASCII), encoding/json's otherwise.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return strconv.AppendQuote(b, s)
}

// Encode returns the bytes of a task: the envelope around p's JSON. It
// checks the workspace and the strings of p (see MarshalPayload) but does
// not call p.Validate; the producer does.
func Encode(p Payload, meta Meta) ([]byte, error) {
	eb, payload, err := marshalPooled(p)
	if err != nil {
		return nil, err
	}
	defer eb.release()
	return encodeRaw(payload, meta)
}

// MarshalPayload returns p's JSON exactly as Encode writes it in the
// envelope. encoding/json replaces the bytes of a string that are not valid
// UTF-8 by U+FFFD without a word (so two different invalid identifiers
// would become one person); MarshalPayload refuses such a string instead,
// with a *customerio.ValidationError naming it by its JSON path
// ("identifiers.id", "data.blob"; for a map key, the map's path) and the
// Reason "is not valid UTF-8" or "has a key that is not valid UTF-8". The
// check costs a scan of the encoded bytes; the payload's values are walked
// only when that scan finds a replacement.
func MarshalPayload(p Payload) (json.RawMessage, error) {
	eb, payload, err := marshalPooled(p)
	if err != nil {
		return nil, err
	}
	defer eb.release()
	return bytes.Clone(payload), nil
}

// marshalPooled encodes p into a pooled buffer (json.Marshal's bytes, HTML
// escaping on: one exact-size copy later instead of Marshal's result plus
// the envelope's) and checks its strings. The bytes are the buffer's until
// release.
func marshalPooled(p Payload) (*encBuf, []byte, error) {
	if p == nil {
		return nil, nil, errors.New("tasks: nil payload")
	}
	eb := encBufs.Get().(*encBuf)
	eb.buf.Reset()
	if !fastEncode(eb.fast, p) {
		// encoding/json says why (the same bytes when it encodes it); a
		// fresh go-json encoder for the next payload.
		eb.fast = gojson.NewEncoder(&eb.buf)
		eb.buf.Reset()
		if err := eb.enc.Encode(p); err != nil {
			eb.release()
			return nil, nil, err
		}
	}
	out := bytes.TrimSuffix(eb.buf.Bytes(), []byte("\n"))
	if err := checkEncoded(p, out); err != nil {
		eb.release()
		return nil, nil, err
	}
	return eb, out, nil
}

// encBuf is a reusable buffer with its encoders (HTML escaping on, like
// json.Marshal): github.com/goccy/go-json's, which writes encoding/json's
// bytes about three times faster (FuzzFastEncode checks that they are the
// same bytes for every payload type), and encoding/json's, for what the
// first refuses.
type encBuf struct {
	buf  bytes.Buffer
	fast *gojson.Encoder
	enc  *json.Encoder
}

var encBufs = sync.Pool{New: func() any {
	eb := &encBuf{}
	eb.fast = gojson.NewEncoder(&eb.buf)
	eb.enc = json.NewEncoder(&eb.buf)
	return eb
}}

func (eb *encBuf) release() {
	if eb.buf.Cap() <= 64<<10 {
		encBufs.Put(eb)
	}
}

// EncodeRaw is Encode for a payload already in JSON (a JSON object), which
// is copied as is: unknown fields survive. A string that is not valid UTF-8
// is refused as CheckUTF8 says.
func EncodeRaw(payload json.RawMessage, meta Meta) ([]byte, error) {
	if err := CheckUTF8(payload); err != nil {
		return nil, err
	}
	return encodeRaw(payload, meta)
}

func encodeRaw(payload []byte, meta Meta) ([]byte, error) {
	if err := ValidateWorkspace(meta.Workspace); err != nil {
		return nil, err
	}
	var exp int64
	if !meta.ExpiresAt.IsZero() {
		exp = meta.ExpiresAt.Unix()
	}
	enq := meta.EnqueuedAt
	if enq.IsZero() {
		enq = time.Now()
	}
	b := appendHead(make([]byte, 0, 96+len(meta.IdempotencyKey)+len(meta.TraceParent)+len(meta.TraceState)+len(payload)), Version, meta.Workspace, exp, enq.UnixMilli(), meta.OrderKey, meta.Seq, meta.IdempotencyKey, meta.TraceParent, meta.TraceState)
	b = append(b, `"payload":`...)
	b = append(b, payload...)
	return append(b, '}'), nil
}

// Decode reads the bytes of a task of type typ: the envelope and the typed
// payload (a pointer, e.g. *SendEmail). A JSON object with neither "v" nor
// "payload" is taken as a bare version 1 payload, so other languages can
// enqueue plain Customer.io bodies. Every error is a *DecodeError; errors.Is
// tells ErrUnknownType, ErrUnsupportedVersion and ErrMalformed apart, and
// its Field names the JSON path of the value at fault as written in b
// ("timestamp" in a bare payload, "payload.timestamp" in an envelope), with
// a Reason saying what was expected and found ("must be an integer, got
// 1.5"). A string that is not valid UTF-8 is refused (see CheckUTF8), not
// replaced.
//
// Decode does not call Validate: the worker does, and dead-letters a
// payload Customer.io would refuse.
func Decode(typ string, b []byte) (*Envelope, Payload, error) {
	spec, ok := registry[typ]
	if !ok {
		return nil, nil, &DecodeError{Type: typ, Reason: "unknown task type", Err: ErrUnknownType}
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, nil, malformed(typ, "task is not a JSON object")
	}
	if err := CheckUTF8(b); err != nil {
		ve := err.(*customerio.ValidationError)
		return nil, nil, malformedField(typ, ve.Field, ve.Reason)
	}
	if env, ok := scanEnvelope(b); ok {
		if p, err := unmarshalPayload(spec, env.Payload); err == nil {
			return env, p, nil
		}
		// Not what it looked like: the general path finds the error.
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		field, reason := DescribeJSONError(b, err, &m)
		return nil, nil, malformedField(typ, field, reason)
	}
	var env *Envelope
	_, hasV := m["v"]
	_, hasP := m["payload"]
	prefix := ""
	if hasV || hasP {
		var err error
		if env, err = envelopeFromMap(typ, m); err != nil {
			return nil, nil, err
		}
		prefix = "payload"
	} else {
		env = &Envelope{V: Version, Payload: json.RawMessage(b)}
	}
	p := spec.New()
	if err := json.Unmarshal(env.Payload, p); err != nil {
		field, reason := DescribeJSONError(env.Payload, err, p)
		return env, nil, malformedField(typ, joinPath(prefix, field), reason)
	}
	return env, p, nil
}

// scanEnvelope reads the envelope cioq writes (appendHead, then
// "payload":{...}}) without decoding it into a map: "v":1 first, then
// only known fields, each at most once, no whitespace, no string escapes,
// integers only, the payload last. Anything else, and any envelope
// envelopeFromMap would refuse, returns false and Decode takes the general
// path, so the result is always the one the general path would give once
// the payload proves to be valid JSON (the caller unmarshals it and falls
// back when it is not). The payload aliases b.
func scanEnvelope(b []byte) (*Envelope, bool) {
	const head = `{"v":1,`
	if len(b) < len(head)+len(`"payload":{}}`) || string(b[:len(head)]) != head || b[len(b)-1] != '}' {
		return nil, false
	}
	env := &Envelope{V: 1}
	var seen [8]bool
	i := len(head)
	for {
		if b[i] != '"' {
			return nil, false
		}
		j := bytes.IndexByte(b[i+1:], '"')
		if j < 0 {
			return nil, false
		}
		key := b[i+1 : i+1+j]
		i += j + 2
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i++
		var k int
		switch string(key) {
		case "payload":
			pl := b[i : len(b)-1]
			if len(pl) < 2 || pl[0] != '{' || pl[len(pl)-1] != '}' {
				return nil, false
			}
			env.Payload = json.RawMessage(pl)
			if ValidateWorkspace(env.Workspace) != nil {
				return nil, false
			}
			return env, true
		case "workspace":
			k, i = 0, scanString(b, i, &env.Workspace)
		case "order_key":
			k, i = 1, scanString(b, i, &env.OrderKey)
		case "expires_at":
			k, i = 2, scanInt(b, i, &env.ExpiresAt)
		case "enqueued_at":
			k, i = 3, scanInt(b, i, &env.EnqueuedAt)
		case "seq":
			k, i = 4, scanInt(b, i, &env.Seq)
		case "idempotency_key":
			k, i = 5, scanString(b, i, &env.IdempotencyKey)
		case "traceparent":
			k, i = 6, scanString(b, i, &env.TraceParent)
		case "tracestate":
			k, i = 7, scanString(b, i, &env.TraceState)
		default:
			return nil, false
		}
		if i < 0 || seen[k] || i >= len(b) || b[i] != ',' {
			return nil, false
		}
		seen[k] = true
		i++
		if i >= len(b) {
			return nil, false
		}
	}
}

// scanString reads a JSON string without escapes or control characters at
// b[i:] into *s and returns the index after it, or -1.
func scanString(b []byte, i int, s *string) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			*s = string(b[i+1 : j])
			return j + 1
		case c == '\\' || c < 0x20 || c >= 0x80:
			return -1
		}
	}
	return -1
}

// scanInt reads a JSON integer (no fraction, exponent or leading zero)
// that fits an int64 at b[i:] into *n and returns the index after it, or -1.
func scanInt(b []byte, i int, n *int64) int {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	d := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == d || b[d] == '0' && j-d > 1 || j-d > 18 {
		return -1
	}
	v, err := strconv.ParseInt(string(b[i:j]), 10, 64)
	if err != nil {
		return -1
	}
	*n = v
	return j
}

func envelopeFromMap(typ string, m map[string]json.RawMessage) (*Envelope, error) {
	env := &Envelope{V: Version}
	for k, raw := range m {
		var dst any
		switch k {
		case "v":
			dst = &env.V
		case "workspace":
			dst = &env.Workspace
		case "expires_at":
			dst = &env.ExpiresAt
		case "enqueued_at":
			dst = &env.EnqueuedAt
		case "order_key":
			dst = &env.OrderKey
		case "seq":
			dst = &env.Seq
		case "idempotency_key":
			dst = &env.IdempotencyKey
		case "traceparent":
			dst = &env.TraceParent
		case "tracestate":
			dst = &env.TraceState
		case "payload":
			env.Payload = raw
		default:
			if env.Extra == nil {
				env.Extra = make(map[string]json.RawMessage)
			}
			env.Extra[k] = raw
		}
		if dst == nil {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			_, reason := DescribeJSONError(raw, err, dst)
			return nil, malformedField(typ, k, reason)
		}
	}
	if env.V > Version {
		return nil, &DecodeError{Type: typ, Reason: "envelope version " + strconv.Itoa(env.V) + " is newer than supported version " + strconv.Itoa(Version), Err: ErrUnsupportedVersion}
	}
	if env.V < 1 {
		return nil, malformed(typ, "envelope version must be at least 1")
	}
	if len(env.Payload) == 0 || env.Payload[0] != '{' {
		return nil, malformedField(typ, "payload", "must be a JSON object")
	}
	if err := ValidateWorkspace(env.Workspace); err != nil {
		return nil, malformedField(typ, "workspace", "is not a valid workspace name")
	}
	return env, nil
}

// ValidateWorkspace checks a workspace name: "" (the default workspace) or
// 1 to 64 characters of a-z, 0-9, '_' and '-'.
func ValidateWorkspace(w string) error {
	if len(w) > 64 {
		return invalid("workspace", "must be at most 64 characters")
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return invalid("workspace", "must contain only a-z, 0-9, '_' and '-'")
		}
	}
	return nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
