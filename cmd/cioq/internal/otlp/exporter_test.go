package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// received is one request the test collector got.
type received struct {
	header http.Header
	body   []byte // after gzip decoding
	// req is the ExportTraceServiceRequest, decoded as a TracesData:
	// the two messages are the same on the wire (repeated ResourceSpans
	// resource_spans = 1), and the collector package would bring gRPC
	// into the module's requirements.
	req *tracepb.TracesData
	err error // decoding error
}

// collector is an OTLP/HTTP peer: it records every request and answers
// with the next of its scripted responses (200 once they run out).
type collector struct {
	srv *httptest.Server

	mu        sync.Mutex
	requests  []received
	responses []response
	got       chan struct{}
}

type response struct {
	status int
	header map[string]string
	body   string
}

func newCollector(t *testing.T, responses ...response) *collector {
	c := &collector{responses: responses, got: make(chan struct{}, 100)}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	return c
}

func newTLSCollector(t *testing.T, conf *tls.Config) *collector {
	c := &collector{got: make(chan struct{}, 100)}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.srv.TLS = conf
	c.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	rec := received{header: r.Header.Clone()}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			rec.err = err
		} else {
			body = zr
		}
	}
	if rec.err == nil {
		rec.body, rec.err = io.ReadAll(body)
	}
	if rec.err == nil {
		rec.req = new(tracepb.TracesData)
		rec.err = proto.Unmarshal(rec.body, rec.req)
	}
	c.mu.Lock()
	c.requests = append(c.requests, rec)
	resp := response{status: http.StatusOK}
	if len(c.responses) > 0 {
		resp, c.responses = c.responses[0], c.responses[1:]
	}
	c.mu.Unlock()
	for k, v := range resp.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.status)
	_, _ = io.WriteString(w, resp.body)
	c.got <- struct{}{}
}

