package config

import (
	"strings"
	"testing"
)

func TestTracing(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		on      bool
		wantErr string
	}{
		{env: nil},
		{env: map[string]string{EnvOTELEndpoint: "http://collector:4318"}, on: true},
		{env: map[string]string{EnvOTELTracesEndpoint: "http://collector:4318/v1/traces", EnvOTELTracesExporter: "otlp"}, on: true},
		{env: map[string]string{EnvOTELEndpoint: "http://collector:4318", EnvOTELSDKDisabled: "true"}},
		{env: map[string]string{EnvOTELEndpoint: "http://collector:4318", EnvOTELTracesExporter: "none"}},
		{env: map[string]string{EnvOTELEndpoint: "http://collector:4318", EnvOTELProtocol: "http/protobuf"}, on: true},
		{env: map[string]string{EnvOTELEndpoint: "http://collector:4317", EnvOTELProtocol: "grpc"}, wantErr: EnvOTELProtocol},
		{env: map[string]string{EnvOTELEndpoint: "x", EnvOTELTracesExporter: "zipkin"}, wantErr: EnvOTELTracesExporter},
		{env: map[string]string{EnvOTELTracesExporter: "otlp"}, wantErr: EnvOTELEndpoint},
	} {
		on, err := Tracing(env(tc.env))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: %v, want an error naming %s", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil || on != tc.on {
			t.Errorf("%v: %v %v, want %v", tc.env, on, err, tc.on)
		}
	}
}
