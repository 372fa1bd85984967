package ops

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MessageMetrics are the metrics of messages after Customer.io accepted
// them (package status): outcomes as the worker records them (accepted,
// dead_lettered) and as Customer.io reports them (reporting webhooks, the
// fallback poll), the time from acceptance to delivery, and the reporting
// webhook receiver's requests. A worker registers them for the outcomes
// it records, `cioq serve` for the ones its receiver records: sum them over
// instances. All methods do nothing on a nil *MessageMetrics.
//
//	cioq_message_outcomes_total{workspace,type,template,outcome}  accepted|dead_lettered|dead_letter_removed|sent|delivered|opened|clicked|converted|bounced|spammed|dropped|failed|undeliverable|unsubscribed|...|other
//	cioq_message_delivery_seconds{workspace,type}                 Customer.io's acceptance to its "delivered" event
//	cioq_webhook_requests_total{workspace,outcome}                accepted|unauthorized|too_large|invalid|unavailable ("unknown" workspace until authenticated)
type MessageMetrics struct {
	outcomes *prometheus.CounterVec
	delivery *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

// NewMessageMetrics creates the metrics and registers them with reg
// (prometheus.DefaultRegisterer when nil); it panics if they are
// registered there already.
func NewMessageMetrics(reg prometheus.Registerer) *MessageMetrics {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &MessageMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_message_outcomes_total",
			Help: "Outcomes of messages (transactional sends, broadcast triggers) by workspace, task type, template and outcome: accepted, dead_lettered and dead_letter_removed (workers), and what Customer.io reported (sent, delivered, opened, clicked, bounced, failed, ...; other for a metric cioq does not know).",
		}, []string{"workspace", "type", "template", "outcome"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cioq_message_delivery_seconds",
			Help:    "Time from Customer.io accepting a send to its delivered event, by workspace and task type.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"workspace", "type"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cioq_webhook_requests_total",
			Help: "Requests to the reporting webhook receiver by workspace (unknown until authenticated) and outcome.",
		}, []string{"workspace", "outcome"}),
	}
	reg.MustRegister(m.outcomes, m.delivery, m.requests)
	return m
}

// MessageOutcome counts one outcome of a message.
func (m *MessageMetrics) MessageOutcome(workspace, taskType, template, outcome string) {
	if m == nil {
		return
	}
	m.outcomes.WithLabelValues(workspace, taskType, template, outcome).Inc()
}

// MessageDelivered observes the time from acceptance to delivery.
func (m *MessageMetrics) MessageDelivered(workspace, taskType string, d time.Duration) {
	if m == nil {
		return
	}
	m.delivery.WithLabelValues(workspace, taskType).Observe(d.Seconds())
}

// WebhookRequest counts one request to the reporting webhook receiver.
func (m *MessageMetrics) WebhookRequest(workspace, outcome string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(workspace, outcome).Inc()
}
