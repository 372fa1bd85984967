package status

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// WebhookPath is where `cioq serve` mounts the Receiver: POST
// WebhookPath for the default workspace, POST WebhookPath/{workspace} for
// another one (one reporting webhook per Customer.io workspace).
const WebhookPath = "/v1/customerio/webhooks"

// Defaults of ReceiverConfig's zero fields.
const (
	// DefaultMaxSkew is how far a request's X-CIO-Timestamp may be from
	// now, either way: an older (or later) request is refused, so a
	// captured request cannot be replayed later.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultMaxBodyBytes caps a webhook's body ("sent" events may carry
	// the message's content when the webhook includes it).
	DefaultMaxBodyBytes = 4 << 20
	// DefaultWriteTimeout bounds the Redis writes of one request, well
	// within Customer.io's 4 s timeout.
	DefaultWriteTimeout = 2 * time.Second
)

// RequestCounter counts the receiver's requests by workspace ("unknown"
// until a request is authenticated) and outcome: accepted, unauthorized,
// too_large, invalid, unavailable. internal/ops.MessageMetrics satisfies it.
type RequestCounter interface {
	WebhookRequest(workspace, outcome string)
}

// ReceiverConfig configures a Receiver. Store and SigningKeys are
// required; the other zero fields take their defaults.
type ReceiverConfig struct {
	// Store records the events (required). Its Metrics count outcomes.
	Store *Store
	// SigningKeys maps a workspace name ("" = the default workspace, which
	// "default" also names) to the signing key of its reporting webhook in
	// Customer.io. A workspace without a key is refused like a bad
	// signature.
	SigningKeys map[string]string
	// MaxSkew is how old (or how far ahead) X-CIO-Timestamp may be
	// (default DefaultMaxSkew, 5 min).
	MaxSkew time.Duration
	// MaxBodyBytes caps a body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// WriteTimeout bounds the Redis writes of a request (default 2 s).
	WriteTimeout time.Duration
	// Requests, when set, counts requests by outcome.
	Requests RequestCounter
	// Logger receives problems, never bodies or identifiers (default
	// slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Receiver is the http.Handler of Customer.io's reporting webhooks. It
// authenticates a request by X-CIO-Signature, the hex HMAC-SHA256 with
// the workspace's signing key of "v0:" + X-CIO-Timestamp + ":" + the raw
// body, compared in constant time, and refuses a timestamp more than
// MaxSkew from now. Every unauthenticated request, whatever the reason (an
// unknown workspace, no or a wrong signature, a stale or missing
// timestamp), gets the same 401. An authenticated request is answered 200
// once its events are in Redis (503 if Redis fails, so Customer.io
// retries); an event whose event_id was recorded before is acknowledged
// and changes nothing. Every event is kept: one naming a broadcast trigger
// (trigger_id, a message an API-triggered broadcast sent) joins the
// trigger's record, one naming only a delivery its delivery's record (each
// linked to the task that triggered or sent it, now or once the worker
// records the acceptance), any other, and a body that is not an event,
// joins the workspace's list of other events.
type Receiver struct {
	cfg  ReceiverConfig
	keys map[string][]byte
	log  *slog.Logger
}

// NewReceiver checks cfg and returns a Receiver.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Store == nil {
		return nil, errors.New("status: ReceiverConfig.Store is required")
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rc := &Receiver{cfg: cfg, keys: map[string][]byte{}, log: cfg.Logger}
	for ws, k := range cfg.SigningKeys {
		if ws == "default" {
			ws = ""
		}
		if k == "" {
			return nil, errors.New("status: workspace " + strconv.Quote(keys.Workspace(ws)) + ": empty signing key")
		}
		rc.keys[ws] = []byte(k)
	}
	return rc, nil
}

// Workspaces returns the workspaces the receiver accepts webhooks of
// ("default" for the default one).
func (rc *Receiver) Workspaces() []string {
	out := make([]string, 0, len(rc.keys))
	for ws := range rc.keys {
		out = append(out, keys.Workspace(ws))
	}
	return out
}

// Mount registers the receiver on mux at WebhookPath and
// WebhookPath/{workspace}.
func (rc *Receiver) Mount(mux *http.ServeMux) {
	mux.Handle("POST "+WebhookPath, rc)
	mux.Handle("POST "+WebhookPath+"/{workspace}", rc)
}

// noKey stands in for the signing key of a workspace that has none, so an
// unknown workspace costs what a known one does.
var noKey = []byte("cioq-status: no such signing key")

// Sign returns the X-CIO-Signature of body sent at timestamp (unix
// seconds) with key: hex HMAC-SHA256 of "v0:<timestamp>:<body>". The
// sandbox signs its webhooks with it.
func Sign(key []byte, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("v0:" + strconv.FormatInt(timestamp, 10) + ":"))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func (rc *Receiver) count(ws, outcome string) {
	if rc.cfg.Requests != nil {
		rc.cfg.Requests.WebhookRequest(ws, outcome)
	}
}

