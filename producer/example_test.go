package producer_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// exampleDB is the database reserved for examples on the test Redis server
// (testredis.ExampleDB: tests get databases 1..250 only).
const exampleDB = 255

// exampleClient returns a producer on an emptied example database of the
// test Redis (CIOQ_TEST_REDIS, default 127.0.0.1:6399, started by `make test`).
func exampleClient() *producer.Client {
	addr := os.Getenv("CIOQ_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6399"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: exampleDB})
	rdb.FlushDB(context.Background())
	rdb.Close()
	c, err := producer.New(fmt.Sprintf("redis://%s/%d", addr, exampleDB))
	if err != nil {
		panic(err)
	}
	return c
}

func printReceipt(r producer.Receipt, err error) {
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("%s → %s (duplicate: %v)\n", r.Type, r.Queue, r.Duplicate)
}

// Transactional emails: a password reset that must never arrive late, and an
// order confirmation sent exactly once per order.
func Example_transactionalEmails() {
	c := exampleClient()
	defer c.Close()
	ctx := context.Background()

	printReceipt(c.SendEmail(ctx, tasks.SendEmail{
		SendOptions: customerio.SendOptions{
			TransactionalMessageID: "password_reset",
			Identifiers:            &customerio.Identifiers{ID: "user-123"},
			MessageData: map[string]any{
				"reset_link":   "https://app.example.com/reset?token=abc123",
				"expiry_hours": 1,
			},
		},
		To: "user@example.com",
	}, producer.ExpiresIn(time.Hour))) // stale after an hour: dead-lettered, not sent

	order := tasks.SendEmail{
		SendOptions: customerio.SendOptions{
			TransactionalMessageID: "order_confirmation",
			Identifiers:            &customerio.Identifiers{ID: "user-456"},
			MessageData: map[string]any{
				"order_id": "ORD-12345",
				"items":    []map[string]any{{"name": "Product A", "quantity": 2, "price": 29.99}},
				"total":    59.98,
			},
		},
		To: "customer@example.com",
	}
	// The checkout handler may run twice; the key makes it one email.
	printReceipt(c.SendEmail(ctx, order, producer.IdempotencyKey("order-ORD-12345:confirmation")))
	printReceipt(c.SendEmail(ctx, order, producer.IdempotencyKey("order-ORD-12345:confirmation")))

	// An invalid send never reaches Redis.
	_, err := c.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "password_reset"}})
	fmt.Println(err)
	// Output:
	// cio:send_email → critical (duplicate: false)
	// cio:send_email → critical (duplicate: false)
	// cio:send_email → critical (duplicate: true)
	// producer: cio:send_email: customerio: to: is required
}

// Attributes that drive segment membership (high value, at risk, power
// user) are plain identify attributes.
func Example_segmentAttributes() {
	c := exampleClient()
	defer c.Close()
	ctx := context.Background()

	printReceipt(c.Identify(ctx, tasks.Identify{
		Identifiers: customerio.Identifiers{ID: "user-123"},
		Attributes: map[string]any{
			"total_revenue":         1000,
			"order_count":           10,
			"average_order_value":   100,
			"churn_risk_score":      0.8,
			"days_since_last_login": 30,
			"session_count":         100,
			"premium_features_used": true,
			"features_used":         []string{"reports", "exports"},
			"last_active_at":        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
		},
	}))
	// Output:
	// cio:identify → default (duplicate: false)
}

// Anonymous page views, merged into the person when the visitor signs up.
func Example_anonymousMergeOnSignup() {
	c := exampleClient()
	defer c.Close()
	ctx := context.Background()
	const anonymousID = "anon-7f3a"

	for _, page := range []string{"/", "/pricing", "/signup"} {
		printReceipt(c.TrackAnonymous(ctx, tasks.TrackAnonymous{
			AnonymousID: anonymousID,
			Name:        page,
			Type:        customerio.EventTypePage,
			Data:        map[string]any{"referrer": "https://www.google.com/"},
		}))
	}
	printReceipt(c.MergeAnonymous(ctx, tasks.MergeAnonymous{
		Identifiers: customerio.Identifiers{ID: "user-123"},
		AnonymousID: anonymousID,
		Attributes: map[string]any{
			"email":      "user@example.com",
			"created_at": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
		},
	}))
	// Output:
	// cio:track_anonymous → default (duplicate: false)
	// cio:track_anonymous → default (duplicate: false)
	// cio:track_anonymous → default (duplicate: false)
	// cio:merge_anonymous → default (duplicate: false)
}

// A company as an object, and a person as one of its members.
func Example_companyObject() {
	c := exampleClient()
	defer c.Close()
	ctx := context.Background()
	const companies = "1" // the object type id of "Companies" in the workspace

	printReceipt(c.UpsertObject(ctx, tasks.ObjectUpsert{
		ObjectTypeID: companies,
		ObjectID:     "acme",
		Attributes: map[string]any{
			"name": "Acme Inc", "plan": "enterprise", "mrr": 4200,
			"employee_count": 250, "industry": "manufacturing",
		},
	}))
	printReceipt(c.Relate(ctx, tasks.Relate{
		Identifiers:            customerio.Identifiers{ID: "user-123"},
		ObjectTypeID:           companies,
		ObjectID:               "acme",
		RelationshipAttributes: map[string]any{"role": "admin"},
	}))
	// Output:
	// cio:object_upsert → default (duplicate: false)
	// cio:relate → default (duplicate: false)
}

// A task from a non-Go source, as JSON: validated like the typed methods,
// unknown fields kept.
func ExampleClient_EnqueueRaw() {
	c := exampleClient()
	defer c.Close()

	printReceipt(c.EnqueueRaw(context.Background(), tasks.TypeCDPTrack,
		[]byte(`{"userId":"user-123","event":"Order Completed","properties":{"revenue":59.98}}`)))
	// Output:
	// cdp:track → default (duplicate: false)
}
