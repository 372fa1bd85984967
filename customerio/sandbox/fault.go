package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault describes trouble injected into one route group. A group holds any
// number of faults at once, each with its own id; see [Server.AddFault] for
// how they combine. Within one fault, Latency combines with the other kinds
// (the delay comes first); Reset, Hang and Status are its action, checked in
// that order. A Fault with only Latency delays the request and then serves
// it normally.
type Fault struct {
	// ID identifies the fault once installed ("f1", "f2", ...). The sandbox
	// assigns it; a value given when adding a fault is ignored.
	ID string `json:"id,omitempty"`
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
	// Times limits the fault to the next Times requests it affects; then it
	// removes itself (0 = until removed).
	Times int `json:"times,omitempty"`
	// PathPrefix limits the fault to requests whose group-relative escaped
	// path starts with it (e.g. "/api/v1/customers"; "" = all).
	PathPrefix string `json:"path_prefix,omitempty"`
}

// acts reports whether the fault answers the request itself (status, reset
// or hang) rather than only delaying it.
func (f Fault) acts() bool { return f.Reset || f.Hang || f.Status != 0 }

// kind names what the fault does to a request it affects.
func (f Fault) kind() string {
	switch {
	case f.Reset:
		return "reset"
	case f.Hang:
		return "hang"
	case f.Status != 0:
		return "status"
	}
	return "latency"
}

// ErrInvalidFault is wrapped by [Fault.Validate]'s errors.
var ErrInvalidFault = errors.New("invalid fault")

// Validate reports a fault the sandbox cannot apply, naming the JSON field.
func (f Fault) Validate() error {
	switch {
	case f.Latency < 0:
		return fmt.Errorf("%w: latency must not be negative", ErrInvalidFault)
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("%w: status must be an HTTP status from 100 to 599", ErrInvalidFault)
	case f.Rate < 0:
		return fmt.Errorf("%w: rate must not be negative", ErrInvalidFault)
	case f.Times < 0:
		return fmt.Errorf("%w: times must not be negative", ErrInvalidFault)
	}
	return nil
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
// of milliseconds, and refuses unknown fields (a misspelt one would
// otherwise be a fault that silently does less).
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	var in struct {
		plain
		Latency json.RawMessage `json:"latency"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
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

// faults holds each group's faults in the order they were added.
type faults struct {
	mu   sync.Mutex
	last uint64 // the last id number handed out (never reused, not even after Reset)
	m    map[Group][]*Fault
}

func (f *faults) add(g Group, x Fault, replace bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[Group][]*Fault{}
	}
	f.last++
	x.ID = "f" + strconv.FormatUint(f.last, 10)
	if replace {
		f.m[g] = nil
	}
	f.m[g] = append(f.m[g], &x)
	return x.ID
}

func (f *faults) remove(g Group, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.m[g] {
		if x.ID == id {
			f.m[g] = append(f.m[g][:i:i], f.m[g][i+1:]...)
			if len(f.m[g]) == 0 {
				delete(f.m, g)
			}
			return true
		}
	}
	return false
}

func (f *faults) clearGroup(g Group) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, g)
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = nil
}

func (f *faults) all() map[Group][]Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[Group][]Fault{}
	for g, xs := range f.m {
		for _, x := range xs {
			out[g] = append(out[g], *x)
		}
	}
	return out
}

// take picks, under the lock, the faults that affect this request (see
// [Server.AddFault] for the rule), counting their Times down exactly and
// removing those that are used up.
func (f *faults) take(g Group, path string) []Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	xs := f.m[g]
	if len(xs) == 0 {
		return nil
	}
	var applied []Fault
	var spent map[*Fault]bool
	acted := false
	for _, x := range xs {
		if !strings.HasPrefix(path, x.PathPrefix) || (acted && x.acts()) {
			continue
		}
		if x.Rate > 0 && x.Rate < 1 && rand.Float64() >= x.Rate {
			continue
		}
		applied = append(applied, *x)
		acted = acted || x.acts()
		if x.Times > 0 {
			x.Times--
			if x.Times == 0 {
				if spent == nil {
					spent = map[*Fault]bool{}
				}
				spent[x] = true
			}
		}
	}
	if spent != nil {
		kept := make([]*Fault, 0, len(xs)-len(spent))
		for _, x := range xs {
			if !spent[x] {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			delete(f.m, g)
		} else {
			f.m[g] = kept
		}
	}
	return applied
}

// AddFault installs f on group g next to the faults already there and
// returns its id. For each request of the group, the faults are considered
// in the order they were added, skipping those whose PathPrefix does not
// match or whose Rate draw (made per fault and request) misses:
//
//   - every matching fault that only adds latency applies, and the delays
//     add up;
//   - the first matching fault with an action (Status, Reset or Hang)
//     applies: its latency is added too and its action answers the request;
//     later faults with an action are not considered (no Rate draw, no Times
//     spent).
//
// Each fault applied spends one of its Times and removes itself when they
// are used up. A fault stays until then, or until [Server.RemoveFault],
// [Server.ClearFault], [Server.ClearFaults] or [Server.Reset].
func (s *Server) AddFault(g Group, f Fault) string { return s.faults.add(g, f, false) }

// SetFault replaces every fault of group g with f and returns f's id.
func (s *Server) SetFault(g Group, f Fault) string { return s.faults.add(g, f, true) }

// RemoveFault removes the fault with that id from group g; it reports
// whether there was one.
func (s *Server) RemoveFault(g Group, id string) bool { return s.faults.remove(g, id) }

// ClearFault removes every fault of group g.
func (s *Server) ClearFault(g Group) { s.faults.clearGroup(g) }

// ClearFaults removes every fault of every group.
func (s *Server) ClearFaults() { s.faults.clear() }

// Faults returns the installed faults of each group that has any, in the
// order they were added (Times shows what is left).
func (s *Server) Faults() map[Group][]Fault { return s.faults.all() }

// applyFault injects the group's faults; it reports whether the request was
// finished by them.
func (s *Server) applyFault(g Group, w *statusWriter, r *http.Request) bool {
	applied := s.faults.take(g, r.URL.EscapedPath())
	if len(applied) == 0 {
		return false
	}
	var latency time.Duration
	var f Fault // the fault whose action answers, if any
	for _, a := range applied {
		latency += a.Latency
		w.faultIDs = append(w.faultIDs, a.ID)
		if a.acts() {
			f = a
		}
	}
	w.fault = f.kind()
	if latency > 0 {
		t := time.NewTimer(latency)
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
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return true
	case f.Status != 0:
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
