package customerio

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Class says what a failed call means for the task that made it.
type Class int

// Error classes.
const (
	// ClassTransient: try again later (408, 429, 5xx including 522 and 524,
	// network errors, timeouts). Honour APIError.RetryAfter when set.
	ClassTransient Class = iota
	// ClassAuth: the configuration is wrong (401, a missing key, or a
	// redirect the client refuses to follow, i.e. a wrong region or base
	// URL). Not the task's fault: keep it and retry once fixed.
	ClassAuth
	// ClassPermanent: the request itself is wrong (other 4xx, a
	// *ValidationError); retrying cannot help.
	ClassPermanent
)

// String returns "transient", "auth" or "permanent".
func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassAuth:
		return "auth"
	case ClassPermanent:
		return "permanent"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// ErrMissingCredentials is wrapped by an *APIError of ClassAuth when a call
// needs a key the Config does not have; no request is made.
var ErrMissingCredentials = errors.New("missing credentials")

// maxMessageBytes caps APIError.Message.
const maxMessageBytes = 500

// APIError is a failed call to Customer.io: a non-2xx answer, a network
// error or timeout (StatusCode 0), or missing credentials (StatusCode 0,
// wrapping ErrMissingCredentials). Its text never contains a key, a person
// identifier, an email address or message data.
type APIError struct {
	API        API    // which API was called
	Operation  string // "identify", "track", "send_email", "batch", ...
	StatusCode int    // HTTP status; 0 for network errors, timeouts and missing credentials
	// Message is Customer.io's message from the response body, scrubbed of
	// email addresses and of the identifiers, emails and data values of the
	// request, and cut to 500 bytes.
	Message string
	// RetryAfter is the response's Retry-After (seconds or an HTTP date), 0
	// when absent.
	RetryAfter time.Duration
	Class      Class // what the failure means for the caller
	Err        error // the cause: a network error (without its URL) or ErrMissingCredentials
}

