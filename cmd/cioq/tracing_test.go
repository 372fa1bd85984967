package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTracerProviderExportsThroughGetenv checks that the worker's tracer
// provider exports to the collector the getenv it is given names (not
// the process environment), with its service name, and that a bad
// OTEL_EXPORTER_OTLP_* value is a configuration error that keeps header
// values out of its message.
func TestTracerProviderExportsThroughGetenv(t *testing.T) {
	got := make(chan *tracepb.TracesData, 10)
	auth := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		td := new(tracepb.TracesData) // the same wire format as ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, td) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		auth <- r.Header.Get("Authorization")
		got <- td
	}))
	defer srv.Close()
	vars := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
		"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20t0ken",
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tp, stop, err := newTracerProvider(func(k string) string { return vars[k] }, "cioq-worker", log)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "deliver")
	span.End()
	stop() // flushes the batch
	select {
	case td := <-got:
		rs := td.GetResourceSpans()
		if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || rs[0].GetScopeSpans()[0].GetSpans()[0].GetName() != "deliver" {
			t.Fatalf("exported %v", td)
		}
		if service := serviceName(td); service != "cioq-worker" {
			t.Errorf("service.name %q", service)
		}
		if a := <-auth; a != "Bearer t0ken" {
			t.Errorf("Authorization %q", a)
		}
	default:
		t.Fatal("nothing exported by the time the provider was stopped")
	}

	// OTEL_SERVICE_NAME, read by the SDK from the process environment,
	// overrides the default service name.
	t.Setenv("OTEL_SERVICE_NAME", "my-worker")
	tp, stop, err = newTracerProvider(func(k string) string { return vars[k] }, "cioq-worker", log)
	if err != nil {
		t.Fatal(err)
	}
	_, span = tp.Tracer("test").Start(context.Background(), "deliver")
	span.End()
	stop()
	<-auth
	if got := serviceName(<-got); got != "my-worker" {
		t.Errorf("service.name %q with OTEL_SERVICE_NAME=my-worker", got)
	}

	vars["OTEL_EXPORTER_OTLP_HEADERS"] = "Authorization=Bearer%zzt0ken"
	_, _, err = newTracerProvider(func(k string) string { return vars[k] }, "cioq-worker", log)
	var uerr *usageError
	if !errors.As(err, &uerr) || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") || strings.Contains(err.Error(), "t0ken") {
		t.Errorf("err %v, want a configuration error naming the variable without its value", err)
	}
}

// serviceName returns the service.name of the first resource in td.
func serviceName(td *tracepb.TracesData) string {
	for _, kv := range td.GetResourceSpans()[0].GetResource().GetAttributes() {
		if kv.GetKey() == "service.name" {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}
