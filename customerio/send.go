package customerio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// MessageID is a transactional message: a numeric template id or a trigger
// name. All-digit values are sent as JSON numbers (the documented integer id);
// others as strings. It decodes from either.
type MessageID string

// MarshalJSON writes an all-digit id as a number and anything else as a string.
func (m MessageID) MarshalJSON() ([]byte, error) {
	if m != "" {
		if _, err := strconv.ParseUint(string(m), 10, 63); err == nil {
			return []byte(m), nil
		}
	}
	return json.Marshal(string(m))
}

// UnmarshalJSON accepts a JSON number or string. Any other JSON value is a
// *json.UnmarshalTypeError naming its kind (never its contents), which
// encoding/json completes with the field.
func (m *MessageID) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*m = MessageID(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKindOf(b), Type: reflect.TypeFor[MessageID]()}
	}
	*m = MessageID(s)
	return nil
}

// jsonKindOf names the kind of a JSON value as encoding/json's
// UnmarshalTypeError.Value does: object, array, bool, string or number.
func jsonKindOf(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	}
	return "number"
}

// SendOptions are the fields every transactional send shares.
type SendOptions struct {
	TransactionalMessageID  MessageID      `json:"transactional_message_id,omitempty"`
	Identifiers             *Identifiers   `json:"identifiers,omitempty"`
	MessageData             map[string]any `json:"message_data,omitempty"`
	SendAt                  int64          `json:"send_at,omitempty"` // unix seconds, ≤ 90 days ahead
	DisableMessageRetention *bool          `json:"disable_message_retention,omitempty"`
	SendToUnsubscribed      *bool          `json:"send_to_unsubscribed,omitempty"`
	QueueDraft              *bool          `json:"queue_draft,omitempty"`
	Language                string         `json:"language,omitempty"`
	AutoCreate              *bool          `json:"auto_create,omitempty"`
}

// SendResponse is Customer.io's answer to a transactional send.
type SendResponse struct {
	DeliveryID string `json:"delivery_id"`
	QueuedAt   int64  `json:"queued_at"`
	SendAt     int64  `json:"send_at,omitempty"`
}

// sendRules says which common fields a channel requires.
type sendRules struct {
	identifiers bool // identifiers required (validated whenever set)
	messageID   bool // transactional_message_id required
}

func (s *SendOptions) validate(r sendRules, now time.Time) error {
	if r.identifiers || s.Identifiers != nil {
		if err := ValidatePersonIdentifiers("identifiers", s.Identifiers); err != nil {
			return err
		}
	}
	if r.messageID && strings.TrimSpace(string(s.TransactionalMessageID)) == "" {
		return invalid("transactional_message_id", "is required")
	}
	if s.SendAt < 0 {
		return invalid("send_at", "must not be negative")
	}
	if s.SendAt > 0 && time.Unix(s.SendAt, 0).After(now.Add(MaxSendAhead)) {
		return invalid("send_at", "must be at most 90 days ahead")
	}
	if s.MessageData != nil && encodedSize(s.MessageData) < 0 {
		return invalid("message_data", "cannot be encoded as JSON")
	}
	return nil
}

// send validates a transactional message and posts it to
// /v1/send/{channel}; a refused message is a *ValidationError and nothing
// is sent.
func (c *Client) send(ctx context.Context, op, channel string, body interface{ Validate() error }) (*SendResponse, error) {
	if err := body.Validate(); err != nil {
		return nil, err
	}
	rq := &request{api: APIApp, op: op, method: http.MethodPost, path: []string{"v1", "send", channel}, body: body}
	return doJSON[SendResponse](ctx, c, rq)
}

// SendEmailRequest is the body of POST /v1/send/email.
type SendEmailRequest struct {
	SendOptions
	To                      string            `json:"to"`
	CC                      string            `json:"cc,omitempty"`
	BCC                     string            `json:"bcc,omitempty"`
	From                    string            `json:"from,omitempty"`
	ReplyTo                 string            `json:"reply_to,omitempty"`
	Subject                 string            `json:"subject,omitempty"`
	Preheader               string            `json:"preheader,omitempty"`
	Body                    string            `json:"body,omitempty"`
	BodyPlain               string            `json:"body_plain,omitempty"`
	BodyAMP                 string            `json:"body_amp,omitempty"`
	Headers                 map[string]string `json:"headers,omitempty"`
	Attachments             map[string]string `json:"attachments,omitempty"` // file name → base64 content
	FakeBCC                 *bool             `json:"fake_bcc,omitempty"`
	DisableCSSPreprocessing *bool             `json:"disable_css_preprocessing,omitempty"`
	Tracked                 *bool             `json:"tracked,omitempty"`
}

