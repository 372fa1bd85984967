package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// Limits, as Customer.io's Pipelines API sets them.
const (
	// MaxEventBytes is the largest Segment-spec message (32 KB).
	MaxEventBytes = customerio.MaxEntityBytes
	// DefaultMaxBodyBytes is the largest request body, before and after
	// gzip decompression (500 KB, Customer.io's batch limit).
	DefaultMaxBodyBytes = customerio.MaxBatchBytes
	// DefaultEnqueueTimeout bounds the enqueueing of one request's tasks.
	DefaultEnqueueTimeout = 10 * time.Second
	// DefaultMaxItems is the most items one request may hold: messages of
	// a batch, objects of a custom array, tasks an mParticle request makes,
	// tasks of a /v1/tasks array (413 too_many_items beyond it).
	DefaultMaxItems = 1000
	// DefaultDedupeWindow is how long a message id is remembered: a
	// repeat within it is a duplicate, and a signed message whose time is
	// older is refused.
	DefaultDedupeWindow = 24 * time.Hour
	// MaxClockSkew is how far in the future a signed message's time may
	// lie (the sender's clock may be ahead). Dedupe records are kept for
	// the window plus this, so a signed message is refused as a repeat
	// until its time has left the window.
	MaxClockSkew = time.Hour
)

// DefaultQueues are the queues a /v1/tasks request may name when
// Config.Queues is nil: the workers' default queues.
func DefaultQueues() []string {
	return []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueBulk}
}

// Metrics is told the outcome of every request. *ops.Metrics (internal/ops)
// satisfies it.
type Metrics interface {
	// IngestRequest counts one request from source ("unknown" when it
	// could not be authenticated; the token name for /v1/tasks) with its
	// outcome: accepted, invalid, unauthorized, forbidden, too_large,
	// unsupported_media_type, timeout or unavailable.
	IngestRequest(source, outcome string)
}

