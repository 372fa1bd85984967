package ops

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// CheckTimeout bounds every readiness check: one that has not answered
// within it fails with "timed out".
const CheckTimeout = time.Second

// maxCheckError bounds the error text a failing check shows, maxCheckDetail
// the detail of a passing one.
const (
	maxCheckError  = 200
	maxCheckDetail = 300
)

// Check is one readiness check. Func must honour ctx, which expires after
// CheckTimeout; its error text is shown in /readyz (emails scrubbed,
// truncated) and so must not contain secrets.
type Check struct {
	// Name identifies the check in /readyz, e.g. "redis".
	Name string
	// Func returns nil when the dependency is usable.
	Func func(ctx context.Context) error
	// Detailed, when set, is used instead of Func: it also says what it
	// checked, which /readyz shows as the result's detail (same rules as
	// the error text: no secrets).
	Detailed func(ctx context.Context) (detail string, err error)
}

// RedisCheck is a readiness check named "redis" that PINGs client.
func RedisCheck(client redis.UniversalClient) Check {
	return Check{Name: "redis", Func: func(ctx context.Context) error {
		return client.Ping(ctx).Err()
	}}
}

// CheckFunc adapts a function without a context, such as the worker's report
// of APIs failing authentication, to a Check.
func CheckFunc(name string, f func() error) Check {
	return Check{Name: name, Func: func(context.Context) error { return f() }}
}

// DetailCheck adapts a function without a context that says what it found,
// such as one of the worker's readiness checks, to a Check.
func DetailCheck(name string, f func() (string, error)) Check {
	return Check{Name: name, Detailed: func(context.Context) (string, error) { return f() }}
}

// Health serves Kubernetes probes: /healthz (liveness) answers 200 while the
// process serves HTTP; /readyz (readiness) answers 200 only when every check
// passes, 503 otherwise. Both bodies are JSON.
type Health struct {
	checks []Check
}

// NewHealth returns a Health running checks, concurrently, on each /readyz.
func NewHealth(checks ...Check) *Health {
	return &Health{checks: append([]Check(nil), checks...)}
}

// CheckResult is the outcome of one check, as /readyz shows it.
type CheckResult struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail says what a passing check found, when it says.
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// HealthReport is the body of /healthz and /readyz.
type HealthReport struct {
	// Status is "ok" or "unavailable".
	Status string        `json:"status"`
	Checks []CheckResult `json:"checks,omitempty"`
}

// Ready runs every check and reports whether all passed, with each result
// in the order the checks were given.
func (h *Health) Ready(ctx context.Context) (bool, []CheckResult) {
	results := make([]CheckResult, len(h.checks))
	var wg sync.WaitGroup
	for i, c := range h.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runCheck(ctx, c)
		}()
	}
	wg.Wait()
	ok := true
	for _, r := range results {
		ok = ok && r.OK
	}
	return ok, results
}

func runCheck(ctx context.Context, c Check) CheckResult {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	type outcome struct {
		detail string
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: errPanicked}
			}
		}()
		if c.Detailed != nil {
			d, err := c.Detailed(ctx)
			done <- outcome{d, err}
			return
		}
		done <- outcome{err: c.Func(ctx)}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		out.err = errTimedOut
	}
	err := out.err
	if err == nil {
		return CheckResult{Name: c.Name, OK: true, Detail: truncate(ScrubText(out.detail), maxCheckDetail)}
	}
	return CheckResult{Name: c.Name, Error: truncate(ScrubText(err.Error()), maxCheckError)}
}

type healthError string

func (e healthError) Error() string { return string(e) }

const (
	errTimedOut  = healthError("timed out")
	errPanicked  = healthError("check panicked")
	statusOK     = "ok"
	statusNotYet = "unavailable"
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Live is the liveness handler (/healthz): always 200 {"status":"ok"}.
func (h *Health) Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, r, http.StatusOK, HealthReport{Status: statusOK})
	})
}

// Readiness is the readiness handler (/readyz): 200 when every check passes,
// 503 otherwise, with each check's result. Serve it on an admin listener
// (AdminMux); a public one takes PublicReadiness.
func (h *Health) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, results := h.Ready(r.Context())
		rep := HealthReport{Status: statusOK, Checks: results}
		code := http.StatusOK
		if !ok {
			rep.Status, code = statusNotYet, http.StatusServiceUnavailable
		}
		writeHealth(w, r, code, rep)
	})
}

// PublicReadiness is the readiness handler for a listener others reach
// (serve's, which carries the ingest front door): 200 or 503 as Readiness
// decides, with only the status in the body. Check names, errors and
// details (Redis's address in a dial error, workspace names) are shown
// only to a request showDetail accepts (e.g. one with the dashboard's
// credentials); nil shows them to nobody.
func (h *Health) PublicReadiness(showDetail func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, results := h.Ready(r.Context())
		rep := HealthReport{Status: statusOK}
		code := http.StatusOK
		if !ok {
			rep.Status, code = statusNotYet, http.StatusServiceUnavailable
		}
		if showDetail != nil && showDetail(r) {
			rep.Checks = results
		}
		writeHealth(w, r, code, rep)
	})
}

// BasicAuthorized returns a test of a request's HTTP Basic credentials
// against user and pass, compared in constant time (for PublicReadiness:
// the dashboard's credentials). With user or pass empty it accepts
// nothing.
func BasicAuthorized(user, pass string) func(*http.Request) bool {
	if user == "" || pass == "" {
		return func(*http.Request) bool { return false }
	}
	wantUser, wantPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	return func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		return subtle.ConstantTimeCompare(gotUser[:], wantUser[:])&subtle.ConstantTimeCompare(gotPass[:], wantPass[:]) == 1 && ok
	}
}

func writeHealth(w http.ResponseWriter, r *http.Request, code int, rep HealthReport) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(rep)
	}
}

// AdminMux returns the handler of a worker's small admin port: /metrics
// (metrics, e.g. Handler(registry)), /healthz and /readyz. Other paths get
// 404; methods other than GET and HEAD get 405.
func AdminMux(metrics http.Handler, health *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /healthz", health.Live())
	mux.Handle("GET /readyz", health.Readiness())
	return mux
}
