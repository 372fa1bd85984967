package sandbox

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Request is one recorded request.
type Request struct {
	// Seq numbers requests from 1 in arrival order (ends of answers may
	// interleave; Seq is assigned when the answer is recorded).
	Seq uint64 `json:"seq"`
	// Group is the route group that served it.
	Group Group `json:"group"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the escaped path as received (with the group prefix when it
	// came through the combined handler).
	Path string `json:"path"`
	// Query is the raw query string.
	Query string `json:"query,omitempty"`
	// Header holds the request headers without Authorization, cookies and
	// any header whose name mentions a key, token, secret or auth.
	Header http.Header `json:"header"`
	// Body is the request body (cut at Config.MaxRecordedBody bytes).
	Body string `json:"body,omitempty"`
	// BodyTruncated tells whether Body was cut.
	BodyTruncated bool `json:"body_truncated,omitempty"`
	// Status is the status answered, 0 when none was (reset or hang).
	Status int `json:"status"`
	// Fault names what the faults applied did: status, reset or hang when
	// one of them answered, truncate, response_body or batch_index when one
	// altered the answer, latency when they only delayed the request (""
	// if none applied).
	Fault string `json:"fault,omitempty"`
	// FaultIDs lists the ids of the faults applied, in the order they were
	// added.
	FaultIDs []string `json:"fault_ids,omitempty"`
	// Time is when the request arrived; Duration how long it took.
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration"`
}

// Order says which end of the recording [RequestFilter.Limit] keeps.
type Order string

// The orders [RequestFilter] accepts.
const (
	// OrderNewest keeps the newest matching requests (the default: "" means
	// OrderNewest too).
	OrderNewest Order = "newest"
	// OrderOldest keeps the oldest matching requests; with Since it pages
	// forward through the recording without skipping any.
	OrderOldest Order = "oldest"
)

// RequestFilter selects recorded requests.
type RequestFilter struct {
	// Group keeps only that group ("" = all).
	Group Group
	// Since keeps only requests with Seq > Since.
	Since uint64
	// Limit keeps at most that many of the matching requests (0 = all):
	// the newest ones unless Order is OrderOldest. The result is oldest
	// first either way.
	Limit int
	// Order is OrderNewest ("" or any other value) or OrderOldest.
	Order Order
	// Method and PathContains further narrow the selection ("" = any).
	Method       string
	PathContains string
}

// Stats are exact counters since start (or the last Reset).
type Stats struct {
	// Total is the number of requests answered (or reset/hung) by the groups.
	Total uint64 `json:"total"`
	// ByGroup counts requests per group.
	ByGroup map[Group]uint64 `json:"by_group"`
	// ByStatusClass counts per class: "2xx", "3xx", "4xx", "5xx" and "none"
	// (reset or hang).
	ByStatusClass map[string]uint64 `json:"by_status_class"`
	// ByGroupStatusClass counts per group and class.
	ByGroupStatusClass map[Group]map[string]uint64 `json:"by_group_status_class"`
	// ByStatus counts per exact status code (0 = none).
	ByStatus map[int]uint64 `json:"by_status"`
	// TooManyRequests counts every 429 answered (rate limits and faults).
	TooManyRequests uint64 `json:"too_many_requests"`
	// Faults counts requests a fault affected.
	Faults uint64 `json:"faults"`
	// Recorded is how many requests the recording holds now; Dropped how
	// many were dropped from it to respect Config.MaxRecorded.
	Recorded int    `json:"recorded"`
	Dropped  uint64 `json:"dropped"`
}

type recorder struct {
	mu      sync.Mutex
	max     int
	maxBody int
	ring    []Request
	start   int // index of the oldest
	n       int
	seq     uint64
	stats   Stats
}

func (r *recorder) init(max, maxBody int) {
	r.max, r.maxBody = max, maxBody
	r.reset()
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring, r.start, r.n, r.seq = nil, 0, 0, 0
	r.stats = Stats{
		ByGroup:            map[Group]uint64{},
		ByStatusClass:      map[string]uint64{},
		ByGroupStatusClass: map[Group]map[string]uint64{},
		ByStatus:           map[int]uint64{},
	}
}