// Error formats the error as
// "customerio: <api> <operation>: <status> <text>: <message>", for example
// "customerio: track identify: 400 Bad Request: event name must not be blank".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("customerio: ")
	b.WriteString(string(e.API))
	b.WriteString(" ")
	b.WriteString(e.Operation)
	if e.StatusCode != 0 {
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		if t := http.StatusText(e.StatusCode); t != "" {
			b.WriteString(" ")
			b.WriteString(t)
		}
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the cause (a network error, context.DeadlineExceeded,
// ErrMissingCredentials) or nil.
func (e *APIError) Unwrap() error { return e.Err }

// ClassOf classifies any error returned by the client: an *APIError has its
// Class, a *ValidationError is ClassPermanent, ErrMissingCredentials is
// ClassAuth, and context deadlines, cancellations and network errors are
// ClassTransient. Anything else (including nil, which callers should check
// first) is ClassTransient, the choice that loses nothing.
func ClassOf(err error) Class {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ClassPermanent
	}
	if errors.Is(err, ErrMissingCredentials) {
		return ClassAuth
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) {
		return ClassTransient
	}
	return ClassTransient
}

// classOfStatus maps an HTTP status to a Class (contract §8.3).
func classOfStatus(status int) Class {
	switch {
	case status == http.StatusUnauthorized:
		return ClassAuth
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return ClassTransient
	case status >= 300 && status < 400:
		return ClassAuth // a redirect we did not follow: wrong region or base URL
	default:
		return ClassPermanent
	}
}

// newStatusError builds the *APIError of a non-2xx response.
func newStatusError(api API, op string, status int, h http.Header, body []byte, sc *scrubber) *APIError {
	return &APIError{
		API:        api,
		Operation:  op,
		StatusCode: status,
		Message:    truncate(sc.scrub(parseMessage(body)), maxMessageBytes),
		RetryAfter: parseRetryAfter(h.Get("Retry-After"), time.Now()),
		Class:      classOfStatus(status),
	}
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent,
// malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 1<<31 {
			n = 1 << 31
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// parseMessage extracts Customer.io's message from any documented error
// shape: {"meta":{"error"}}, {"meta":{"errors":[...]}}, JSON:API
// {"errors":[{"detail","status"}]}, Track v2 {"errors":[{"reason","field",
// "message"}]}, {"error"}/{"message"}, or plain text.
func parseMessage(body []byte) string {
	text := strings.TrimSpace(string(body))
	if text == "" {
		return ""
	}
	var v struct {
		Meta *struct {
			Error  any   `json:"error"`
			Errors []any `json:"errors"`
		} `json:"meta"`
		Errors  any `json:"errors"`
		Error   any `json:"error"`
		Message any `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		var s string
		if json.Unmarshal(body, &s) == nil { // a JSON string
			return s
		}
		if !utf8.ValidString(text) {
			return ""
		}
		return strings.Join(strings.Fields(text), " ")
	}
	var parts []string
	if v.Meta != nil {
		parts = appendMessages(parts, v.Meta.Error)
		for _, e := range v.Meta.Errors {
			parts = appendMessages(parts, e)
		}
	}
	switch es := v.Errors.(type) {
	case []any:
		for _, e := range es {
			parts = appendMessages(parts, e)
		}
	default:
		parts = appendMessages(parts, es)
	}
	parts = appendMessages(parts, v.Error)
	parts = appendMessages(parts, v.Message)
	return strings.Join(parts, "; ")
}

// appendMessages appends the message(s) of one error item: a string, or an
// object with detail/message/reason and an optional field.
func appendMessages(parts []string, e any) []string {
	switch x := e.(type) {
	case string:
		if x = strings.TrimSpace(x); x != "" {
			parts = append(parts, x)
		}
	case map[string]any:
		msg := firstString(x, "detail", "message", "reason", "error", "title")
		if f, _ := x["field"].(string); f != "" && msg != "" {
			msg = f + ": " + msg
		}
		if msg != "" {
			parts = append(parts, msg)
		}
	case []any:
		for _, y := range x {
			parts = appendMessages(parts, y)
		}
	}
	return parts
}

func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// emailPattern matches email-looking strings, redacted from every message.
var emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+`)

// Redaction markers.
const (
	redacted      = "[redacted]"
	redactedEmail = "[email]"
)

// scrubber removes the credentials and the values of one request from text
// that ends up in an error: keys anywhere, request values (identifiers,
// emails, data) where they stand as words of their own, then anything that
// looks like an email address.
//
// The request's values are collected on the first scrub, not when the
// request is sent: a successful call never pays for parsing its body again.
type scrubber struct {
	secrets []string // removed wherever they occur
	once    sync.Once
	rq      *request // whose values are collected by the first scrub
	body    []byte
	values  []string // removed where not part of a longer word, longest first
}

// skipKeys are JSON keys whose string values are vocabulary, not data, and
// are left alone (redacting "person" or "1" would garble messages).
var skipKeys = map[string]bool{
	"type": true, "action": true, "operator": true, "platform": true,
	"transactional_message_id": true, "language": true, "object_type_id": true,
	"objectTypeId": true, "id_type": true, "sound": true, "field": true,
}

func (c *Client) newScrubber(rq *request, body []byte) *scrubber {
	return &scrubber{secrets: c.secrets, rq: rq, body: body}
}

// collect gathers the request's values, longest first (once, on the first
// scrub).
func (sc *scrubber) collect() {
	rq, body := sc.rq, sc.body
	sc.rq, sc.body = nil, nil
	if rq == nil {
		return
	}
	seen := map[string]bool{}
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			sc.values = append(sc.values, s)
		}
	}
	for _, v := range rq.pathValues {
		add(v)
		add(strings.TrimPrefix(v, "cio_"))
		add(escapeSegment(v)) // as it appears in an echoed path
		add(url.PathEscape(v))
		add(url.QueryEscape(v))
	}
	for _, vs := range rq.query {
		for _, v := range vs {
			add(v)
		}
	}
	if len(body) > 0 {
		var v any
		if json.Unmarshal(body, &v) == nil {
			collectValues(v, "", add)
		}
	}
	sort.Slice(sc.values, func(i, j int) bool { return len(sc.values[i]) > len(sc.values[j]) })
}

// collectValues calls add with every string leaf of v, except those under
// skipKeys.
func collectValues(v any, key string, add func(string)) {
	switch x := v.(type) {
	case string:
		if !skipKeys[key] {
			add(x)
		}
	case map[string]any:
		for k, y := range x {
			collectValues(y, k, add)
		}
	case []any:
		for _, y := range x {
			collectValues(y, key, add)
		}
	}
}

func (sc *scrubber) scrub(s string) string {
	if sc == nil || s == "" {
		return s
	}
	sc.once.Do(sc.collect)
	for _, k := range sc.secrets {
		if k != "" {
			s = strings.ReplaceAll(s, k, redacted)
		}
	}
	for _, v := range sc.values {
		s = replaceWord(s, v, redacted)
	}
	return emailPattern.ReplaceAllString(s, redactedEmail)
}

// replaceWord replaces occurrences of old in s that are not glued to a
// letter or digit on either side.
func replaceWord(s, old, repl string) string {
	if old == "" || !strings.Contains(s, old) {
		return s
	}
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(s[i:], old)
		if j < 0 {
			b.WriteString(s[i:])
			return b.String()
		}
		j += i
		end := j + len(old)
		if !wordChar(lastRune(s[:j])) && !wordChar(firstRune(s[end:])) {
			b.WriteString(s[i:j])
			b.WriteString(repl)
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
}

func wordChar(r rune) bool {
	return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > utf8.RuneSelf
}

func lastRune(s string) rune {
	if s == "" {
		return ' '
	}
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

func firstRune(s string) rune {
	if s == "" {
		return ' '
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r
}
