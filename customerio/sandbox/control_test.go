package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestControlAPIRemote(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rm := e.r.Remote()
	info, err := rm.Info(ctx)
	if err != nil || info.SiteID != DefaultSiteID || info.TrackPath != "/track" {
		t.Fatalf("info %+v %v", info, err)
	}
	want(t, e.track("PUT", "/api/v1/customers/a+b@c.com%2Fx", `{"k":"v"}`), 200, "")
	p, found, err := rm.Person(ctx, "a+b@c.com/x")
	if err != nil || !found || p.Attributes["k"] != "v" {
		t.Fatalf("remote person %+v %v %v", p, found, err)
	}
	if _, found, err := rm.Person(ctx, "nobody"); err != nil || found {
		t.Fatalf("unknown person: %v %v", found, err)
	}
	if _, err := rm.SetFault(ctx, GroupTrack, Fault{Status: 502, Times: 1, Latency: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	fs, err := rm.Faults(ctx)
	if err != nil || len(fs[GroupTrack]) != 1 || fs[GroupTrack][0].Status != 502 || fs[GroupTrack][0].Latency != time.Millisecond {
		t.Fatalf("faults %+v %v", fs, err)
	}
	want(t, e.track("PUT", "/api/v1/customers/z", `{}`), 502, "")
	if _, err := rm.SetFault(ctx, "bogus", Fault{}); err == nil {
		t.Fatal("bogus group accepted")
	}
	if _, err := rm.SetFault(ctx, GroupApp, Fault{Status: 500}); err != nil {
		t.Fatal(err)
	}
	if err := rm.ClearFaults(ctx); err != nil || len(e.r.Faults()) != 0 {
		t.Fatalf("clear faults: %v", err)
	}
	reqs, err := rm.Requests(ctx, RequestFilter{Group: GroupTrack})
	if err != nil || len(reqs) != 2 || reqs[1].Status != 502 || reqs[1].Fault != "status" {
		t.Fatalf("requests %+v %v", reqs, err)
	}
	reqs, _ = rm.Requests(ctx, RequestFilter{Since: reqs[0].Seq, Limit: 5})
	if len(reqs) != 1 || reqs[0].Path != "/track/api/v1/customers/z" {
		t.Fatalf("since filter %+v", reqs)
	}
	st, err := rm.Stats(ctx)
	if err != nil || st.Total != 2 || st.ByGroupStatusClass[GroupTrack]["5xx"] != 1 || st.Faults != 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	if err := rm.AddSegment(ctx, 500); err != nil {
		t.Fatal(err)
	}
	if err := rm.AddBroadcast(ctx, 600); err != nil {
		t.Fatal(err)
	}
	want(t, e.track("POST", "/api/v1/segments/500/add_customers", `{"ids":["z"]}`), 200, "")
	want(t, e.app("POST", "/v1/campaigns/600/triggers", `{}`), 200, `{"id":1}`)
	snap, err := rm.State(ctx)
	if _, ok := snap.Segments[500]; err != nil || len(snap.People) != 1 || !ok || len(snap.Triggers) != 1 {
		t.Fatalf("state %+v %v", snap, err)
	}
	trs, err := rm.Triggers(ctx)
	if err != nil || len(trs) != 1 || trs[0].BroadcastID != 600 {
		t.Fatalf("triggers %+v %v", trs, err)
	}
	if err := rm.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.r.People()) != 0 || e.r.Stats().Total != 0 || len(e.r.Requests(RequestFilter{})) != 0 {
		t.Fatal("reset kept state")
	}
	want(t, e.track("POST", "/api/v1/segments/500/add_customers", `{"ids":["z"]}`), 404, "")
	want(t, e.track("POST", "/api/v1/segments/20/add_customers", `{"ids":["z"]}`), 200, "")
	ds, err := rm.Deliveries(ctx)
	if err != nil || ds == nil || len(ds) != 0 {
		t.Fatalf("deliveries %v %v", ds, err)
	}
	if _, err := rm.CDPMessages(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/people", "/people/z/events", "/anonymous_events", "/relationships", "/segments/1", "/forms", "/merges", "/suppressions", "/delivery_events"} {
		want(t, e.call("GET", "/_sandbox"+path, "", ""), 200, "")
	}
	want(t, e.call("GET", "/_sandbox/segments/4242", "", ""), 404, "")
	want(t, e.call("GET", "/_sandbox/objects/1/none", "", ""), 404, "")
	want(t, e.call("PUT", "/_sandbox/faults/track", "", `{"latency":"5ms","status":503,"times":1}`), 200, "")
	if fs := e.r.Faults()[GroupTrack]; len(fs) != 1 || fs[0].Latency != 5*time.Millisecond || fs[0].Times != 1 {
		t.Fatalf("fault from JSON %+v", fs)
	}
	want(t, e.call("PUT", "/_sandbox/faults/track", "", `{"latency":"soon"}`), 400, "")
	want(t, e.call("DELETE", "/_sandbox/faults/track", "", ""), 200, "")
}

func TestWaitForAndRecordingCap(t *testing.T) {
	e := newEnv(t, Config{MaxRecorded: 3, MaxRecordedBody: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- e.r.WaitFor(ctx, func(s *Server) bool { return len(s.Events("w")) == 5 })
	}()
	for i := 0; i < 5; i++ {
		want(t, e.track("POST", "/api/v1/customers/w/events", `{"name":"e"}`), 200, "")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	reqs := e.r.Requests(RequestFilter{})
	if len(reqs) != 3 || reqs[0].Seq != 3 || reqs[2].Seq != 5 || reqs[0].Body != `{"na` || !reqs[0].BodyTruncated {
		t.Fatalf("recording %+v", reqs)
	}
	st := e.r.Stats()
	if st.Total != 5 || st.Recorded != 3 || st.Dropped != 2 || st.ByGroup[GroupTrack] != 5 || st.ByStatusClass["2xx"] != 5 {
		t.Fatalf("stats %+v", st)
	}
	// WaitFor gives up with the context.
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := e.r.WaitFor(short, func(*Server) bool { return false }); err == nil {
		t.Fatal("WaitFor returned nil for a false condition")
	}
	// Copies: changing a returned person does not change the state.
	p, _ := e.r.Person("w")
	p.Events[0].Name = "changed"
	p.Attributes["x"] = 1
	if q, _ := e.r.Person("w"); q.Events[0].Name != "e" || q.Attributes["x"] != nil {
		t.Fatal("reader returned internal state")
	}
	// Headers: secrets scrubbed.
	e.call("PUT", "/track/api/v1/customers/h", e.trackAuth(), `{}`, "X-Api-Key", "secret", "X-Trace", "t1")
	last := e.r.Requests(RequestFilter{PathContains: "/customers/h"})[0]
	if last.Header.Get("X-Api-Key") != "" || last.Header.Get("X-Trace") != "t1" || strings.Contains(last.Body, "secret") {
		t.Fatalf("headers %+v", last.Header)
	}
}

// seqsOver reads GET /_sandbox/requests?<query> and returns the Seq of
// each request listed, in the order listed.
func (e *env) seqsOver(t *testing.T, query string) []uint64 {
	t.Helper()
	r := e.call("GET", "/_sandbox/requests?"+query, "", "")
	want(t, r, 200, "")
	var reqs []struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(r.body), &reqs); err != nil {
		t.Fatalf("requests?%s: %v", query, err)
	}
	seqs := []uint64{}
	for _, q := range reqs {
		seqs = append(seqs, q.Seq)
	}
	return seqs
}

// TestRequestsLimitKeepsNewestOverHTTP: ?limit=N lists the newest N
// requests, oldest first; order=oldest the oldest N.
func TestRequestsLimitKeepsNewestOverHTTP(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		want(t, e.track("PUT", fmt.Sprintf("/api/v1/customers/p%d", i), `{}`), 200, "")
	}
	want(t, e.app("POST", "/v1/send/email", `{}`), 400, "") // seq 6, another group
	for query, seqs := range map[string][]uint64{
		"":                                 {1, 2, 3, 4, 5, 6},
		"limit=2":                          {5, 6},
		"limit=2&order=newest":             {5, 6},
		"limit=2&order=oldest":             {1, 2},
		"limit=2&group=track":              {4, 5},
		"limit=3&since=1&order=oldest":     {2, 3, 4},
		"limit=3&since=4":                  {5, 6},
		"limit=10":                         {1, 2, 3, 4, 5, 6},
		"limit=0":                          {1, 2, 3, 4, 5, 6},
		"order=oldest":                     {1, 2, 3, 4, 5, 6},
		"limit=1&method=put&path=/p2":      {3},
		"limit=2&group=track&order=oldest": {1, 2},
	} {
		if got := e.seqsOver(t, query); !reflect.DeepEqual(got, seqs) {
			t.Errorf("requests?%s = %v, want %v", query, got, seqs)
		}
	}
	want(t, e.call("GET", "/_sandbox/requests?order=sideways", "", ""), 400, "")
	want(t, e.call("GET", "/_sandbox/requests?limit=-1", "", ""), 400, "")
}

// TestRequestsLimitGoAPI: Server.Requests and Remote.Requests keep the
// newest Limit by default and the oldest with OrderOldest, oldest first.
func TestRequestsLimitGoAPI(t *testing.T) {
	e := newEnv(t, Config{MaxRecorded: 4})
	for i := 0; i < 6; i++ { // the recording keeps seq 3..6
		want(t, e.track("PUT", fmt.Sprintf("/api/v1/customers/p%d", i), `{}`), 200, "")
	}
	rm := e.r.Remote()
	for _, tc := range []struct {
		f    RequestFilter
		seqs []uint64
	}{
		{RequestFilter{}, []uint64{3, 4, 5, 6}},
		{RequestFilter{Limit: 2}, []uint64{5, 6}},
		{RequestFilter{Limit: 2, Order: OrderNewest}, []uint64{5, 6}},
		{RequestFilter{Limit: 2, Order: OrderOldest}, []uint64{3, 4}},
		{RequestFilter{Limit: 2, Order: OrderOldest, Since: 3}, []uint64{4, 5}},
		{RequestFilter{Limit: 9}, []uint64{3, 4, 5, 6}},
		{RequestFilter{Limit: 1, PathContains: "/p3"}, []uint64{4}},
	} {
		seqs := func(reqs []Request) []uint64 {
			out := []uint64{}
			for _, r := range reqs {
				out = append(out, r.Seq)
			}
			return out
		}
		if got := seqs(e.r.Requests(tc.f)); !reflect.DeepEqual(got, tc.seqs) {
			t.Errorf("Server.Requests(%+v) = %v, want %v", tc.f, got, tc.seqs)
		}
		reqs, err := rm.Requests(context.Background(), tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(reqs); !reflect.DeepEqual(got, tc.seqs) {
			t.Errorf("Remote.Requests(%+v) = %v, want %v", tc.f, got, tc.seqs)
		}
	}
}
