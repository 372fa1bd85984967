package ops

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// PublicReadiness answers the status only, unless the request passes
// showDetail; BasicAuthorized passes the right credentials only, and none
// when either is empty.
func TestPublicReadiness(t *testing.T) {
	failing := CheckFunc("redis", func() error { return errors.New("dial tcp 10.1.2.3:6379: connection refused") })
	srv := httptest.NewServer(NewHealth(failing).PublicReadiness(BasicAuthorized("admin", "pw")))
	defer srv.Close()
	open := httptest.NewServer(NewHealth(failing).PublicReadiness(BasicAuthorized("", "")))
	defer open.Close()
	get := func(url, user, pass string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url+"/readyz", nil)
		if user != "" || pass != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, c := range []struct{ url, user, pass string }{
		{srv.URL, "", ""}, {srv.URL, "admin", "wrong"}, {srv.URL, "other", "pw"}, {open.URL, "", ""}, {open.URL, "admin", "pw"},
	} {
		if code, body := get(c.url, c.user, c.pass); code != http.StatusServiceUnavailable || body != `{"status":"unavailable"}` {
			t.Errorf("%s as %q/%q: %d %s, want 503 with the status only", c.url, c.user, c.pass, code, body)
		}
	}
	if code, body := get(srv.URL, "admin", "pw"); code != http.StatusServiceUnavailable || !strings.Contains(body, "10.1.2.3:6379") {
		t.Errorf("with the credentials: %d %s, want the check's error", code, body)
	}
	ok := httptest.NewServer(NewHealth(CheckFunc("redis", func() error { return nil })).PublicReadiness(nil))
	defer ok.Close()
	if code, body := get(ok.URL, "", ""); code != http.StatusOK || body != `{"status":"ok"}` {
		t.Errorf("passing: %d %s", code, body)
	}
}