// all returns the requests so far, failing t on any it could not decode.
func (c *collector) all(t *testing.T) []received {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.requests {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
	}
	return append([]received(nil), c.requests...)
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func newExporter(t *testing.T, vars map[string]string) *Exporter {
	t.Helper()
	e, err := New(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	e.retryInitial = time.Millisecond
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

// recordedSpans returns n ended spans of a real tracer provider.
func recordedSpans(t *testing.T, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer("test")
	for i := range n {
		_, s := tr.Start(context.Background(), "span-"+string(rune('a'+i)))
		s.End()
	}
	return rec.Ended()
}

func TestExportEncodesSpans(t *testing.T) {
	c := newCollector(t)
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL})

	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "cioq-test"), attribute.Int("worker.id", 7))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	tr := tp.Tracer("github.com/cioq/cioq/worker", trace.WithInstrumentationVersion("1.2.3"),
		trace.WithSchemaURL("https://opentelemetry.io/schemas/1.30.0"),
		trace.WithInstrumentationAttributes(attribute.Bool("scope.attr", true)))
	other := tp.Tracer("github.com/cioq/cioq/producer")

	remoteTS, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 1, 2, 3, 5, 8, 13, 21},
		TraceFlags: trace.FlagsSampled,
		TraceState: remoteTS,
		Remote:     true,
	})
	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xaa, 15: 1}, SpanID: trace.SpanID{0xbb, 7: 1}, TraceState: remoteTS, Remote: true,
	})

	t0 := time.Date(2026, 12, 6, 12, 0, 0, 123456789, time.UTC)
	ctx, parent := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "process task",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(t0))
	_, child := tr.Start(ctx, "POST /api/v2/entity", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(t0.Add(time.Millisecond)),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("link.why", "batch")}}),
		trace.WithAttributes(
			attribute.Bool("a.bool", false),
			attribute.Int64("a.int", -42),
			attribute.Float64("a.float", 2.5),
			attribute.String("a.string", ""),
			attribute.BoolSlice("a.bools", []bool{true, false}),
			attribute.Int64Slice("a.ints", []int64{1, -2}),
			attribute.Float64Slice("a.floats", []float64{0.5}),
			attribute.StringSlice("a.strings", []string{"x", "y"}),
			attribute.ByteSlice("a.bytes", []byte{0, 1, 0xff}),
			attribute.Slice("a.slice", attribute.StringValue("s"), attribute.Int64Value(3)),
			attribute.Map("a.map", attribute.String("k", "v"), attribute.Map("inner", attribute.Bool("deep", true))),
			attribute.KeyValue{Key: "a.empty"},
		))
	child.AddEvent("retrying", trace.WithTimestamp(t0.Add(2*time.Millisecond)), trace.WithAttributes(attribute.Int("attempt", 2)))
	child.SetStatus(codes.Error, "503 from Customer.io")
	child.End(trace.WithTimestamp(t0.Add(3 * time.Millisecond)))
	parent.SetStatus(codes.Ok, "")
	parent.End(trace.WithTimestamp(t0.Add(4 * time.Millisecond)))
	_, third := other.Start(context.Background(), "enqueue", trace.WithSpanKind(trace.SpanKindProducer))
	third.End()

	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := c.all(t)
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	h := reqs[0].header
	if got := h.Get("Content-Type"); got != "application/x-protobuf" {
		t.Errorf("Content-Type %q", got)
	}
	if got := h.Get("Content-Encoding"); got != "" {
		t.Errorf("Content-Encoding %q without compression", got)
	}

	rss := reqs[0].req.GetResourceSpans()
	if len(rss) != 1 {
		t.Fatalf("%d ResourceSpans, want 1 (one resource)", len(rss))
	}
	rs := rss[0]
	if rs.GetSchemaUrl() != "https://opentelemetry.io/schemas/1.26.0" {
		t.Errorf("resource schema URL %q", rs.GetSchemaUrl())
	}
	resAttrs := attrs(rs.GetResource().GetAttributes())
	if got := resAttrs["service.name"].GetStringValue(); got != "cioq-test" {
		t.Errorf("service.name %q", got)
	}
	if got := resAttrs["worker.id"].GetIntValue(); got != 7 {
		t.Errorf("worker.id %d", got)
	}
	if len(rs.GetScopeSpans()) != 2 {
		t.Fatalf("%d ScopeSpans, want 2 (two tracers)", len(rs.GetScopeSpans()))
	}
	ss := rs.GetScopeSpans()[0]
	if sc := ss.GetScope(); sc.GetName() != "github.com/cioq/cioq/worker" || sc.GetVersion() != "1.2.3" ||
		!attrs(sc.GetAttributes())["scope.attr"].GetBoolValue() {
		t.Errorf("scope %v", sc)
	}
	if ss.GetSchemaUrl() != "https://opentelemetry.io/schemas/1.30.0" {
		t.Errorf("scope schema URL %q", ss.GetSchemaUrl())
	}
	if sc := rs.GetScopeSpans()[1]; sc.GetScope().GetName() != "github.com/cioq/cioq/producer" ||
		len(sc.GetSpans()) != 1 || sc.GetSpans()[0].GetName() != "enqueue" || sc.GetSpans()[0].GetKind() != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Errorf("second scope %v", sc)
	}

	spans := ss.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans in the first scope, want 2", len(spans))
	}
	c0, p0 := spans[0], spans[1] // the child ended first
	pc, cc := parent.SpanContext(), child.SpanContext()
	tid, psid, csid := pc.TraceID(), pc.SpanID(), cc.SpanID()

	if p0.GetName() != "process task" || p0.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("parent %q kind %v", p0.GetName(), p0.GetKind())
	}
	if rtid := remote.TraceID(); tid != rtid || !bytes.Equal(p0.GetTraceId(), rtid[:]) {
		t.Errorf("parent trace id %x", p0.GetTraceId())
	}
	rsid := remote.SpanID()
	if !bytes.Equal(p0.GetSpanId(), psid[:]) || !bytes.Equal(p0.GetParentSpanId(), rsid[:]) {
		t.Errorf("parent span id %x parent %x, want %x and %x", p0.GetSpanId(), p0.GetParentSpanId(), psid[:], rsid[:])
	}
	if p0.GetTraceState() != "vendor=abc" {
		t.Errorf("parent trace state %q", p0.GetTraceState())
	}
	if p0.GetFlags() != 0x301 {
		t.Errorf("parent flags %#x, want sampled, has-is-remote, is-remote", p0.GetFlags())
	}
	if p0.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_OK {
		t.Errorf("parent status %v", p0.GetStatus())
	}
	if p0.GetStartTimeUnixNano() != uint64(t0.UnixNano()) || p0.GetEndTimeUnixNano() != uint64(t0.Add(4*time.Millisecond).UnixNano()) {
		t.Errorf("parent times %d..%d", p0.GetStartTimeUnixNano(), p0.GetEndTimeUnixNano())
	}

	if c0.GetName() != "POST /api/v2/entity" || c0.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("child %q kind %v", c0.GetName(), c0.GetKind())
	}
	if !bytes.Equal(c0.GetTraceId(), tid[:]) || !bytes.Equal(c0.GetSpanId(), csid[:]) || !bytes.Equal(c0.GetParentSpanId(), psid[:]) {
		t.Errorf("child ids %x %x parent %x", c0.GetTraceId(), c0.GetSpanId(), c0.GetParentSpanId())
	}
	if c0.GetFlags() != 0x101 {
		t.Errorf("child flags %#x, want sampled, has-is-remote (local parent)", c0.GetFlags())
	}
	if c0.GetStartTimeUnixNano() != uint64(t0.Add(time.Millisecond).UnixNano()) || c0.GetEndTimeUnixNano() != uint64(t0.Add(3*time.Millisecond).UnixNano()) {
		t.Errorf("child times %d..%d", c0.GetStartTimeUnixNano(), c0.GetEndTimeUnixNano())
	}
	if st := c0.GetStatus(); st.GetCode() != tracepb.Status_STATUS_CODE_ERROR || st.GetMessage() != "503 from Customer.io" {
		t.Errorf("child status %v", st)
	}

	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	i64 := func(i int64) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}
	}
	dbl := func(f float64) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: f}}
	}
	boo := func(b bool) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: b}}
	}
	arr := func(vs ...*commonpb.AnyValue) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}
	}
	kvl := func(kvs ...*commonpb.KeyValue) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: kvs}}}
	}
	want := map[string]*commonpb.AnyValue{
		"a.bool":    boo(false),
		"a.int":     i64(-42),
		"a.float":   dbl(2.5),
		"a.string":  str(""),
		"a.bools":   arr(boo(true), boo(false)),
		"a.ints":    arr(i64(1), i64(-2)),
		"a.floats":  arr(dbl(0.5)),
		"a.strings": arr(str("x"), str("y")),
		"a.bytes":   {Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 1, 0xff}}},
		"a.slice":   arr(str("s"), i64(3)),
		"a.map": kvl(&commonpb.KeyValue{Key: "inner", Value: kvl(&commonpb.KeyValue{Key: "deep", Value: boo(true)})},
			&commonpb.KeyValue{Key: "k", Value: str("v")}),
		"a.empty": {},
	}
	got := attrs(c0.GetAttributes())
	if len(got) != len(want) {
		t.Errorf("%d attributes, want %d: %v", len(got), len(want), c0.GetAttributes())
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("attribute %s missing", k)
			continue
		}
		if !proto.Equal(g, w) {
			t.Errorf("attribute %s = %v, want %v", k, g, w)
		}
	}
	// A oneof field holding its zero value must still be set.
	if _, ok := got["a.bool"].GetValue().(*commonpb.AnyValue_BoolValue); !ok {
		t.Errorf("a.bool has no bool_value: %v", got["a.bool"])
	}
	if got["a.empty"].GetValue() != nil {
		t.Errorf("a.empty has a value: %v", got["a.empty"])
	}

	if len(c0.GetEvents()) != 1 {
		t.Fatalf("%d events, want 1", len(c0.GetEvents()))
	}
	ev := c0.GetEvents()[0]
	if ev.GetName() != "retrying" || ev.GetTimeUnixNano() != uint64(t0.Add(2*time.Millisecond).UnixNano()) ||
		attrs(ev.GetAttributes())["attempt"].GetIntValue() != 2 {
		t.Errorf("event %v", ev)
	}
	if len(c0.GetLinks()) != 1 {
		t.Fatalf("%d links, want 1", len(c0.GetLinks()))
	}
	l := c0.GetLinks()[0]
	ltid, lsid := linked.TraceID(), linked.SpanID()
	if !bytes.Equal(l.GetTraceId(), ltid[:]) || !bytes.Equal(l.GetSpanId(), lsid[:]) || l.GetTraceState() != "vendor=abc" ||
		attrs(l.GetAttributes())["link.why"].GetStringValue() != "batch" || l.GetFlags() != 0x300 {
		t.Errorf("link %v", l)
	}
}

