package customerio

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// ErrUnreadableResponse is wrapped by the *APIError (ClassPermanent, with
// the 2xx StatusCode) of a call whose answer had a 2xx status but a body
// the call needs and could not read to its end (the connection broke) or
// that is not the documented JSON. Customer.io accepted the request: a
// transactional send or a broadcast trigger was made (only its delivery or
// trigger id is unknown) and must not be retried as if it had not been.
// Calls that do not need the body (Track v1, v2 entity, Pipelines) succeed
// on any 2xx instead.
var ErrUnreadableResponse = errors.New("the request was accepted (2xx) but its answer cannot be read")

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

// classOfStatus maps an HTTP status to a Class: the statuses Customer.io's
// official SDKs retry (408, 429, 5xx) are transient, 401 and a redirect
// not followed are the configuration, any other status is permanent.
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

// networkError wraps a transport failure as a transient *APIError, without
// the *url.Error (whose text holds the URL and so the person's identifier).
func (c *Client) networkError(rq *request, sc *scrubber, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &APIError{API: rq.api, Operation: rq.op, Class: ClassTransient, Err: &scrubbedError{err: err, text: sc.scrub(err.Error())}}
}

// scrubbedError keeps the cause for errors.Is/As while printing a scrubbed text.
type scrubbedError struct {
	err  error
	text string
}

func (e *scrubbedError) Error() string { return e.text }

func (e *scrubbedError) Unwrap() error { return e.err }

// Timeout reports whether the cause was a timeout (net.Error compatibility).
func (e *scrubbedError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout() || errors.Is(e.err, context.DeadlineExceeded)
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
