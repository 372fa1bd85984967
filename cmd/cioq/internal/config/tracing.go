package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/cioq/cioq/cmd/cioq/internal/otlp"
)

// The standard OpenTelemetry variables that decide whether traces are
// exported (package otlp reads the OTEL_EXPORTER_OTLP_* ones, headers
// and timeout for instance; the SDK reads OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...).
const (
	EnvOTELSDKDisabled          = "OTEL_SDK_DISABLED"
	EnvOTELTracesExporter       = "OTEL_TRACES_EXPORTER"
	EnvOTELEndpoint             = otlp.EnvEndpoint
	EnvOTELTracesEndpoint       = otlp.EnvTracesEndpoint
	EnvOTELProtocol             = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTELTracesProtocol       = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	otlpHTTPProtobuf            = "http/protobuf"
	tracingNeedsEndpointMessage = "an OTLP endpoint (" + EnvOTELEndpoint + " or " + EnvOTELTracesEndpoint + ")"
)

// Tracing reports whether the worker exports OpenTelemetry traces: only
// when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_TRACES_EXPORTER is unset or
// "otlp" and OTEL_SDK_DISABLED is not "true". Unset, nothing is exported
// and nothing is traced. The exporter speaks OTLP over HTTP
// (http/protobuf); another OTEL_EXPORTER_OTLP_PROTOCOL, or an exporter
// other than otlp or none, is an error naming the variable.
func Tracing(getenv func(string) string) (bool, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if strings.EqualFold(get(EnvOTELSDKDisabled), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(get(EnvOTELTracesExporter)); exp {
	case "none":
		return false, nil
	case "", "otlp":
	default:
		return false, fmt.Errorf("config: %s=%q: cioq exports traces with otlp (or none)", EnvOTELTracesExporter, exp)
	}
	if get(EnvOTELEndpoint) == "" && get(EnvOTELTracesEndpoint) == "" {
		if strings.EqualFold(get(EnvOTELTracesExporter), "otlp") {
			return false, fmt.Errorf("config: %s=otlp needs %s", EnvOTELTracesExporter, tracingNeedsEndpointMessage)
		}
		return false, nil
	}
	for _, k := range []string{EnvOTELTracesProtocol, EnvOTELProtocol} {
		if v := get(k); v != "" {
			if v != otlpHTTPProtobuf {
				return false, fmt.Errorf("config: %s=%q: cioq's exporter speaks %s", k, v, otlpHTTPProtobuf)
			}
			break
		}
	}
	return true, nil
}
