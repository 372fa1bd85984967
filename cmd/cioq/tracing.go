package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/cmd/cioq/internal/otlp"
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
	// cioq's exporter reads OTEL_EXPORTER_OTLP_* through getenv; the SDK
	// reads OTEL_BSP_*, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES from the process environment itself.
	exp, err := otlp.New(getenv)
	if err != nil {
		return nil, func() {}, configError(err)
	}
	// service and version() are defaults: OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES, detected later, override them.
	res, err := resource.New(context.Background(), resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version())), resource.WithFromEnv())
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES gives a partial resource;
		// its error could quote attribute values, so it is not logged.
		log.Warn("could not read all of the trace resource's attributes (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME)")
		if res == nil {
			res = resource.Default()
		}
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
