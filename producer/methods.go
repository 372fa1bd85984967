package producer

import (
	"context"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// SendEmail enqueues a transactional email (queue critical). Give a password
// reset an expiry with ExpiresIn so it is never sent late.
func (c *Client) SendEmail(ctx context.Context, p tasks.SendEmail, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// SendPush enqueues a transactional push (queue critical).
func (c *Client) SendPush(ctx context.Context, p tasks.SendPush, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// SendSMS enqueues a transactional SMS (queue critical).
func (c *Client) SendSMS(ctx context.Context, p tasks.SendSMS, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// SendInApp enqueues a transactional in-app message (queue critical).
func (c *Client) SendInApp(ctx context.Context, p tasks.SendInApp, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// SendInbox enqueues a transactional inbox message (queue critical).
func (c *Client) SendInbox(ctx context.Context, p tasks.SendInbox, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// SendWhatsApp enqueues a transactional WhatsApp message (queue critical).
func (c *Client) SendWhatsApp(ctx context.Context, p tasks.SendWhatsApp, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// Identify enqueues a create-or-update of a person with attributes;
// attributes such as total_revenue, order_count or churn_risk_score drive
// segments.
func (c *Client) Identify(ctx context.Context, p tasks.Identify, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// Track enqueues an event of a person. An event without an id gets a ULID,
// so Customer.io drops repeats.
func (c *Client) Track(ctx context.Context, p tasks.Track, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// TrackPage enqueues a page view of a person: p.Name is the page URL or path;
// p.Type is set to "page" (any other type is refused).
func (c *Client) TrackPage(ctx context.Context, p tasks.Track, opts ...EnqueueOption) (Receipt, error) {
	if p.Type != "" && p.Type != customerio.EventTypePage {
		return Receipt{}, invalid("type", "must be empty or \"page\" for TrackPage")
	}
	p.Type = customerio.EventTypePage
	return c.Enqueue(ctx, p, opts...)
}

// TrackScreen enqueues a screen view of a person: p.Name is the screen name;
// p.Type is set to "screen" (any other type is refused).
func (c *Client) TrackScreen(ctx context.Context, p tasks.Track, opts ...EnqueueOption) (Receipt, error) {
	if p.Type != "" && p.Type != customerio.EventTypeScreen {
		return Receipt{}, invalid("type", "must be empty or \"screen\" for TrackScreen")
	}
	p.Type = customerio.EventTypeScreen
	return c.Enqueue(ctx, p, opts...)
}

// TrackAnonymous enqueues an event (or page or screen view, by its type) of
// a visitor not yet identified; without anonymous_id it is an invite event.
// An event without an id gets a ULID.
func (c *Client) TrackAnonymous(ctx context.Context, p tasks.TrackAnonymous, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// MergeAnonymous enqueues the identify that merges a visitor's anonymous
// activity into the person they signed up as.
func (c *Client) MergeAnonymous(ctx context.Context, p tasks.MergeAnonymous, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// MergePeople enqueues a merge of the secondary person into the primary one.
func (c *Client) MergePeople(ctx context.Context, p tasks.MergePeople, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// Delete enqueues the deletion of a person.
func (c *Client) Delete(ctx context.Context, p tasks.Delete, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// Suppress enqueues the suppression of a person.
func (c *Client) Suppress(ctx context.Context, p tasks.Suppress, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// Unsuppress enqueues the end of a person's suppression.
func (c *Client) Unsuppress(ctx context.Context, p tasks.Unsuppress, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// AddDevice enqueues the addition or update of a person's push device.
func (c *Client) AddDevice(ctx context.Context, p tasks.DeviceAdd, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// DeleteDevice enqueues the deletion of a person's push device.
func (c *Client) DeleteDevice(ctx context.Context, p tasks.DeviceDelete, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// UpsertObject enqueues a create-or-update of an object such as a company.
func (c *Client) UpsertObject(ctx context.Context, p tasks.ObjectUpsert, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// DeleteObject enqueues the deletion of an object.
func (c *Client) DeleteObject(ctx context.Context, p tasks.ObjectDelete, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// Relate enqueues a relationship between a person and an object (e.g. a
// member of a company).
func (c *Client) Relate(ctx context.Context, p tasks.Relate, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// Unrelate enqueues the removal of a person's relationship to an object.
func (c *Client) Unrelate(ctx context.Context, p tasks.Unrelate, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// TriggerBroadcast enqueues the trigger of an API-triggered broadcast (queue
// bulk).
func (c *Client) TriggerBroadcast(ctx context.Context, p tasks.BroadcastTrigger, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// AddToSegment enqueues the addition of people to a manual segment (queue
// bulk).
func (c *Client) AddToSegment(ctx context.Context, p tasks.SegmentAdd, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// RemoveFromSegment enqueues the removal of people from a manual segment
// (queue bulk).
func (c *Client) RemoveFromSegment(ctx context.Context, p tasks.SegmentRemove, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// SubmitForm enqueues a form submission.
func (c *Client) SubmitForm(ctx context.Context, p tasks.FormSubmit, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// ReportMetric enqueues a delivery metric (opened, delivered, bounced, ...)
// for a message Customer.io sent.
func (c *Client) ReportMetric(ctx context.Context, p tasks.Metric, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// CDPIdentify enqueues a Pipelines identify. A message without a messageId
// gets a ULID.
func (c *Client) CDPIdentify(ctx context.Context, p tasks.CDPIdentify, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// CDPTrack enqueues a Pipelines track. A message without a messageId gets a
// ULID.
func (c *Client) CDPTrack(ctx context.Context, p tasks.CDPTrack, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// CDPPage enqueues a Pipelines page. A message without a messageId gets a
// ULID.
func (c *Client) CDPPage(ctx context.Context, p tasks.CDPPage, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// CDPScreen enqueues a Pipelines screen. A message without a messageId gets
// a ULID.
func (c *Client) CDPScreen(ctx context.Context, p tasks.CDPScreen, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// CDPGroup enqueues a Pipelines group. A message without a messageId gets a
// ULID.
func (c *Client) CDPGroup(ctx context.Context, p tasks.CDPGroup, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}

// CDPAlias enqueues a Pipelines alias. A message without a messageId gets a
// ULID.
func (c *Client) CDPAlias(ctx context.Context, p tasks.CDPAlias, opts ...EnqueueOption) (Receipt, error) {
	return c.Enqueue(ctx, p, opts...)
}
