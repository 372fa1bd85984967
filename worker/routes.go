package worker

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// route is how the worker delivers one task type. Its tasks.Spec says
// which API (credentials, rate limit, send records) and whether the type is
// Batchable; the route says which Customer.io calls.
type route struct {
	// send makes the one request that delivers a task on its own: a Track
	// v1 call, an App API send or trigger, a Pipelines call, or one Track v2
	// entity request. ref is what an App API call returned, recorded as the
	// task's send ("delivery:<id>", "trigger:<id>"; "" = nothing to name).
	// It is nil for the types whose payload splits itself into operations
	// (splitPayload: object upserts and relationships, which have no Track
	// v1 endpoint): those go one /api/v2/entity request per operation.
	send sendFunc
	// op returns the Track v2 operation that delivers a task (for a
	// splitPayload, the operation before splitting), and false for a
	// payload not of the type's Go type; nil for a type that has none. A
	// type's Spec is Batchable exactly when op is set.
	op func(t *Task) (customerio.Operation, bool)
	// multi: the task carries operations of other types, each delivered
	// through its own type's route (deliverMulti, multi.go); the type's
	// Spec says Multi exactly when it is set.
	multi bool
}

type sendFunc func(ctx context.Context, c *customerio.Client, t *Task) (ref string, err error)

