package producer_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestPrepareContextCarriesTrace: PrepareContext and PrepareRawContext put
// the trace context of ctx's span (traceparent and tracestate) into the
// envelope exactly as Enqueue does, and EnqueuePrepared keeps it; Prepare,
// PrepareRaw and a context without a span carry none.
func TestPrepareContextCarriesTrace(t *testing.T) {
	c, insp := setup(t)
	prep := producer.NewPreparer()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	ts, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	sctx, span := tp.Tracer("app").Start(trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceState: ts})), "signup")
	defer span.End()
	// The span's own trace state is its parent's; give it one explicitly.
	sctx = trace.ContextWithSpanContext(sctx, span.SpanContext().WithTraceState(ts))
	sc := span.SpanContext()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"

	envOf := func(t *testing.T, p producer.Prepared) *tasks.Envelope {
		t.Helper()
		env, _, err := tasks.Decode(p.Type, p.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	enq, err := c.Enqueue(sctx, sendOrder())
	if err != nil {
		t.Fatal(err)
	}
	info, err := insp.GetTaskInfo(enq.Queue, enq.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	enqEnv, _, _ := tasks.Decode(info.Type, info.Payload)
	if enqEnv.TraceParent != want || enqEnv.TraceState != "vendor=abc" {
		t.Fatalf("Enqueue's envelope: %q %q, want %q vendor=abc", enqEnv.TraceParent, enqEnv.TraceState, want)
	}

	typed, err := prep.PrepareContext(sctx, sendOrder())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := prep.PrepareRawContext(sctx, tasks.TypeIdentify, []byte(`{"identifiers":{"id":"u1"},"attributes":{"plan":"pro"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]producer.Prepared{"PrepareContext": typed, "PrepareRawContext": raw} {
		if env := envOf(t, p); env.TraceParent != enqEnv.TraceParent || env.TraceState != enqEnv.TraceState {
			t.Errorf("%s: %q %q, want Enqueue's %q %q", name, env.TraceParent, env.TraceState, enqEnv.TraceParent, enqEnv.TraceState)
		}
	}
	r, err := c.EnqueuePrepared(context.Background(), typed)
	if err != nil {
		t.Fatal(err)
	}
	info, err = insp.GetTaskInfo(r.Queue, r.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if env, _, _ := tasks.Decode(info.Type, info.Payload); env.TraceParent != want {
		t.Errorf("EnqueuePrepared's task: traceparent %q, want %q", env.TraceParent, want)
	}

	plain, err := prep.Prepare(sendOrder())
	if err != nil {
		t.Fatal(err)
	}
	plainRaw, err := prep.PrepareRaw(tasks.TypeIdentify, []byte(`{"identifiers":{"id":"u1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	noSpan, err := prep.PrepareContext(context.Background(), sendOrder())
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]producer.Prepared{"Prepare": plain, "PrepareRaw": plainRaw, "PrepareContext without a span": noSpan} {
		if env := envOf(t, p); env.TraceParent != "" || env.TraceState != "" {
			t.Errorf("%s carries %q %q", name, env.TraceParent, env.TraceState)
		}
	}
}
