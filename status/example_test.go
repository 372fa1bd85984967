package status_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/status"
)

// exampleRedis returns a client on the emptied database reserved for this
// package's examples on the test Redis (testredis.StatusExampleDB).
func exampleRedis() *redis.Client {
	addr := os.Getenv("CIOQ_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6399"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: 251})
	rdb.FlushDB(context.Background())
	return rdb
}

// A send's life: the worker records Customer.io's acceptance, Customer.io
// posts signed reporting webhooks to the receiver (here twice, and out of
// order), and Lookup reads one timeline back.
func Example() {
	rdb := exampleRedis()
	defer rdb.Close()
	ctx := context.Background()
	store := status.NewStore(rdb, status.Options{})

	// What the worker writes when Customer.io accepts a send.
	enq := time.Now().Add(-2 * time.Second)
	task := status.Task{ID: "01JDX3Q4Z8K6V5M2N1P0R9S8T7", EnqueuedAt: enq.UnixMilli(),
		Type: "cio:send_email", Queue: "critical", Template: "password_reset"}
	if err := store.Accepted(ctx, task, "delivery:dlv_42", 1, 0); err != nil {
		fmt.Println(err)
		return
	}

	// What `cioq serve` mounts for Customer.io's reporting webhooks.
	rc, err := status.NewReceiver(status.ReceiverConfig{Store: store, SigningKeys: map[string]string{"": "signing-key"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	rc.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(body string) int {
		ts := time.Now().Unix()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+status.WebhookPath, bytes.NewBufferString(body))
		req.Header.Set("X-CIO-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("X-CIO-Signature", status.Sign([]byte("signing-key"), ts, []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	delivered := `{"event_id":"ev-2","object_type":"email","metric":"delivered","timestamp":` + now + `,"data":{"delivery_id":"dlv_42"}}`
	sent := `{"event_id":"ev-1","object_type":"email","metric":"sent","timestamp":` + now + `,"data":{"delivery_id":"dlv_42"}}`
	fmt.Println(post(delivered), post(sent), post(delivered))

	tl, err := store.Lookup(ctx, task.ID, status.LookupOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("state:", tl.State, "final:", tl.Final)
	for _, e := range tl.Entries {
		fmt.Println(e.Kind, e.Source)
	}
	// Output:
	// 200 200 200
	// state: delivered final: true
	// enqueued cioq
	// accepted cioq
	// sent webhook
	// delivered webhook
}

// Sign is what Customer.io puts in X-CIO-Signature (the same as
// `printf 'v0:1767222000:{"event_id":"ev-1"}' | openssl dgst -sha256 -hmac signing-key`).
func ExampleSign() {
	fmt.Println(status.Sign([]byte("signing-key"), 1767222000, []byte(`{"event_id":"ev-1"}`)))
	// Output: 8c9ad13689f414d8c89a8038c8dd3ca2935e95b7240958b49d74b9bf3f1a7b36
}
