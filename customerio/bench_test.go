package customerio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cioq/cioq/customerio"
)

// BenchmarkIdentify is the client's cost of one call (validation, body,
// request, response) against a server that only answers 200.
func BenchmarkIdentify(b *testing.B) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer hs.Close()
	c, err := customerio.New(customerio.Config{SiteID: "site", TrackAPIKey: "key", TrackURL: hs.URL})
	if err != nil {
		b.Fatal(err)
	}
	attrs := map[string]any{"plan": "pro", "email": "p1@example.com", "seats": 12}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Identify(ctx, "p1", attrs); err != nil {
			b.Fatal(err)
		}
	}
}
