package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// outcomeObserver passes everything to the metrics adapter first, then
// signals outcomes, so a test that received an outcome can scrape its
// metrics.
type outcomeObserver struct {
	metricsObserver
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every outcome
	counts  map[string]int
}

func newOutcomeObserver(m *ops.Metrics) *outcomeObserver {
	return &outcomeObserver{metricsObserver: metricsObserver{m}, changed: make(chan struct{}), counts: map[string]int{}}
}

func (o *outcomeObserver) note(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[key]++
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *outcomeObserver) Delivered(taskType, queue, ws string, latency time.Duration) {
	o.metricsObserver.Delivered(taskType, queue, ws, latency)
	o.note("delivered " + taskType)
}

func (o *outcomeObserver) Retried(taskType string, reason worker.RetryReason, status int) {
	o.metricsObserver.Retried(taskType, reason, status)
	o.note("retried " + taskType)
}

func (o *outcomeObserver) DeadLettered(taskType string, class worker.DeadLetterClass) {
	o.metricsObserver.DeadLettered(taskType, class)
	o.note("dead_lettered " + taskType)
}

func (o *outcomeObserver) Expired(taskType string) {
	o.metricsObserver.Expired(taskType)
	o.note("expired " + taskType)
}

// waitFor blocks until the outcome key has been observed n times, failing
// the test after d.
func (o *outcomeObserver) waitFor(t *testing.T, key string, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		got, changed := o.counts[key], o.changed
		o.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %d × %q (saw %d)", d, n, key, got)
		}
	}
}

// scrape GETs /metrics from h over HTTP and parses the text exposition
// into "name{l1=v1,l2=v2}" → value: a counter's value, a histogram's
// sample count.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q, want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	got := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				v = float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			default:
				continue
			}
			got[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return got
}

// A real worker delivers, retries, dead-letters and expires tasks against
// the sandbox; /metrics, scraped over HTTP, shows each outcome exactly once
// in the counters and histograms the Observer adapter feeds.
func TestMetricsOverRealDeliveries(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1})
	hs := httptest.NewServer(sb)
	t.Cleanup(func() { hs.Close(); sb.Close() })

	reg := prometheus.NewRegistry()
	obs := newOutcomeObserver(ops.NewMetrics(reg))
	w, err := worker.New(worker.Config{
		Redis:               db.ConnOpt(),
		Workspaces:          map[string]customerio.Config{"": testsupport.SandboxConfig(hs.URL)},
		Concurrency:         4,
		DelayedPollInterval: 100 * time.Millisecond,
		Backoff:             worker.BackoffConfig{Base: 100 * time.Millisecond, Cap: 200 * time.Millisecond},
		Batching:            worker.Batching{Off: true},
		// No credentials probes: they would take the sandbox faults meant
		// for the tasks, and count among the responses counted here.
		ProbeInterval: -1,
		Logger:        testsupport.Logger(),
		Observer:      obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	prod := producer.NewFromRedis(db.Client)
	ctx := context.Background()
	const wait = 20 * time.Second

	// One at a time, so each sandbox fault meets the task it is meant for.
	// 1. An identify answered 503 twice, then delivered.
	sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, Times: 2})
	if _, err := prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "user-retried"}, Attributes: map[string]any{"plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	obs.waitFor(t, "delivered "+tasks.TypeIdentify, 1, wait)

	// 2. An identify refused with a 400: dead-lettered at once.
	sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 400, Times: 1})
	r, err := prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "user-refused"}})
	if err != nil {
		t.Fatal(err)
	}
	obs.waitFor(t, "dead_lettered "+tasks.TypeIdentify, 1, wait)
	if d, err := w.DLQ().Get(ctx, r.TaskID); err != nil || d.Class != worker.DeadLetterPermanent || d.Status != 400 {
		t.Fatalf("the refused identify's dead letter: %+v, %v", d, err)
	}

	// 3. A send_email whose expiry passed while it waited in the queue:
	// dead-lettered unsent. The producer refuses an expiry already past (or
	// before the process time), so the task is encoded as the producer would
	// and enqueued with asynq directly.
	b, err := tasks.Encode(&tasks.SendEmail{
		SendOptions: customerio.SendOptions{TransactionalMessageID: "reset", Identifiers: &customerio.Identifiers{ID: "user-late"}},
		To:          "late@example.com",
	}, tasks.Meta{ExpiresAt: time.Now().Add(-time.Minute), EnqueuedAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ac := asynq.NewClientFromRedisClient(db.Client)
	defer ac.Close()
	late, err := ac.Enqueue(asynq.NewTask(tasks.TypeSendEmail, b), asynq.Queue(tasks.QueueCritical))
	if err != nil {
		t.Fatal(err)
	}
	obs.waitFor(t, "expired "+tasks.TypeSendEmail, 1, wait)
	obs.waitFor(t, "dead_lettered "+tasks.TypeSendEmail, 1, wait)
	if d, err := w.DLQ().Get(ctx, late.ID); err != nil || d.Class != worker.DeadLetterExpired {
		t.Fatalf("the expired send's dead letter: %+v, %v", d, err)
	}

	// 4. A track event, delivered.
	if _, err := prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "user-retried"}, Event: customerio.Event{Name: "purchase"}}); err != nil {
		t.Fatal(err)
	}
	obs.waitFor(t, "delivered "+tasks.TypeTrack, 1, wait)

	got := scrape(t, ops.Handler(reg))
	want := map[string]float64{
		"cioq_deliveries_total{outcome=delivered,type=cio:identify}":     1,
		"cioq_deliveries_total{outcome=retried,type=cio:identify}":       2,
		"cioq_deliveries_total{outcome=dead_lettered,type=cio:identify}": 1,
		"cioq_deliveries_total{outcome=expired,type=cio:send_email}":     1,
		// An expired task is dead-lettered too (class expired).
		"cioq_deliveries_total{outcome=dead_lettered,type=cio:send_email}": 1,
		"cioq_deliveries_total{outcome=delivered,type=cio:track}":          1,

		"cioq_failures_total{class=5xx,type=cio:identify}":       2,
		"cioq_failures_total{class=permanent,type=cio:identify}": 1,
		"cioq_failures_total{class=expired,type=cio:send_email}": 1,

		// Two 503s, then the identify and the event (2xx), and the 400; the
		// expired send never reached the App API.
		"cioq_customerio_responses_total{api=track,status_class=5xx}": 2,
		"cioq_customerio_responses_total{api=track,status_class=2xx}": 2,
		"cioq_customerio_responses_total{api=track,status_class=4xx}": 1,
		"cioq_customerio_request_duration_seconds{api=track}":         5,

		"cioq_delivery_latency_seconds{type=cio:identify}": 1,
		"cioq_delivery_latency_seconds{type=cio:track}":    1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Nothing else moved: every other series of these metrics is absent.
	for k, v := range got {
		for _, name := range []string{"cioq_deliveries_total{", "cioq_failures_total{", "cioq_customerio_responses_total{",
			"cioq_customerio_request_duration_seconds{", "cioq_delivery_latency_seconds{"} {
			if _, wanted := want[k]; strings.HasPrefix(k, name) && !wanted {
				t.Errorf("unexpected series %s = %v", k, v)
			}
		}
	}
}
