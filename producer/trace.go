package producer

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/tasks"
)

// traceContext is the W3C trace context propagator, used whether or not
// the application set a global one.
var traceContext = propagation.TraceContext{}

// traceInto writes the trace context of ctx's span (the application's
// OpenTelemetry span, or a remote one an ingest request carried) into the
// task's envelope, so the worker's spans continue the trace. Without a
// span it costs one context lookup.
func traceInto(ctx context.Context, m *tasks.Meta) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	m.TraceParent, m.TraceState = c["traceparent"], c["tracestate"]
}
