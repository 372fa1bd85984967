package ops

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMessageMetrics: the outcome counter, the acceptance-to-delivery
// histogram and the webhook request counter carry their labels and pass
// promlint; a nil *MessageMetrics does nothing.
func TestMessageMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMessageMetrics(reg)
	m.MessageOutcome("default", "cio:send_email", "password_reset", "accepted")
	m.MessageOutcome("default", "cio:send_email", "password_reset", "bounced")
	m.MessageDelivered("default", "cio:send_email", 3*time.Second)
	m.WebhookRequest("unknown", "unauthorized")
	err := gatherAndCompare(reg, strings.NewReader(`
# HELP cioq_message_outcomes_total Outcomes of messages (transactional sends, broadcast triggers) by workspace, task type, template and outcome: accepted, dead_lettered and dead_letter_removed (workers), and what Customer.io reported (sent, delivered, opened, clicked, bounced, failed, ...; other for a metric cioq does not know).
# TYPE cioq_message_outcomes_total counter
cioq_message_outcomes_total{outcome="accepted",template="password_reset",type="cio:send_email",workspace="default"} 1
cioq_message_outcomes_total{outcome="bounced",template="password_reset",type="cio:send_email",workspace="default"} 1
# HELP cioq_webhook_requests_total Requests to the reporting webhook receiver by workspace (unknown until authenticated) and outcome.
# TYPE cioq_webhook_requests_total counter
cioq_webhook_requests_total{outcome="unauthorized",workspace="unknown"} 1
`), "cioq_message_outcomes_total", "cioq_webhook_requests_total")
	if err != nil {
		t.Error(err)
	}
	mfs, _ := reg.Gather()
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "cioq_message_delivery_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			found = h.GetSampleCount() == 1 && h.GetSampleSum() == 3
		}
	}
	if !found {
		t.Error("cioq_message_delivery_seconds did not observe the delivery")
	}
	for _, p := range lint(t, reg) {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	var nilm *MessageMetrics
	nilm.MessageOutcome("a", "b", "c", "d")
	nilm.MessageDelivered("a", "b", time.Second)
	nilm.WebhookRequest("a", "b")
}

// TestAlertRules runs the example alert rules' unit tests
// (deploy/prometheus/alerts_test.yml) with promtool, when it is installed.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus)")
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yml")
	cmd.Dir = filepath.Join("..", "..", "deploy", "prometheus")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}
