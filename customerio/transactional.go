package customerio

import (
	"context"
	"net/http"
)

// TransactionalMessage is one transactional message (template) of a
// workspace, as GET /v1/transactional lists it.
//
// Confirmed in Customer.io's App API reference (operation
// listTransactional, docs.customer.io/integrations/api/app/): the body is
// {"messages":[...]} and each message has id (integer), name, description,
// send_to_unsubscribed, link_tracking, open_tracking, hide_message_body,
// queue_drafts, created_at and updated_at (unix seconds). Whether a field
// can be absent or null is UNCONFIRMED: absent fields decode as zero values.
type TransactionalMessage struct {
	// ID is the numeric id a send's transactional_message_id may carry.
	ID int64 `json:"id"`
	// Name is the message's name in Customer.io (a send may name the
	// message by its trigger name instead of its id).
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// SendToUnsubscribed, LinkTracking, OpenTracking, HideMessageBody and
	// QueueDrafts are the message's settings.
	SendToUnsubscribed bool `json:"send_to_unsubscribed"`
	LinkTracking       bool `json:"link_tracking"`
	OpenTracking       bool `json:"open_tracking"`
	HideMessageBody    bool `json:"hide_message_body"`
	QueueDrafts        bool `json:"queue_drafts"`
	// CreatedAt and UpdatedAt are unix seconds.
	CreatedAt int64 `json:"created_at,omitempty"`
	UpdatedAt int64 `json:"updated_at,omitempty"`
}

// ListTransactional lists the workspace's transactional messages:
// GET /v1/transactional with the App API key (Customer.io's App API
// reference; App API reads share the 10 requests/second limit). It changes nothing and needs
// no person, which makes it the App API's credentials check: a wrong key
// fails with a ClassAuth *APIError (401).
//
// A service-account token (sa_live_...) is documented for transactional
// sends only; whether it may read this list is UNCONFIRMED, and the
// client sends no X-Workspace-Id with it.
func (c *Client) ListTransactional(ctx context.Context) ([]TransactionalMessage, error) {
	rq := &request{api: APIApp, op: "list_transactional", method: http.MethodGet, path: []string{"v1", "transactional"}}
	type list struct {
		Messages []TransactionalMessage `json:"messages"`
	}
	out, err := doJSON[list](ctx, c, rq)
	if err != nil {
		return nil, err
	}
	if out.Messages == nil {
		out.Messages = []TransactionalMessage{}
	}
	return out.Messages, nil
}
