package batch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker/batch"
)

// Concurrent handlers share one request; each learns its own item's fate.
// (*customerio.Client).Batch is such a SendFunc.
func Example() {
	send := func(ctx context.Context, ops []customerio.Operation) (customerio.BatchResult, error) {
		var res customerio.BatchResult
		for i, op := range ops {
			if op.Name == "" {
				res.Errors = append(res.Errors, customerio.BatchItemError{BatchIndex: i, Field: "name", Message: "cannot be blank"})
			}
		}
		return res, nil
	}
	b := batch.New(send, batch.Config{Validate: func(customerio.Operation) error { return nil }})
	defer b.Close()

	ops := []customerio.Operation{event("signed_up"), event(""), event("purchased")}
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = b.Do(context.Background(), op) }()
	}
	wg.Wait()
	for i, err := range errs {
		var ae *customerio.APIError
		if errors.As(err, &ae) {
			fmt.Printf("op %d: %s %d %s\n", i, ae.Class, ae.StatusCode, ae.Message)
		} else {
			fmt.Printf("op %d: %v\n", i, err)
		}
	}
	// Output:
	// op 0: <nil>
	// op 1: permanent 400 name: cannot be blank
	// op 2: <nil>
}

// A Batcher that keeps only its operations' JSON (the worker's, with
// (*customerio.Client).BatchEncoded as the send): operations encoded ahead
// with Prepare go out together with DoPrepared, and one refused before
// sending fails alone.
func ExampleNewRaw() {
	send := func(ctx context.Context, encoded []json.RawMessage) (customerio.BatchResult, error) {
		fmt.Printf("one request of %d operations, the first %s\n", len(encoded), encoded[0])
		return customerio.BatchResult{}, nil
	}
	b := batch.NewRaw(send, batch.Config{MaxItemBytes: 200})
	defer b.Close()

	signedUp, huge, purchased := event("signed_up"), event("huge"), event("purchased")
	huge.Attributes = map[string]any{"notes": strings.Repeat("x", 300)}
	ops := []batch.Prepared{b.Prepare(&signedUp), b.Prepare(&huge), b.Prepare(&purchased)}
	for i, err := range b.DoPrepared(context.Background(), ops) {
		fmt.Printf("op %d: too large: %v, error: %v\n", i, errors.Is(err, batch.ErrTooLarge), err != nil)
	}
	// Output:
	// one request of 2 operations, the first {"type":"person","action":"event","identifiers":{"id":"user-1"},"name":"signed_up"}
	// op 0: too large: false, error: false
	// op 1: too large: true, error: true
	// op 2: too large: false, error: false
}