func (r *recorder) total() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats.Total
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "none"
	}
	return string(rune('0'+code/100)) + "xx"
}

func scrubHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		l := strings.ToLower(k)
		if l == "authorization" || l == "proxy-authorization" || l == "cookie" ||
			strings.Contains(l, "key") || strings.Contains(l, "token") ||
			strings.Contains(l, "secret") || strings.Contains(l, "auth") {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

func (r *recorder) add(g Group, req *http.Request, path string, body []byte, status int, fault string, faultIDs []string, start time.Time, dur time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.stats
	st.Total++
	st.ByGroup[g]++
	class := statusClass(status)
	st.ByStatusClass[class]++
	if st.ByGroupStatusClass[g] == nil {
		st.ByGroupStatusClass[g] = map[string]uint64{}
	}
	st.ByGroupStatusClass[g][class]++
	st.ByStatus[status]++
	if status == http.StatusTooManyRequests {
		st.TooManyRequests++
	}
	if fault != "" {
		st.Faults++
	}
	r.seq++
	if r.max < 0 {
		return
	}
	rec := Request{
		Seq: r.seq, Group: g, Method: req.Method, Path: path, Query: req.URL.RawQuery,
		Header: scrubHeader(req.Header), Status: status, Fault: fault, FaultIDs: faultIDs,
		Time: start, Duration: dur,
	}
	if r.maxBody >= 0 {
		b := body
		if len(b) > r.maxBody {
			b, rec.BodyTruncated = b[:r.maxBody], true
		}
		rec.Body = string(b)
	} else if len(body) > 0 {
		rec.BodyTruncated = true
	}
	if r.n < r.max {
		if len(r.ring) < r.max && r.n == len(r.ring) {
			r.ring = append(r.ring, rec)
		} else {
			r.ring[(r.start+r.n)%len(r.ring)] = rec
		}
		r.n++
		return
	}
	r.ring[r.start] = rec
	r.start = (r.start + 1) % len(r.ring)
	st.Dropped++
}

func (r *recorder) list(f RequestFilter) []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	match := func(q *Request) bool {
		return q.Seq > f.Since && (f.Group == "" || q.Group == f.Group) &&
			(f.Method == "" || strings.EqualFold(f.Method, q.Method)) &&
			(f.PathContains == "" || strings.Contains(q.Path, f.PathContains))
	}
	at := func(i int) *Request { return &r.ring[(r.start+i)%len(r.ring)] }
	out := []Request{}
	if f.Limit > 0 && f.Order != OrderOldest {
		// Newest first from the end, then turned around.
		for i := r.n - 1; i >= 0 && len(out) < f.Limit; i-- {
			if q := at(i); match(q) {
				out = append(out, *q)
			}
		}
		slices.Reverse(out)
	} else {
		for i := 0; i < r.n && (f.Limit <= 0 || len(out) < f.Limit); i++ {
			if q := at(i); match(q) {
				out = append(out, *q)
			}
		}
	}
	for i := range out {
		out[i].Header = out[i].Header.Clone()
		out[i].FaultIDs = slices.Clone(out[i].FaultIDs)
	}
	return out
}

func (r *recorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.ByGroup = map[Group]uint64{}
	for k, v := range r.stats.ByGroup {
		s.ByGroup[k] = v
	}
	s.ByStatusClass = map[string]uint64{}
	for k, v := range r.stats.ByStatusClass {
		s.ByStatusClass[k] = v
	}
	s.ByStatus = map[int]uint64{}
	for k, v := range r.stats.ByStatus {
		s.ByStatus[k] = v
	}
	s.ByGroupStatusClass = map[Group]map[string]uint64{}
	for g, m := range r.stats.ByGroupStatusClass {
		c := map[string]uint64{}
		for k, v := range m {
			c[k] = v
		}
		s.ByGroupStatusClass[g] = c
	}
	s.Recorded = r.n
	return s
}

// Requests returns the recorded requests the filter selects, oldest first
// (with a Limit, the newest Limit of them unless f.Order is OrderOldest).
func (s *Server) Requests(f RequestFilter) []Request { return s.rec.list(f) }

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats { return s.rec.snapshot() }
