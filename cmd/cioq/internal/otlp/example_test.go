package otlp_test

import (
	"context"
	"log"
	"os"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cioq/cioq/cmd/cioq/internal/otlp"
)

// The exporter reads OTEL_EXPORTER_OTLP_* through the getenv it is
// given; the SDK's batch span processor calls it.
func Example() {
	exp, err := otlp.New(os.Getenv)
	if err != nil {
		log.Fatal(err) // a bad OTEL_EXPORTER_OTLP_* value, named
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	_, span := tp.Tracer("example").Start(context.Background(), "work")
	span.End()
}
