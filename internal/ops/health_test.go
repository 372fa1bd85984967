package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/testredis"
)

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func getJSON(t *testing.T, h http.Handler, method, path string) (int, HealthReport) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	var rep HealthReport
	if method != http.MethodHead && rec.Code < 400 || strings.HasPrefix(path, "/readyz") && method == http.MethodGet {
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %s", method, path, err, rec.Body)
		}
	}
	return rec.Code, rep
}

func TestHealth(t *testing.T) {
	db := testredis.New(t)
	down := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1})
	defer down.Close()

	authErr := errors.New("track API rejects the credentials of workspace eu-main (401)")
	var authFailing error
	auth := CheckFunc("customerio_auth", func() error { return authFailing })

	tests := []struct {
		name      string
		checks    []Check
		authFails bool
		want      int
		failing   []string
	}{
		{"all pass", []Check{RedisCheck(db.Client), auth}, false, http.StatusOK, nil},
		{"no checks", nil, false, http.StatusOK, nil},
		{"redis down", []Check{RedisCheck(down), auth}, false, http.StatusServiceUnavailable, []string{"redis"}},
		{"auth failing", []Check{RedisCheck(db.Client), auth}, true, http.StatusServiceUnavailable, []string{"customerio_auth"}},
		{"slow check", []Check{{Name: "slow", Func: func(context.Context) error { time.Sleep(3 * time.Second); return nil }}}, false,
			http.StatusServiceUnavailable, []string{"slow"}},
		{"panicking check", []Check{CheckFunc("boom", func() error { panic("x") })}, false, http.StatusServiceUnavailable, []string{"boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authFailing = nil
			if tt.authFails {
				authFailing = authErr
			}
			h := NewHealth(tt.checks...)
			mux := AdminMux(Handler(prometheus.NewRegistry()), h)

			if code, rep := getJSON(t, mux, http.MethodGet, "/healthz"); code != http.StatusOK || rep.Status != "ok" {
				t.Errorf("/healthz = %d %+v, want 200 ok", code, rep)
			}
			start := time.Now()
			code, rep := getJSON(t, mux, http.MethodGet, "/readyz")
			// A hanging check is cut at CheckTimeout; the bound only tells
			// "cut" from "hung" and is loose for a loaded machine.
			if elapsed := time.Since(start); elapsed > 10*CheckTimeout {
				t.Errorf("/readyz took %v: a hanging check was not cut at %v", elapsed, CheckTimeout)
			}
			if code != tt.want {
				t.Errorf("/readyz = %d, want %d: %+v", code, tt.want, rep)
			}
			if len(rep.Checks) != len(tt.checks) {
				t.Fatalf("/readyz lists %d checks, want %d: %+v", len(rep.Checks), len(tt.checks), rep)
			}
			var failing []string
			for _, c := range rep.Checks {
				if !c.OK {
					failing = append(failing, c.Name)
					if c.Error == "" {
						t.Errorf("check %s failed without error text", c.Name)
					}
				}
			}
			if strings.Join(failing, ",") != strings.Join(tt.failing, ",") {
				t.Errorf("failing checks = %v, want %v", failing, tt.failing)
			}
			if (rep.Status == "ok") != (tt.want == http.StatusOK) {
				t.Errorf("status = %q with code %d", rep.Status, code)
			}
		})
	}
}

func TestHealthErrorText(t *testing.T) {
	h := NewHealth(CheckFunc("x", func() error {
		return errors.New("person jane@example.com " + strings.Repeat("é", 300))
	}))
	_, results := h.Ready(context.Background())
	if strings.Contains(results[0].Error, "jane@example.com") {
		t.Errorf("error text keeps an email: %q", results[0].Error)
	}
	if len(results[0].Error) > maxCheckError+len("…") || !strings.HasSuffix(results[0].Error, "…") {
		t.Errorf("error text not truncated: %d bytes", len(results[0].Error))
	}
}

func TestAdminMux(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg).Delivered("cio:track", "default", time.Second)
	mux := AdminMux(Handler(reg), NewHealth())

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "cioq_deliveries_total") {
		t.Errorf("/metrics = %d:\n%.300s", rec.Code, rec.Body)
	}
	for path, want := range map[string]int{"/elsewhere": 404, "/readyz": 200, "/healthz": 200} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, path, nil))
		if rec.Code != want {
			t.Errorf("HEAD %s = %d, want %d", path, rec.Code, want)
		}
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz = %d, want 405", rec.Code)
	}
}

// A DetailCheck says what it found: /readyz shows the detail of a passing
// check and the error of a failing one.
func TestDetailCheck(t *testing.T) {
	var fail error
	h := NewHealth(DetailCheck("customerio:default:app", func() (string, error) {
		if fail != nil {
			return "", fail
		}
		return "GET /v1/transactional accepted the credentials", nil
	}))
	mux := AdminMux(Handler(prometheus.NewRegistry()), h)
	code, rep := getJSON(t, mux, http.MethodGet, "/readyz")
	if code != http.StatusOK || len(rep.Checks) != 1 || !rep.Checks[0].OK || rep.Checks[0].Detail != "GET /v1/transactional accepted the credentials" {
		t.Errorf("/readyz = %d %+v", code, rep)
	}
	fail = errors.New("credentials refused (401)")
	code, rep = getJSON(t, mux, http.MethodGet, "/readyz")
	if code != http.StatusServiceUnavailable || rep.Checks[0].OK || rep.Checks[0].Error != "credentials refused (401)" || rep.Checks[0].Detail != "" {
		t.Errorf("/readyz = %d %+v", code, rep)
	}
}
