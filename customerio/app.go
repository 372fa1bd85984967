package customerio

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// send posts a transactional message to /v1/send/{channel}.
func (c *Client) send(ctx context.Context, op, channel string, body any) (*SendResponse, error) {
	rq := &request{api: APIApp, op: op, method: http.MethodPost, path: []string{"v1", "send", channel}, body: body}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var out SendResponse
	if err := resp.decode(rq, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SendEmail sends a transactional email: POST /v1/send/email. Sends are not
// idempotent: retrying after a timeout may send twice.
func (c *Client) SendEmail(ctx context.Context, r *SendEmailRequest) (*SendResponse, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.send(ctx, "send_email", "email", r)
}

// SendPush sends a transactional push: POST /v1/send/push.
func (c *Client) SendPush(ctx context.Context, r *SendPushRequest) (*SendResponse, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.send(ctx, "send_push", "push", r)
}

// SendSMS sends a transactional SMS: POST /v1/send/sms.
func (c *Client) SendSMS(ctx context.Context, r *SendSMSRequest) (*SendResponse, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.send(ctx, "send_sms", "sms", r)
}

// SendInApp sends a transactional in-app message: POST /v1/send/in_app.
func (c *Client) SendInApp(ctx context.Context, r *SendInAppRequest) (*SendResponse, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.send(ctx, "send_in_app", "in_app", r)
}

// SendInbox sends a transactional inbox message: POST /v1/send/inbox_message.
func (c *Client) SendInbox(ctx context.Context, r *SendInboxRequest) (*SendResponse, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.send(ctx, "send_inbox", "inbox_message", r)
}

// SendWhatsApp sends a transactional WhatsApp message: POST /v1/send/whatsapp.
func (c *Client) SendWhatsApp(ctx context.Context, r *SendWhatsAppRequest) (*SendResponse, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return c.send(ctx, "send_whatsapp", "whatsapp", r)
}

// TriggerBroadcast triggers an API-triggered broadcast:
// POST /v1/campaigns/{broadcastID}/triggers. r nil (or with no recipient
// shape) sends to the broadcast's default audience; the body is then {} or
// {"data":...}, never an empty recipients filter. Customer.io allows one
// trigger per 10 seconds and 5 queued per broadcast.
func (c *Client) TriggerBroadcast(ctx context.Context, broadcastID int, r *TriggerBroadcastRequest) (*BroadcastTrigger, error) {
	if broadcastID < 1 {
		return nil, invalid("broadcast_id", "must be a positive broadcast id")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var body any = r
	if r == nil {
		body = struct{}{}
	}
	rq := &request{api: APIApp, op: "trigger_broadcast", method: http.MethodPost,
		path: []string{"v1", "campaigns", strconv.Itoa(broadcastID), "triggers"}, body: body}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var out BroadcastTrigger
	if err := resp.decode(rq, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TriggerStatus reads a broadcast trigger's state:
// GET /v1/campaigns/{broadcastID}/triggers/{triggerID}.
func (c *Client) TriggerStatus(ctx context.Context, broadcastID, triggerID int) (*TriggerStatus, error) {
	if broadcastID < 1 {
		return nil, invalid("broadcast_id", "must be a positive broadcast id")
	}
	if triggerID < 1 {
		return nil, invalid("trigger_id", "must be a positive trigger id")
	}
	rq := &request{api: APIApp, op: "trigger_status", method: http.MethodGet,
		path: []string{"v1", "campaigns", strconv.Itoa(broadcastID), "triggers", strconv.Itoa(triggerID)}}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var out TriggerStatus
	if err := resp.decode(rq, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TriggerErrors reads one page of a trigger's errors:
// GET /v1/campaigns/{broadcastID}/triggers/{triggerID}/errors?start=&limit=.
// start and limit are sent when positive; the next page starts at the
// result's Next.
func (c *Client) TriggerErrors(ctx context.Context, broadcastID, triggerID, start, limit int) (*TriggerErrors, error) {
	if broadcastID < 1 {
		return nil, invalid("broadcast_id", "must be a positive broadcast id")
	}
	if triggerID < 1 {
		return nil, invalid("trigger_id", "must be a positive trigger id")
	}
	if start < 0 {
		return nil, invalid("start", "must not be negative")
	}
	if limit < 0 {
		return nil, invalid("limit", "must not be negative")
	}
	q := url.Values{}
	if start > 0 {
		q.Set("start", strconv.Itoa(start))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	rq := &request{api: APIApp, op: "trigger_errors", method: http.MethodGet, query: q,
		path: []string{"v1", "campaigns", strconv.Itoa(broadcastID), "triggers", strconv.Itoa(triggerID), "errors"}}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var out TriggerErrors
	if err := resp.decode(rq, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// decodeLoose unmarshals body into v and reports success.
func decodeLoose(body []byte, v any) bool { return json.Unmarshal(body, v) == nil }
