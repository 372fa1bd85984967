package ops

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of a delivery, the values of cioq_deliveries_total's outcome label.
const (
	OutcomeDelivered    = "delivered"
	OutcomeRetried      = "retried"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeExpired      = "expired"
)

// Metrics are the per-process counters and histograms of a worker or of the
// ingest front door. Every replica registers its own; sum them in queries.
// All methods are safe for concurrent use and do nothing on a nil *Metrics.
//
// Label values must come from bounded sets (task type names, API names,
// error classes, configured workspaces), never from payloads.
type Metrics struct {
	deliveries       *prometheus.CounterVec
	deliveryLatency  *prometheus.HistogramVec
	failures         *prometheus.CounterVec
	responses        *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	rateLimitWait    *prometheus.HistogramVec
	rateLimitResched *prometheus.CounterVec
	authFailures     *prometheus.CounterVec
	ingestRequests   *prometheus.CounterVec
	orderingWait     prometheus.Histogram
	orderingGaveUp   prometheus.Counter
	recoveryPulls    *prometheus.CounterVec
	recoveryPulled   *prometheus.CounterVec
	stuckTasks       *prometheus.CounterVec
	coercions        *prometheus.CounterVec
	refusals         *prometheus.CounterVec
	rescued          *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg
// (prometheus.DefaultRegisterer when nil). It panics if they are already
// registered there, like prometheus.MustRegister.
//
//	cioq_deliveries_total{type,outcome}                 delivered|retried|dead_lettered|expired
//	cioq_delivery_latency_seconds{type}                 enqueue to delivered
//	cioq_failures_total{type,class}                     retried: 5xx|4xx|network|429|auth; dead-lettered: permanent|expired|invalid|exhausted
//	cioq_customerio_responses_total{api,status_class}   2xx|3xx|4xx|429|5xx|network|other
//	cioq_customerio_request_duration_seconds{api}
//	cioq_ratelimit_wait_seconds{api}
//	cioq_ratelimit_rescheduled_total{api}
//	cioq_auth_failures_total{api,workspace}
//	cioq_ingest_requests_total{source,outcome}
//	cioq_ordering_wait_seconds
//	cioq_ordering_gave_up_total
//	cioq_recovery_pulls_total{api}                      an API recovered and a worker pulled its retrying tasks forward
//	cioq_recovery_pulled_tasks_total{api}               tasks those pulls moved
//	cioq_stuck_tasks_total{queue,reason}                undecodable|no_task_data: moved from asynq's active state to the dead letter store
//	cioq_contract_coercions_total{workspace,type}       values a contract coerced (number|string|boolean|timestamp)
//	cioq_contract_refusals_total{workspace,rule}        tasks a contract refused (required|type|unknown_template|channel|timestamp)
//	cioq_anonymous_rescued_total{type}                  anonymous events delivered as the person their visitor was merged into
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_deliveries_total",
			Help: "Task deliveries by task type and outcome (delivered, retried, dead_lettered, expired).",
		}, []string{"type", "outcome"}),
		deliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cioq_delivery_latency_seconds",
			Help:    "Time from enqueue to Customer.io accepting the task, by task type.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_failures_total",
			Help: "Failed delivery attempts (retried or dead-lettered) by task type and error class.",
		}, []string{"type", "class"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_customerio_responses_total",
			Help: "Customer.io responses by API and status class (2xx, 3xx, 4xx, 429, 5xx, network, other).",
		}, []string{"api", "status_class"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cioq_customerio_request_duration_seconds",
			Help:    "Duration of requests to Customer.io by API.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"api"}),
		rateLimitWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cioq_ratelimit_wait_seconds",
			Help:    "Wait imposed by cioq's rate limiter before a request, by API.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"api"}),
		rateLimitResched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_ratelimit_rescheduled_total",
			Help: "Tasks put back in the queue because the rate limiter's wait was too long, by API.",
		}, []string{"api"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_auth_failures_total",
			Help: "Customer.io authentication failures (401 or missing credentials) by API and workspace.",
		}, []string{"api", "workspace"}),
		ingestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_ingest_requests_total",
			Help: "Requests to the ingest front door by source and outcome.",
		}, []string{"source", "outcome"}),
		orderingWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cioq_ordering_wait_seconds",
			Help:    "Time a task waited for an earlier task of the same person.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		orderingGaveUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cioq_ordering_gave_up_total",
			Help: "Tasks delivered without waiting for an earlier task of the same person that left the queue unfinished or could not be found.",
		}),
		recoveryPulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_recovery_pulls_total",
			Help: "Recoveries of a Customer.io API after a run of transient failures for which this worker pulled the retrying tasks forward, by API.",
		}, []string{"api"}),
		recoveryPulled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_recovery_pulled_tasks_total",
			Help: "Retrying tasks pulled forward when their API recovered, by API.",
		}, []string{"api"}),
		stuckTasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_stuck_tasks_total",
			Help: "Tasks asynq could neither process nor recover (undecodable message, no task data), moved to the dead letter store, by queue and reason.",
		}, []string{"queue", "reason"}),
		coercions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_contract_coercions_total",
			Help: "Values a contract coerced to their declared type at enqueue or delivery, by workspace and type.",
		}, []string{"workspace", "type"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_contract_refusals_total",
			Help: "Tasks a contract refused at enqueue or delivery, by workspace and rule broken.",
		}, []string{"workspace", "rule"}),
		rescued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_anonymous_rescued_total",
			Help: "Anonymous events delivered as the event of the person their visitor was merged into (Customer.io merges only those received within five minutes of the merge), by task type.",
		}, []string{"type"}),
	}
	reg.MustRegister(m.deliveries, m.deliveryLatency, m.failures, m.responses, m.requestDuration,
		m.rateLimitWait, m.rateLimitResched, m.authFailures, m.ingestRequests, m.orderingWait, m.orderingGaveUp,
		m.recoveryPulls, m.recoveryPulled, m.stuckTasks, m.coercions, m.refusals, m.rescued)
	return m
}

