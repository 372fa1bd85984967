package worker

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
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

// TestTraceBatchLinks: three identifies, each enqueued in a trace of its
// own, go out in one Track v2 batch request (a linger long enough to
// collect them, and a batch of three flushes at once): the request's span
// "customerio track batch" is a child of the first task's span and links
// to the other two tasks' spans, each once; every task's span is the
// parent of a batch request or linked from one. (In-memory exporter.)
func TestTraceBatchLinks(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	h := newHarness(t, func(c *Config) {
		c.TracerProvider = tp
		c.Batching = Batching{Linger: 5 * time.Second, MaxOps: 3}
	})
	h.dumpOnFailure(t)
	for i := range 3 {
		ctx, span := tp.Tracer("the-app").Start(context.Background(), "POST /profile")
		if _, err := h.prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "bl-" + strconv.Itoa(i)},
			Attributes: map[string]any{"plan": "pro"}}); err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	var deliver, batches []sdktrace.ReadOnlySpan
	eventually(t, 20*time.Second, "three task spans and the batch request's", func() bool {
		deliver, batches = nil, nil
		for _, s := range exp.GetSpans().Snapshots() {
			switch {
			case s.Name() == "cioq.deliver cio:identify":
				deliver = append(deliver, s)
			case strings.HasPrefix(s.Name(), "customerio track ") && strings.HasSuffix(s.Name(), "batch"):
				batches = append(batches, s)
			}
		}
		return len(deliver) == 3 && len(batches) >= 1
	})
	if n := len(h.sb.Requests(sandbox.RequestFilter{Method: "POST", PathContains: "/api/v2/batch"})); n != 1 || len(batches) != 1 {
		t.Fatalf("%d batch requests, %d batch spans: want the three identifies in one", n, len(batches))
	}
	b := batches[0]
	tasksByID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range deliver {
		tasksByID[s.SpanContext().SpanID()] = s
	}
	parent, ok := tasksByID[b.Parent().SpanID()]
	if !ok || b.SpanContext().TraceID() != parent.SpanContext().TraceID() || b.SpanKind() != trace.SpanKindClient {
		t.Fatalf("the batch span's parent %s is no task's span", b.Parent().SpanID())
	}
	linked := map[trace.SpanID]int{}
	for _, l := range b.Links() {
		linked[l.SpanContext.SpanID()]++
		if s, ok := tasksByID[l.SpanContext.SpanID()]; !ok || s.SpanContext().TraceID() != l.SpanContext.TraceID() {
			t.Errorf("a link to %s/%s, no task's span", l.SpanContext.TraceID(), l.SpanContext.SpanID())
		}
	}
	if len(b.Links()) != 2 || linked[b.Parent().SpanID()] != 0 {
		t.Errorf("links %v, want one to each of the two other tasks", b.Links())
	}
	for id := range tasksByID {
		if id != b.Parent().SpanID() && linked[id] != 1 {
			t.Errorf("task span %s neither parent nor linked once", id)
		}
	}
	traces := map[trace.TraceID]bool{}
	for _, s := range deliver {
		traces[s.SpanContext().TraceID()] = true
	}
	if len(traces) != 3 {
		t.Errorf("the tasks' spans are in %d traces, want 3 (one per enqueue)", len(traces))
	}
}
