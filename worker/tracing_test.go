package worker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/tasks"
)

// lockedBuffer is a log sink safe for the worker's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTraceContinues: a send enqueued inside the application's span is
// delivered in spans that continue that trace: each attempt's
// "cioq.deliver" span is a child of the producer's span, each request to
// Customer.io a child of its attempt's span carrying traceparent to
// Customer.io; the trace id is in the task's log lines and its timeline.
// (In-memory exporter; the first attempt gets a 503.)
func TestTraceContinues(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	logs := &lockedBuffer{}
	h := newHarness(t, func(c *Config) {
		c.TracerProvider = tp
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	h.dumpOnFailure(t)
	h.sb.AddFault(sandbox.GroupApp, sandbox.Fault{Status: 503, Times: 1, PathPrefix: "/v1/send/email"})

	ctx, appSpan := tp.Tracer("the-app").Start(context.Background(), "POST /signup")
	r, err := h.prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome",
		Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"})
	appSpan.End()
	if err != nil {
		t.Fatal(err)
	}
	traceID := appSpan.SpanContext().TraceID()
	store := status.NewStore(h.db.Client, status.Options{})
	var tl *status.Timeline
	eventually(t, 20*time.Second, "the send accepted", func() bool {
		tl, err = store.Lookup(ctx, r.TaskID, status.LookupOptions{})
		return err == nil && tl.State == status.KindAccepted
	})
	if tl.TraceID != traceID.String() {
		t.Errorf("timeline trace id %q, want %s", tl.TraceID, traceID)
	}

	var deliver, http []sdktrace.ReadOnlySpan
	eventually(t, 10*time.Second, "the spans", func() bool {
		deliver, http = nil, nil
		for _, s := range exp.GetSpans().Snapshots() {
			switch s.Name() {
			case "cioq.deliver cio:send_email":
				deliver = append(deliver, s)
			case "customerio app send_email":
				http = append(http, s)
			}
		}
		return len(deliver) == 2 && len(http) == 2
	})
	byID := map[trace.SpanID]bool{}
	for _, s := range deliver {
		if s.SpanContext().TraceID() != traceID || s.Parent().SpanID() != appSpan.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("deliver span %s: trace %s parent %s, want trace %s parent %s", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID(),
				traceID, appSpan.SpanContext().SpanID())
		}
		byID[s.SpanContext().SpanID()] = true
	}
	for _, s := range http {
		if s.SpanContext().TraceID() != traceID || !byID[s.Parent().SpanID()] || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("request span not a child of a deliver span: parent %s", s.Parent().SpanID())
		}
		for _, a := range s.Attributes() {
			if strings.HasPrefix(string(a.Key), "url.") {
				t.Errorf("request span records %s", a.Key)
			}
		}
	}
	sent := h.sb.Requests(sandbox.RequestFilter{PathContains: "/v1/send/email"})
	if len(sent) != 2 || !strings.Contains(sent[1].Header.Get("Traceparent"), traceID.String()) {
		t.Errorf("Customer.io did not get the trace context: %d requests, %v", len(sent), sent[len(sent)-1].Header)
	}
	if !strings.Contains(logs.String(), "task will be retried") || !strings.Contains(logs.String(), "trace_id="+traceID.String()) {
		t.Errorf("the retry's log line lacks the trace id:\n%s", logs.String())
	}
}
