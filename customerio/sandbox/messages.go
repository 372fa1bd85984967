package sandbox

import (
	"net/http"
	"strconv"
	"strings"
)

// Delivery statuses (Delivery.Status): what became of a transactional
// send the sandbox accepted with 200. One model serves /_sandbox/deliveries,
// GET /v1/messages/{id} and the reporting webhooks.
const (
	// DeliveryDelivered: rendered and delivered (webhooks "sent", then
	// "delivered").
	DeliveryDelivered = "delivered"
	// DeliveryBounced: sent to an address whose local part is "bounce"
	// (bounce@example.com); FailureMessage is BounceReason (webhooks
	// "sent", then "bounced").
	DeliveryBounced = "bounced"
	// DeliveryFailed: accepted (200 with a delivery_id, as Customer.io
	// answers) but never sent: its template did not render, e.g.
	// message_data lacked a variable the template uses, or
	// Config.DeliveryFailure failed it; FailureMessage says why (webhook
	// "failed" with failure_message). Customer.io shows such a message as
	// Failed.
	DeliveryFailed = "failed"
	// DeliveryScheduled: accepted with a send_at in the future; nothing is
	// reported yet.
	DeliveryScheduled = "scheduled"
	// DeliveryDrafted: accepted with queue_draft: held as a draft; nothing
	// is reported yet.
	DeliveryDrafted = "drafted"
)

// BounceReason is the FailureMessage of a delivery to a bounce address.
const BounceReason = "550 5.1.1 The email account that you tried to reach does not exist (sandbox: bounce address)"

// settle decides what becomes of an accepted delivery, unless something
// decided already (Status set): a recipient whose local part is "bounce"
// bounces, anything else is delivered.
func settle(d *Delivery) {
	if d.Status != "" {
		if d.Status == DeliveryFailed && d.FailureMessage == "" {
			d.FailureMessage = "failed"
		}
		return
	}
	to := d.To
	if to == "" {
		to = d.Identifiers["email"]
	}
	for _, addr := range strings.Split(to, ",") {
		addr = strings.TrimSpace(addr)
		if i := strings.LastIndexByte(addr, '<'); i >= 0 {
			addr = strings.TrimSuffix(addr[i+1:], ">")
		}
		if local, _, ok := strings.Cut(addr, "@"); ok && strings.EqualFold(local, "bounce") {
			d.Status, d.FailureMessage = DeliveryBounced, BounceReason
			return
		}
	}
	d.Status = DeliveryDelivered
}

// deliveryMetrics are the metrics a delivery reports, in order, with the
// delivery's queued time (unix seconds) for each.
func deliveryMetrics(d Delivery) []string {
	switch d.Status {
	case DeliveryBounced:
		return []string{"sent", "bounced"}
	case DeliveryFailed:
		return []string{"failed"}
	case DeliveryScheduled, DeliveryDrafted:
		return nil
	}
	return []string{"sent", "delivered"}
}

// channelObjectType is the object_type Customer.io reports for a
// transactional channel.
func channelObjectType(channel string) string {
	switch channel {
	case "inbox_message":
		return "inbox"
	}
	return channel
}

// message answers GET /v1/messages/{message_id}: a delivery's metrics and
// failure_message, in the shape of Customer.io's App API "Get a message".
func (s *Server) message(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("message_id")
	var d Delivery
	var ok bool
	s.read(func(st *state) {
		var i int
		if i, ok = st.deliveryIdx[id]; ok {
			d = copyDelivery(st.deliveries[i])
		}
	})
	if !ok {
		metaError(w, http.StatusNotFound, "message not found")
		return
	}
	at := d.QueuedAt.Unix()
	metrics := map[string]int64{}
	for _, m := range deliveryMetrics(d) {
		metrics[m] = at
	}
	var failure any
	if d.FailureMessage != "" {
		failure = d.FailureMessage
	}
	var tmpl any
	if d.TransactionalMessageID != "" {
		tmpl = d.TransactionalMessageID
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": map[string]any{
		"id": d.DeliveryID, "deduplicate_id": d.DeliveryID + ":" + strconv.FormatInt(at, 10), "created": at,
		"recipient": d.To, "customer_id": d.Identifiers["id"], "metrics": metrics,
		"failure_message": failure, "type": channelObjectType(d.Channel),
		"transactional_message_id": tmpl, "forgotten": false,
	}})
}
