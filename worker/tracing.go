package worker

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker/batch"
)

// tracerName names the worker's spans' instrumentation scope.
const tracerName = "github.com/cioq/cioq/worker"

// Tracing (Config.TracerProvider): a task enqueued in a trace (its
// envelope's traceparent, written by the producer from its context or by
// the ingest from a request's traceparent header) is delivered in a span
// "cioq.deliver <type>" that continues that trace (a task without one
// starts a trace of its own), and every HTTP request to Customer.io made
// for it is a child span "customerio <api> <operation>" carrying the
// traceparent header on to Customer.io. Spans carry the task's type, id,
// queue, workspace and attempt, the API and operation and the HTTP status;
// never a URL path, payload or identifier. A Track v2 batch request serves
// many tasks at once: its span is a child of the first of its tasks' spans
// and has a span link to each other task's span (batch.Spans), so every
// task's trace reaches the request that delivered it. Without a
// TracerProvider none of this runs.

// traceContext is the W3C trace context propagator, used whether or not a
// global one is set.
var traceContext = propagation.TraceContext{}

// startTaskSpan continues t's trace: ctx gets the task's span when tracing
// is on (the span to end), and t its trace id for log lines either way.
func (w *Worker) startTaskSpan(ctx context.Context, t *Task) (context.Context, trace.Span) {
	if t.Envelope != nil && t.Envelope.TraceParent != "" {
		t.traceID = traceIDOf(t.Envelope.TraceParent)
	}
	if w.tracer == nil {
		return ctx, nil
	}
	if t.Envelope != nil && t.Envelope.TraceParent != "" {
		ctx = traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": t.Envelope.TraceParent, "tracestate": t.Envelope.TraceState})
	}
	ws := ""
	if t.Envelope != nil {
		ws = t.Envelope.Workspace
	}
	ctx, span := w.tracer.Start(ctx, "cioq.deliver "+t.Type, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "asynq"),
			attribute.String("messaging.destination.name", t.Queue),
			attribute.String("messaging.message.id", t.ID),
			attribute.String("cioq.task.type", t.Type),
			attribute.String("cioq.workspace", displayWS(ws)),
			attribute.Int("cioq.attempt", t.Retried+1),
		))
	if sc := span.SpanContext(); sc.IsValid() {
		t.traceID = sc.TraceID().String()
	}
	return ctx, span
}

// endTaskSpan ends a task's span with the outcome asynq gets (nil:
// delivered).
func endTaskSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, outcomeName(err))
	}
	span.End()
}

// outcomeName is a span status description without the error text (it
// can quote Customer.io's message, which is fine, but keep spans terse).
func outcomeName(err error) string {
	if isDeadLettered(err) {
		return "dead-lettered"
	}
	return "retried"
}

// traceAttr is the slog attribute of t's trace id, empty (dropped by
// slog's handlers) when the task has none.
func (t *Task) traceAttr() slog.Attr {
	if t == nil || t.traceID == "" {
		return slog.Attr{}
	}
	return slog.String("trace_id", t.traceID)
}

// traceIDOf returns the trace id of a W3C traceparent
// ("vv-<32 hex>-<16 hex>-ff", and perhaps more after a later version's
// dash), "" if it is not one. It allocates nothing.
func traceIDOf(tp string) string {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return ""
	}
	id := tp[3:35]
	if id == "00000000000000000000000000000000" || strings.Trim(id, "0123456789abcdef") != "" {
		return ""
	}
	return id
}

// tracingTransport makes each request to Customer.io a client span and
// sends its traceparent on.
type tracingTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
}

// tracingWrapper makes tracingTransports, after the wrapper the
// configuration had (inner, when set).
type tracingWrapper struct {
	inner  customerio.TransportWrapper
	tracer trace.Tracer
}

// WrapTransport implements customerio.TransportWrapper.
func (tw *tracingWrapper) WrapTransport(next http.RoundTripper) http.RoundTripper {
	if tw.inner != nil {
		next = tw.inner.WrapTransport(next)
	}
	return &tracingTransport{next: next, tracer: tw.tracer}
}

// RoundTrip sends req in a span named after the client's operation (the
// URL is not recorded: its path can hold a person's identifier).
func (tt *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	api, op, _ := customerio.RequestOperation(req.Context())
	ctx, span := tt.tracer.Start(req.Context(), "customerio "+string(api)+" "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(batchLinks(req.Context())...),
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname()),
			attribute.String("cioq.customerio.api", string(api)),
			attribute.String("cioq.customerio.operation", op),
		))
	defer span.End()
	req = req.Clone(ctx)
	traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := tt.next.RoundTrip(req)
	if err != nil {
		span.SetStatus(codes.Error, "no response")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
	}
	return resp, nil
}

// batchLinks are the span links of a Track v2 batch request: one to each
// span of the tasks it carries but the first's (its parent), each span
// once; nil for any other request.
func batchLinks(ctx context.Context) []trace.Link {
	spans := batch.Spans(ctx)
	if len(spans) < 2 {
		return nil
	}
	parent := trace.SpanContextFromContext(ctx)
	seen := map[trace.SpanID]bool{parent.SpanID(): true}
	var links []trace.Link
	for _, sc := range spans {
		if sc.IsValid() && !seen[sc.SpanID()] {
			seen[sc.SpanID()] = true
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("cioq.link", "batched task")}})
		}
	}
	return links
}

// clientConfig is cc with the tracing transport when tracing is on.
func (w *Worker) clientConfig(cc customerio.Config) customerio.Config {
	if w.tracer != nil {
		cc.WrapTransport = &tracingWrapper{inner: cc.WrapTransport, tracer: w.tracer}
	}
	return cc
}
