package outbox_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// TestTraceThroughOutbox: an order's confirmation written to the outbox
// inside the application's span (real PostgreSQL), relayed to Redis by the
// relay and delivered by a worker to the sandbox, is delivered in a
// "cioq.deliver cio:send_email" span that is a child of the application's span, though
// the relay that enqueued it has no span at all (in-memory exporter).
func TestTraceThroughOutbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	sb := startWorkerWith(t, e.rdb, func(c *worker.Config) { c.TracerProvider = tp })
	e.startRelay(t, outbox.RelayConfig{})

	appCtx, appSpan := tp.Tracer("the-app").Start(ctx, "POST /orders")
	tx, err := e.pool.Begin(appCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(appCtx, "INSERT INTO orders (id) VALUES ('ORD-TRACED')"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.Pgx(tx).SendEmail(appCtx, confirmation("ORD-TRACED")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(appCtx); err != nil {
		t.Fatal(err)
	}
	appSpan.End()
	if got := deliveries(t, sb, 1); got["ORD-TRACED"] != 1 {
		t.Fatalf("deliveries %v", got)
	}

	var deliver sdktrace.ReadOnlySpan
	eventually(t, 10*time.Second, "the worker's span", func() bool {
		for _, s := range exp.GetSpans().Snapshots() {
			if s.Name() == "cioq.deliver "+tasks.TypeSendEmail {
				deliver = s
				return true
			}
		}
		return false
	})
	app := appSpan.SpanContext()
	if deliver.Parent().TraceID() != app.TraceID() || deliver.Parent().SpanID() != app.SpanID() {
		t.Errorf("the worker's span has parent %s/%s, want the app's %s/%s",
			deliver.Parent().TraceID(), deliver.Parent().SpanID(), app.TraceID(), app.SpanID())
	}
	found := false
	for _, a := range deliver.Attributes() {
		found = found || a.Value.AsString() == tasks.TypeSendEmail
	}
	if !found {
		t.Errorf("the worker's span does not name the task type: %v", deliver.Attributes())
	}
}