// Config configures a Server. Producer and File are required; other zero
// fields take their documented defaults.
type Config struct {
	// Producer enqueues the tasks (required).
	Producer *producer.Client
	// File lists the sources and tokens (required; see LoadConfig).
	File *FileConfig
	// Metrics, when set, counts requests by source and outcome.
	Metrics Metrics
	// Logger receives problems worth an operator's attention, without
	// payloads or identifiers (default slog.Default()).
	Logger *slog.Logger
	// MaxBodyBytes caps a request body before and after gzip decompression
	// (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxItems caps the items of one request (default DefaultMaxItems).
	MaxItems int
	// DedupeWindow is how long a source's message id is remembered, in a
	// record of its own (internal/keys.IngestSeen) that does not depend on
	// how long asynq keeps the tasks; a signed message whose time is older
	// is refused (default DefaultDedupeWindow).
	DedupeWindow time.Duration
	// Queues are the queues the workers serve: a /v1/tasks task must go
	// to one of them (or to one of its token's queues), whether named in
	// "queue" or its type's default (default DefaultQueues(); the binary
	// reads CIOQ_QUEUES, the workers' setting).
	Queues []string
	// EnqueueTimeout bounds the enqueueing of one request's tasks; it runs
	// to completion even if the client goes away, so a request is never
	// cut in the middle by a disconnect (default DefaultEnqueueTimeout).
	EnqueueTimeout time.Duration
	// Getenv resolves the *_env names of the configuration (default os.Getenv).
	Getenv func(string) string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is the ingest front door: an http.Handler serving the endpoints
// listed in the package documentation. Mount it at "/". It is safe for
// concurrent use.
type Server struct {
	cfg    Config
	conf   *resolved
	mux    *http.ServeMux
	log    *slog.Logger
	queues map[string]bool // Config.Queues
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Producer == nil {
		return nil, errors.New("ingest: Config.Producer is required")
	}
	if cfg.File == nil {
		return nil, errors.New("ingest: Config.File is required (see LoadConfig)")
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.EnqueueTimeout <= 0 {
		cfg.EnqueueTimeout = DefaultEnqueueTimeout
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = DefaultMaxItems
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.Queues == nil {
		cfg.Queues = DefaultQueues()
	}
	conf, err := cfg.File.resolve(cfg.Getenv)
	if err != nil {
		return nil, err
	}
	queues := map[string]bool{}
	for _, q := range cfg.Queues {
		queues[q] = true
	}
	for i, t := range conf.tokens {
		for _, q := range t.queueList {
			if !queues[q] {
				return nil, &ConfigError{Field: fmt.Sprintf("tokens[%d] %q: queues", i, t.name),
					Reason: fmt.Sprintf("%q is not a queue the workers serve (%s; CIOQ_QUEUES)", q, strings.Join(sortedQueues(queues), ", "))}
			}
		}
	}
	// A source naming a workspace the producer knows is not configured
	// (producer.Workspaces) would have every one of its events refused.
	for i, src := range conf.list {
		var uw *producer.UnknownWorkspaceError
		if err := cfg.Producer.CheckWorkspace(src.Workspace); errors.As(err, &uw) {
			return nil, &ConfigError{Field: fmt.Sprintf("sources[%d] %q: workspace", i, src.Name),
				Reason: fmt.Sprintf("%q is not a configured workspace (configured: %s)", uw.Workspace, strings.Join(uw.Known, ", "))}
		}
	}
	s := &Server{cfg: cfg, conf: conf, log: cfg.Logger, queues: queues}
	s.routes()
	return s, nil
}

// ServeHTTP serves the ingest endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// NewHTTPServer returns the recommended http.Server for h on addr: a slow
// or idle client cannot hold a connection (ReadHeaderTimeout 5 s,
// ReadTimeout 30 s for headers and body, WriteTimeout 40 s, IdleTimeout
// 120 s) and headers are capped at 64 KB.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      40 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// segmentCalls maps the last path segment of a Segment endpoint to its call.
var segmentCalls = map[string]string{
	"identify": "identify", "i": "identify",
	"track": "track", "t": "track",
	"page": "page", "p": "page",
	"screen": "screen", "s": "screen",
	"group": "group", "g": "group",
	"alias": "alias", "a": "alias",
	"batch": "batch", "b": "batch",
}

func (s *Server) routes() {
	m := http.NewServeMux()
	for seg, call := range segmentCalls {
		m.HandleFunc("POST /v1/"+seg, s.segment(call, false))
		m.HandleFunc("POST /v1/sources/{source}/"+seg, s.segment(call, true))
	}
	m.HandleFunc("POST /v1/sources/{source}", s.segment("", true))
	m.HandleFunc("POST /v1/mparticle", s.mparticle(false))
	m.HandleFunc("POST /v1/mparticle/{source}", s.mparticle(true))
	m.HandleFunc("POST /v1/custom/{source}", s.custom)
	m.HandleFunc("POST /v1/tasks", s.tasks)
	m.HandleFunc("GET /v1/status/{task_id}", s.taskStatus)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") && r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &reqError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "use POST"})
			return
		}
		writeError(w, &reqError{status: http.StatusNotFound, code: "not_found", msg: "no such endpoint"})
	})
	s.mux = m
}

// reqError is a refusal: a status and the JSON error body.
type reqError struct {
	status int
	code   string
	msg    string
	field  string
}

func (e *reqError) outcome() string {
	switch {
	case e.status == http.StatusUnauthorized:
		return "unauthorized"
	case e.status == http.StatusForbidden:
		return "forbidden"
	case e.status == http.StatusRequestEntityTooLarge:
		return "too_large"
	case e.status == http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case e.status == http.StatusRequestTimeout:
		return "timeout"
	case e.status >= 500:
		return "unavailable"
	}
	return "invalid"
}

func bad(code, field, format string, args ...any) *reqError {
	return &reqError{status: http.StatusBadRequest, code: code, field: field, msg: fmt.Sprintf(format, args...)}
}

