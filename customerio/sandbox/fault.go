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
// (the delay comes first); Reset, Hang, Status and the response faults
// (ResponseBody, BatchIndex, Truncate) are its action, checked in that
// order. A Fault with only Latency delays the request and then serves it
// normally.
//
// Reset, Hang and Status answer instead of Customer.io: the request has no
// effect. The response faults let the request be served as usual (its
// effects on the state happen, as they would at Customer.io) and then alter
// the answer, for the answers a client must not mistake for a refusal: a
// 2xx whose body is not the documented JSON, a 2xx whose body breaks off, a
// v2 batch answer whose errors name no item of the batch. Truncate also
// cuts a Status answer.
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

	// ResponseBody, when not "", serves the request and replaces the body
	// of its answer (the status and the other headers are kept;
	// Content-Type follows the new body): for example a 200 to a
	// transactional send whose body is not JSON, or a 207 to a v2 batch
	// without a readable errors list. Not with Status (use Body).
	ResponseBody string `json:"response_body,omitempty"`
	// BatchIndex serves the request and rewrites the batch_index of every
	// error in the answer to a Track v2 batch (a 207, or a 200 listing
	// errors), so that no error names an item of the batch:
	// BatchIndexMissing removes it, BatchIndexOutOfRange adds the number of
	// items in the batch. Answers without errors are left as they are.
	// Not with Status.
	BatchIndex string `json:"batch_index,omitempty"`
	// Truncate cuts the answer's body: the headers announce the whole body
	// (Content-Length), half of it is written (rounded down; an empty body
	// announces one byte) and the connection is closed, so the client reads
	// the status and then fails reading the body. Without Status the
	// request is served first (a send is made, a batch applied); with
	// Status its canned answer is cut.
	Truncate bool `json:"truncate,omitempty"`
}

// The values of [Fault.BatchIndex].
const (
	// BatchIndexMissing removes batch_index from every error.
	BatchIndexMissing = "missing"
	// BatchIndexOutOfRange adds the batch's length to every batch_index.
	BatchIndexOutOfRange = "out_of_range"
)

// acts reports whether the fault answers the request itself (status, reset
// or hang) or alters its answer, rather than only delaying it.
func (f Fault) acts() bool { return f.Reset || f.Hang || f.Status != 0 || f.alters() }

// alters reports whether the fault serves the request and alters its
// answer (a response fault without Status).
func (f Fault) alters() bool {
	return f.Status == 0 && (f.ResponseBody != "" || f.BatchIndex != "" || f.Truncate)
}

// kind names what the fault does to a request it affects.
func (f Fault) kind() string {
	switch {
	case f.Reset:
		return "reset"
	case f.Hang:
		return "hang"
	case f.Truncate:
		return "truncate"
	case f.Status != 0:
		return "status"
	case f.ResponseBody != "":
		return "response_body"
	case f.BatchIndex != "":
		return "batch_index"
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
	case f.BatchIndex != "" && f.BatchIndex != BatchIndexMissing && f.BatchIndex != BatchIndexOutOfRange:
		return fmt.Errorf("%w: batch_index must be %q or %q", ErrInvalidFault, BatchIndexMissing, BatchIndexOutOfRange)
	case (f.ResponseBody != "" || f.BatchIndex != "") && (f.Status != 0 || f.Reset || f.Hang):
		return fmt.Errorf("%w: response_body and batch_index alter a served answer: not with status, reset or hang (a canned answer takes body)", ErrInvalidFault)
	case f.Truncate && (f.Reset || f.Hang):
		return fmt.Errorf("%w: truncate cuts an answer: not with reset or hang", ErrInvalidFault)
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

// applyFault injects the group's faults. It reports whether the request
// was finished by them, or else the response fault (if any) whose
// alteration the served answer must go through (see alterResponse).
func (s *Server) applyFault(g Group, w *statusWriter, r *http.Request) (done bool, alter *Fault) {
	applied := s.faults.take(g, r.URL.EscapedPath())
	if len(applied) == 0 {
		return false, nil
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
			return true, nil
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
		return true, nil
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return true, nil
	case f.Status != 0:
		if !f.Truncate {
			cannedAnswer(w, g, f)
			return true, nil
		}
		var buf bufferedResponse
		cannedAnswer(&buf, g, f)
		copyHeader(w.Header(), buf.Header())
		writeTruncated(w, buf.statusOr200(), buf.body.Bytes())
		return true, nil
	case f.alters():
		return false, &f
	}
	return false, nil
}

// cannedAnswer writes a Status fault's answer: its Body (or the group's
// JSON error body) and its Retry-After.
func cannedAnswer(w http.ResponseWriter, g Group, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", contentTypeOf(f.Body))
		w.WriteHeader(f.Status)
		w.Write([]byte(f.Body))
		return
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
}

func contentTypeOf(body string) string {
	if json.Valid([]byte(body)) {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

// bufferedResponse holds a served answer that a response fault alters
// before it is written.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header {
	if b.header == nil {
		b.header = http.Header{}
	}
	return b.header
}

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) statusOr200() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// alterResponse writes the served answer in buf to w as the response
// fault f alters it; reqBody is the request's body (a batch's length).
func alterResponse(f *Fault, buf *bufferedResponse, w http.ResponseWriter, reqBody []byte) {
	status, body := buf.statusOr200(), buf.body.Bytes()
	hdr := buf.Header()
	if f.BatchIndex != "" {
		body = rewriteBatchIndex(body, f.BatchIndex, reqBody)
	}
	if f.ResponseBody != "" {
		body = []byte(f.ResponseBody)
		hdr.Set("Content-Type", contentTypeOf(f.ResponseBody))
	}
	hdr.Del("Content-Length")
	copyHeader(w.Header(), hdr)
	if f.Truncate {
		writeTruncated(w, status, body)
		return
	}
	w.WriteHeader(status)
	w.Write(body)
}

// rewriteBatchIndex rewrites the batch_index of every error in a v2 batch
// answer {"errors":[...]} (see [Fault.BatchIndex]); a body without errors
// is returned as it is.
func rewriteBatchIndex(body []byte, mode string, reqBody []byte) []byte {
	var ans map[string]any
	if json.Unmarshal(body, &ans) != nil {
		return body
	}
	errs, _ := ans["errors"].([]any)
	if len(errs) == 0 {
		return body
	}
	var req struct {
		Batch []json.RawMessage `json:"batch"`
	}
	json.Unmarshal(reqBody, &req)
	n := max(len(req.Batch), 1)
	for _, e := range errs {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		switch mode {
		case BatchIndexMissing:
			delete(m, "batch_index")
		case BatchIndexOutOfRange:
			i, _ := m["batch_index"].(float64)
			m["batch_index"] = int(i) + n
		}
	}
	out, err := json.Marshal(ans)
	if err != nil {
		return body
	}
	return out
}

// writeTruncated answers status with a body that breaks off: the headers
// announce all of body (at least one byte), half of it is written, and
// the connection is closed (net/http closes a connection whose handler
// wrote less than its Content-Length), so the client fails reading it.
func writeTruncated(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(max(len(body), 1)))
	w.WriteHeader(status)
	w.Write(body[:len(body)/2])
	http.NewResponseController(w).Flush()
}
