package sandbox

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Group names a route group.
type Group string

// The three route groups.
const (
	GroupTrack Group = "track"
	GroupApp   Group = "app"
	GroupCDP   Group = "cdp"
)

// Path prefixes of the groups on the combined handler.
const (
	TrackPrefix   = "/track"
	AppPrefix     = "/app"
	CDPPrefix     = "/cdp/v1"
	ControlPrefix = "/_sandbox"
)

// Server is the sandbox: an http.Handler serving the Track, App and CDP
// route groups and the control API. Create it with [New].
type Server struct {
	cfg Config

	mu      sync.Mutex // guards st and changed
	st      *state
	changed chan struct{}

	rec    recorder
	faults faults
	hooks  webhooks

	limMu     sync.Mutex
	appLim    map[string]*limiter
	trackLim  *limiter
	done      chan struct{}
	closeOnce sync.Once

	instance        string // random, makes delivery ids unique across servers
	track, app, cdp http.Handler
	root            *http.ServeMux
}

// New returns a sandbox configured by cfg (zero fields take their defaults).
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		st:      newState(cfg),
		changed: make(chan struct{}),
		appLim:  map[string]*limiter{},
		done:    make(chan struct{}),
	}
	var rnd [6]byte
	crand.Read(rnd[:])
	s.instance = base64.RawURLEncoding.EncodeToString(rnd[:])
	s.rec.init(cfg.MaxRecorded, cfg.MaxRecordedBody)
	if cfg.TrackRateLimit > 0 {
		s.trackLim = newWindowLimiter(cfg.TrackRateLimit, cfg.TrackRateWindow)
	}
	s.track = s.group(GroupTrack, s.trackRoutes())
	s.app = s.group(GroupApp, s.appRoutes())
	s.cdp = s.group(GroupCDP, s.cdpRoutes())
	s.root = http.NewServeMux()
	s.root.Handle(TrackPrefix+"/", mount(TrackPrefix, s.track))
	s.root.Handle(AppPrefix+"/", mount(AppPrefix, s.app))
	s.root.Handle(CDPPrefix+"/", mount(CDPPrefix, s.cdp))
	s.controlRoutes(s.root)
	s.SetWebhooks(cfg.Webhooks)
	return s
}

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// ServeHTTP serves all groups under their prefixes and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.root.ServeHTTP(w, r) }

// TrackHandler serves the Track group at the root (/api/v1/..., /api/v2/...,
// /unsubscribe/..., /push/events).
func (s *Server) TrackHandler() http.Handler { return s.track }

// AppHandler serves the App group at the root (/v1/send/..., /v1/campaigns/...).
func (s *Server) AppHandler() http.Handler { return s.app }

// CDPHandler serves the Pipelines group at the root (/identify, /track, ...).
func (s *Server) CDPHandler() http.Handler { return s.cdp }

// Close releases requests hanging on a hang fault and makes later hangs
// return at once. The Server keeps serving otherwise.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// Reset forgets all state, recorded requests, counters, faults and rate
// limiter history, and recreates the configured segments and broadcasts
// (those added later are gone).
func (s *Server) Reset() {
	s.mu.Lock()
	s.st = newState(s.cfg)
	s.notifyLocked()
	s.mu.Unlock()
	s.rec.reset()
	s.faults.clear()
	s.limMu.Lock()
	s.appLim = map[string]*limiter{}
	if s.cfg.TrackRateLimit > 0 {
		s.trackLim = newWindowLimiter(s.cfg.TrackRateLimit, s.cfg.TrackRateWindow)
	}
	s.limMu.Unlock()
}

// ---- per-group pipeline: record, fault, route ----

type ctxKey int

const (
	bodyKey ctxKey = iota
	origPathKey
)

// mount strips prefix but remembers the escaped path as received, for the
// recording.
func mount(prefix string, h http.Handler) http.Handler {
	strip := http.StripPrefix(prefix, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), origPathKey, r.URL.EscapedPath())
		strip.ServeHTTP(w, r.WithContext(ctx))
	})
}

type groupHandler struct {
	s     *Server
	group Group
	mux   *http.ServeMux
}

func (s *Server) group(g Group, mux *http.ServeMux) http.Handler {
	return &groupHandler{s: s, group: g, mux: mux}
}

func (h *groupHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	start, realStart := s.cfg.Now(), time.Now()
	path, _ := r.Context().Value(origPathKey).(string)
	if path == "" {
		path = r.URL.EscapedPath()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	r.Body.Close()
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.rec.add(h.group, r, path, body, rw.status, rw.fault, rw.faultIDs, start, time.Since(realStart))
		s.mu.Lock()
		s.notifyLocked()
		s.mu.Unlock()
	}()
	if err != nil {
		writeJSON(rw, http.StatusBadRequest, map[string]any{"meta": map[string]any{"error": "could not read request body"}})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), bodyKey, body))
	r.Body = io.NopCloser(bytes.NewReader(body))
	done, alter := s.applyFault(h.group, rw, r)
	if done {
		return
	}
	if alter == nil {
		h.serve(rw, r, body)
		return
	}
	// A response fault: serve into a buffer, then write the answer as the
	// fault alters it.
	var buf bufferedResponse
	h.serve(&buf, r, body)
	alterResponse(alter, &buf, rw, body)
}

