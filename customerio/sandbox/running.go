package sandbox

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// Running is a sandbox listening on a TCP address.
type Running struct {
	*Server
	// URL is the root URL, e.g. "http://127.0.0.1:41234".
	URL string

	srv *http.Server
	ln  net.Listener
}

// Start serves a new sandbox configured by cfg on addr ("" =
// "127.0.0.1:0", a free port). Close stops it.
func Start(addr string, cfg Config) (*Running, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := New(cfg)
	r := &Running{Server: s, URL: "http://" + ln.Addr().String(), ln: ln,
		srv: &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed; Close reports nothing more useful
		}
	}()
	return r, nil
}

// TrackURL is the Track API base URL (like https://track.customer.io).
func (r *Running) TrackURL() string { return r.URL + TrackPrefix }

// AppURL is the App API base URL (like https://api.customer.io).
func (r *Running) AppURL() string { return r.URL + AppPrefix }

// PipelinesURL is the Pipelines API base URL (like https://cdp.customer.io/v1).
func (r *Running) PipelinesURL() string { return r.URL + CDPPrefix }

// Remote returns a control-API client for this sandbox.
func (r *Running) Remote() Remote { return Remote{BaseURL: r.URL} }

// Close releases hanging requests and stops the listener, waiting up to
// five seconds for requests in flight.
func (r *Running) Close() error {
	r.Server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = r.srv.Close()
	}
	return err
}

// NewTestServer starts a sandbox for a test and closes it at the end of the
// test. cfg is optional (at most one).
func NewTestServer(tb testing.TB, cfg ...Config) *Running {
	tb.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	r, err := Start("", c)
	if err != nil {
		tb.Fatalf("sandbox: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}
