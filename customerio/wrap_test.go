package customerio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

type recordingTransport struct {
	next http.RoundTripper
	ops  []string
}

func (r *recordingTransport) WrapTransport(next http.RoundTripper) http.RoundTripper {
	r.next = next
	return r
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	api, op, ok := RequestOperation(req.Context())
	if ok {
		r.ops = append(r.ops, string(api)+" "+op)
	}
	return r.next.RoundTrip(req)
}

// TestWrapTransport: every request goes through the wrapped transport,
// whose request context names the API and operation.
func TestWrapTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"delivery_id":"d1"}`))
	}))
	defer srv.Close()
	rt := &recordingTransport{}
	c, err := New(Config{AppAPIKey: "k", AppURL: srv.URL, SiteID: "s", TrackAPIKey: "t", TrackURL: srv.URL,
		WrapTransport: rt})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.SendEmail(ctx, &SendEmailRequest{SendOptions: SendOptions{TransactionalMessageID: "1", Identifiers: &Identifiers{ID: "u"}}, To: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Identify(ctx, "u", nil); err != nil {
		t.Fatal(err)
	}
	if len(rt.ops) != 2 || rt.ops[0] != "app send_email" || rt.ops[1] != "track identify" {
		t.Errorf("operations %v", rt.ops)
	}
	if _, _, ok := RequestOperation(ctx); ok {
		t.Error("an ordinary context names an operation")
	}
}
