package outbox

// The typed methods of producer.Client, writing to the outbox instead of
// Redis (a test checks that both have the same set).

import (
	"context"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// SendEmail writes to the outbox a transactional email (queue critical). Give a password
// reset an expiry with ExpiresIn so it is never sent late.
func (t *Tx) SendEmail(ctx context.Context, p tasks.SendEmail, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// SendPush writes to the outbox a transactional push (queue critical).
func (t *Tx) SendPush(ctx context.Context, p tasks.SendPush, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// SendSMS writes to the outbox a transactional SMS (queue critical).
func (t *Tx) SendSMS(ctx context.Context, p tasks.SendSMS, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// SendInApp writes to the outbox a transactional in-app message (queue critical).
func (t *Tx) SendInApp(ctx context.Context, p tasks.SendInApp, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// SendInbox writes to the outbox a transactional inbox message (queue critical).
func (t *Tx) SendInbox(ctx context.Context, p tasks.SendInbox, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// SendWhatsApp writes to the outbox a transactional WhatsApp message (queue critical).
func (t *Tx) SendWhatsApp(ctx context.Context, p tasks.SendWhatsApp, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// Identify writes to the outbox a create-or-update of a person with attributes;
// attributes such as total_revenue, order_count or churn_risk_score drive
// segments.
func (t *Tx) Identify(ctx context.Context, p tasks.Identify, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// Track writes to the outbox an event of a person. An event without an id gets a ULID,
// so Customer.io drops repeats.
func (t *Tx) Track(ctx context.Context, p tasks.Track, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// TrackPage writes to the outbox a page view of a person: p.Name is the page URL or path;
// p.Type is set to "page" (any other type is refused).
func (t *Tx) TrackPage(ctx context.Context, p tasks.Track, opts ...producer.EnqueueOption) (Receipt, error) {
	if p.Type != "" && p.Type != customerio.EventTypePage {
		return Receipt{}, outboxError(&producer.ValidationError{Field: "type", Reason: "must be empty or \"page\" for TrackPage"})
	}
	p.Type = customerio.EventTypePage
	return t.Enqueue(ctx, p, opts...)
}

// TrackScreen writes to the outbox a screen view of a person: p.Name is the screen name;
// p.Type is set to "screen" (any other type is refused).
func (t *Tx) TrackScreen(ctx context.Context, p tasks.Track, opts ...producer.EnqueueOption) (Receipt, error) {
	if p.Type != "" && p.Type != customerio.EventTypeScreen {
		return Receipt{}, outboxError(&producer.ValidationError{Field: "type", Reason: "must be empty or \"screen\" for TrackScreen"})
	}
	p.Type = customerio.EventTypeScreen
	return t.Enqueue(ctx, p, opts...)
}

// TrackAnonymous writes to the outbox an event (or page or screen view, by its type) of
// a visitor not yet identified; without anonymous_id it is an invite event.
// An event without an id gets a ULID.
func (t *Tx) TrackAnonymous(ctx context.Context, p tasks.TrackAnonymous, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// MergeAnonymous writes to the outbox the identify that merges a visitor's anonymous
// activity into the person they signed up as.
func (t *Tx) MergeAnonymous(ctx context.Context, p tasks.MergeAnonymous, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// MergePeople writes to the outbox a merge of the secondary person into the primary one.
func (t *Tx) MergePeople(ctx context.Context, p tasks.MergePeople, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// Delete writes to the outbox the deletion of a person.
func (t *Tx) Delete(ctx context.Context, p tasks.Delete, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// Suppress writes to the outbox the suppression of a person.
func (t *Tx) Suppress(ctx context.Context, p tasks.Suppress, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// Unsuppress writes to the outbox the end of a person's suppression.
func (t *Tx) Unsuppress(ctx context.Context, p tasks.Unsuppress, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// AddDevice writes to the outbox the addition or update of a person's push device.
func (t *Tx) AddDevice(ctx context.Context, p tasks.DeviceAdd, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// DeleteDevice writes to the outbox the deletion of a person's push device.
func (t *Tx) DeleteDevice(ctx context.Context, p tasks.DeviceDelete, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// UpsertObject writes to the outbox a create-or-update of an object such as a company.
func (t *Tx) UpsertObject(ctx context.Context, p tasks.ObjectUpsert, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// DeleteObject writes to the outbox the deletion of an object.
func (t *Tx) DeleteObject(ctx context.Context, p tasks.ObjectDelete, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// Relate writes to the outbox a relationship between a person and an object (e.g. a
// member of a company).
func (t *Tx) Relate(ctx context.Context, p tasks.Relate, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// Unrelate writes to the outbox the removal of a person's relationship to an object.
func (t *Tx) Unrelate(ctx context.Context, p tasks.Unrelate, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// TriggerBroadcast writes to the outbox the trigger of an API-triggered broadcast (queue
// bulk).
func (t *Tx) TriggerBroadcast(ctx context.Context, p tasks.BroadcastTrigger, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// AddToSegment writes to the outbox the addition of people to a manual segment (queue
// bulk).
func (t *Tx) AddToSegment(ctx context.Context, p tasks.SegmentAdd, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// RemoveFromSegment writes to the outbox the removal of people from a manual segment
// (queue bulk).
func (t *Tx) RemoveFromSegment(ctx context.Context, p tasks.SegmentRemove, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// SubmitForm writes to the outbox a form submission.
func (t *Tx) SubmitForm(ctx context.Context, p tasks.FormSubmit, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// ReportMetric writes to the outbox a delivery metric (opened, delivered,
// bounced, ...) for a message Customer.io sent.
func (t *Tx) ReportMetric(ctx context.Context, p tasks.Metric, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// CDPIdentify writes to the outbox a Pipelines identify. A message without a messageId
// gets a ULID.
func (t *Tx) CDPIdentify(ctx context.Context, p tasks.CDPIdentify, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// CDPTrack writes to the outbox a Pipelines track. A message without a messageId gets a
// ULID.
func (t *Tx) CDPTrack(ctx context.Context, p tasks.CDPTrack, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// CDPPage writes to the outbox a Pipelines page. A message without a messageId gets a
// ULID.
func (t *Tx) CDPPage(ctx context.Context, p tasks.CDPPage, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// CDPScreen writes to the outbox a Pipelines screen. A message without a messageId gets
// a ULID.
func (t *Tx) CDPScreen(ctx context.Context, p tasks.CDPScreen, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// CDPGroup writes to the outbox a Pipelines group. A message without a messageId gets a
// ULID.
func (t *Tx) CDPGroup(ctx context.Context, p tasks.CDPGroup, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}

// CDPAlias writes to the outbox a Pipelines alias. A message without a messageId gets a
// ULID.
func (t *Tx) CDPAlias(ctx context.Context, p tasks.CDPAlias, opts ...producer.EnqueueOption) (Receipt, error) {
	return t.Enqueue(ctx, p, opts...)
}
