package worker

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cioq/cioq/tasks"
)

// BenchmarkTaskSpan: what tracing costs each task. With Config.TracerProvider
// unset ("off") a task without trace context costs nothing and one with a
// traceparent the parse of its trace id for log lines; "on" is the SDK
// with no exporter, sampling every span.
func BenchmarkTaskSpan(b *testing.B) {
	plain := &tasks.Envelope{V: 1}
	traced := &tasks.Envelope{V: 1, TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	run := func(b *testing.B, w *Worker, env *tasks.Envelope) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			t := &Task{ID: "id", Type: tasks.TypeSendEmail, Queue: "critical", Envelope: env}
			_, span := w.startTaskSpan(ctx, t)
			endTaskSpan(span, nil)
		}
	}
	off := &Worker{}
	b.Run("off", func(b *testing.B) { run(b, off, plain) })
	b.Run("off with traceparent", func(b *testing.B) { run(b, off, traced) })
	tp := sdktrace.NewTracerProvider()
	on := &Worker{tracer: tp.Tracer(tracerName)}
	b.Run("on with traceparent", func(b *testing.B) { run(b, on, traced) })
}

func TestTraceIDOf(t *testing.T) {
	for tp, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      "4bf92f3577b34da6a3ce929d0e0e4736",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": "4bf92f3577b34da6a3ce929d0e0e4736",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":      "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":      "",
		"00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01":        "",
		"": "",
	} {
		if got := traceIDOf(tp); got != want {
			t.Errorf("traceIDOf(%q) = %q, want %q", tp, got, want)
		}
	}
}
