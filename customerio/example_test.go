package customerio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/cioq/cioq/customerio"
	"github.com/oklog/ulid/v2"
)

// fakeCustomerIO starts a tiny stand-in that answers like Customer.io: 200 {}
// for Track, a delivery for transactional email, and a 207 for a v2 batch
// whose second item has an empty identifier. It prints each request line.
func fakeCustomerIO() (*httptest.Server, customerio.Config) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Method, r.URL.EscapedPath())
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/send/email":
			_, _ = io.WriteString(w, `{"delivery_id":"dlv_123","queued_at":1700000000}`)
		case r.URL.Path == "/api/v2/batch":
			w.WriteHeader(http.StatusMultiStatus)
			_, _ = io.WriteString(w, `{"errors":[{"batch_index":1,"reason":"invalid","field":"identifiers","message":"person not found"}]}`)
		case strings.HasSuffix(r.URL.Path, "/events") && strings.Contains(string(body), `"name":"crash"`):
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"meta":{"error":"try later"}}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}))
	return srv, customerio.Config{
		SiteID: "site", TrackAPIKey: "track-key", AppAPIKey: "app-key",
		TrackURL: srv.URL, AppURL: srv.URL, // in production: leave empty and set Region
	}
}

func Example_identify() {
	srv, cfg := fakeCustomerIO()
	defer srv.Close()
	c, err := customerio.New(cfg)
	if err != nil {
		panic(err)
	}
	err = c.Identify(context.Background(), "jane+test@example.com", map[string]any{
		"email": "jane+test@example.com", "plan": "pro", "created_at": 1700000000,
	})
	fmt.Println("err:", err)
	// Output:
	// PUT /api/v1/customers/jane%2Btest@example.com
	// err: <nil>
}

func Example_track() {
	srv, cfg := fakeCustomerIO()
	defer srv.Close()
	c, _ := customerio.New(cfg)
	ctx := context.Background()

	// A ULID id makes a redelivered event a no-op at Customer.io.
	err := c.Track(ctx, "user-42", customerio.Event{
		Name: "purchase", ID: ulid.Make().String(), Data: map[string]any{"total": 19.99},
	})
	fmt.Println("err:", err)

	// Failures are classified; the queue decides whether and when to retry.
	err = c.Track(ctx, "user-42", customerio.Event{Name: "crash"})
	var ae *customerio.APIError
	if errors.As(err, &ae) {
		fmt.Println(ae.StatusCode, ae.Class, ae.Message)
	}
	fmt.Println(err)

	// Limits are checked before anything is sent.
	err = c.Track(ctx, "user-42", customerio.Event{Name: " "})
	fmt.Println(err, customerio.ClassOf(err))
	// Output:
	// POST /api/v1/customers/user-42/events
	// err: <nil>
	// POST /api/v1/customers/user-42/events
	// 503 transient try later
	// customerio: track track: 503 Service Unavailable: try later (retry after 5s)
	// customerio: name: must not be blank permanent
}

func Example_sendEmail() {
	srv, cfg := fakeCustomerIO()
	defer srv.Close()
	c, _ := customerio.New(cfg)

	req := &customerio.SendEmailRequest{To: "jane@example.com"}
	req.TransactionalMessageID = "password_reset" // a trigger name, or an all-digit template id
	req.Identifiers = &customerio.Identifiers{ID: "user-42"}
	req.MessageData = map[string]any{"reset_url": "https://example.com/r/abc"}
	resp, err := c.SendEmail(context.Background(), req)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.DeliveryID, resp.QueuedAt)
	// Output:
	// POST /v1/send/email
	// dlv_123 1700000000
}

func Example_batch() {
	srv, cfg := fakeCustomerIO()
	defer srv.Close()
	c, _ := customerio.New(cfg)

	ops := []customerio.Operation{
		{Type: customerio.EntityPerson, Action: customerio.ActionIdentify,
			Identifiers: &customerio.Identifiers{ID: "user-42"}, Attributes: map[string]any{"plan": "pro"}},
		{Type: customerio.EntityPerson, Action: customerio.ActionEvent,
			Identifiers: &customerio.Identifiers{Email: "gone@example.com"}, Name: "signed_up"},
		{Type: customerio.EntityObject, Action: customerio.ActionIdentify,
			Identifiers: &customerio.Identifiers{ObjectTypeID: "1", ObjectID: "acme"}, Attributes: map[string]any{"name": "Acme"}},
	}
	res, err := c.Batch(context.Background(), ops)
	if err != nil { // the whole request failed
		panic(err)
	}
	for i := range ops {
		if e := res.ItemError(i); e != nil {
			fmt.Printf("item %d rejected: %s: %s\n", i, e.Field, e.Message)
		} else {
			fmt.Printf("item %d accepted\n", i)
		}
	}
	// Output:
	// POST /api/v2/batch
	// item 0 accepted
	// item 1 rejected: identifiers: person not found
	// item 2 accepted
}