func reply(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
}

const unauthorized = `{"error":{"code":"unauthorized","message":"missing or wrong X-CIO-Signature, or X-CIO-Timestamp too old"}}`

// ServeHTTP serves one reporting webhook request.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	if ws == "default" {
		ws = ""
	}
	key, known := rc.keys[ws]
	if !known {
		key = noKey
	}
	if r.ContentLength > rc.cfg.MaxBodyBytes {
		rc.count("unknown", "too_large")
		reply(w, http.StatusRequestEntityTooLarge, `{"error":{"code":"body_too_large","message":"the body is too large"}}`)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			rc.count("unknown", "too_large")
			reply(w, http.StatusRequestEntityTooLarge, `{"error":{"code":"body_too_large","message":"the body is too large"}}`)
			return
		}
		rc.count("unknown", "invalid")
		reply(w, http.StatusBadRequest, `{"error":{"code":"unreadable_body","message":"the body could not be read"}}`)
		return
	}
	ts := strings.TrimSpace(r.Header.Get("X-CIO-Timestamp"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	want := mac.Sum(nil)
	got, herr := hex.DecodeString(strings.TrimSpace(r.Header.Get("X-CIO-Signature")))
	signed := hmac.Equal(got, want) && herr == nil && known
	sec, terr := strconv.ParseInt(ts, 10, 64)
	skew := rc.cfg.Now().Sub(time.Unix(sec, 0))
	fresh := terr == nil && skew <= rc.cfg.MaxSkew && skew >= -rc.cfg.MaxSkew
	if !signed || !fresh {
		rc.count("unknown", "unauthorized")
		w.Header().Set("WWW-Authenticate", `HMAC realm="cioq reporting webhooks"`)
		reply(w, http.StatusUnauthorized, unauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), rc.cfg.WriteTimeout)
	defer cancel()
	n, dup, err := rc.record(ctx, ws, body)
	if err != nil {
		rc.log.Warn("reporting webhook: could not record its events; Customer.io will retry", "workspace", keys.Workspace(ws), "error", err.Error())
		rc.count(keys.Workspace(ws), "unavailable")
		reply(w, http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"the events could not be stored; retry"}}`)
		return
	}
	rc.count(keys.Workspace(ws), "accepted")
	reply(w, http.StatusOK, `{"ok":true,"received":`+strconv.Itoa(n)+`,"duplicates":`+strconv.Itoa(dup)+`}`)
}

// record stores the events of an authenticated body: one event object, or
// an array of them.
func (rc *Receiver) record(ctx context.Context, ws string, body []byte) (n, dup int, err error) {
	var items []json.RawMessage
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if json.Unmarshal(trimmed, &items) != nil {
			items = []json.RawMessage{trimmed}
		}
	} else {
		items = []json.RawMessage{trimmed}
	}
	for _, raw := range items {
		added, err := rc.recordOne(ctx, ws, raw)
		if err != nil {
			return n, dup, err
		}
		n++
		if !added {
			dup++
		}
	}
	return n, dup, nil
}

func (rc *Receiver) recordOne(ctx context.Context, ws string, raw []byte) (bool, error) {
	st := rc.cfg.Store
	var wh Webhook
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&wh) != nil || wh.EventID == "" || wh.Metric == "" {
		// Authentic but not an event we can read: kept, never refused
		// (Customer.io holds back every later webhook while one fails).
		rc.log.Warn("reporting webhook: an authenticated body is not a readable event; kept with the workspace's other events", "workspace", keys.Workspace(ws))
		added, err := st.recordOther(ctx, ws, wh.EventID, raw)
		if added {
			st.outcome(ws, "", "", "malformed")
		}
		return added, err
	}
	ref := wh.DeliveryRef()
	trigger := wh.TriggerRef()
	if trigger != "" {
		// A message of an API-triggered broadcast: its events join the
		// trigger's record, which the worker linked to the trigger task
		// (the message's own delivery id names no task).
		ref = trigger
	}
	if ref == "" {
		added, err := st.recordOther(ctx, ws, wh.EventID, raw)
		if added {
			st.outcome(ws, OutcomeOther, wh.Template(), Outcome(strings.ToLower(wh.Metric)))
		}
		return added, err
	}
	ev := wh.Event(rc.cfg.Now())
	if t, ok := objectTypes[ev.ObjectType]; ok && wh.str("transactional_message_id") != "" {
		ev.typeHint = t
	}
	if trigger != "" {
		ev.typeHint = tasks.TypeBroadcastTrigger
	}
	ev.tmplHint = wh.Template()
	added, _, err := st.RecordEvent(ctx, ws, ref, ev)
	return added, err
}

func (s *Store) outcome(ws, typ, tmpl, outcome string) {
	if s.metrics != nil {
		s.metrics.MessageOutcome(keys.Workspace(ws), typ, tmpl, outcome)
	}
}
