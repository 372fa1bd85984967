package otlp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// The standard variables New reads
// (https://opentelemetry.io/docs/specs/otel/protocol/exporter/). Each
// OTEL_EXPORTER_OTLP_TRACES_* variable, when set, takes precedence over
// its OTEL_EXPORTER_OTLP_* counterpart; headers are merged instead, the
// traces-specific ones overriding the general ones key by key.
const (
	EnvEndpoint                = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint          = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvHeaders                 = "OTEL_EXPORTER_OTLP_HEADERS"
	EnvTracesHeaders           = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	EnvTimeout                 = "OTEL_EXPORTER_OTLP_TIMEOUT"
	EnvTracesTimeout           = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
	EnvCompression             = "OTEL_EXPORTER_OTLP_COMPRESSION"
	EnvTracesCompression       = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
	EnvCertificate             = "OTEL_EXPORTER_OTLP_CERTIFICATE"
	EnvTracesCertificate       = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
	EnvClientCertificate       = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
	EnvTracesClientCertificate = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
	EnvClientKey               = "OTEL_EXPORTER_OTLP_CLIENT_KEY"
	EnvTracesClientKey         = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"
)

// DefaultEndpoint is where spans go when neither endpoint variable is set.
const DefaultEndpoint = "http://localhost:4318/v1/traces"

// DefaultTimeout bounds one export (its retries included) when neither
// timeout variable is set.
const DefaultTimeout = 10 * time.Second

// defaultRetryInitial is the first wait before retrying a throttled or
// unavailable export; later waits grow exponentially.
const defaultRetryInitial = 500 * time.Millisecond

// New returns an exporter configured by the OTEL_EXPORTER_OTLP_* variables
// as getenv (os.Getenv when nil) reports them: the endpoint, headers,
// timeout, compression (gzip or none), CA certificate and client
// certificate and key. A value it cannot use is an error naming its
// variable; a header's value (an API key, often) is never in an error.
func New(getenv func(string) string) (*Exporter, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	// pick returns the traces-specific variable when it is set, else the
	// general one, and the name of the one it returns.
	pick := func(traces, general string) (string, string) {
		if v := get(traces); v != "" {
			return v, traces
		}
		return get(general), general
	}

	e := &Exporter{timeout: DefaultTimeout, retryInitial: defaultRetryInitial, header: make(http.Header)}

	endpoint, err := endpointURL(get)
	if err != nil {
		return nil, err
	}
	e.endpoint = endpoint

	for _, k := range []string{EnvHeaders, EnvTracesHeaders} {
		if err := parseHeaders(k, getenv(k), e.header); err != nil {
			return nil, err
		}
	}

	if v, k := pick(EnvTracesTimeout, EnvTimeout); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 || ms > int64(24*time.Hour/time.Millisecond) {
			return nil, fmt.Errorf("otlp: %s=%q: want a positive number of milliseconds", k, v)
		}
		e.timeout = time.Duration(ms) * time.Millisecond
	}

	switch v, k := pick(EnvTracesCompression, EnvCompression); strings.ToLower(v) {
	case "", "none":
	case "gzip":
		e.gzip = true
	default:
		return nil, fmt.Errorf("otlp: %s=%q: want gzip or none", k, v)
	}

	tlsConf, err := tlsConfig(pick)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConf != nil {
		tr.TLSClientConfig = tlsConf
	}
	e.client = &http.Client{Transport: tr}
	return e, nil
}

// endpointURL returns the URL spans are POSTed to:
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else
// OTEL_EXPORTER_OTLP_ENDPOINT with v1/traces appended to its path, else
// DefaultEndpoint.
func endpointURL(get func(string) string) (string, error) {
	k, v, appendPath := EnvTracesEndpoint, get(EnvTracesEndpoint), false
	if v == "" {
		k, v, appendPath = EnvEndpoint, get(EnvEndpoint), true
	}
	if v == "" {
		return DefaultEndpoint, nil
	}
	// The value is left out of errors: a URL may carry credentials.
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("otlp: %s: want an http or https URL", k)
	}
	if appendPath {
		u = u.JoinPath("v1", "traces")
	}
	return u.String(), nil
}

// parseHeaders adds the headers of value, the value of the variable
// named env ("key1=value1,key2=value2", values URL-encoded), to h,
// replacing what h had for those keys. Errors name env and the entry's
// position, never its contents.
func parseHeaders(env, value string, h http.Header) error {
	if strings.TrimSpace(value) == "" {
		return nil
	}
	set := make(http.Header)
	for i, entry := range strings.Split(value, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		k = strings.TrimSpace(k)
		if !ok || !validHeaderKey(k) {
			return fmt.Errorf("otlp: %s: entry %d is not key=value with a valid header name", env, i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil || !validHeaderValue(dv) {
			return fmt.Errorf("otlp: %s: the value of entry %d is not a valid URL-encoded header value", env, i+1)
		}
		set.Add(k, dv)
	}
	for k, vs := range set {
		h[k] = vs
	}
	return nil
}

// validHeaderKey reports whether k is an HTTP token (RFC 9110).
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// tlsConfig returns the TLS configuration the certificate variables ask
// for, nil when none is set.
func tlsConfig(pick func(traces, general string) (string, string)) (*tls.Config, error) {
	ca, caEnv := pick(EnvTracesCertificate, EnvCertificate)
	cert, certEnv := pick(EnvTracesClientCertificate, EnvClientCertificate)
	key, keyEnv := pick(EnvTracesClientKey, EnvClientKey)
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("otlp: %s: %w", caEnv, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("otlp: %s: no PEM certificate in %s", caEnv, ca)
		}
		conf.RootCAs = pool
	}
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("otlp: %s and %s: %w", certEnv, keyEnv, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	case cert != "":
		return nil, fmt.Errorf("otlp: %s needs %s", certEnv, keyEnv)
	case key != "":
		return nil, fmt.Errorf("otlp: %s needs %s", keyEnv, certEnv)
	}
	return conf, nil
}

// errShutdown is what ExportSpans returns once Shutdown was called.
var errShutdown = errors.New("otlp: the exporter is shut down")