// routeTable is the delivery of every task type, in the order of the tasks
// registry. TestRoutesCoverEveryType fails when a registered type has no
// route or a route disagrees with its Spec.
var routeTable = []struct {
	typ string
	route
}{
	{tasks.TypeSendEmail, route{send: app(func(ctx context.Context, c *customerio.Client, p *tasks.SendEmail) (string, error) {
		return delivery(c.SendEmail(ctx, (*customerio.SendEmailRequest)(p)))
	})}},
	{tasks.TypeSendPush, route{send: app(func(ctx context.Context, c *customerio.Client, p *tasks.SendPush) (string, error) {
		return delivery(c.SendPush(ctx, (*customerio.SendPushRequest)(p)))
	})}},
	{tasks.TypeSendSMS, route{send: app(func(ctx context.Context, c *customerio.Client, p *tasks.SendSMS) (string, error) {
		return delivery(c.SendSMS(ctx, (*customerio.SendSMSRequest)(p)))
	})}},
	{tasks.TypeSendInApp, route{send: app(func(ctx context.Context, c *customerio.Client, p *tasks.SendInApp) (string, error) {
		return delivery(c.SendInApp(ctx, (*customerio.SendInAppRequest)(p)))
	})}},
	{tasks.TypeSendInbox, route{send: app(func(ctx context.Context, c *customerio.Client, p *tasks.SendInbox) (string, error) {
		return delivery(c.SendInbox(ctx, (*customerio.SendInboxRequest)(p)))
	})}},
	{tasks.TypeSendWhatsApp, route{send: app(func(ctx context.Context, c *customerio.Client, p *tasks.SendWhatsApp) (string, error) {
		return delivery(c.SendWhatsApp(ctx, (*customerio.SendWhatsAppRequest)(p)))
	})}},

	{tasks.TypeIdentify, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.Identify) error {
			return c.Identify(ctx, tasks.PathID(p.Identifiers), p.Attributes)
		}),
		// An identify that deletes relationships has no single v2
		// operation: v2opt says so and it goes through v1.
		op: v2opt(func(_ *Task, p *tasks.Identify) (customerio.Operation, bool) {
			return customerio.IdentifyOperation(p.Identifiers, p.Attributes)
		}),
	}},
	{tasks.TypeTrack, route{
		send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.Track) error {
			ev := p.Event
			if ev.ID == "" {
				ev.ID = EventID(t.ID, t.Envelope)
			}
			return c.Track(ctx, tasks.PathID(p.Identifiers), ev)
		}),
		op: v2(func(t *Task, p *tasks.Track) customerio.Operation {
			op := customerio.EventOperation(p.Identifiers, p.Event)
			if op.ID == "" {
				op.ID = EventID(t.ID, t.Envelope)
			}
			return op
		}),
	}},
	{tasks.TypeTrackAnonymous, route{
		send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.TrackAnonymous) error {
			ev := customerio.AnonymousEvent(*p)
			if ev.ID == "" {
				ev.ID = EventID(t.ID, t.Envelope)
			}
			if t.rescued != nil { // the visitor was merged: the person's event, same id
				return c.Track(ctx, tasks.PathID(*t.rescued), customerio.Event{Name: ev.Name, ID: ev.ID, Type: ev.Type, Timestamp: ev.Timestamp, Data: ev.Data})
			}
			return c.TrackAnonymous(ctx, ev)
		}),
	}},
	{tasks.TypeMergeAnonymous, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.MergeAnonymous) error {
			return c.Identify(ctx, tasks.PathID(p.Identifiers), p.Attrs())
		}),
		op: v2opt(func(_ *Task, p *tasks.MergeAnonymous) (customerio.Operation, bool) {
			return customerio.IdentifyOperation(p.Identifiers, p.Attrs())
		}),
	}},
	{tasks.TypeMergePeople, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.MergePeople) error {
			return c.MergeCustomers(ctx, p.Primary, p.Secondary)
		}),
		op: v2(func(_ *Task, p *tasks.MergePeople) customerio.Operation {
			pr, se := p.Primary, p.Secondary
			return customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionMerge, Primary: &pr, Secondary: &se}
		}),
	}},
	{tasks.TypeDelete, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.Delete) error {
			return c.Delete(ctx, tasks.PathID(p.Identifiers))
		}),
		op: v2(func(_ *Task, p *tasks.Delete) customerio.Operation {
			return personOp(customerio.ActionDelete, p.Identifiers)
		}),
	}},
	{tasks.TypeSuppress, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.Suppress) error {
			return c.Suppress(ctx, tasks.PathID(p.Identifiers))
		}),
		op: v2(func(_ *Task, p *tasks.Suppress) customerio.Operation {
			return personOp(customerio.ActionSuppress, p.Identifiers)
		}),
	}},
	{tasks.TypeUnsuppress, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.Unsuppress) error {
			return c.Unsuppress(ctx, tasks.PathID(p.Identifiers))
		}),
		op: v2(func(_ *Task, p *tasks.Unsuppress) customerio.Operation {
			return personOp(customerio.ActionUnsuppress, p.Identifiers)
		}),
	}},
	{tasks.TypeDeviceAdd, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.DeviceAdd) error {
			return c.AddDevice(ctx, tasks.PathID(p.Identifiers), p.Device)
		}),
		op: v2(func(_ *Task, p *tasks.DeviceAdd) customerio.Operation {
			return customerio.DeviceOperation(p.Identifiers, p.Device)
		}),
	}},
	{tasks.TypeDeviceDelete, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.DeviceDelete) error {
			return c.DeleteDevice(ctx, tasks.PathID(p.Identifiers), p.Device.ID)
		}),
		op: v2(func(_ *Task, p *tasks.DeviceDelete) customerio.Operation {
			op := personOp(customerio.ActionDeleteDevice, p.Identifiers)
			op.Device = &customerio.V2Device{Token: p.Device.ID}
			return op
		}),
	}},
	{tasks.TypeObjectUpsert, route{ // splitPayload: no send
		op: v2(func(_ *Task, p *tasks.ObjectUpsert) customerio.Operation { return p.Operation() }),
	}},
	{tasks.TypeObjectDelete, route{
		send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.ObjectDelete) error {
			return c.Entity(ctx, p.Operation())
		}),
		op: v2(func(_ *Task, p *tasks.ObjectDelete) customerio.Operation { return p.Operation() }),
	}},
	{tasks.TypeRelate, route{ // splitPayload: no send
		op: v2(func(_ *Task, p *tasks.Relate) customerio.Operation { return p.Operation() }),
	}},
	{tasks.TypeUnrelate, route{ // splitPayload: no send
		op: v2(func(_ *Task, p *tasks.Unrelate) customerio.Operation { return p.Operation() }),
	}},

	{tasks.TypeBroadcastTrigger, route{send: app(func(ctx context.Context, c *customerio.Client, p *tasks.BroadcastTrigger) (string, error) {
		bt, err := c.TriggerBroadcast(ctx, p.BroadcastID, &p.TriggerBroadcastRequest)
		if bt != nil {
			return fmt.Sprintf("trigger:%d", bt.ID), err
		}
		return "", err
	})}},
	{tasks.TypeSegmentAdd, route{send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.SegmentAdd) error {
		return c.AddToSegment(ctx, p.SegmentID, p.IDType, p.IDs)
	})}},
	{tasks.TypeSegmentRemove, route{send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.SegmentRemove) error {
		return c.RemoveFromSegment(ctx, p.SegmentID, p.IDType, p.IDs)
	})}},
	{tasks.TypeFormSubmit, route{send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.FormSubmit) error {
		return c.SubmitForm(ctx, p.FormID, p.Data)
	})}},
	{tasks.TypeMetric, route{send: v1(func(ctx context.Context, c *customerio.Client, _ *Task, p *tasks.Metric) error {
		return c.ReportMetric(ctx, customerio.Metric(*p))
	})}},
	{tasks.TypeBatch, route{multi: true}},

	{tasks.TypeCDPIdentify, route{send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.CDPIdentify) error {
		return pipelines(ctx, c, t, customerio.CallIdentify, customerio.PipelinesMessage(*p))
	})}},
	{tasks.TypeCDPTrack, route{send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.CDPTrack) error {
		return pipelines(ctx, c, t, customerio.CallTrack, customerio.PipelinesMessage(*p))
	})}},
	{tasks.TypeCDPPage, route{send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.CDPPage) error {
		return pipelines(ctx, c, t, customerio.CallPage, customerio.PipelinesMessage(*p))
	})}},
	{tasks.TypeCDPScreen, route{send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.CDPScreen) error {
		return pipelines(ctx, c, t, customerio.CallScreen, customerio.PipelinesMessage(*p))
	})}},
	{tasks.TypeCDPGroup, route{send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.CDPGroup) error {
		return pipelines(ctx, c, t, customerio.CallGroup, customerio.PipelinesMessage(*p))
	})}},
	{tasks.TypeCDPAlias, route{send: v1(func(ctx context.Context, c *customerio.Client, t *Task, p *tasks.CDPAlias) error {
		return pipelines(ctx, c, t, customerio.CallAlias, customerio.PipelinesMessage(*p))
	})}},
}

