package sandbox

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rawCall sends a request and reads its answer without failing on a body
// that breaks off: it returns the status, the body read and the read error.
func (e *env) rawCall(method, path, auth, body string) (int, string, error) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.r.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, rerr := io.ReadAll(res.Body)
	return res.StatusCode, string(b), rerr
}

const sendBody = `{"transactional_message_id":1,"identifiers":{"id":"u1"},"to":"u1@x.com"}`

// TestResponseBodyFaultServesTheRequest: a response_body fault lets the
// send happen (the delivery is recorded) and answers its status with the
// fault's body instead of the documented JSON.
func TestResponseBodyFaultServesTheRequest(t *testing.T) {
	e := newEnv(t)
	e.putFault(t, "/_sandbox/faults/app", `{"response_body":"OK","path_prefix":"/v1/send/email","times":1}`)
	r := e.app("POST", "/v1/send/email", sendBody)
	want(t, r, 200, "OK")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain for a body that is not JSON", ct)
	}
	if n := len(e.r.Deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want the send made", n)
	}
	reqs := e.r.Requests(RequestFilter{Group: GroupApp})
	if got := reqs[len(reqs)-1]; got.Fault != "response_body" || got.Status != 200 {
		t.Errorf("recorded fault %q status %d, want response_body 200", got.Fault, got.Status)
	}
	// Times 1: the next send gets the documented answer.
	if m := e.app("POST", "/v1/send/email", sendBody).json(t); m["delivery_id"] == "" {
		t.Errorf("second send answered %v", m)
	}

	// On a batch with a refused item: a 207 without a readable errors list,
	// the accepted item applied.
	e.putFault(t, "/_sandbox/faults/track", `{"response_body":"<html>oops</html>","times":1}`)
	r = e.track("POST", "/api/v2/batch", `{"batch":[{"type":"person","action":"identify","identifiers":{"id":"b1"}},{"type":"nope","action":"identify"}]}`)
	want(t, r, 207, "<html>oops</html>")
	if _, ok := e.r.Person("b1"); !ok {
		t.Error("the batch's accepted item was not applied")
	}
}

// TestTruncateFault: truncate cuts the answer after its status, so the
// client's read fails; served, the send is made first; with status, the
// canned answer is cut and nothing is made.
func TestTruncateFault(t *testing.T) {
	e := newEnv(t)
	e.putFault(t, "/_sandbox/faults/app", `{"truncate":true,"path_prefix":"/v1/send/email","times":1}`)
	status, body, err := e.rawCall("POST", "/app/v1/send/email", e.appAuth(), sendBody)
	if status != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("status %d, read error %v (body %q); want 200 and an unexpected EOF", status, err, body)
	}
	if !strings.HasPrefix(body, `{"delivery_id"`) {
		t.Errorf("body %q: want the first half of the send's answer", body)
	}
	if n := len(e.r.Deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want the send made", n)
	}
	reqs := e.r.Requests(RequestFilter{Group: GroupApp})
	if got := reqs[len(reqs)-1]; got.Fault != "truncate" || got.Status != 200 {
		t.Errorf("recorded fault %q status %d, want truncate 200", got.Fault, got.Status)
	}

	// A canned answer cut: the trigger is not made.
	e.putFault(t, "/_sandbox/faults/app", `{"status":200,"body":"{\"id\":12345}","truncate":true,"times":1}`)
	status, _, err = e.rawCall("POST", "/app/v1/campaigns/1/triggers", e.appAuth(), `{}`)
	if status != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("canned: status %d, read error %v; want 200 and an unexpected EOF", status, err)
	}
	if n := len(e.r.Triggers()); n != 0 {
		t.Errorf("%d triggers after a canned answer, want none", n)
	}
	// The connection was closed, not left out of step: the next call works.
	want(t, e.app("POST", "/v1/send/email", sendBody), 200, "")
}

// TestBatchIndexFault: batch_index faults serve the batch (the accepted
// items are applied, the refused one is not) and rewrite its errors so
// that none names an item: missing drops batch_index, out_of_range adds
// the batch's length.
func TestBatchIndexFault(t *testing.T) {
	const batch = `{"batch":[{"type":"person","action":"identify","identifiers":{"id":"i0"}},` +
		`{"type":"nope","action":"identify"},{"type":"person","action":"identify","identifiers":{"id":"i2"}}]}`
	for _, tc := range []struct {
		mode string
		want any // the error's batch_index; nil = absent
	}{
		{"", float64(1)},
		{BatchIndexMissing, nil},
		{BatchIndexOutOfRange, float64(4)},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			e := newEnv(t)
			if tc.mode != "" {
				e.putFault(t, "/_sandbox/faults/track", `{"batch_index":"`+tc.mode+`","path_prefix":"/api/v2/batch","times":1}`)
			}
			r := e.track("POST", "/api/v2/batch", batch)
			want(t, r, 207, "")
			errs, _ := r.json(t)["errors"].([]any)
			if len(errs) != 1 {
				t.Fatalf("errors %s, want one", r.body)
			}
			e0, _ := errs[0].(map[string]any)
			if got, ok := e0["batch_index"]; tc.want == nil && ok || tc.want != nil && got != tc.want {
				t.Errorf("batch_index %v (present %v), want %v", got, ok, tc.want)
			}
			if e0["field"] != "type" {
				t.Errorf("error %v lost its other fields", e0)
			}
			for _, id := range []string{"i0", "i2"} {
				if _, ok := e.r.Person(id); !ok {
					t.Errorf("accepted item %s not applied", id)
				}
			}
			// An answer without errors is left alone.
			if tc.mode != "" {
				e.putFault(t, "/_sandbox/faults/track", `{"batch_index":"`+tc.mode+`","times":1}`)
				want(t, e.track("POST", "/api/v2/batch", `{"batch":[{"type":"person","action":"identify","identifiers":{"id":"i3"}}]}`), 200, `{}`)
			}
		})
	}
}

// TestResponseFaultsValidated: combinations the sandbox cannot apply are
// refused, naming the field.
func TestResponseFaultsValidated(t *testing.T) {
	e := newEnv(t)
	for body, field := range map[string]string{
		`{"response_body":"x","status":200}`:    "response_body",
		`{"batch_index":"missing","hang":true}`: "batch_index",
		`{"batch_index":"sideways"}`:            "batch_index",
		`{"truncate":true,"reset":true}`:        "truncate",
	} {
		r := e.call("PUT", "/_sandbox/faults/track", "", body)
		want(t, r, 400, "")
		if msg, _ := r.json(t)["error"].(string); !strings.Contains(msg, field) {
			t.Errorf("PUT %s: error %q does not name %q", body, msg, field)
		}
	}
	id := e.putFault(t, "/_sandbox/faults/track", `{"truncate":true,"batch_index":"out_of_range","response_body":"x"}`)
	fs := e.faultsOver(t)
	if len(fs["track"]) != 1 || fs["track"][0]["id"] != id || fs["track"][0]["truncate"] != true ||
		fs["track"][0]["batch_index"] != "out_of_range" || fs["track"][0]["response_body"] != "x" {
		t.Errorf("GET /_sandbox/faults: %v", fs)
	}
}
