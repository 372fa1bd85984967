package sandbox

import (
	"net/http"
	"strconv"
	"strings"
)

// Delivery statuses (Delivery.Status).
const (
	DeliveryDelivered = "delivered"
	DeliveryBounced   = "bounced"
	DeliveryFailed    = "failed"
)

// BounceReason is the FailureReason of a delivery to a bounce address.
const BounceReason = "550 5.1.1 The email account that you tried to reach does not exist (sandbox: bounce address)"

// settle decides what becomes of an accepted delivery, unless something
// decided already (Status set): a recipient whose local part is "bounce"
// bounces, anything else is delivered.
func settle(d *Delivery) {
	if d.Status != "" {
		if d.Status == DeliveryFailed && d.FailureReason == "" {
			d.FailureReason = "failed"
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
			d.Status, d.FailureReason = DeliveryBounced, BounceReason
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
	if d.FailureReason != "" {
		failure = d.FailureReason
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
