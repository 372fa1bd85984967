package ops

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cioq/cioq/internal/testredis"
)

func TestMetricsCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)

	m.Delivered("cio:track", "default", 150*time.Millisecond)
	m.Delivered("cio:track", "default", 3*time.Second)
	m.Delivered("cio:send_email", "critical", 40*time.Millisecond)
	m.Retried("cio:track", "5xx")
	m.Retried("cio:track", "429")
	m.Retried("cio:track", "5xx")
	m.DeadLettered("cio:identify", "4xx")
	m.Expired("cio:send_email")
	m.CustomerIOResponse("track", 200, 10*time.Millisecond)
	m.CustomerIOResponse("track", 204, 10*time.Millisecond)
	m.CustomerIOResponse("track", 429, 10*time.Millisecond)
	m.CustomerIOResponse("track", 400, 10*time.Millisecond)
	m.CustomerIOResponse("app", 503, 2*time.Second)
	m.CustomerIOResponse("app", 0, 30*time.Second)
	m.RateLimitWait("track", 20*time.Millisecond, false)
	m.RateLimitWait("track", 90*time.Second, true)
	m.AuthFailure("app", "eu-main")
	m.IngestRequest("segment", "accepted")
	m.IngestRequest("segment", "accepted")
	m.IngestRequest("segment", "invalid")
	m.OrderingWait(200*time.Millisecond, false)
	m.OrderingWait(time.Minute, true)

	counters := []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.deliveries.WithLabelValues("cio:track", "delivered"), 2},
		{m.deliveries.WithLabelValues("cio:send_email", "delivered"), 1},
		{m.deliveries.WithLabelValues("cio:track", "retried"), 3},
		{m.deliveries.WithLabelValues("cio:identify", "dead_lettered"), 1},
		{m.deliveries.WithLabelValues("cio:send_email", "expired"), 1},
		{m.failures.WithLabelValues("cio:track", "5xx"), 2},
		{m.failures.WithLabelValues("cio:track", "429"), 1},
		{m.failures.WithLabelValues("cio:identify", "4xx"), 1},
		{m.responses.WithLabelValues("track", "2xx"), 2},
		{m.responses.WithLabelValues("track", "429"), 1},
		{m.responses.WithLabelValues("track", "4xx"), 1},
		{m.responses.WithLabelValues("app", "5xx"), 1},
		{m.responses.WithLabelValues("app", "network"), 1},
		{m.rateLimitResched.WithLabelValues("track"), 1},
		{m.authFailures.WithLabelValues("app", "eu-main"), 1},
		{m.ingestRequests.WithLabelValues("segment", "accepted"), 2},
		{m.ingestRequests.WithLabelValues("segment", "invalid"), 1},
		{m.orderingGaveUp, 1},
	}
	for _, c := range counters {
		if got := toFloat64(t, c.c); got != c.want {
			desc := make(chan *prometheus.Desc, 1)
			c.c.Describe(desc)
			t.Errorf("%v = %v, want %v", <-desc, got, c.want)
		}
	}
	// Failures are counted once per (type, class), deliveries once per outcome.
	if n := seriesCount(t, reg, "cioq_failures_total"); n != 3 {
		t.Errorf("cioq_failures_total has %d series, want 3", n)
	}

	const latency = `
# HELP cioq_delivery_latency_seconds Time from enqueue to Customer.io accepting the task, by task type.
# TYPE cioq_delivery_latency_seconds histogram
cioq_delivery_latency_seconds_bucket{type="cio:track",le="0.05"} 0
cioq_delivery_latency_seconds_bucket{type="cio:track",le="0.1"} 0
cioq_delivery_latency_seconds_bucket{type="cio:track",le="0.25"} 1
cioq_delivery_latency_seconds_bucket{type="cio:track",le="0.5"} 1
cioq_delivery_latency_seconds_bucket{type="cio:track",le="1"} 1
cioq_delivery_latency_seconds_bucket{type="cio:track",le="2.5"} 1
cioq_delivery_latency_seconds_bucket{type="cio:track",le="5"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="10"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="30"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="60"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="120"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="300"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="600"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="1800"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="3600"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="14400"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="86400"} 2
cioq_delivery_latency_seconds_bucket{type="cio:track",le="+Inf"} 2
cioq_delivery_latency_seconds_sum{type="cio:track"} 3.15
cioq_delivery_latency_seconds_count{type="cio:track"} 2
`
	m2 := NewMetrics(prometheus.NewRegistry())
	m2.Delivered("cio:track", "default", 150*time.Millisecond)
	m2.Delivered("cio:track", "default", 3*time.Second)
	if err := gatherAndCompare(collectorGatherer(t, m2.deliveryLatency), strings.NewReader(latency)); err != nil {
		t.Error(err)
	}

	histCounts := []struct {
		name string
		h    prometheus.Collector
		want int
	}{
		{"cioq_customerio_request_duration_seconds", m.requestDuration, 6},
		{"cioq_ratelimit_wait_seconds", m.rateLimitWait, 2},
		{"cioq_ordering_wait_seconds", m.orderingWait, 2},
	}
	for _, h := range histCounts {
		if got := histogramCount(t, reg, h.name); got != h.want {
			t.Errorf("%s count = %d, want %d", h.name, got, h.want)
		}
	}

	// Lint names and help against Prometheus conventions.
	for _, p := range lint(t, reg) {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// seriesCount counts the series of a metric family.
func seriesCount(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// histogramCount sums the sample counts of every series of a histogram.
func histogramCount(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += int(m.GetHistogram().GetSampleCount())
		}
	}
	return n
}

