package producer

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cioq/cioq/tasks"
)

// TestTraceInto: a context with a span puts its trace context into the
// envelope; one without leaves it empty.
func TestTraceInto(t *testing.T) {
	var m tasks.Meta
	traceInto(context.Background(), &m)
	if m.TraceParent != "" || m.TraceState != "" {
		t.Fatalf("no span: %+v", m)
	}
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	defer span.End()
	traceInto(ctx, &m)
	if want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"; m.TraceParent != want {
		t.Errorf("traceparent %q, want %q", m.TraceParent, want)
	}
}

// BenchmarkTraceInto: what the trace context costs an enqueue. Without a
// span in the context (tracing unset) it is one context lookup.
func BenchmarkTraceInto(b *testing.B) {
	b.Run("no span", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			var m tasks.Meta
			traceInto(ctx, &m)
		}
	})
	b.Run("span", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider()
		ctx, span := tp.Tracer("t").Start(context.Background(), "s")
		defer span.End()
		b.ReportAllocs()
		for b.Loop() {
			var m tasks.Meta
			traceInto(ctx, &m)
		}
	})
}
