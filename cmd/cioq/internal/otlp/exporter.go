package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Exporter sends spans to an OTLP collector over HTTP as protobuf. It
// implements go.opentelemetry.io/otel/sdk/trace.SpanExporter; give it to
// the SDK's batch span processor (sdktrace.WithBatcher), which calls it
// from one goroutine at a time. Make one with New.
type Exporter struct {
	endpoint string
	header   http.Header
	timeout  time.Duration
	gzip     bool
	client   *http.Client

	// retryInitial is the first wait before retrying a throttled or
	// unavailable export (tests shorten it).
	retryInitial time.Duration

	stopped atomic.Bool
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// maxErrorBody is how much of a rejecting response's body an error quotes.
const maxErrorBody = 200

// ExportSpans sends spans in one ExportTraceServiceRequest. A collector's
// 429, 502, 503 or 504 is retried with exponential backoff (waiting as
// long as its Retry-After says, when it says) until the export's timeout
// or ctx ends; another status than 2xx is an error quoting the status and
// the start of the response body. After Shutdown it sends nothing and
// returns an error.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.stopped.Load() {
		return errShutdown
	}
	if len(spans) == 0 {
		return nil
	}
	body := appendRequest(nil, spans)
	if e.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return fmt.Errorf("otlp: compressing spans: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("otlp: compressing spans: %w", err)
		}
		body = buf.Bytes()
	}

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = e.retryInitial
	bo.MaxInterval = max(bo.MaxInterval, e.retryInitial)
	bo.MaxElapsedTime = 0 // the context ends the retries
	bo.Reset()
	var last error // the failure the export is retrying after
	for {
		retry, wait, err := e.send(ctx, body)
		if err != nil && last != nil && ctx.Err() != nil {
			// The export's time ran out during a retry: the failure that
			// made it retry says more than the deadline.
			return fmt.Errorf("%w (%w during a retry)", last, ctx.Err())
		}
		if !retry {
			return err
		}
		last = err
		if e.stopped.Load() {
			return err
		}
		d := bo.NextBackOff()
		if wait >= 0 {
			d = wait
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return fmt.Errorf("%w (%w before a retry)", err, context.DeadlineExceeded)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%w before a retry)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// send POSTs one request. It reports whether the export may be retried
// and, when the collector said, how long to wait first (-1 when it did
// not).
func (e *Exporter) send(ctx context.Context, body []byte) (retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, -1, fmt.Errorf("otlp: %w", err)
	}
	for k, vs := range e.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// The request's URL is the endpoint: it may carry credentials.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		// A collector that is down or restarting may be back soon; one
		// whose certificate is not trusted will not be.
		var cerr *tls.CertificateVerificationError
		return ctx.Err() == nil && !errors.As(err, &cerr), -1, fmt.Errorf("otlp: sending spans: %w", err)
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// A partial success (spans the collector rejected) is not retried:
		// sending them again would be rejected again.
		return false, -1, nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	err = fmt.Errorf("otlp: the collector answered %s: %q", resp.Status, strings.ToValidUTF8(string(head), "\uFFFD"))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, retryAfter(resp.Header.Get("Retry-After")), err
	}
	return false, -1, err
}

// retryAfter returns the wait a Retry-After header of delay-seconds asks
// for, -1 when it is absent or not a number of seconds.
func retryAfter(v string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > int64(time.Hour/time.Second) {
		return -1
	}
	return time.Duration(n) * time.Second
}

// Shutdown stops the exporter: ExportSpans no longer sends and returns an
// error. It returns ctx's error if ctx is already done, and may be called
// more than once.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if !e.stopped.Swap(true) {
		e.client.CloseIdleConnections()
	}
	return ctx.Err()
}
