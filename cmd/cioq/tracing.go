package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
)

// newTracerProvider returns the OpenTelemetry tracer provider of a
// process named service ("cioq-worker"), exporting over OTLP/HTTP as the
// standard OTEL_* variables say, and the function that flushes and stops
// it; nil and a no-op when config.Tracing says traces are off.
func newTracerProvider(getenv func(string) string, service string, log *slog.Logger) (trace.TracerProvider, func(), error) {
	on, err := config.Tracing(getenv)
	if err != nil || !on {
		return nil, func() {}, err
	}
	// The exporter and the SDK read OTEL_EXPORTER_OTLP_*, OTEL_BSP_*,
	// OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// from the process environment themselves.
	exp, err := otlptracehttp.New(context.Background())
	if err != nil {
		return nil, func() {}, configError(err)
	}
	res, err := resource.Merge(resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version())), resource.Default())
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("exporting traces over OTLP (OTEL_* variables)")
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("could not flush the last traces", "error", err.Error())
		}
	}, nil
}
