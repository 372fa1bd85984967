package customerio

import (
	"context"
	"net/http"
	"strconv"
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

// TransactionalContent is one content variant of a transactional message
// (the default one, or a translation), as GET
// /v1/transactional/{id}/contents lists it.
//
// Confirmed in Customer.io's App API reference (operation
// listTransactionalVariants, the Node SDK's
// getTransactionalMessageContents): the body is {"contents":[...]} and each
// variant has id, name, type ("email" or "push"), language ("" for the
// default), subject, body, body_amp, preheader_text, from, from_id,
// reply_to, reply_to_id, recipient, bcc, cc, fake_bcc, headers,
// preprocessor, created and updated (unix seconds). The type of the other
// channels' variants (SMS, in-app, inbox, WhatsApp) is UNCONFIRMED. Absent
// fields decode as zero values.
type TransactionalContent struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Language string `json:"language"`
	// Subject, Body, BodyAMP, PreheaderText (and the address fields) are
	// Liquid templates: message_data is {{ trigger.* }}.
	Subject       string `json:"subject"`
	Body          string `json:"body"`
	BodyAMP       string `json:"body_amp,omitempty"`
	PreheaderText string `json:"preheader_text"`
	From          string `json:"from,omitempty"`
	ReplyTo       string `json:"reply_to,omitempty"`
	Recipient     string `json:"recipient,omitempty"`
	BCC           string `json:"bcc,omitempty"`
	CC            string `json:"cc,omitempty"`
	Created       int64  `json:"created,omitempty"`
	Updated       int64  `json:"updated,omitempty"`
}

// TransactionalContents lists a transactional message's content variants:
// GET /v1/transactional/{id}/contents with the App API key (App API reads
// are limited to 10 requests/second: a 429 is a ClassTransient *APIError
// with StatusCode 429 and its RetryAfter). An unknown id is a
// ClassPermanent *APIError (404).
func (c *Client) TransactionalContents(ctx context.Context, id int64) ([]TransactionalContent, error) {
	rq := &request{api: APIApp, op: "transactional_contents", method: http.MethodGet,
		path: []string{"v1", "transactional", strconv.FormatInt(id, 10), "contents"}}
	type list struct {
		Contents []TransactionalContent `json:"contents"`
	}
	out, err := doJSON[list](ctx, c, rq)
	if err != nil {
		return nil, err
	}
	if out.Contents == nil {
		out.Contents = []TransactionalContent{}
	}
	return out.Contents, nil
}