func TestStatusClass(t *testing.T) {
	tests := map[int]string{0: "network", -1: "network", 200: "2xx", 202: "2xx", 207: "2xx", 301: "3xx",
		400: "4xx", 401: "4xx", 404: "4xx", 429: "429", 500: "5xx", 522: "5xx", 100: "other", 600: "other"}
	for status, want := range tests {
		if got := StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.Delivered("t", "q", time.Second)
	m.Retried("t", "c")
	m.DeadLettered("t", "c")
	m.Expired("t")
	m.CustomerIOResponse("a", 200, time.Second)
	m.RateLimitWait("a", time.Second, true)
	m.AuthFailure("a", "w")
	m.IngestRequest("s", "o")
	m.OrderingWait(time.Second, true)
}

func TestQueueCollector(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()

	task := asynq.NewTask("cio:track", envelope(`{"name":"x"}`))
	for i := 0; i < 3; i++ {
		if _, err := client.EnqueueContext(ctx, task, asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := client.EnqueueContext(ctx, task, asynq.Queue("default"), asynq.ProcessIn(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.EnqueueContext(ctx, task, asynq.Queue("default"), asynq.Group("g")); err != nil {
		t.Fatal(err)
	}
	archived, err := client.EnqueueContext(ctx, task, asynq.Queue("bulk"))
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.ArchiveTask("bulk", archived.ID); err != nil {
		t.Fatal(err)
	}
	if err := insp.PauseQueue("bulk"); err != nil {
		t.Fatal(err)
	}

	// A real server takes tasks through retry and completion in "critical".
	for i, q := range []string{"critical", "critical"} {
		opts := []asynq.Option{asynq.Queue(q), asynq.TaskID([]string{"fail", "ok"}[i]), asynq.Retention(time.Hour)}
		if _, err := client.EnqueueContext(ctx, task, opts...); err != nil {
			t.Fatal(err)
		}
	}
	srv := asynq.NewServer(db.ConnOpt(), asynq.Config{
		Queues:         map[string]int{"critical": 1},
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		LogLevel:       asynq.FatalLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		if id, _ := asynq.GetTaskID(ctx); id == "fail" {
			return errors.New("boom")
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "retry and completed tasks", func() bool {
		info, err := insp.GetQueueInfo("critical")
		return err == nil && info.Retry == 1 && info.Completed == 1
	})
	srv.Shutdown()

	dead := int64(7)
	c := NewQueueCollector(insp, func(ctx context.Context) (int64, error) {
		if _, ok := ctx.Deadline(); !ok {
			return 0, errors.New("no deadline")
		}
		return dead, nil
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	const want = `
# HELP cioq_queue_tasks Tasks in the queue by state (completed: kept for retention).
# TYPE cioq_queue_tasks gauge
cioq_queue_tasks{queue="bulk",state="active"} 0
cioq_queue_tasks{queue="bulk",state="aggregating"} 0
cioq_queue_tasks{queue="bulk",state="archived"} 1
cioq_queue_tasks{queue="bulk",state="completed"} 0
cioq_queue_tasks{queue="bulk",state="pending"} 0
cioq_queue_tasks{queue="bulk",state="retry"} 0
cioq_queue_tasks{queue="bulk",state="scheduled"} 0
cioq_queue_tasks{queue="critical",state="active"} 0
cioq_queue_tasks{queue="critical",state="aggregating"} 0
cioq_queue_tasks{queue="critical",state="archived"} 0
cioq_queue_tasks{queue="critical",state="completed"} 1
cioq_queue_tasks{queue="critical",state="pending"} 0
cioq_queue_tasks{queue="critical",state="retry"} 1
cioq_queue_tasks{queue="critical",state="scheduled"} 0
cioq_queue_tasks{queue="default",state="active"} 0
cioq_queue_tasks{queue="default",state="aggregating"} 1
cioq_queue_tasks{queue="default",state="archived"} 0
cioq_queue_tasks{queue="default",state="completed"} 0
cioq_queue_tasks{queue="default",state="pending"} 3
cioq_queue_tasks{queue="default",state="retry"} 0
cioq_queue_tasks{queue="default",state="scheduled"} 2
# HELP cioq_queue_paused 1 when the queue is paused.
# TYPE cioq_queue_paused gauge
cioq_queue_paused{queue="bulk"} 1
cioq_queue_paused{queue="critical"} 0
cioq_queue_paused{queue="default"} 0
# HELP cioq_queue_processed_today Tasks processed (succeeded or failed) today, UTC; resets daily.
# TYPE cioq_queue_processed_today gauge
cioq_queue_processed_today{queue="bulk"} 0
cioq_queue_processed_today{queue="critical"} 2
cioq_queue_processed_today{queue="default"} 0
# HELP cioq_queue_failed_today Tasks whose processing failed today, UTC; resets daily.
# TYPE cioq_queue_failed_today gauge
cioq_queue_failed_today{queue="bulk"} 0
cioq_queue_failed_today{queue="critical"} 1
cioq_queue_failed_today{queue="default"} 0
# HELP cioq_dead_letters Entries in cioq's dead letter store.
# TYPE cioq_dead_letters gauge
cioq_dead_letters 7
# HELP cioq_queue_collector_up 1 when the last scrape read the source (queues or dead_letters) from Redis, 0 when it failed.
# TYPE cioq_queue_collector_up gauge
cioq_queue_collector_up{source="dead_letters"} 1
cioq_queue_collector_up{source="queues"} 1
`
	if err := gatherAndCompare(reg, strings.NewReader(want),
		"cioq_queue_tasks", "cioq_queue_paused", "cioq_queue_processed_today", "cioq_queue_failed_today",
		"cioq_dead_letters", "cioq_queue_collector_up"); err != nil {
		t.Error(err)
	}

	// The oldest pending task in "default" is a little old; the others have none.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cioq_queue_latency_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			q, v := m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()
			if q == "default" && (v <= 0 || v > 60) || q != "default" && v != 0 {
				t.Errorf("cioq_queue_latency_seconds{queue=%q} = %v", q, v)
			}
		}
	}

	// A failing dead letter store is reported, not fatal.
	dl := NewQueueCollector(insp, func(context.Context) (int64, error) { return 0, errors.New("down") })
	const wantDown = `
# HELP cioq_queue_collector_up 1 when the last scrape read the source (queues or dead_letters) from Redis, 0 when it failed.
# TYPE cioq_queue_collector_up gauge
cioq_queue_collector_up{source="dead_letters"} 0
cioq_queue_collector_up{source="queues"} 1
`
	if err := gatherAndCompare(collectorGatherer(t, dl), strings.NewReader(wantDown), "cioq_queue_collector_up", "cioq_dead_letters"); err != nil {
		t.Error(err)
	}
}

func TestQueueCollectorRedisDown(t *testing.T) {
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: closedAddr(t), DialTimeout: 200 * time.Millisecond})
	defer insp.Close()
	const want = `
# HELP cioq_queue_collector_up 1 when the last scrape read the source (queues or dead_letters) from Redis, 0 when it failed.
# TYPE cioq_queue_collector_up gauge
cioq_queue_collector_up{source="queues"} 0
`
	if err := gatherAndCompare(collectorGatherer(t, NewQueueCollector(insp, nil)), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestMetricsHandler(t *testing.T) {
	db := testredis.New(t)
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	client := asynq.NewClient(db.ConnOpt())
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask("cio:track", nil), asynq.Queue("default")); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	reg.MustRegister(NewQueueCollector(insp, nil))
	m.Delivered("cio:track", "default", time.Second)
	m.CustomerIOResponse("track", 200, time.Millisecond)
	m.Retried("cio:track", "5xx")

	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`cioq_deliveries_total{outcome="delivered",type="cio:track"} 1`,
		`cioq_failures_total{class="5xx",type="cio:track"} 1`,
		`cioq_delivery_latency_seconds_count{type="cio:track"} 1`,
		`cioq_customerio_responses_total{api="track",status_class="2xx"} 1`,
		`cioq_customerio_request_duration_seconds_bucket`,
		`cioq_queue_tasks{queue="default",state="pending"} 1`,
		`cioq_queue_latency_seconds{queue="default"}`,
		`cioq_queue_processed_total{queue="default"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
