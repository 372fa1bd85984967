package status

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Metrics Customer.io reports about a delivery (a reporting webhook's
// "metric", or a key of GET /v1/messages/{id}'s "metrics"). Others are kept
// as they come and rank below "sent".
const (
	MetricDrafted       = "drafted"
	MetricAttempted     = "attempted"
	MetricSent          = "sent"
	MetricDelivered     = "delivered"
	MetricOpened        = "opened"
	MetricClicked       = "clicked"
	MetricConverted     = "converted"
	MetricUnsubscribed  = "unsubscribed"
	MetricSpammed       = "spammed"
	MetricBounced       = "bounced"
	MetricDropped       = "dropped"
	MetricFailed        = "failed"
	MetricUndeliverable = "undeliverable"
)

// Kinds of timeline entries cioq writes itself (webhook and poll entries
// have their metric as kind).
const (
	KindEnqueued     = "enqueued"
	KindAttempt      = "attempt"
	KindAccepted     = "accepted"
	KindDeadLettered = "dead_lettered"
	KindCompleted    = "completed" // a task of another API that Customer.io accepted (asynq's record)
	// KindDeadLetterRemoved retracts an earlier dead_lettered entry: the
	// dead letter was removed again because asynq retried the task on its
	// own (its decision reached asynq after the task's deadline), or it
	// was delivered after all.
	KindDeadLetterRemoved = "dead_letter_removed"
	// KindProcessed is a broadcast trigger Customer.io processed (the
	// fallback poll's reading of its processed_at): its audience resolved,
	// its messages on their way.
	KindProcessed = "processed"
)

// rank orders what a task's state becomes: the highest ranked entry wins,
// whatever order the events arrived in (webhooks are retried and may come
// late); a tie goes to the later one. A failure outranks delivery and
// engagement (a bounce can follow a "delivered"), a spam complaint or an
// unsubscribe outranks engagement.
func rank(kind string) int {
	switch kind {
	case KindEnqueued:
		return 1
	case KindAttempt, KindDeadLetterRemoved:
		return 2
	case KindAccepted:
		return 3
	case MetricDrafted, MetricAttempted, KindProcessed:
		return 4
	case MetricSent:
		return 5
	case KindCompleted:
		return 6
	case MetricDelivered:
		return 10
	case MetricOpened:
		return 20
	case MetricClicked:
		return 30
	case MetricConverted:
		return 40
	case MetricUnsubscribed:
		return 45
	case MetricSpammed:
		return 50
	case MetricBounced, MetricDropped, MetricFailed, MetricUndeliverable:
		return 100
	case KindDeadLettered:
		return 90
	}
	return 4 // an unknown metric: known to have happened, nothing more
}

// finalRank is the rank from which a task's state no longer changes much:
// delivered (engagement may follow), or a failure.
const finalRank = 6

// failed reports whether a metric is a failure whose reason matters.
func failed(kind string) bool { return rank(kind) >= 90 }

// OutcomeOther is the outcome label of a metric cioq does not know.
const OutcomeOther = "other"

// Outcome returns the outcome label of a metric for
// cioq_message_outcomes_total: the metric itself when it is one of the
// documented ones, "other" otherwise (keeping label values bounded).
func Outcome(metric string) string {
	switch metric {
	case MetricDrafted, MetricAttempted, MetricSent, MetricDelivered, MetricOpened, MetricClicked,
		MetricConverted, MetricUnsubscribed, MetricSpammed, MetricBounced, MetricDropped,
		MetricFailed, MetricUndeliverable, KindAccepted, KindDeadLettered, KindDeadLetterRemoved:
		return metric
	}
	return OutcomeOther
}

// Event is one thing Customer.io reported about a delivery.
type Event struct {
	// ID is Customer.io's event_id ("poll:<metric>" for the fallback poll).
	ID string
	// Metric is what happened (sent, delivered, bounced, ...), as reported.
	Metric string
	// ObjectType is what it happened to (email, push, sms, ...).
	ObjectType string
	// At is when it happened (unix seconds).
	At int64
	// Reason is Customer.io's reason of a failure, bounce or drop.
	Reason string
	// Recipient, CustomerID and Href identify a person or carry their data:
	// shown only where payloads are. The first recipient and customer id
	// reported are kept per delivery, a link per event.
	Recipient, CustomerID, Href string
	// Source is "webhook" or "poll".
	Source string
	// Delivery is the delivery id of the message an event of a broadcast
	// trigger's record is about ("delivery:<id>"; "" for a send's own
	// events): one trigger sends many messages.
	Delivery string

	// typeHint and tmplHint label the outcome metric of an event whose
	// delivery the worker has not linked to its task (yet).
	typeHint, tmplHint string
}

// maxFieldBytes bounds every string kept of an event.
const maxFieldBytes = 300

// clip truncates s to maxFieldBytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxFieldBytes {
		return s
	}
	cut := maxFieldBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Webhook is one reporting webhook event as Customer.io posts it (see
// docs/customerio-contract.md, "Reporting webhooks").
type Webhook struct {
	EventID    string                     `json:"event_id"`
	ObjectType string                     `json:"object_type"`
	Metric     string                     `json:"metric"`
	Timestamp  json.Number                `json:"timestamp"`
	Data       map[string]json.RawMessage `json:"data"`
}

// str returns data[k] as a string: a JSON string as is, a number as its
// text, anything else "".
func (w *Webhook) str(k string) string {
	raw, ok := w.Data[k]
	if !ok {
		return ""
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
	}
	return ""
}

// DeliveryRef is the delivery the event is about, as the worker names
// accepted sends ("delivery:<delivery_id>"); "" when it names none.
func (w *Webhook) DeliveryRef() string {
	if id := w.str("delivery_id"); id != "" && len(id) <= 256 {
		return "delivery:" + id
	}
	return ""
}

// TriggerRef is the broadcast trigger the event belongs to
// ("trigger:<trigger_id>"), "" when it names none.
func (w *Webhook) TriggerRef() string {
	if id := w.str("trigger_id"); id != "" && len(id) <= 64 {
		return "trigger:" + id
	}
	return ""
}

// Template is the transactional message (or "broadcast:<id>") the event
// names, "" if none.
func (w *Webhook) Template() string {
	if t := w.str("transactional_message_id"); t != "" {
		return clip(t)
	}
	if b := w.str("broadcast_id"); b != "" {
		return "broadcast:" + clip(b)
	}
	return ""
}

// At is the event's time; now when it has none.
func (w *Webhook) At(now time.Time) int64 {
	if n, err := w.Timestamp.Int64(); err == nil && n > 0 {
		return n
	}
	if f, err := strconv.ParseFloat(w.Timestamp.String(), 64); err == nil && f > 0 {
		return int64(f)
	}
	return now.Unix()
}

// Event is what is kept of the webhook.
func (w *Webhook) Event(now time.Time) Event {
	ev := Event{ID: clip(w.EventID), Metric: clip(strings.ToLower(strings.TrimSpace(w.Metric))),
		ObjectType: clip(w.ObjectType), At: w.At(now), Source: "webhook"}
	for _, k := range []string{"failure_message", "reason", "failure_reason", "bounce_reason"} {
		if s := w.str(k); s != "" {
			ev.Reason = clip(s)
			break
		}
	}
	for _, k := range []string{"recipient", "email_address", "to_phone", "device_id"} {
		if s := w.str(k); s != "" {
			ev.Recipient = clip(s)
			break
		}
	}
	ev.CustomerID = clip(w.str("customer_id"))
	if ev.CustomerID == "" {
		if raw, ok := w.Data["identifiers"]; ok {
			var ids map[string]any
			if json.Unmarshal(raw, &ids) == nil {
				for _, k := range []string{"id", "email", "cio_id"} {
					if s, ok := ids[k].(string); ok && s != "" {
						ev.CustomerID = clip(s)
						break
					}
				}
			}
		}
	}
	ev.Href = clip(w.str("href"))
	if w.TriggerRef() != "" {
		ev.Delivery = w.DeliveryRef()
	}
	return ev
}

// objectTypes maps a reporting webhook's object_type to the task type that
// sends such messages, for the metric's type label of an event whose task
// cioq has not linked (yet).
var objectTypes = map[string]string{
	"email": "cio:send_email", "push": "cio:send_push", "sms": "cio:send_sms",
	"in_app": "cio:send_in_app", "inbox": "cio:send_inbox", "whatsapp": "cio:send_whatsapp",
}
