package main

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/worker"
)

// The adapter maps the worker's vocabulary onto ops' metric labels.
func TestMetricsObserver(t *testing.T) {
	reg := prometheus.NewRegistry()
	var o worker.Observer = metricsObserver{ops.NewMetrics(reg)}
	o.Delivered("cio:identify", "default", "", 2*time.Second)
	o.Retried("cio:identify", "transient", 503)
	o.Retried("cio:identify", "transient", 0)
	o.Retried("cio:send_email", "throttled", 429)
	o.Retried("cio:send_email", "auth", 401)
	o.Retried("cio:track", "snoozed", 0)
	o.DeadLettered("cio:identify", worker.DeadLetterPermanent)
	o.Expired("cio:send_email")
	o.Response("track", "2xx", time.Millisecond)
	o.Response("app", "5xx", time.Millisecond)
	o.Response("app", "error", time.Millisecond)
	o.AuthFailure("app", "")
	o.AuthFailure("app", "eu")
	o.StuckTask(shard.Name("default", 2, 3), "no_data") // a shard: its logical queue

	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	for k, v := range map[string]float64{
		"cioq_deliveries_total{outcome=dead_lettered,type=cio:identify}": 1,
		"cioq_deliveries_total{outcome=delivered,type=cio:identify}":     1,
		"cioq_deliveries_total{outcome=expired,type=cio:send_email}":     1,
		"cioq_deliveries_total{outcome=retried,type=cio:identify}":       2,
		"cioq_deliveries_total{outcome=retried,type=cio:send_email}":     2,
		"cioq_delivery_latency_seconds{type=cio:identify}":               1,
		"cioq_failures_total{class=429,type=cio:send_email}":             1,
		"cioq_failures_total{class=5xx,type=cio:identify}":               1,
		"cioq_failures_total{class=auth,type=cio:send_email}":            1,
		"cioq_failures_total{class=network,type=cio:identify}":           1,
		"cioq_failures_total{class=permanent,type=cio:identify}":         1,
		// A snooze is neither a retry nor a failure.
		"cioq_deliveries_total{outcome=retried,type=cio:track}":         0,
		"cioq_failures_total{class=snoozed,type=cio:track}":             0,
		"cioq_failures_total{class=network,type=cio:track}":             0,
		"cioq_customerio_responses_total{api=app,status_class=5xx}":     1,
		"cioq_customerio_responses_total{api=app,status_class=network}": 1,
		"cioq_customerio_responses_total{api=track,status_class=2xx}":   1,
		"cioq_customerio_request_duration_seconds{api=app}":             2,
		"cioq_auth_failures_total{api=app,workspace=default}":           1,
		"cioq_auth_failures_total{api=app,workspace=eu}":                1,
		"cioq_stuck_tasks_total{queue=default,reason=no_data}":          1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
