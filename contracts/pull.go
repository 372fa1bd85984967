package contracts

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// PullOptions configure Pull.
type PullOptions struct {
	// Interval is the least time between two App API requests (default
	// 100 ms: the App API allows 10 requests per second).
	Interval time.Duration
	// Retries is how many times a request refused with 429 (after its
	// Retry-After) or failing transiently is tried again (default 5).
	Retries int
}

// Pulled is one transactional message as Pull read it.
type Pulled struct {
	// Message is the message with its variables (Source "pulled").
	Message *Message
	// Problem says why its variables could not be read (a part whose
	// Liquid does not parse); "" when they were. Message then has none.
	Problem string
}

// Pull reads a workspace's transactional messages from Customer.io's App
// API (GET /v1/transactional, then GET /v1/transactional/{id}/contents
// for each) and parses the Liquid of every content variant's subject,
// body, preheader and addresses: each message comes back with the
// message_data variables its templates use (TemplateVariables), its
// channel (from the contents' type) and its name. The requests are spaced
// by PullOptions.Interval (the App API's 10 requests per second) and a 429
// is retried after its Retry-After.
func Pull(ctx context.Context, c *customerio.Client, o PullOptions) ([]Pulled, error) {
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	p := &puller{o: o}
	var list []customerio.TransactionalMessage
	if err := p.call(ctx, func() (err error) { list, err = c.ListTransactional(ctx); return err }); err != nil {
		return nil, fmt.Errorf("contracts: list the transactional messages: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	out := make([]Pulled, 0, len(list))
	for _, m := range list {
		var contents []customerio.TransactionalContent
		if err := p.call(ctx, func() (err error) { contents, err = c.TransactionalContents(ctx, m.ID); return err }); err != nil {
			return nil, fmt.Errorf("contracts: read the contents of transactional message %d: %w", m.ID, err)
		}
		msg := &Message{ID: m.ID, Name: m.Name, Source: SourcePulled, Variables: map[string]*Variable{}}
		var parts []Part
		for _, ct := range contents {
			if msg.Channel == "" {
				msg.Channel = channelOf(ct.Type)
			}
			lang := ct.Language
			if lang == "" {
				lang = "default"
			}
			for _, f := range []struct{ name, src string }{
				{"subject", ct.Subject}, {"preheader_text", ct.PreheaderText}, {"body", ct.Body}, {"body_amp", ct.BodyAMP},
				{"from", ct.From}, {"reply_to", ct.ReplyTo}, {"recipient", ct.Recipient}, {"cc", ct.CC}, {"bcc", ct.BCC},
			} {
				parts = append(parts, Part{Name: fmt.Sprintf("message %d %s (%s)", m.ID, f.name, lang), Source: f.src})
			}
		}
		vars, err := TemplateVariables(parts...)
		if err != nil {
			out = append(out, Pulled{Message: msg, Problem: err.Error()})
			continue
		}
		msg.Variables = vars
		out = append(out, Pulled{Message: msg})
	}
	return out, nil
}

// channelOf maps a content's type to a send channel ("" when unknown).
func channelOf(typ string) string {
	switch typ {
	case "email":
		return tasks.ChannelEmail
	case "push":
		return tasks.ChannelPush
	case "sms", "twilio":
		return tasks.ChannelSMS
	case "in_app":
		return tasks.ChannelInApp
	case "inbox", "inbox_message":
		return tasks.ChannelInbox
	case "whatsapp":
		return tasks.ChannelWhatsApp
	}
	return ""
}

// puller spaces and retries the App API requests of one pull.
type puller struct {
	o    PullOptions
	last time.Time
}

func (p *puller) call(ctx context.Context, f func() error) error {
	for attempt := 0; ; attempt++ {
		wait := time.Until(p.last.Add(p.o.Interval))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		p.last = time.Now()
		err := f()
		var ae *customerio.APIError
		if err == nil || attempt >= p.o.Retries || !errors.As(err, &ae) || ae.Class != customerio.ClassTransient {
			return err
		}
		d := ae.RetryAfter
		if d <= 0 {
			d = p.o.Interval << attempt
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// MergeReport says what Merge changed.
type MergeReport struct {
	Added, Updated, Removed []string // messages, as `7 "password_reset"`
	// KeptByHand are messages written by hand (no "source") that pull
	// found in Customer.io and left as they are.
	KeptByHand []string
}

// Merge writes pulled messages into workspace ws of f (created when
// missing): a message pull wrote before (source "pulled") is replaced by
// the new one, keeping its trigger and any variable type other than any
// (a type declared by hand survives; its optional flag is the template's);
// a new message is added; a pulled message Customer.io no longer has is
// removed; a message written by hand is never changed. Attribute rules,
// event rules and strict_ids are never touched. Messages without
// variables (Problem set) keep the previous ones.
func Merge(f *File, ws string, pulled []Pulled) MergeReport {
	if f.Workspaces == nil {
		f.Workspaces = map[string]*Workspace{}
	}
	w := f.Workspaces[ws]
	if w == nil {
		w = &Workspace{}
		f.Workspaces[ws] = w
	}
	if w.Transactional == nil {
		w.Transactional = &Transactional{Messages: []*Message{}}
	}
	var rep MergeReport
	seen := map[int64]bool{}
	index := map[int64]int{}
	for i, m := range w.Transactional.Messages {
		if m.ID != 0 {
			index[m.ID] = i
		}
	}
	for _, pm := range pulled {
		m := pm.Message
		seen[m.ID] = true
		label := fmt.Sprintf("%d %q", m.ID, m.Name)
		i, exists := index[m.ID]
		if !exists {
			if pm.Problem != "" {
				m.Variables = nil
			}
			w.Transactional.Messages = append(w.Transactional.Messages, m)
			rep.Added = append(rep.Added, label)
			continue
		}
		old := w.Transactional.Messages[i]
		if old.Source != SourcePulled {
			rep.KeptByHand = append(rep.KeptByHand, label)
			continue
		}
		m.Trigger = old.Trigger
		if pm.Problem != "" {
			m.Variables = old.Variables
		} else {
			for path, v := range m.Variables {
				if ov := old.Variables[path]; ov != nil && ov.Type != "" && ov.Type != TypeAny && (v.Type == "" || v.Type == TypeAny) {
					v.Type = ov.Type
				}
			}
		}
		w.Transactional.Messages[i] = m
		rep.Updated = append(rep.Updated, label)
	}
	kept := w.Transactional.Messages[:0]
	for _, m := range w.Transactional.Messages {
		if m.Source == SourcePulled && m.ID != 0 && !seen[m.ID] {
			rep.Removed = append(rep.Removed, fmt.Sprintf("%d %q", m.ID, m.Name))
			continue
		}
		kept = append(kept, m)
	}
	w.Transactional.Messages = kept
	sort.SliceStable(w.Transactional.Messages, func(i, j int) bool {
		a, b := w.Transactional.Messages[i], w.Transactional.Messages[j]
		if a.ID != b.ID {
			return a.ID != 0 && (b.ID == 0 || a.ID < b.ID)
		}
		return strings.ToLower(a.lookupName()) < strings.ToLower(b.lookupName())
	})
	return rep
}
