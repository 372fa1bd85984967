package tasks

import (
	"github.com/cioq/cioq/customerio"
)

// Transactional sends (App API): one payload per channel, each exactly
// Customer.io's request body.

// SendEmail is a transactional email: exactly Customer.io's body of
// POST /v1/send/email.
type SendEmail customerio.SendEmailRequest

// TaskType returns TypeSendEmail.
func (SendEmail) TaskType() string { return TypeSendEmail }

// Validate applies the client's rules for a transactional email.
func (p SendEmail) Validate() error { return (*customerio.SendEmailRequest)(&p).Validate() }

// SendPush is a transactional push: Customer.io's body of POST /v1/send/push.
type SendPush customerio.SendPushRequest

// TaskType returns TypeSendPush.
func (SendPush) TaskType() string { return TypeSendPush }

// Validate applies the client's rules for a transactional push.
func (p SendPush) Validate() error { return (*customerio.SendPushRequest)(&p).Validate() }

// SendSMS is a transactional SMS: Customer.io's body of POST /v1/send/sms.
type SendSMS customerio.SendSMSRequest

// TaskType returns TypeSendSMS.
func (SendSMS) TaskType() string { return TypeSendSMS }

// Validate applies the client's rules for a transactional SMS.
func (p SendSMS) Validate() error { return (*customerio.SendSMSRequest)(&p).Validate() }

// SendInApp is a transactional in-app message: Customer.io's body of
// POST /v1/send/in_app.
type SendInApp customerio.SendInAppRequest

// TaskType returns TypeSendInApp.
func (SendInApp) TaskType() string { return TypeSendInApp }

// Validate applies the client's rules for a transactional in-app message.
func (p SendInApp) Validate() error { return (*customerio.SendInAppRequest)(&p).Validate() }

// SendInbox is a transactional inbox message: Customer.io's body of
// POST /v1/send/inbox_message.
type SendInbox customerio.SendInboxRequest

// TaskType returns TypeSendInbox.
func (SendInbox) TaskType() string { return TypeSendInbox }

// Validate applies the client's rules for a transactional inbox message.
func (p SendInbox) Validate() error { return (*customerio.SendInboxRequest)(&p).Validate() }

// SendWhatsApp is a transactional WhatsApp message: Customer.io's body of
// POST /v1/send/whatsapp.
type SendWhatsApp customerio.SendWhatsAppRequest

// TaskType returns TypeSendWhatsApp.
func (SendWhatsApp) TaskType() string { return TypeSendWhatsApp }

// Validate applies the client's rules for a transactional WhatsApp message.
func (p SendWhatsApp) Validate() error { return (*customerio.SendWhatsAppRequest)(&p).Validate() }

// Template returns the channel, template and message data (Templated).
func (p SendEmail) Template() (string, customerio.MessageID, map[string]any) {
	return ChannelEmail, p.TransactionalMessageID, p.MessageData
}

// Template returns the channel, template and message data (Templated).
func (p SendPush) Template() (string, customerio.MessageID, map[string]any) {
	return ChannelPush, p.TransactionalMessageID, p.MessageData
}

// Template returns the channel, template and message data (Templated).
func (p SendSMS) Template() (string, customerio.MessageID, map[string]any) {
	return ChannelSMS, p.TransactionalMessageID, p.MessageData
}

// Template returns the channel, template and message data (Templated).
func (p SendInApp) Template() (string, customerio.MessageID, map[string]any) {
	return ChannelInApp, p.TransactionalMessageID, p.MessageData
}

// Template returns the channel, template and message data (Templated).
func (p SendInbox) Template() (string, customerio.MessageID, map[string]any) {
	return ChannelInbox, p.TransactionalMessageID, p.MessageData
}

// Template returns the channel, template and message data (Templated).
func (p SendWhatsApp) Template() (string, customerio.MessageID, map[string]any) {
	return ChannelWhatsApp, p.TransactionalMessageID, p.MessageData
}