// serve answers a request the faults let through: the size limit, the
// Track rate limit, then the group's routes.
func (h *groupHandler) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	if len(body) > maxRequestBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"meta": map[string]any{"error": "request body too large"}})
		return
	}
	if h.group == GroupTrack && h.s.trackLimited(w) {
		return
	}
	h.mux.ServeHTTP(w, r)
}

func bodyOf(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey).([]byte)
	return b
}

// statusWriter remembers the status and lets faults hijack the connection.
type statusWriter struct {
	http.ResponseWriter
	status   int
	fault    string
	faultIDs []string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ---- responses ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"meta":{"error":"sandbox: cannot encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func metaError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"meta": map[string]any{"error": msg}})
}

func metaErrors(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, map[string]any{"meta": map[string]any{"errors": msgs}})
}

// apiError writes the JSON:API style body used by the App API and CDP.
func apiError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"detail": detail, "status": strconv.Itoa(status)}}})
}

func okEmpty(w http.ResponseWriter) { writeJSON(w, http.StatusOK, struct{}{}) }

// ---- auth ----

// basicAuth decodes a Basic Authorization header accepting the standard and
// the URL-safe base64 alphabets, padded or not.
func basicAuth(r *http.Request) (user, pass string, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, enc, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	enc = strings.TrimSpace(enc)
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := e.DecodeString(enc); err == nil {
			user, pass, ok = strings.Cut(string(b), ":")
			return user, pass, ok
		}
	}
	return "", "", false
}

func bearer(r *http.Request) (string, bool) {
	scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// trackAuth wraps a Track handler with Basic site_id:api_key auth.
func (s *Server) trackAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := basicAuth(r)
		if !ok || u != s.cfg.SiteID || p != s.cfg.TrackAPIKey {
			metaError(w, http.StatusUnauthorized, "Unauthorized request")
			return
		}
		h(w, r)
	}
}

// appAuth wraps an App handler with Bearer auth (and, when service is true,
// the service-account token with X-Workspace-Id) and the App rate limit.
func (s *Server) appAuth(service bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		key := tok
		switch {
		case ok && tok == s.cfg.AppAPIKey:
		case ok && service && tok == s.cfg.ServiceToken && strings.HasPrefix(tok, "sa_live_") &&
			r.Header.Get("X-Workspace-Id") == strconv.Itoa(s.cfg.WorkspaceID):
			key = tok + "/" + r.Header.Get("X-Workspace-Id")
		default:
			metaError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		// Transactional sends (service set) have their own, higher limit.
		limit, bucket := s.cfg.AppRateLimit, key
		if service {
			limit, bucket = s.cfg.TransactionalRateLimit, "send:"+key
		}
		if limit > 0 {
			if wait, limited := s.appLimiter(bucket, limit).allow(s.cfg.Now()); limited {
				secs := int(math.Ceil(wait.Seconds()))
				if secs < 1 {
					secs = 1
				}
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				apiError(w, http.StatusTooManyRequests, fmt.Sprintf("rate limited to %d requests per 1s (reference sandbox-%d)", limit, s.rec.total()))
				return
			}
		}
		h(w, r)
	}
}

// cdpAuth wraps a CDP handler with Basic write_key: (empty password) auth.
func (s *Server) cdpAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := basicAuth(r)
		if !ok || u != s.cfg.PipelinesWriteKey || p != "" {
			apiError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		h(w, r)
	}
}

// ---- rate limiting ----

// limiter is a sliding window (one second unless told): at most n
// requests in any window.
type limiter struct {
	mu     sync.Mutex
	times  []time.Time // ring of the last n accepted request times
	next   int
	full   bool
	window time.Duration
}

func newLimiter(n int) *limiter { return newWindowLimiter(n, time.Second) }

func newWindowLimiter(n int, window time.Duration) *limiter {
	if window <= 0 {
		window = time.Second
	}
	return &limiter{times: make([]time.Time, n), window: window}
}

// allow records a request at now unless n were accepted within the last
// window; then it answers how long until one more fits.
func (l *limiter) allow(now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.full {
		oldest := l.times[l.next]
		if d := oldest.Add(l.window).Sub(now); d > 0 {
			return d, true
		}
	}
	l.times[l.next] = now
	l.next++
	if l.next == len(l.times) {
		l.next, l.full = 0, true
	}
	return 0, false
}

func (s *Server) appLimiter(key string, perSecond int) *limiter {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	l := s.appLim[key]
	if l == nil {
		l = newLimiter(perSecond)
		s.appLim[key] = l
	}
	return l
}

func (s *Server) trackLimited(w http.ResponseWriter) bool {
	s.limMu.Lock()
	l := s.trackLim
	s.limMu.Unlock()
	if l == nil {
		return false
	}
	if _, limited := l.allow(s.cfg.Now()); limited {
		w.Header().Set("Retry-After", "1")
		metaError(w, http.StatusTooManyRequests, "rate limited")
		return true
	}
	return false
}
