package batch_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker/batch"
)

// TestSpansOfCallers: a send's context carries the span contexts of the
// callers whose operations the batch holds, in its order (an invalid one
// for a caller without a span), and has the first caller's span as its
// own; a batch of callers without spans has none.
func TestSpansOfCallers(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	var mu sync.Mutex
	var got [][]trace.SpanContext
	var own []trace.SpanContext
	b := batch.New(func(ctx context.Context, ops []customerio.Operation) (customerio.BatchResult, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, batch.Spans(ctx))
		own = append(own, trace.SpanContextFromContext(ctx))
		return customerio.BatchResult{}, nil
	}, batch.Config{Linger: 5 * time.Second, MaxOps: 3})
	defer b.Close()

	ctxA, a := tp.Tracer("t").Start(context.Background(), "a")
	ctxB, bs := tp.Tracer("t").Start(context.Background(), "b")
	defer a.End()
	defer bs.End()
	var wg sync.WaitGroup
	for i, ctx := range []context.Context{ctxA, context.Background(), ctxB} {
		wg.Go(func() {
			if err := b.Do(ctx, event("e"+strconv.Itoa(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait() // a batch of three flushes as soon as it is full
	alone := make(chan error, 1)
	go func() { alone <- b.Do(context.Background(), event("alone")) }()
	for b.Stats().Accepted < 4 {
		runtime.Gosched() // until the batcher holds it; Close then sends it at once
	}
	b.Close()
	if err := <-alone; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2 {
		t.Fatalf("%d sends", len(got))
	}
	first := got[0]
	in := map[trace.SpanID]int{}
	var firstValid trace.SpanContext
	for _, sc := range first {
		in[sc.SpanID()]++
		if !firstValid.IsValid() && sc.IsValid() {
			firstValid = sc
		}
	}
	if len(first) != 3 || in[a.SpanContext().SpanID()] != 1 || in[bs.SpanContext().SpanID()] != 1 || in[trace.SpanID{}] != 1 || !own[0].Equal(firstValid) {
		t.Errorf("the first batch's spans %v, its own %v", first, own[0])
	}
	if last := got[len(got)-1]; last != nil || own[len(own)-1].IsValid() {
		t.Errorf("a batch without caller spans: %v, own %v", last, own[len(own)-1])
	}
}