// SendEmail sends a transactional email: POST /v1/send/email. Sends are not
// idempotent: retrying after a timeout may send twice.
func (c *Client) SendEmail(ctx context.Context, r *SendEmailRequest) (*SendResponse, error) {
	return c.send(ctx, "send_email", "email", r)
}

// Validate checks a transactional email: to is required; identifiers, when
// set, name exactly one person; at most 15 recipients across to, cc and bcc;
// attachment names with an extension and valid base64 content, at most
// 2,000,000 bytes in total; send_at at most 90 days ahead.
func (r *SendEmailRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	if err := r.SendOptions.validate(sendRules{}, time.Now()); err != nil {
		return err
	}
	if strings.TrimSpace(r.To) == "" {
		return invalid("to", "is required")
	}
	if countRecipients(r.To)+countRecipients(r.CC)+countRecipients(r.BCC) > MaxEmailRecipients {
		return invalid("to", "at most 15 recipients across to, cc and bcc")
	}
	total := 0
	for name, content := range r.Attachments {
		ext := path.Ext(name)
		if strings.TrimSpace(name) == "" || len(ext) < 2 || strings.ContainsAny(name, "/\\") {
			return invalid("attachments", "file names must have an extension")
		}
		if _, err := base64.StdEncoding.DecodeString(content); err != nil {
			return invalid("attachments", "content must be standard base64")
		}
		total += len(content)
	}
	if total > MaxAttachmentBytes {
		return invalid("attachments", "must total at most 2000000 bytes")
	}
	return nil
}

// countRecipients counts the comma-separated addresses of a to/cc/bcc field,
// ignoring commas inside quoted display names and angle brackets.
func countRecipients(s string) int {
	n, inQuote, inAngle, has := 0, false, false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == '<' && !inQuote:
			inAngle = true
		case r == '>' && !inQuote:
			inAngle = false
		case r == ',' && !inQuote && !inAngle:
			if has {
				n++
			}
			has = false
			continue
		}
		if r != ' ' && r != '\t' {
			has = true
		}
	}
	if has {
		n++
	}
	return n
}

