package batch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker/batch"
)

// Concurrent handlers share one request; each learns its own item's fate.
// The worker passes (*customerio.Client).Batch as the SendFunc.
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