type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, e *reqError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="cioq ingest"`)
	}
	writeJSON(w, e.status, map[string]any{"error": errorJSON{Code: e.code, Message: e.msg, Field: e.field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":{"code":"internal","message":"cannot encode the response"}}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *Server) count(source, outcome string) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.IngestRequest(source, outcome)
	}
}

// fail writes e and counts it.
func (s *Server) fail(w http.ResponseWriter, source string, e *reqError) {
	s.count(source, e.outcome())
	writeError(w, e)
}

// ---- authentication ----

// errUnauthorized is the one answer to every request that its credentials
// do not authenticate: no credentials, a wrong write key, an unknown
// source, a wrong signature, a signature for a source without a shared
// secret. They are told apart by nothing (status, body, headers, the
// metric's source "unknown"), so source names cannot be discovered.
var errUnauthorized = &reqError{status: http.StatusUnauthorized, code: "unauthorized",
	msg: "missing or wrong credentials: HTTP Basic auth with the source's write key as user name and an empty password, or X-Signature, the HMAC-SHA1 of the body with the source's shared secret"}

// noSecret stands in for the credential of a source that does not exist
// (or has none of that kind), so checking a request for it costs what
// checking one for a real source does.
var noSecret = []byte("cioq-ingest: no such credential")

// digest hashes a credential so comparisons take the same time whatever
// its length.
func digest(b []byte) [32]byte { return sha256.Sum256(b) }

func equalSecret(a, b []byte) bool {
	da, db := digest(a), digest(b)
	return subtle.ConstantTimeCompare(da[:], db[:]) == 1
}

// authKey finds the source a request's write key (the Basic user name)
// authenticates: the one named in the path, or, on the unnamed endpoints,
// the one whose write key it is. nil when none.
func (s *Server) authKey(r *http.Request, named bool) *source {
	user, _, hasBasic := r.BasicAuth()
	if named {
		src := s.conf.sources[r.PathValue("source")]
		want := noSecret
		if src != nil && src.writeKey != nil {
			want = src.writeKey
		}
		if equalSecret([]byte(user), want) && hasBasic && src != nil && src.writeKey != nil {
			return src
		}
		return nil
	}
	if !hasBasic || user == "" {
		return nil
	}
	// Compare with every key, so timing does not tell how many matched
	// or where.
	var src *source
	for _, c := range s.conf.list {
		if c.writeKey != nil && equalSecret([]byte(user), c.writeKey) && src == nil {
			src = c
		}
	}
	return src
}

// sourceBody is the prologue every source endpoint shares: it
// authenticates the source (by write key, or on a path naming it by the
// body's X-Signature), checks that it is one of kinds, and reads the body
// within its caps. It returns the source, the (decompressed) JSON body and
// whether the request was authenticated by its signature, or answers the
// request with the error itself and returns ok false.
//
// Until the request is authenticated, every refusal is counted under the
// source "unknown" and a wrong credential is errUnauthorized, for a real
// source as for a made-up one; the kind is checked only after the
// signature, so a wrong endpoint (403 naming the kind) is only ever told
// to a sender holding the source's credentials.
func (s *Server) sourceBody(w http.ResponseWriter, r *http.Request, named bool, kinds ...string) (src *source, body []byte, signed, ok bool) {
	src = s.authKey(r, named)
	read := false
	if src == nil {
		if !named || r.Header.Get("X-Signature") == "" {
			s.fail(w, "unknown", errUnauthorized)
			return nil, nil, false, false
		}
		// The signature covers the body as received: read it (the same
		// caps and answers for every source name), then verify.
		claimed := s.conf.sources[r.PathValue("source")]
		wire, b, e := s.readBody(w, r)
		if e != nil {
			s.fail(w, "unknown", e)
			return nil, nil, false, false
		}
		if !verifySignature(claimed, r, wire) {
			s.fail(w, "unknown", errUnauthorized)
			return nil, nil, false, false
		}
		src, body, signed, read = claimed, b, true, true
	}
	if !slices.Contains(kinds, src.Kind) {
		s.fail(w, src.Name, wrongEndpoint(src))
		return nil, nil, false, false
	}
	if !read {
		var e *reqError
		if _, body, e = s.readBody(w, r); e != nil {
			s.fail(w, src.Name, e)
			return nil, nil, false, false
		}
	}
	if e := checkUTF8(body); e != nil {
		s.fail(w, src.Name, e)
		return nil, nil, false, false
	}
	return src, body, signed, true
}

// checkUTF8 refuses a body holding a string (or key) that is not valid
// UTF-8, naming it by its JSON path ("batch[3].userId"): encoding/json
// would replace the bytes by U+FFFD without a word, and two different
// invalid identifiers would become one person. Valid bodies cost a pass of
// utf8.Valid (see tasks.CheckUTF8).
func checkUTF8(body []byte) *reqError {
	var ve *customerio.ValidationError
	if err := tasks.CheckUTF8(body); !errors.As(err, &ve) {
		return nil
	}
	if ve.Field == "" {
		return bad("invalid_utf8", "", "the body %s", ve.Reason)
	}
	return bad("invalid_utf8", ve.Field, "invalid field %q: %s", ve.Field, ve.Reason)
}

// verifySignature checks X-Signature: hex HMAC-SHA1 of the raw body with
// src's shared secret. False for a nil source or one without a secret,
// after the same work.
func verifySignature(src *source, r *http.Request, wire []byte) bool {
	secret := noSecret
	if src != nil && src.secret != nil {
		secret = src.secret
	}
	mac := hmac.New(sha1.New, secret)
	mac.Write(wire)
	want := mac.Sum(nil)
	got, err := hex.DecodeString(strings.TrimSpace(strings.TrimPrefix(r.Header.Get("X-Signature"), "sha1=")))
	return hmac.Equal(got, want) && err == nil && src != nil && src.secret != nil
}

// ---- bodies ----

// readBody checks the content type, reads the body within the cap and
// decompresses gzip within the cap. It returns the bytes as received (for
// signatures) and the JSON.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (wire, body []byte, e *reqError) {
	limit := s.cfg.MaxBodyBytes
	tooLarge := &reqError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
		msg: fmt.Sprintf("a request body must be at most %d bytes (the 500 KB batch limit), also after decompression", limit)}
	if ct := r.Header.Get("Content-Type"); !jsonContentType(ct) {
		return nil, nil, &reqError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", field: "Content-Type", msg: "the body must be JSON (Content-Type: application/json)"}
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		return nil, nil, &reqError{status: http.StatusUnsupportedMediaType, code: "unsupported_encoding", field: "Content-Encoding", msg: "only gzip is accepted as Content-Encoding"}
	}
	if r.ContentLength > limit {
		return nil, nil, tooLarge
	}
	wire, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return nil, nil, tooLarge
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
			return nil, nil, &reqError{status: http.StatusRequestTimeout, code: "timeout", msg: "the body was not received in time"}
		}
		return nil, nil, bad("unreadable_body", "", "the body could not be read")
	}
	if enc != "gzip" {
		return wire, wire, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(wire))
	if err != nil {
		return nil, nil, bad("bad_gzip", "Content-Encoding", "the body is not valid gzip")
	}
	body, err = io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, nil, bad("bad_gzip", "Content-Encoding", "the body is not valid gzip")
	}
	if int64(len(body)) > limit {
		return nil, nil, tooLarge
	}
	return wire, body, nil
}

func jsonContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// decodeJSON decodes b (one JSON value, numbers kept as json.Number).
func decodeJSON(b []byte, v any) *reqError {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return bad("malformed_json", "", "the body is not valid JSON: %s", jsonReason(err))
	}
	if dec.More() {
		return bad("malformed_json", "", "the body is not valid JSON: unexpected data after the value")
	}
	return nil
}

// enqueueContext is the context enqueueing runs in: not cancelled when the
// client goes away, bounded by EnqueueTimeout, and in the trace the
// request's traceparent (and tracestate) header names, if any, so the
// tasks carry it to the worker.
func (s *Server) enqueueContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(r.Context())
	if r.Header.Get("traceparent") != "" {
		ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	return context.WithTimeout(ctx, s.cfg.EnqueueTimeout)
}

// traceContext reads W3C trace context headers.
var traceContext = propagation.TraceContext{}