// Delivered counts a task Customer.io accepted and observes its latency
// from enqueue. The queue is not a label: each type has one queue by default
// and cioq_queue_* metrics report per queue.
func (m *Metrics) Delivered(taskType, queue string, latency time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(taskType, OutcomeDelivered).Inc()
	m.deliveryLatency.WithLabelValues(taskType).Observe(latency.Seconds())
}

// Retried counts a failed attempt that will be retried; class is the
// failure class. The worker reports its retry class ("transient",
// "throttled" or "auth", with the HTTP status) and the cioq binary labels
// it by what Customer.io answered: "5xx" or "4xx" (a transient failure, by
// status), "network" (no HTTP response), "429" (throttled) or "auth". A
// task cioq itself puts back in the queue (a rate-limit or per-person
// ordering wait, the worker's "snoozed") is not a retry and is not counted
// here: RateLimitWait and OrderingWait count those waits.
func (m *Metrics) Retried(taskType, class string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(taskType, OutcomeRetried).Inc()
	m.failures.WithLabelValues(taskType, class).Inc()
}

// DeadLettered counts a task moved to the dead letter store; class is the
// worker's dead-letter class, as stored with the task: "permanent" (a
// permanent 4xx refusal), "expired", "invalid", "exhausted" or "config".
func (m *Metrics) DeadLettered(taskType, class string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(taskType, OutcomeDeadLettered).Inc()
	m.failures.WithLabelValues(taskType, class).Inc()
}

// Expired counts a task dead-lettered because it was past its expiry.
func (m *Metrics) Expired(taskType string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(taskType, OutcomeExpired).Inc()
}

// StatusClass maps an HTTP status to the status_class label: "2xx", "3xx",
// "4xx", "429", "5xx"; a status of 0 or less (no response) is "network";
// anything else "other".
func StatusClass(status int) string {
	switch {
	case status <= 0:
		return "network"
	case status == http.StatusTooManyRequests:
		return "429"
	case status >= 200 && status < 600 && status/100 != 1:
		return strconv.Itoa(status/100) + "xx"
	default:
		return "other"
	}
}

// CustomerIOResponse counts one request to a Customer.io API (e.g. "track",
// "track_v2", "app", "pipelines") and observes its duration. Pass status 0
// when no response arrived (network error or timeout).
func (m *Metrics) CustomerIOResponse(api string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.responses.WithLabelValues(api, StatusClass(status)).Inc()
	m.requestDuration.WithLabelValues(api).Observe(d.Seconds())
}

// RateLimitWait observes the wait the rate limiter asked for before a
// request to api, and counts the task as rescheduled when, instead of
// waiting, the worker put it back in the queue.
func (m *Metrics) RateLimitWait(api string, d time.Duration, rescheduled bool) {
	if m == nil {
		return
	}
	m.rateLimitWait.WithLabelValues(api).Observe(d.Seconds())
	if rescheduled {
		m.rateLimitResched.WithLabelValues(api).Inc()
	}
}

// AuthFailure counts a 401 or missing credential for api in workspace (the
// workspace's configured name, never a key).
func (m *Metrics) AuthFailure(api, workspace string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(api, workspace).Inc()
}

// IngestRequest counts a request to the ingest front door from source
// (e.g. "segment", "mparticle", "task") with its outcome (e.g. "accepted",
// "invalid", "unauthorized", "unavailable").
func (m *Metrics) IngestRequest(source, outcome string) {
	if m == nil {
		return
	}
	m.ingestRequests.WithLabelValues(source, outcome).Inc()
}

// OrderingWait observes how long a task waited for an earlier task of the
// same person, and counts it when the worker went ahead without one (it
// left the queue unfinished, or could not be found).
func (m *Metrics) OrderingWait(d time.Duration, gaveUp bool) {
	if m == nil {
		return
	}
	m.orderingWait.Observe(d.Seconds())
	if gaveUp {
		m.orderingGaveUp.Inc()
	}
}

// RecoveryPulled counts a recovery of api for which this worker pulled n
// retrying tasks forward.
func (m *Metrics) RecoveryPulled(api string, n int) {
	if m == nil {
		return
	}
	m.recoveryPulls.WithLabelValues(api).Inc()
	m.recoveryPulled.WithLabelValues(api).Add(float64(n))
}

// StuckTask counts a task moved out of asynq's active state of queue into
// the dead letter store; reason is "undecodable" or "no_task_data".
func (m *Metrics) StuckTask(queue, reason string) {
	if m == nil {
		return
	}
	m.stuckTasks.WithLabelValues(queue, reason).Inc()
}

// ContractCoerced counts a value a contract of workspace coerced to typ.
func (m *Metrics) ContractCoerced(workspace, typ string) {
	if m == nil {
		return
	}
	m.coercions.WithLabelValues(workspace, typ).Inc()
}

// ContractRefused counts a task a contract of workspace refused for rule.
func (m *Metrics) ContractRefused(workspace, rule string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(workspace, rule).Inc()
}

// AnonymousRescued counts an anonymous event of taskType delivered as the
// event of the person its visitor was merged into.
func (m *Metrics) AnonymousRescued(taskType string) {
	if m == nil {
		return
	}
	m.rescued.WithLabelValues(taskType).Inc()
}

// Handler serves the metrics gathered from g (prometheus.DefaultGatherer
// when nil) in the Prometheus exposition format. When a collector fails, the
// metrics that could be gathered are still served.
func Handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
