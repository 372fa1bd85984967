package customerio

import (
	"context"
	"net/http"
)

// Message is a delivery as GET /v1/messages/{message_id} describes it: the
// instance of a message meant for one person.
//
// Confirmed in Customer.io's App API reference (operation getMessage,
// docs.customer.io/integrations/api/app/tag/messages/getMessage/): the body
// is {"message":{...}} with id, deduplicate_id, msg_template_id, action_id,
// customer_id, recipient, subject, metrics (metric name → unix seconds,
// e.g. "sent", "delivered"), created, failure_message (null when none),
// newsletter_id, campaign_id, broadcast_id, type ("email", ...) and
// forgotten; 404 for an unknown id, 429 over the App API's 10 requests per
// second. Which metric names appear besides sent and delivered is
// UNCONFIRMED (the reporting webhooks' metrics are assumed).
type Message struct {
	// ID is the delivery id (a transactional send's DeliveryID).
	ID string `json:"id"`
	// Type is the channel: email, push, sms, ...
	Type string `json:"type"`
	// Metrics maps each metric that happened to when (unix seconds).
	Metrics map[string]int64 `json:"metrics"`
	// FailureMessage is Customer.io's reason of a failure ("" if none).
	// It can quote the recipient: treat it as person data.
	FailureMessage string `json:"failure_message"`
	// Created is when the delivery was created (unix seconds).
	Created int64 `json:"created"`
	// Recipient is the address, number or device the message was for
	// (person data).
	Recipient string `json:"recipient"`
	// Forgotten is true once the message's content was deleted.
	Forgotten bool `json:"forgotten"`
}

// Message reads one delivery's metrics and failure message:
// GET /v1/messages/{id} with the App API key (an App API read, within its
// 10 requests per second). A missing id is a ClassPermanent *APIError
// (404).
func (c *Client) Message(ctx context.Context, id string) (*Message, error) {
	if id == "" {
		return nil, invalid("message_id", "is required")
	}
	rq := &request{api: APIApp, op: "get_message", method: http.MethodGet, path: []string{"v1", "messages", id}, pathValues: []string{id}}
	type body struct {
		Message Message `json:"message"`
	}
	out, err := doJSON[body](ctx, c, rq)
	if err != nil {
		return nil, err
	}
	if out.Message.Metrics == nil {
		out.Message.Metrics = map[string]int64{}
	}
	return &out.Message, nil
}
