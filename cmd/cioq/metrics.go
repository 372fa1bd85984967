package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/worker"
)

// metricsObserver adapts worker.Observer to *ops.Metrics: the method names
// and label vocabularies of the two differ.
type metricsObserver struct {
	m *ops.Metrics
}

var _ worker.Observer = metricsObserver{}

// Delivered hands ops the logical queue: a shard (CIOQ_QUEUE_SHARDS)
// counts as the queue it belongs to.
func (o metricsObserver) Delivered(taskType, queue, _ string, latency time.Duration) {
	o.m.Delivered(taskType, worker.LogicalQueue(queue), latency)
}

// Retried maps the worker's retry class (transient, throttled, auth) and
// status onto ops' failure classes (5xx, 4xx, 429, network, auth). A snooze
// (class "snoozed": a rate-limit reschedule, a wait for an earlier operation
// of the same person) is neither a failure nor a retry: it is not counted
// here, RateLimitWait and OrderingWait already count those waits.
func (o metricsObserver) Retried(taskType string, reason worker.RetryReason, status int) {
	if reason == worker.RetrySnoozed {
		return
	}
	o.m.Retried(taskType, retryClass(reason, status))
}

func retryClass(reason worker.RetryReason, status int) string {
	switch reason {
	case worker.RetryThrottled:
		return "429"
	case worker.RetryAuth:
		return "auth"
	}
	return ops.StatusClass(status) // 0 → network
}

func (o metricsObserver) DeadLettered(taskType string, class worker.DeadLetterClass) {
	o.m.DeadLettered(taskType, string(class))
}

func (o metricsObserver) Expired(taskType string) { o.m.Expired(taskType) }

// Response gets a status class from the worker ("2xx", "429", "4xx",
// "5xx", "error") where ops wants a status: a representative one of the class.
func (o metricsObserver) Response(api, statusClass string, d time.Duration) {
	o.m.CustomerIOResponse(api, statusOfClass(statusClass), d)
}

func statusOfClass(c string) int {
	switch c {
	case "2xx":
		return 200
	case "3xx":
		return 300
	case "429":
		return 429
	case "4xx":
		return 400
	case "5xx":
		return 500
	}
	return 0 // "error": no response
}

// RateLimitWait observes the limiter's wait (ops labels by API only).
func (o metricsObserver) RateLimitWait(api, _ string, d time.Duration, rescheduled bool) {
	o.m.RateLimitWait(api, d, rescheduled)
}

// OrderingWait observes a wait for a person's earlier tasks.
func (o metricsObserver) OrderingWait(_ string, d time.Duration, gaveUp bool) {
	o.m.OrderingWait(d, gaveUp)
}

func (o metricsObserver) AuthFailure(api, workspace string) {
	o.m.AuthFailure(api, workspaceLabel(workspace))
}

// RecoveryPulled counts a recovery pull (ops labels by API only).
func (o metricsObserver) RecoveryPulled(api, _ string, n int) { o.m.RecoveryPulled(api, n) }

// StuckTask counts a task moved out of asynq's active state.
func (o metricsObserver) StuckTask(queue, reason string) {
	o.m.StuckTask(worker.LogicalQueue(queue), reason) // a shard counts as its logical queue
}

func workspaceLabel(ws string) string {
	if ws == "" {
		return "default"
	}
	return ws
}

// newRegistry returns a registry with the Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// AnonymousRescued counts an anonymous event delivered as the person its
// visitor was merged into (worker.AnonymousRescueObserver).
func (o metricsObserver) AnonymousRescued(taskType, _ string) { o.m.AnonymousRescued(taskType) }

// contractsObserver counts the contracts' coercions and refusals
// (contracts.Observer).
type contractsObserver struct{ m *ops.Metrics }

func (o contractsObserver) Coerced(workspace, typ string) { o.m.ContractCoerced(workspace, typ) }

func (o contractsObserver) Refused(workspace, rule string) { o.m.ContractRefused(workspace, rule) }
