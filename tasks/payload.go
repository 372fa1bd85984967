package tasks

import (
	"errors"

	"github.com/cioq/cioq/customerio"
)

// Payload is the body of one task: a Customer.io operation that knows its
// task type and checks itself against Customer.io's limits. Its type's
// [Spec] says how it is queued and delivered; the optional interfaces
// [PersonScoped] and [Deduplicated] say what the producer and the worker
// need to know about its content.
//
// The payloads are grouped by API family, one file each: sends.go
// (transactional sends), people.go (people, events and devices),
// objects.go (objects and relationships), broadcasts.go, segments.go and
// cdp.go (Pipelines).
type Payload interface {
	// TaskType returns the task type name, e.g. TypeSendEmail.
	TaskType() string
	// Validate returns a *customerio.ValidationError naming the first
	// offending field (by its JSON name in the payload), or nil.
	Validate() error
}

// PersonScoped is implemented by the payloads that act on one person's
// profile through the Track API: identify, events, merges, delete,
// suppress, unsuppress, devices and relationships. The producer's ordering
// (producer.WithOrdering) sequences them per person. Transactional sends,
// broadcasts, segments, objects alone, anonymous events and Pipelines
// messages do not implement it. The methods have value receivers, so both
// T and *T satisfy it.
type PersonScoped interface {
	// Person names the person the task acts on: its identifiers, or for a
	// merge the primary (the person that remains).
	Person() customerio.Identifiers
}

// Deduplicated is implemented by the payloads that carry an id by which
// Customer.io drops repeats: a Track event's id ([Track],
// [TrackAnonymous]) and a Pipelines message's messageId (the cdp:*
// types). The producer gives such a payload without an id a ULID at enqueue
// time; the worker gives one enqueued without it an id derived from its
// task id. The methods have value receivers, so both T and *T satisfy it.
type Deduplicated interface {
	// EventID returns the payload's id, "" when it has none.
	EventID() string
	// EventIDField is the JSON name of that id in the payload: "id" or
	// "messageId".
	EventIDField() string
	// WithEventID returns a copy of the payload (a value, not a pointer)
	// with its id set to id. The receiver is not modified; maps and slices
	// are shared with it.
	WithEventID(id string) Payload
}

func invalid(field, reason string) error {
	return &customerio.ValidationError{Field: field, Reason: reason}
}

// PathID returns the person identifier Customer.io's Track v1 API takes in
// its paths: the id, else the email, else "cio_" + cio_id. It returns ""
// when none is set, and for a person named by phone: Track v1 has no phone
// identifier (Customer.io reads a phone number in a v1 path as an id), so
// the worker delivers such a task through Track v2.
func PathID(ids customerio.Identifiers) string {
	switch {
	case ids.ID != "":
		return ids.ID
	case ids.Email != "":
		return ids.Email
	case ids.CioID != "":
		return "cio_" + ids.CioID
	}
	return ""
}

// validatePerson checks that ids names exactly one person by id, email or
// cio_id, and nothing else: the rule where Customer.io takes no phone
// identifier (merges).
func validatePerson(field string, ids *customerio.Identifiers) error {
	if err := notPerson(field, ids); err != nil {
		return err
	}
	return customerio.ValidatePersonIdentifiers(field, ids)
}

// Templated is implemented by the transactional sends: what a template
// contract (package contracts) checks of a send. The methods have value
// receivers, so both T and *T satisfy it.
type Templated interface {
	// Template returns the send's channel (ChannelEmail, ChannelPush, ...),
	// its transactional_message_id ("" when the send names no template:
	// an email carrying its own body) and its message_data (nil when it
	// has none).
	Template() (channel string, id customerio.MessageID, data map[string]any)
}

// Channels of the transactional sends, as Templated names them.
const (
	ChannelEmail    = "email"
	ChannelPush     = "push"
	ChannelSMS      = "sms"
	ChannelInApp    = "in_app"
	ChannelInbox    = "inbox"
	ChannelWhatsApp = "whatsapp"
)