// PushDevice is the custom_device of a push send: upserted before sending.
type PushDevice struct {
	Token      string            `json:"token"`
	Platform   string            `json:"platform"`
	LastUsed   int64             `json:"last_used,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// SendPushRequest is the body of POST /v1/send/push.
type SendPushRequest struct {
	SendOptions
	To            string            `json:"to,omitempty"` // all (default), last_used, or a device token
	Title         string            `json:"title,omitempty"`
	Message       string            `json:"message,omitempty"`
	ImageURL      string            `json:"image_url,omitempty"`
	Link          string            `json:"link,omitempty"`
	Sound         string            `json:"sound,omitempty"`
	CustomData    map[string]string `json:"custom_data,omitempty"`
	CustomPayload map[string]any    `json:"custom_payload,omitempty"`
	CustomDevice  *PushDevice       `json:"custom_device,omitempty"`
}

// SendPush sends a transactional push: POST /v1/send/push.
func (c *Client) SendPush(ctx context.Context, r *SendPushRequest) (*SendResponse, error) {
	return c.send(ctx, "send_push", "push", r)
}

// Validate checks a transactional push: identifiers (exactly one) and
// transactional_message_id are required; a custom_device needs a token and
// an ios/android platform; send_at at most 90 days ahead.
func (r *SendPushRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	if err := r.SendOptions.validate(sendRules{identifiers: true, messageID: true}, time.Now()); err != nil {
		return err
	}
	if d := r.CustomDevice; d != nil {
		if strings.TrimSpace(d.Token) == "" {
			return invalid("custom_device.token", "is required")
		}
		if err := checkPlatform("custom_device.platform", d.Platform); err != nil {
			return err
		}
		if err := checkStringAttributes("custom_device.attributes", d.Attributes); err != nil {
			return err
		}
	}
	if r.CustomPayload != nil && encodedSize(r.CustomPayload) < 0 {
		return invalid("custom_payload", "cannot be encoded as JSON")
	}
	return nil
}

// SendSMSRequest is the body of POST /v1/send/sms.
type SendSMSRequest struct {
	SendOptions
	To      string `json:"to"`
	From    string `json:"from,omitempty"`
	Tracked *bool  `json:"tracked,omitempty"`
}

// SendSMS sends a transactional SMS: POST /v1/send/sms.
func (c *Client) SendSMS(ctx context.Context, r *SendSMSRequest) (*SendResponse, error) {
	return c.send(ctx, "send_sms", "sms", r)
}

// Validate checks a transactional SMS: identifiers (exactly one),
// transactional_message_id and to are required; send_at at most 90 days
// ahead.
func (r *SendSMSRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return validateMessageTo(&r.SendOptions, r.To)
}

// SendWhatsAppRequest is the body of POST /v1/send/whatsapp.
//
// Its fields are those of Customer.io's sendWhatsApp schema (App API
// reference, docs.customer.io/integrations/api/app/tag/send-messages/sendWhatsApp/):
// transactional_message_id, identifiers (id, email or cio_id), to, from,
// tracked, message_data, send_at, send_to_unsubscribed,
// disable_message_retention, queue_draft and language; the official Ruby
// SDK's SendWhatsAppRequest sends tracked too. That schema lists no
// auto_create (SendOptions has it for every channel; whether WhatsApp
// sends honour it is UNCONFIRMED, and it is sent only when set).
type SendWhatsAppRequest struct {
	SendOptions
	To   string `json:"to"`
	From string `json:"from,omitempty"`
	// Tracked overrides the message's link tracking (Customer.io's default:
	// the transactional message's own setting).
	Tracked *bool `json:"tracked,omitempty"`
}

// SendWhatsApp sends a transactional WhatsApp message: POST /v1/send/whatsapp.
func (c *Client) SendWhatsApp(ctx context.Context, r *SendWhatsAppRequest) (*SendResponse, error) {
	return c.send(ctx, "send_whatsapp", "whatsapp", r)
}

// Validate checks a transactional WhatsApp message like an SMS.
func (r *SendWhatsAppRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return validateMessageTo(&r.SendOptions, r.To)
}

// validateMessageTo checks a send addressed to a phone number (SMS,
// WhatsApp): identifiers and transactional_message_id required, send_at at
// most 90 days ahead, a non-blank to.
func validateMessageTo(o *SendOptions, to string) error {
	if err := o.validate(sendRules{identifiers: true, messageID: true}, time.Now()); err != nil {
		return err
	}
	if strings.TrimSpace(to) == "" {
		return invalid("to", "is required")
	}
	return nil
}

// SendInAppRequest is the body of POST /v1/send/in_app.
type SendInAppRequest struct {
	SendOptions
}

// SendInApp sends a transactional in-app message: POST /v1/send/in_app.
func (c *Client) SendInApp(ctx context.Context, r *SendInAppRequest) (*SendResponse, error) {
	return c.send(ctx, "send_in_app", "in_app", r)
}

// Validate checks a transactional in-app message: identifiers (exactly one)
// and transactional_message_id are required; send_at at most 90 days ahead.
func (r *SendInAppRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return r.SendOptions.validate(sendRules{identifiers: true, messageID: true}, time.Now())
}

// SendInboxRequest is the body of POST /v1/send/inbox_message.
type SendInboxRequest struct {
	SendOptions
	To string `json:"to,omitempty"`
}

// SendInbox sends a transactional inbox message: POST /v1/send/inbox_message.
func (c *Client) SendInbox(ctx context.Context, r *SendInboxRequest) (*SendResponse, error) {
	return c.send(ctx, "send_inbox", "inbox_message", r)
}

// Validate checks a transactional inbox message like an in-app message.
func (r *SendInboxRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return r.SendOptions.validate(sendRules{identifiers: true, messageID: true}, time.Now())
}
