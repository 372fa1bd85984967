package otlp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewEndpoint(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, DefaultEndpoint},
		{map[string]string{EnvEndpoint: "http://collector:4318"}, "http://collector:4318/v1/traces"},
		{map[string]string{EnvEndpoint: "http://collector:4318/"}, "http://collector:4318/v1/traces"},
		{map[string]string{EnvEndpoint: " https://collector/otlp/ "}, "https://collector/otlp/v1/traces"},
		{map[string]string{EnvEndpoint: "https://collector/otlp"}, "https://collector/otlp/v1/traces"},
		{map[string]string{EnvTracesEndpoint: "http://collector:4318/custom"}, "http://collector:4318/custom"},
		{map[string]string{EnvTracesEndpoint: "http://collector:4318"}, "http://collector:4318"},
		{map[string]string{EnvTracesEndpoint: "https://t/x", EnvEndpoint: "http://general:4318"}, "https://t/x"},
	} {
		e, err := New(env(tc.env))
		if err != nil {
			t.Errorf("%v: %v", tc.env, err)
			continue
		}
		if e.endpoint != tc.want {
			t.Errorf("%v: endpoint %q, want %q", tc.env, e.endpoint, tc.want)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	e, err := New(env(map[string]string{EnvEndpoint: "http://c:4318"}))
	if err != nil {
		t.Fatal(err)
	}
	if e.timeout != DefaultTimeout || e.gzip || len(e.header) != 0 {
		t.Errorf("timeout %v gzip %v headers %v, want 10s, none, none", e.timeout, e.gzip, e.header)
	}
	e, err = New(env(map[string]string{EnvTimeout: "2500", EnvCompression: "gzip"}))
	if err != nil {
		t.Fatal(err)
	}
	if e.timeout != 2500*time.Millisecond || !e.gzip {
		t.Errorf("timeout %v gzip %v, want 2.5s and gzip", e.timeout, e.gzip)
	}
	e, err = New(env(map[string]string{EnvTimeout: "2500", EnvTracesTimeout: "100", EnvCompression: "gzip", EnvTracesCompression: "none"}))
	if err != nil {
		t.Fatal(err)
	}
	if e.timeout != 100*time.Millisecond || e.gzip {
		t.Errorf("timeout %v gzip %v, want the traces-specific 100ms and none", e.timeout, e.gzip)
	}
}

// TestNewErrors checks that a bad value is an error naming its variable
// and, for headers and endpoints, never quoting the value.
func TestNewErrors(t *testing.T) {
	const secret = "s3cr3t"
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, variable string
		env            map[string]string
	}{
		{"endpoint without scheme", EnvEndpoint, map[string]string{EnvEndpoint: "collector-" + secret + ":4318"}},
		{"endpoint ftp", EnvTracesEndpoint, map[string]string{EnvTracesEndpoint: "ftp://" + secret + "@collector/"}},
		{"endpoint no host", EnvEndpoint, map[string]string{EnvEndpoint: "http:///" + secret}},
		{"endpoint unparsable", EnvEndpoint, map[string]string{EnvEndpoint: "http://" + secret + "%zz"}},
		{"header without =", EnvHeaders, map[string]string{EnvHeaders: "api-key=" + secret + ",broken-" + secret}},
		{"header empty key", EnvTracesHeaders, map[string]string{EnvTracesHeaders: "=" + secret}},
		{"header bad key", EnvHeaders, map[string]string{EnvHeaders: "api key=" + secret}},
		{"header bad escape", EnvTracesHeaders, map[string]string{EnvTracesHeaders: "api-key=%zz" + secret}},
		{"header newline", EnvHeaders, map[string]string{EnvHeaders: "api-key=" + secret + "%0AX-Evil: 1"}},
		{"timeout not a number", EnvTimeout, map[string]string{EnvTimeout: "10s"}},
		{"timeout negative", EnvTracesTimeout, map[string]string{EnvTracesTimeout: "-5", EnvTimeout: "100"}},
		{"timeout zero", EnvTimeout, map[string]string{EnvTimeout: "0"}},
		{"compression", EnvTracesCompression, map[string]string{EnvTracesCompression: "zstd"}},
		{"CA missing", EnvCertificate, map[string]string{EnvCertificate: filepath.Join(dir, "missing.pem")}},
		{"CA not PEM", EnvTracesCertificate, map[string]string{EnvTracesCertificate: notPEM}},
		{"client cert without key", EnvClientCertificate, map[string]string{EnvClientCertificate: notPEM}},
		{"client key without cert", EnvTracesClientKey, map[string]string{EnvTracesClientKey: notPEM}},
		{"client pair unreadable", EnvClientKey, map[string]string{EnvClientCertificate: notPEM, EnvClientKey: notPEM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(env(tc.env))
			if err == nil {
				t.Fatalf("no error (endpoint %q)", e.endpoint)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.variable) {
				t.Errorf("error %q does not name %s", msg, tc.variable)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q quotes the value", msg)
			}
		})
	}
}

func TestParseHeadersEmptyEntries(t *testing.T) {
	e, err := New(env(map[string]string{EnvHeaders: ",a=1,,b=x%3Dy,", EnvTracesHeaders: " "}))
	if err != nil {
		t.Fatal(err)
	}
	if e.header.Get("A") != "1" || e.header.Get("B") != "x=y" || len(e.header) != 2 {
		t.Errorf("headers %v", e.header)
	}
}
