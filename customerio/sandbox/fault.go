package sandbox

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault describes trouble injected into one route group. Latency combines
// with the other kinds (the delay comes first); Reset, Hang and Status are
// exclusive, checked in that order. A Fault with only Latency delays the
// request and then serves it normally.
type Fault struct {
	// Latency is added before anything else happens.
	Latency time.Duration `json:"-"`
	// Status, when not 0, is answered instead of serving the request, with
	// Body (default: a JSON error body matching the group's format) and,
	// when RetryAfter is not "", a Retry-After header with that value.
	Status     int    `json:"status,omitempty"`
	Body       string `json:"body,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	// Reset closes the connection without answering (the client sees a
	// network error).
	Reset bool `json:"reset,omitempty"`
	// Hang blocks until the client gives up (its request context ends) or
	// the Server is closed, and answers nothing.
	Hang bool `json:"hang,omitempty"`
	// Rate is the fraction of matching requests affected (0 or ≥1 = all).
	Rate float64 `json:"rate,omitempty"`
	// Times limits the fault to the next Times affected requests; then it
	// clears itself (0 = until cleared).
	Times int `json:"times,omitempty"`
	// PathPrefix limits the fault to requests whose group-relative escaped
	// path starts with it (e.g. "/api/v1/customers"; "" = all).
	PathPrefix string `json:"path_prefix,omitempty"`
}

// MarshalJSON encodes Latency as a Go duration string ("150ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	out := struct {
		plain
		Latency string `json:"latency,omitempty"`
	}{plain: plain(f)}
	if f.Latency > 0 {
		out.Latency = f.Latency.String()
	}
	return json.Marshal(out)
}

// UnmarshalJSON accepts Latency as a duration string ("150ms") or a number
// of milliseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	var in struct {
		plain
		Latency json.RawMessage `json:"latency"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*f = Fault(in.plain)
	if len(in.Latency) > 0 && string(in.Latency) != "null" {
		var str string
		if err := json.Unmarshal(in.Latency, &str); err == nil {
			d, err := time.ParseDuration(str)
			if err != nil {
				return fmt.Errorf("latency: %w", err)
			}
			f.Latency = d
		} else {
			var ms float64
			if err := json.Unmarshal(in.Latency, &ms); err != nil {
				return fmt.Errorf("latency: want a duration string or milliseconds")
			}
			f.Latency = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return nil
}

type faults struct {
	mu sync.Mutex
	m  map[Group]*Fault
}

func (f *faults) set(g Group, x Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[Group]*Fault{}
	}
	f.m[g] = &x
}

func (f *faults) del(g Group) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, g)
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = nil
}

func (f *faults) all() map[Group]Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[Group]Fault{}
	for g, x := range f.m {
		out[g] = *x
	}
	return out
}

// take decides under the lock whether this request is affected, counting
// Times down exactly.
func (f *faults) take(g Group, path string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.m[g]
	if x == nil || !strings.HasPrefix(path, x.PathPrefix) {
		return Fault{}, false
	}
	if x.Rate > 0 && x.Rate < 1 && rand.Float64() >= x.Rate {
		return Fault{}, false
	}
	out := *x
	if x.Times > 0 {
		x.Times--
		if x.Times == 0 {
			delete(f.m, g)
		}
	}
	return out, true
}

// SetFault installs (replacing) the fault of a group.
func (s *Server) SetFault(g Group, f Fault) { s.faults.set(g, f) }

// ClearFault removes the fault of a group.
func (s *Server) ClearFault(g Group) { s.faults.del(g) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.clear() }

// Faults returns the installed faults (Times shows what is left).
func (s *Server) Faults() map[Group]Fault { return s.faults.all() }

// applyFault injects the group's fault; it reports whether the request was
// finished by it.
func (s *Server) applyFault(g Group, w *statusWriter, r *http.Request) bool {
	f, ok := s.faults.take(g, r.URL.EscapedPath())
	if !ok {
		return false
	}
	w.fault = "latency"
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		case <-s.done:
			t.Stop()
		}
	}
	switch {
	case f.Reset:
		w.fault = "reset"
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			// HTTP/2 or a recorder: the closest thing is aborting the handler.
			panic(http.ErrAbortHandler)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST rather than FIN
		}
		conn.Close()
		return true
	case f.Hang:
		w.fault = "hang"
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return true
	case f.Status != 0:
		w.fault = "status"
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Body != "" {
			ct := "text/plain; charset=utf-8"
			if json.Valid([]byte(f.Body)) {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(f.Status)
			w.Write([]byte(f.Body))
			return true
		}
		msg := http.StatusText(f.Status)
		if msg == "" {
			msg = fmt.Sprintf("status %d", f.Status)
		}
		switch g {
		case GroupTrack:
			metaError(w, f.Status, msg)
		default:
			apiError(w, f.Status, msg)
		}
		return true
	}
	return false
}