func attrs(kvs []*commonpb.KeyValue) map[string]*commonpb.AnyValue {
	m := make(map[string]*commonpb.AnyValue, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}

func TestExportDroppedCounts(t *testing.T) {
	c := newCollector(t)
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
		AttributeCountLimit: 1, EventCountLimit: 1, LinkCountLimit: 1,
		AttributePerEventCountLimit: 1, AttributePerLinkCountLimit: 1, AttributeValueLengthLimit: -1,
	}))
	link := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	l := trace.Link{SpanContext: link, Attributes: []attribute.KeyValue{attribute.Int("a", 1), attribute.Int("b", 2)}}
	_, s := tp.Tracer("t").Start(context.Background(), "limited", trace.WithLinks(l, l, l),
		trace.WithAttributes(attribute.Int("a", 1), attribute.Int("b", 2), attribute.Int("c", 3)))
	s.AddEvent("e1", trace.WithAttributes(attribute.Int("a", 1), attribute.Int("b", 2)))
	s.AddEvent("e2")
	s.End()
	reqs := c.all(t)
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	sp := reqs[0].req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()[0]
	if sp.GetDroppedAttributesCount() != 2 || sp.GetDroppedEventsCount() != 1 || sp.GetDroppedLinksCount() != 2 {
		t.Errorf("dropped attributes %d events %d links %d, want 2, 1, 2",
			sp.GetDroppedAttributesCount(), sp.GetDroppedEventsCount(), sp.GetDroppedLinksCount())
	}
	if n := sp.GetLinks()[0].GetDroppedAttributesCount(); n != 1 {
		t.Errorf("link dropped attributes %d, want 1", n)
	}
	// The SDK keeps the last events; e2 has no attributes to drop.
	if ev := sp.GetEvents()[0]; ev.GetName() != "e2" || ev.GetDroppedAttributesCount() != 0 {
		t.Errorf("event %v", ev)
	}
	if sp.GetStatus() == nil || sp.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("status %v, want unset", sp.GetStatus())
	}
}