// Attributed is implemented by the payloads that set attributes of a
// person (identify, merge on signup, Pipelines identify) or of an object
// (object upsert, Pipelines group): what an attribute contract checks and
// coerces. The methods have value receivers, so both T and *T satisfy it.
type Attributed interface {
	// AttributeSet returns whose attributes the payload sets ("" for a
	// person, else the object type id), the JSON name of the field that
	// holds them ("attributes", "traits") and the attributes (nil when
	// there are none). The map is the payload's own: do not modify it.
	AttributeSet() (objectTypeID, field string, attrs map[string]any)
	// WithAttributeSet returns a copy of the payload (a value, not a
	// pointer) whose attributes are attrs. The receiver is not modified.
	WithAttributeSet(attrs map[string]any) Payload
}

// Timestamped is implemented by the payloads that carry an event
// timestamp: Track events (unix seconds) and Pipelines messages (ISO-8601
// text). The methods have value receivers, so both T and *T satisfy it.
type Timestamped interface {
	// EventTimestamp returns the timestamp as the payload holds it: unix
	// (Track; 0 = none) or text (Pipelines; "" = none). Only one is set.
	EventTimestamp() (unix int64, text string)
	// WithEventTimestamp returns a copy of the payload (a value) whose
	// timestamp is the unix second sec, written as the payload writes
	// timestamps (a Pipelines message as RFC 3339 UTC).
	WithEventTimestamp(sec int64) Payload
}

// AnonymousMerger is implemented by the payloads that merge an anonymous
// visitor into a person once delivered: an identify whose attributes carry
// anonymous_id, a merge on signup, a Pipelines identify with both userId
// and anonymousId, a Pipelines alias. The worker remembers the link, so an
// anonymous event of that visitor delivered later lands on the person
// (Customer.io merges only those received within five minutes of the
// identify). The methods have value receivers.
type AnonymousMerger interface {
	// AnonymousMerge returns the anonymous id merged and the person it is
	// merged into; anonymousID is "" when the payload merges none.
	AnonymousMerge() (anonymousID string, person customerio.Identifiers)
}

// AnonymousActor is implemented by the events that may name no person,
// only an anonymous visitor: anonymous Track events, Pipelines track,
// page and screen calls. The methods have value receivers.
type AnonymousActor interface {
	// AnonymousActor returns the anonymous id of an event that names no
	// person, "" when it names one (or names nobody).
	AnonymousActor() string
}

// validateV2Person is validatePerson for the payloads Track v2 delivers as
// person operations, which may also name the person by phone (see
// checkPhoneOperation).
func validateV2Person(field string, ids *customerio.Identifiers) error {
	if err := notPerson(field, ids); err != nil {
		return err
	}
	return customerio.ValidateV2PersonIdentifiers(field, ids)
}

// notPerson names what in ids cannot name the person of a Track task.
func notPerson(field string, ids *customerio.Identifiers) error {
	if ids.AnonymousID != "" {
		return invalid(field+".anonymous_id", "not allowed here; use cio:merge_anonymous to merge anonymous activity")
	}
	if ids.ObjectTypeID != "" || ids.ObjectID != "" || ids.CioObjectID != "" {
		return invalid(field, "must name a person, not an object")
	}
	return nil
}

// checkPhoneOperation checks the Track v2 operation op (built by op only
// then, since this runs for every task validated) of a task whose person
// ids names by phone. Track v1 cannot address a person by phone, so
// the worker sends such a task as op, in a batch or as one /api/v2/entity
// request, never through v1: op must be valid and encode to less than
// 32,000 bytes (where v1 would take more: event data up to 100,000 bytes,
// 300 attributes of 1,000 bytes). field names, in the payload, what makes
// an operation too large. A task naming its person otherwise is not
// checked.
func checkPhoneOperation(ids customerio.Identifiers, field string, op func() customerio.Operation) error {
	if ids.Phone == "" {
		return nil
	}
	err := op().Validate()
	var ve *customerio.ValidationError
	if errors.As(err, &ve) && ve.Field == "operation" {
		return invalid(field, "too large: with identifiers.phone the task is one Track v2 operation, which must encode to less than 32000 bytes")
	}
	return err
}
