// Package otlp is cioq's OpenTelemetry span exporter: it sends the spans
// the OpenTelemetry SDK (go.opentelemetry.io/otel/sdk/trace) hands it to
// an OTLP collector as OTLP/HTTP protobuf (an ExportTraceServiceRequest
// POSTed to /v1/traces), configured by the standard
// OTEL_EXPORTER_OTLP_* variables.
//
// It exists because the upstream exporter,
// go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp, links
// google.golang.org/grpc (with grpc-gateway and genproto) into every
// binary although it speaks only HTTP (open-telemetry/opentelemetry-go
// issues #2579 and #8385). In the cioq binary that cost 66 packages,
// about 1 MB of machine code (and as much again of tables) and about
// 1.3 MiB of the worker's resident set. This package encodes the request
// by hand with google.golang.org/protobuf/encoding/protowire, so it needs
// neither gRPC nor the generated OTLP types (go.opentelemetry.io/proto/otlp,
// which imports gRPC too).
//
// It implements only what cioq uses: OTLP over HTTP with protobuf
// (http/protobuf), optional gzip, TLS with a custom CA and a client
// certificate, and retries of throttled or unavailable exports.
package otlp
