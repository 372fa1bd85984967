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

// checkPhoneOperation checks the Track v2 operation op of a task whose
// person ids names by phone. Track v1 cannot address a person by phone, so
// the worker sends such a task as op, in a batch or as one /api/v2/entity
// request, never through v1: op must be valid and encode to less than
// 32,000 bytes (where v1 would take more: event data up to 100,000 bytes,
// 300 attributes of 1,000 bytes). field names, in the payload, what makes
// an operation too large. A task naming its person otherwise is not
// checked.
func checkPhoneOperation(ids customerio.Identifiers, field string, op customerio.Operation) error {
	if ids.Phone == "" {
		return nil
	}
	err := op.Validate()
	var ve *customerio.ValidationError
	if errors.As(err, &ve) && ve.Field == "operation" {
		return invalid(field, "too large: with identifiers.phone the task is one Track v2 operation, which must encode to less than 32000 bytes")
	}
	return err
}