// routes indexes routeTable by task type. A route with both a send and an
// op delivers a task naming its person by phone through its op
// (phoneViaEntity).
var routes = func() map[string]route {
	m := make(map[string]route, len(routeTable))
	for _, r := range routeTable {
		rt := r.route
		if rt.send != nil && rt.op != nil {
			rt.send = phoneViaEntity(rt.send, rt.op)
		}
		m[r.typ] = rt
	}
	return m
}()

// phoneViaEntity wraps a person type's Track v1 send: a task that names its
// person by phone is sent as its Track v2 operation, one /api/v2/entity
// request, when it is not batched (batching off or not for its type, or
// delivered alone after a batch failed without naming it). Track v1 has
// no phone identifier: Customer.io reads a phone number in a v1 path as an
// id, which would create another person.
func phoneViaEntity(send sendFunc, op func(t *Task) (customerio.Operation, bool)) sendFunc {
	return func(ctx context.Context, c *customerio.Client, t *Task) (string, error) {
		if o, ok := op(t); ok && o.Identifiers != nil && o.Identifiers.Phone != "" {
			return "", c.Entity(ctx, o)
		}
		return send(ctx, c, t)
	}
}

// errNoRoute is the error for a task this worker has no delivery for, or
// whose payload is not of its type's Go type: retrying cannot help.
func errNoRoute(t *Task) error {
	return fmt.Errorf("worker: %w: no delivery for %s", asynq.SkipRetry, t.Type)
}

// payloadOf returns t's payload as the pointer its type decodes to.
func payloadOf[P any, PP interface {
	*P
	tasks.Payload
}](t *Task) (*P, bool) {
	p, ok := t.Payload.(PP)
	return (*P)(p), ok && p != nil
}

// v1 makes a sendFunc of a call that returns nothing to record (Track v1,
// a Track v2 entity request).
func v1[P any, PP interface {
	*P
	tasks.Payload
}](f func(ctx context.Context, c *customerio.Client, t *Task, p *P) error) sendFunc {
	return func(ctx context.Context, c *customerio.Client, t *Task) (string, error) {
		p, ok := payloadOf[P, PP](t)
		if !ok {
			return "", errNoRoute(t)
		}
		return "", f(ctx, c, t, p)
	}
}

// app makes a sendFunc of an App API call, which returns what to record.
func app[P any, PP interface {
	*P
	tasks.Payload
}](f func(ctx context.Context, c *customerio.Client, p *P) (string, error)) sendFunc {
	return func(ctx context.Context, c *customerio.Client, t *Task) (string, error) {
		p, ok := payloadOf[P, PP](t)
		if !ok {
			return "", errNoRoute(t)
		}
		return f(ctx, c, p)
	}
}

// delivery is the record of a transactional send: its delivery id.
func delivery(resp *customerio.SendResponse, err error) (string, error) {
	if resp != nil && resp.DeliveryID != "" {
		return "delivery:" + resp.DeliveryID, err
	}
	return "", err
}

// pipelines sends a cdp:* message as call, with the id derived from the
// task id when it has no messageId.
func pipelines(ctx context.Context, c *customerio.Client, t *Task, call customerio.PipelinesCall, m customerio.PipelinesMessage) error {
	if m.MessageID == "" {
		m.MessageID = EventID(t.ID, t.Envelope)
	}
	if t.rescued != nil && m.UserID == "" { // the visitor was merged: the person's call
		m.UserID = t.rescued.ID
	}
	return c.Pipelines(ctx, call, m)
}

// v2 makes a route's op of a function of the typed payload.
func v2[P any, PP interface {
	*P
	tasks.Payload
}](f func(t *Task, p *P) customerio.Operation) func(t *Task) (customerio.Operation, bool) {
	return func(t *Task) (customerio.Operation, bool) {
		p, ok := payloadOf[P, PP](t)
		if !ok {
			return customerio.Operation{}, false
		}
		return f(t, p), true
	}
}

// v2opt is v2 for a type whose payload may have no single v2 operation
// (f answers false): such a task is delivered by the route's send.
func v2opt[P any, PP interface {
	*P
	tasks.Payload
}](f func(t *Task, p *P) (customerio.Operation, bool)) func(t *Task) (customerio.Operation, bool) {
	return func(t *Task) (customerio.Operation, bool) {
		p, ok := payloadOf[P, PP](t)
		if !ok {
			return customerio.Operation{}, false
		}
		return f(t, p)
	}
}

func personOp(a customerio.Action, ids customerio.Identifiers) customerio.Operation {
	return customerio.Operation{Type: customerio.EntityPerson, Action: a, Identifiers: &ids}
}