func TestExportGroupsEqualResources(t *testing.T) {
	c := newCollector(t)
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL})
	var spans []sdktrace.ReadOnlySpan
	for _, name := range []string{"a", "b", "a"} {
		rec := tracetest.NewSpanRecorder()
		// A new but equal resource for each "a" span.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))))
		_, s := tp.Tracer("t").Start(context.Background(), "span of "+name)
		s.End()
		spans = append(spans, rec.Ended()...)
	}
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	rss := c.all(t)[0].req.GetResourceSpans()
	if len(rss) != 2 {
		t.Fatalf("%d ResourceSpans, want 2", len(rss))
	}
	for i, want := range []string{"a", "b"} {
		rs := rss[i]
		n := 1
		if want == "a" {
			n = 2
		}
		if got := attrs(rs.GetResource().GetAttributes())["service.name"].GetStringValue(); got != want ||
			len(rs.GetScopeSpans()) != 1 || len(rs.GetScopeSpans()[0].GetSpans()) != n {
			t.Errorf("ResourceSpans %d: service %q, %v", i, got, rs.GetScopeSpans())
		}
	}
}

func TestExportHeaders(t *testing.T) {
	c := newCollector(t)
	exp := newExporter(t, map[string]string{
		EnvEndpoint:      c.srv.URL,
		EnvHeaders:       " api-key = general%20key , X-Tenant=acme%2Cinc,x-multi=1",
		EnvTracesHeaders: "API-Key=traces-key",
	})
	if err := exp.ExportSpans(context.Background(), recordedSpans(t, 1)); err != nil {
		t.Fatal(err)
	}
	h := c.all(t)[0].header
	if got := h.Values("Api-Key"); len(got) != 1 || got[0] != "traces-key" {
		t.Errorf("Api-Key %q, want the traces-specific value only", got)
	}
	if got := h.Get("X-Tenant"); got != "acme,inc" {
		t.Errorf("X-Tenant %q, want URL-decoded acme,inc", got)
	}
	if got := h.Get("X-Multi"); got != "1" {
		t.Errorf("X-Multi %q", got)
	}
	if got := h.Get("Content-Type"); got != "application/x-protobuf" {
		t.Errorf("Content-Type %q", got)
	}
}

