package sandbox

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// faultsOver reads GET /_sandbox/faults as JSON.
func (e *env) faultsOver(t *testing.T) map[string][]map[string]any {
	t.Helper()
	r := e.call("GET", "/_sandbox/faults", "", "")
	want(t, r, 200, "")
	var out map[string][]map[string]any
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("GET /_sandbox/faults: %s is not a map of fault lists: %v", r.body, err)
	}
	return out
}

// putFault PUTs a fault over HTTP and returns the id it was given.
func (e *env) putFault(t *testing.T, path, body string) string {
	t.Helper()
	r := e.call("PUT", path, "", body)
	want(t, r, 200, "")
	id, _ := r.json(t)["id"].(string)
	if id == "" {
		t.Fatalf("PUT %s answered %s: no id", path, r.body)
	}
	return id
}

// lastTrackRequest is the newest recorded Track request.
func (e *env) lastTrackRequest(t *testing.T) Request {
	t.Helper()
	reqs := e.r.Requests(RequestFilter{Group: GroupTrack})
	if len(reqs) == 0 {
		t.Fatal("no Track request recorded")
	}
	return reqs[len(reqs)-1]
}

// TestSeveralFaultsPerGroupOverHTTP: a second PUT adds a fault next to the
// first instead of replacing it; latencies add up, the first matching fault
// with an action answers, and a DELETE removes one fault by id.
func TestSeveralFaultsPerGroupOverHTTP(t *testing.T) {
	e := newEnv(t)
	identify := func() resp { return e.track("PUT", "/api/v1/customers/u", `{}`) }

	slow := e.putFault(t, "/_sandbox/faults/track", `{"latency":"20ms"}`)
	busy := e.putFault(t, "/_sandbox/faults/track", `{"latency":"20ms","status":503,"times":1}`)
	if slow == busy {
		t.Fatalf("both faults got id %q", slow)
	}
	if fs := e.faultsOver(t); len(fs["track"]) != 2 || fs["track"][0]["id"] != slow || fs["track"][1]["id"] != busy {
		t.Fatalf("faults after two PUTs: %v", fs)
	}

	// Both apply: the 503 answers and the delay is the sum of both.
	want(t, identify(), 503, "")
	r := e.lastTrackRequest(t)
	if r.Fault != "status" || !reflect.DeepEqual(r.FaultIDs, []string{slow, busy}) {
		t.Fatalf("first request: fault %q ids %v, want status from %v", r.Fault, r.FaultIDs, []string{slow, busy})
	}
	if r.Duration < 40*time.Millisecond {
		t.Fatalf("first request took %v; the two 20 ms latencies add up to 40 ms", r.Duration)
	}
	// The 503 was for one request only; the latency stays.
	want(t, identify(), 200, "")
	if r := e.lastTrackRequest(t); r.Fault != "latency" || !reflect.DeepEqual(r.FaultIDs, []string{slow}) {
		t.Fatalf("second request: fault %q ids %v, want latency from %s", r.Fault, r.FaultIDs, slow)
	}
	if fs := e.faultsOver(t); len(fs["track"]) != 1 || fs["track"][0]["id"] != slow {
		t.Fatalf("faults after the 503 was spent: %v", fs)
	}

	// DELETE by id removes that fault only; an unknown id is a 404.
	want(t, e.call("DELETE", "/_sandbox/faults/track/"+slow, "", ""), 200, "")
	want(t, e.call("DELETE", "/_sandbox/faults/track/"+slow, "", ""), 404, "")
	want(t, e.call("DELETE", "/_sandbox/faults/app/"+busy, "", ""), 404, "")
	if fs := e.faultsOver(t); len(fs) != 0 {
		t.Fatalf("faults after DELETE: %v", fs)
	}
	want(t, identify(), 200, "")
	if r := e.lastTrackRequest(t); r.Fault != "" || len(r.FaultIDs) != 0 {
		t.Fatalf("request after DELETE: fault %q ids %v", r.Fault, r.FaultIDs)
	}

	// The first matching fault with an action wins; one that is passed over
	// keeps its Times.
	events := e.putFault(t, "/_sandbox/faults/track", `{"status":500,"path_prefix":"/api/v1/customers/u/events"}`)
	throttle := e.putFault(t, "/_sandbox/faults/track", `{"status":429,"retry_after":"3","times":1}`)
	want(t, e.track("POST", "/api/v1/customers/u/events", `{"name":"x"}`), 500, "")
	if fs := e.faultsOver(t); len(fs["track"]) != 2 || fs["track"][1]["times"] != float64(1) {
		t.Fatalf("the 429 was passed over but its times changed: %v", fs)
	}
	r2 := identify() // the events fault's prefix does not match: the 429 answers
	want(t, r2, 429, "")
	if r2.header.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q", r2.header.Get("Retry-After"))
	}
	if fs := e.faultsOver(t); len(fs["track"]) != 1 || fs["track"][0]["id"] != events {
		t.Fatalf("faults after the 429 was spent (%s): %v", throttle, fs)
	}

	// ?replace=true replaces the group's faults; other groups keep theirs.
	app := e.putFault(t, "/_sandbox/faults/app", `{"status":502}`)
	only := e.putFault(t, "/_sandbox/faults/track?replace=true", `{"status":400}`)
	if fs := e.faultsOver(t); len(fs["track"]) != 1 || fs["track"][0]["id"] != only || len(fs["app"]) != 1 || fs["app"][0]["id"] != app {
		t.Fatalf("faults after replace: %v", fs)
	}
	want(t, e.call("DELETE", "/_sandbox/faults/track", "", ""), 200, "")
	if fs := e.faultsOver(t); len(fs["track"]) != 0 || len(fs["app"]) != 1 {
		t.Fatalf("DELETE of the track group: %v", fs)
	}
	want(t, e.call("DELETE", "/_sandbox/faults", "", ""), 200, "")
	if fs := e.faultsOver(t); len(fs) != 0 {
		t.Fatalf("DELETE of every fault: %v", fs)
	}

	// Bodies the sandbox cannot apply are refused, naming the field.
	for body, field := range map[string]string{
		`{"status":5030}`:        "status",
		`{"statuss":503}`:        "statuss",
		`{"times":-1}`:           "times",
		`{"latency":"-5ms"}`:     "latency",
		`{"rate":-0.5}`:          "rate",
		`{"latency":"sometime"}`: "latency",
	} {
		r := e.call("PUT", "/_sandbox/faults/track", "", body)
		want(t, r, 400, "")
		if msg, _ := r.json(t)["error"].(string); !strings.Contains(msg, field) {
			t.Errorf("PUT %s: error %q does not name %q", body, msg, field)
		}
	}
	want(t, e.call("PUT", "/_sandbox/faults/track?replace=maybe", "", `{}`), 400, "")
	if fs := e.faultsOver(t); len(fs) != 0 {
		t.Fatalf("refused bodies installed faults: %v", fs)
	}
}

