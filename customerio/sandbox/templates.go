package sandbox

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/osteele/liquid"
)

// TransactionalContent is one content variant of a transactional message
// (a language, or the default one), with the field names of Customer.io's
// GET /v1/transactional/{id}/contents (App API reference, operation
// listTransactionalVariants: {"contents":[...]}).
type TransactionalContent struct {
	// ID is the content's id.
	ID int64 `json:"id"`
	// Name is the message's name.
	Name string `json:"name"`
	// Type is the channel: email or push in Customer.io's reference (other
	// channels' values are UNCONFIRMED; the sandbox uses the send paths'
	// names: sms, in_app, inbox_message, whatsapp).
	Type string `json:"type"`
	// Language is "" for the default content, else a language code.
	Language string `json:"language"`
	// Subject, Body and PreheaderText are Liquid; message_data is
	// {{ trigger.* }}, the person's attributes {{ customer.* }}.
	Subject       string `json:"subject"`
	Body          string `json:"body"`
	PreheaderText string `json:"preheader_text"`
	From          string `json:"from,omitempty"`
	ReplyTo       string `json:"reply_to,omitempty"`
	Recipient     string `json:"recipient,omitempty"`
	// Created and Updated are unix seconds.
	Created int64 `json:"created,omitempty"`
	Updated int64 `json:"updated,omitempty"`
}

// defaultContents are the contents of DefaultTransactionalMessages: the
// demo's password reset (a default filter and an optional variable) and
// order confirmation (a loop over items and a conditional coupon).
func defaultContents(id int64, name string) []TransactionalContent {
	const created = 1552341937
	switch id {
	case 1:
		return []TransactionalContent{{ID: 11, Name: name, Type: "email", Created: created, Updated: created,
			Subject:       "Reset your password",
			PreheaderText: `The link expires in {{ trigger.expiry_hours | default: 24 }} hours`,
			Body: `<p>Hi {{ customer.first_name | default: "there" }},</p>` +
				`<p><a href="{{ trigger.reset_link }}">Reset your password</a>. ` +
				`The link expires in {{ trigger.expiry_hours | default: 24 }} hours.</p>`}}
	case 2:
		return []TransactionalContent{{ID: 21, Name: name, Type: "email", Created: created, Updated: created,
			Subject:       `Order {{ trigger.order_id }} confirmed`,
			PreheaderText: `Thanks for your order`,
			Body: `<table>{% for item in trigger.items %}` +
				`<tr><td>{{ item.quantity }} × {{ item.name }}</td><td>{{ item.price }}</td></tr>` +
				`{% endfor %}</table><p>Total: {{ trigger.total }}</p>` +
				`{% if trigger.coupon %}<p>Coupon {{ trigger.coupon }} applied</p>{% endif %}`}}
	}
	return nil
}

// template finds the message a transactional_message_id names: an integer
// id, or a trigger name (case-insensitive; a message without Trigger is
// found by Name).
func (s *Server) template(id string) (*TransactionalMessage, bool) {
	n, numeric := strconv.ParseInt(id, 10, 64)
	for i := range s.cfg.TransactionalMessages {
		m := &s.cfg.TransactionalMessages[i]
		if numeric == nil && m.ID == n {
			return m, true
		}
		name := m.Trigger
		if name == "" {
			name = m.Name
		}
		if numeric != nil && strings.EqualFold(name, id) {
			return m, true
		}
	}
	return nil, false
}

// transactionalContents answers GET /v1/transactional/{id}/contents:
// {"contents":[...]}; 404 for an unknown id (body UNCONFIRMED: the App
// API's error shape).
func (s *Server) transactionalContents(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var m *TransactionalMessage
	if err == nil {
		for i := range s.cfg.TransactionalMessages {
			if s.cfg.TransactionalMessages[i].ID == id {
				m = &s.cfg.TransactionalMessages[i]
			}
		}
	}
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []map[string]any{{"detail": "transactional message not found", "status": "404"}}})
		return
	}
	contents := m.Contents
	if contents == nil {
		contents = []TransactionalContent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"contents": contents})
}

// render renders a send's template as Customer.io would before sending:
// the content of the send's language (else the default one), its subject,
// preheader and body, with message_data as trigger and the person's
// attributes as customer. A variable that renders as nothing defined (a
// missing key, or null) fails it: the error is the delivery's failure
// message. Nothing to render is no failure.
func render(m *TransactionalMessage, language string, data, person map[string]any) error {
	c := pickContent(m.Contents, language)
	if c == nil {
		return nil
	}
	e := liquid.NewEngine()
	e.StrictVariables()
	if data == nil {
		data = map[string]any{}
	}
	if person == nil {
		person = map[string]any{}
	}
	b := liquid.Bindings{"trigger": data, "customer": person}
	for _, src := range []string{c.Subject, c.PreheaderText, c.Body} {
		if src == "" {
			continue
		}
		if _, err := e.ParseAndRenderString(src, b); err != nil {
			return err
		}
	}
	return nil
}

func pickContent(cs []TransactionalContent, language string) *TransactionalContent {
	var def *TransactionalContent
	for i := range cs {
		switch cs[i].Language {
		case language:
			if language != "" {
				return &cs[i]
			}
			def = &cs[i]
		case "":
			if def == nil {
				def = &cs[i]
			}
		}
	}
	return def
}