func TestExportGzip(t *testing.T) {
	c := newCollector(t)
	exp := newExporter(t, map[string]string{EnvTracesEndpoint: c.srv.URL + "/v1/traces", EnvTracesCompression: "GZIP", EnvCompression: "none"})
	if err := exp.ExportSpans(context.Background(), recordedSpans(t, 3)); err != nil {
		t.Fatal(err)
	}
	r := c.all(t)[0]
	if r.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("Content-Encoding %q", r.header.Get("Content-Encoding"))
	}
	if n := len(r.req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()); n != 3 {
		t.Errorf("%d spans, want 3", n)
	}
}

func TestExportRetries(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp response
	}{
		{"503 with Retry-After 0", response{status: 503, header: map[string]string{"Retry-After": "0"}}},
		{"429 without Retry-After", response{status: 429}},
		{"502", response{status: 502, header: map[string]string{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}}},
		{"504 twice", response{status: 504}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := []response{tc.resp}
			if strings.HasSuffix(tc.name, "twice") {
				script = append(script, tc.resp)
			}
			c := newCollector(t, script...)
			exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL})
			if err := exp.ExportSpans(context.Background(), recordedSpans(t, 1)); err != nil {
				t.Fatal(err)
			}
			reqs := c.all(t)
			if len(reqs) != len(script)+1 {
				t.Fatalf("%d requests, want %d", len(reqs), len(script)+1)
			}
			// Every attempt carries the same span; only the last was accepted.
			for _, r := range reqs {
				if !bytes.Equal(r.body, reqs[0].body) {
					t.Error("a retry sent another body")
				}
			}
		})
	}
}

func TestExportRetriesUntilTimeout(t *testing.T) {
	var script []response
	for range 1000 {
		script = append(script, response{status: 503})
	}
	c := newCollector(t, script...)
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL, EnvTracesTimeout: "300", EnvTimeout: "60000"})
	start := time.Now()
	err := exp.ExportSpans(context.Background(), recordedSpans(t, 1))
	if err == nil || !strings.Contains(err.Error(), "503") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the 503 and the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v, want about the 300 ms timeout", d)
	}
	if n := len(c.all(t)); n < 2 {
		t.Errorf("%d requests, want retries", n)
	}
}