// TestFaultGoAPI: Server and Remote add, replace, list and remove faults
// the same way.
func TestFaultGoAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rm := e.r.Remote()

	a := e.r.AddFault(GroupTrack, Fault{Latency: time.Millisecond})
	b, err := rm.AddFault(ctx, GroupTrack, Fault{Status: 503, Times: 2, ID: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if b == "" || b == "ignored" || b == a {
		t.Fatalf("ids %q and %q", a, b)
	}
	got, err := rm.Faults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fs := got[GroupTrack]; len(fs) != 2 || fs[0].ID != a || fs[0].Latency != time.Millisecond || fs[1].ID != b || fs[1].Times != 2 {
		t.Fatalf("remote faults %+v", got)
	}
	if !reflect.DeepEqual(got, e.r.Faults()) {
		t.Fatalf("remote %+v, server %+v", got, e.r.Faults())
	}
	want(t, e.track("PUT", "/api/v1/customers/u", `{}`), 503, "")

	if found, err := rm.RemoveFault(ctx, GroupTrack, b); err != nil || !found {
		t.Fatalf("remote RemoveFault(%s) = %v, %v", b, found, err)
	}
	if found, err := rm.RemoveFault(ctx, GroupTrack, b); err != nil || found {
		t.Fatalf("remote RemoveFault of a removed fault = %v, %v", found, err)
	}
	if fs := e.r.Faults()[GroupTrack]; len(fs) != 1 || fs[0].ID != a {
		t.Fatalf("after RemoveFault: %+v", fs)
	}
	if e.r.RemoveFault(GroupApp, a) {
		t.Fatal("RemoveFault found a track fault in the app group")
	}

	// SetFault replaces the group's faults, on the Server and on Remote.
	c := e.r.SetFault(GroupTrack, Fault{Status: 500})
	if fs := e.r.Faults()[GroupTrack]; len(fs) != 1 || fs[0].ID != c {
		t.Fatalf("after Server.SetFault: %+v", fs)
	}
	d, err := rm.SetFault(ctx, GroupTrack, Fault{Status: 502})
	if err != nil {
		t.Fatal(err)
	}
	if fs := e.r.Faults()[GroupTrack]; len(fs) != 1 || fs[0].ID != d || fs[0].Status != 502 {
		t.Fatalf("after Remote.SetFault: %+v", fs)
	}
	e.r.AddFault(GroupApp, Fault{Status: 500})
	if err := rm.ClearFault(ctx, GroupTrack); err != nil {
		t.Fatal(err)
	}
	if fs := e.r.Faults(); len(fs) != 1 || len(fs[GroupApp]) != 1 {
		t.Fatalf("after ClearFault(track): %+v", fs)
	}
	e.r.ClearFault(GroupApp)
	if fs := e.r.Faults(); len(fs) != 0 {
		t.Fatalf("after ClearFault(app): %+v", fs)
	}
	if _, err := rm.AddFault(ctx, GroupTrack, Fault{Status: 42}); err == nil {
		t.Fatal("Remote.AddFault accepted status 42")
	}
}