func TestExportRetryAfterBeyondTimeout(t *testing.T) {
	c := newCollector(t, response{status: 429, header: map[string]string{"Retry-After": "3600"}})
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL, EnvTimeout: "2000"})
	start := time.Now()
	err := exp.ExportSpans(context.Background(), recordedSpans(t, 1))
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("err %v, want the 429", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("waited %v for a retry that cannot happen before the timeout", d)
	}
	if n := len(c.all(t)); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestExportRejected(t *testing.T) {
	long := strings.Repeat("x", 5000)
	c := newCollector(t, response{status: 400, body: "bad span: " + long})
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL, EnvHeaders: "api-key=hunter2"})
	err := exp.ExportSpans(context.Background(), recordedSpans(t, 1))
	if err == nil {
		t.Fatal("no error for a 400")
	}
	msg := err.Error()
	if !strings.Contains(msg, "400") || !strings.Contains(msg, "bad span: xxx") {
		t.Errorf("error %q, want the status and the body's start", msg)
	}
	if len(msg) > 400 {
		t.Errorf("error of %d bytes quotes too much of the body", len(msg))
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error %q has a header value", msg)
	}
	if n := len(c.all(t)); n != 1 {
		t.Errorf("%d requests, want 1 (400 is not retried)", n)
	}
}

func TestExportCanceledContext(t *testing.T) {
	c := newCollector(t, response{status: 503})
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL})
	// A retry well inside the export's timeout, so the exporter waits for
	// it (a retry past the timeout would fail the export at once).
	exp.timeout, exp.retryInitial = 24*time.Hour, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- exp.ExportSpans(ctx, recordedSpans(t, 1)) }()
	<-c.got // the first attempt was answered 503: the exporter waits an hour to retry
	cancel()
	// The cancel ends the wait (or, if the answer was still on its way,
	// the request).
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestShutdown(t *testing.T) {
	c := newCollector(t)
	exp := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL})
	spans := recordedSpans(t, 1)
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := exp.ExportSpans(context.Background(), spans); err == nil {
		t.Error("ExportSpans after Shutdown returned no error")
	}
	if n := len(c.all(t)); n != 1 {
		t.Errorf("%d requests, want only the one before Shutdown", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := exp.Shutdown(ctx); err == nil {
		t.Error("Shutdown with a done context returned no error")
	}
}

func TestExportTLS(t *testing.T) {
	dir := t.TempDir()
	clientCert, clientKey, clientPool := selfSigned(t, dir, "client")
	c := newTLSCollector(t, &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool})
	ca := filepath.Join(dir, "collector.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	// Without a client certificate the collector refuses the connection.
	noClient := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL, EnvCertificate: ca, EnvTimeout: "300"})
	if err := noClient.ExportSpans(context.Background(), recordedSpans(t, 1)); err == nil {
		t.Error("exported without the client certificate the collector requires")
	}
	// Without the CA the collector's certificate is not trusted.
	noCA := newExporter(t, map[string]string{EnvEndpoint: c.srv.URL, EnvClientCertificate: clientCert, EnvClientKey: clientKey})
	if err := noCA.ExportSpans(context.Background(), recordedSpans(t, 1)); err == nil {
		t.Error("exported to a collector whose certificate is not trusted")
	}

	exp := newExporter(t, map[string]string{
		EnvEndpoint:                c.srv.URL,
		EnvTracesCertificate:       ca,
		EnvCertificate:             filepath.Join(dir, "missing.pem"),
		EnvTracesClientCertificate: clientCert,
		EnvTracesClientKey:         clientKey,
	})
	if err := exp.ExportSpans(context.Background(), recordedSpans(t, 1)); err != nil {
		t.Fatal(err)
	}
	if n := len(c.all(t)); n != 1 {
		t.Errorf("%d requests arrived, want 1", n)
	}
}

// selfSigned writes a self-signed certificate and its key to dir and
// returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
