package tasks

import (
	"github.com/cioq/cioq/customerio"
)

// People, their events and their devices (Track v1; batchable as Track v2
// person operations).

// Identify creates or updates a person with attributes (PUT
// /api/v1/customers/{id}).
//
// Attributes are those of a Track v1 identify body, whichever API delivers
// the task: "_timestamp" (Unix seconds) back-dates the identify, and
// "cio_relationships" ({"action":"add_relationships"|"delete_relationships",
// "relationships":[...]}) relates the person to objects (cio:relate and
// cio:unrelate do the same on their own). In a Track v2 batch they become
// the operation's timestamp and relationships (customerio.IdentifyOperation);
// an identify that deletes relationships is sent through v1.
//
// A person named by phone (identifiers.phone) is identified through Track
// v2 only, in a batch or as one /api/v2/entity request: the identify must
// fit one operation (32,000 bytes encoded) and cannot delete
// relationships (use cio:unrelate).
type Identify struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// Attributes are the person's attributes to set (≤ 300, names ≤ 150
	// bytes, values ≤ 1000 bytes).
	Attributes map[string]any `json:"attributes,omitempty"`
}

// TaskType returns TypeIdentify.
func (Identify) TaskType() string { return TypeIdentify }

// Person returns the person (PersonScoped).
func (p Identify) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the identifiers and attributes.
func (p Identify) Validate() error {
	if err := validateV2Person("identifiers", &p.Identifiers); err != nil {
		return err
	}
	if err := customerio.ValidatePersonAttributes("attributes", p.Attributes); err != nil {
		return err
	}
	return checkPhoneIdentify(p.Identifiers, p.Attributes)
}

// checkPhoneIdentify checks that the identify of a person named by phone
// is one Track v2 operation (see checkPhoneOperation).
func checkPhoneIdentify(ids customerio.Identifiers, attrs map[string]any) error {
	if ids.Phone == "" {
		return nil
	}
	op, ok := customerio.IdentifyOperation(ids, attrs)
	if !ok {
		return invalid("attributes.cio_relationships", "with identifiers.phone an identify is a Track v2 operation, which cannot delete relationships: use cio:unrelate")
	}
	return checkPhoneOperation(ids, "attributes", func() customerio.Operation { return op })
}

// AttributeSet returns the person's attributes (Attributed).
func (p Identify) AttributeSet() (string, string, map[string]any) {
	return "", "attributes", p.Attributes
}

// WithAttributeSet returns a copy of p with attributes attrs.
func (p Identify) WithAttributeSet(attrs map[string]any) Payload {
	p.Attributes = attrs
	return p
}

// AnonymousMerge returns attributes.anonymous_id when it is a non-empty
// string: an identify carrying it merges that visitor (AnonymousMerger).
func (p Identify) AnonymousMerge() (string, customerio.Identifiers) {
	if a, ok := p.Attributes["anonymous_id"].(string); ok && a != "" {
		return a, p.Identifiers
	}
	return "", customerio.Identifiers{}
}

// Track is an event, page view or screen view of a person (POST
// /api/v1/customers/{id}/events). Its JSON is the identifiers next to
// Customer.io's event fields: name, id, type, timestamp, data. The producer
// gives an event without an id a ULID, so Customer.io drops repeats. An
// event of a person named by phone is a Track v2 operation only, of at most
// 32,000 bytes encoded.
type Track struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	customerio.Event
}

// TaskType returns TypeTrack.
func (Track) TaskType() string { return TypeTrack }

// EventID returns the event id (Deduplicated).
func (p Track) EventID() string { return p.ID }

// EventIDField returns "id".
func (Track) EventIDField() string { return "id" }

// WithEventID returns a copy of p with its event id set to id.
func (p Track) WithEventID(id string) Payload {
	p.ID = id
	return p
}

// Person returns the person (PersonScoped).
func (p Track) Person() customerio.Identifiers { return p.Identifiers }

// EventTimestamp returns the event's unix timestamp (Timestamped).
func (p Track) EventTimestamp() (int64, string) { return p.Timestamp, "" }

// WithEventTimestamp returns a copy of p with timestamp sec.
func (p Track) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = sec
	return p
}

// Validate checks the identifiers and the event.
func (p Track) Validate() error {
	if err := validateV2Person("identifiers", &p.Identifiers); err != nil {
		return err
	}
	if err := p.Event.Validate(); err != nil {
		return err
	}
	return checkPhoneOperation(p.Identifiers, "data", func() customerio.Operation {
		ev := p.Event
		if ev.ID == "" {
			ev.ID = placeholderEventID // the id the producer or the worker will give it
		}
		return customerio.EventOperation(p.Identifiers, ev)
	})
}

// placeholderEventID stands for an event id not yet given, where only its size
// matters.
const placeholderEventID = "00000000000000000000000000"

// TrackAnonymous is an event of a person not yet identified (POST
// /api/v1/events): Customer.io's body, with anonymous_id. Without an
// anonymous_id it is an invite event, which needs data.recipient. The
// producer gives an event without an id a ULID.
type TrackAnonymous customerio.AnonymousEvent

// TaskType returns TypeTrackAnonymous.
func (TrackAnonymous) TaskType() string { return TypeTrackAnonymous }

// EventID returns the event id (Deduplicated).
func (p TrackAnonymous) EventID() string { return p.ID }

// EventIDField returns "id".
func (TrackAnonymous) EventIDField() string { return "id" }

// WithEventID returns a copy of p with its event id set to id.
func (p TrackAnonymous) WithEventID(id string) Payload {
	p.ID = id
	return p
}

// EventTimestamp returns the event's unix timestamp (Timestamped).
func (p TrackAnonymous) EventTimestamp() (int64, string) { return p.Timestamp, "" }

// WithEventTimestamp returns a copy of p with timestamp sec.
func (p TrackAnonymous) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = sec
	return p
}

// AnonymousActor returns the anonymous id ("" for an invite event).
func (p TrackAnonymous) AnonymousActor() string { return p.AnonymousID }

// Validate applies the client's rules for an anonymous event.
func (p TrackAnonymous) Validate() error { return customerio.AnonymousEvent(p).Validate() }

// MergeAnonymous identifies a person and names the anonymous_id they used
// before signing up, so Customer.io merges that anonymous activity into the
// person (an identify whose attributes carry anonymous_id).
type MergeAnonymous struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// AnonymousID is the anonymous id whose events are merged (required).
	AnonymousID string `json:"anonymous_id"`
	// Attributes are set on the person at the same time (≤ 299: the
	// anonymous_id takes one place).
	Attributes map[string]any `json:"attributes,omitempty"`
}

// TaskType returns TypeMergeAnonymous.
func (MergeAnonymous) TaskType() string { return TypeMergeAnonymous }

// Person returns the person (PersonScoped).
func (p MergeAnonymous) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the identifiers, the anonymous id and the attributes.
func (p MergeAnonymous) Validate() error {
	if err := validateV2Person("identifiers", &p.Identifiers); err != nil {
		return err
	}
	if err := customerio.ValidatePersonID("anonymous_id", p.AnonymousID); err != nil {
		return err
	}
	if _, ok := p.Attributes["anonymous_id"]; ok {
		return invalid("attributes.anonymous_id", "set anonymous_id at the top level of the payload")
	}
	if len(p.Attributes) > 299 {
		return invalid("attributes", "must have at most 299 attributes (anonymous_id takes the 300th)")
	}
	if err := customerio.ValidatePersonAttributes("attributes", p.Attributes); err != nil {
		return err
	}
	return checkPhoneIdentify(p.Identifiers, p.Attrs())
}

// AttributeSet returns the attributes set with the merge (Attributed).
func (p MergeAnonymous) AttributeSet() (string, string, map[string]any) {
	return "", "attributes", p.Attributes
}

// WithAttributeSet returns a copy of p with attributes attrs.
func (p MergeAnonymous) WithAttributeSet(attrs map[string]any) Payload {
	p.Attributes = attrs
	return p
}

// AnonymousMerge returns the anonymous id and the person (AnonymousMerger).
func (p MergeAnonymous) AnonymousMerge() (string, customerio.Identifiers) {
	return p.AnonymousID, p.Identifiers
}

// Attrs returns the attributes of the identify call that performs the
// merge: Attributes plus anonymous_id. Attributes is not modified.
func (p MergeAnonymous) Attrs() map[string]any {
	m := make(map[string]any, len(p.Attributes)+1)
	for k, v := range p.Attributes {
		m[k] = v
	}
	m["anonymous_id"] = p.AnonymousID
	return m
}

// MergePeople merges the secondary person into the primary one (POST
// /api/v1/merge_customers); the secondary is deleted. Each is named by id,
// email or cio_id: Customer.io's merges (Track v1 and v2) take no phone.
type MergePeople struct {
	// Primary is the person that remains.
	Primary customerio.Identifiers `json:"primary"`
	// Secondary is the person merged into Primary and then deleted.
	Secondary customerio.Identifiers `json:"secondary"`
}

// TaskType returns TypeMergePeople.
func (MergePeople) TaskType() string { return TypeMergePeople }

// Person returns the primary, the person that remains (PersonScoped).
func (p MergePeople) Person() customerio.Identifiers { return p.Primary }

// Validate checks both identifiers.
func (p MergePeople) Validate() error {
	if err := validatePerson("primary", &p.Primary); err != nil {
		return err
	}
	if err := validatePerson("secondary", &p.Secondary); err != nil {
		return err
	}
	if p.Primary == p.Secondary {
		return invalid("secondary", "must name a different person than primary")
	}
	return nil
}

// Delete deletes a person (DELETE /api/v1/customers/{id}).
type Delete struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
}

// TaskType returns TypeDelete.
func (Delete) TaskType() string { return TypeDelete }

// Person returns the person (PersonScoped).
func (p Delete) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the identifiers.
func (p Delete) Validate() error { return validateV2Person("identifiers", &p.Identifiers) }

// Suppress deletes a person and suppresses the identifier, so it is not
// re-added (POST /api/v1/customers/{id}/suppress).
type Suppress struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
}

// TaskType returns TypeSuppress.
func (Suppress) TaskType() string { return TypeSuppress }

// Person returns the person (PersonScoped).
func (p Suppress) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the identifiers.
func (p Suppress) Validate() error { return validateV2Person("identifiers", &p.Identifiers) }

// Unsuppress lifts a suppression (POST /api/v1/customers/{id}/unsuppress).
type Unsuppress struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
}

// TaskType returns TypeUnsuppress.
func (Unsuppress) TaskType() string { return TypeUnsuppress }

// Person returns the person (PersonScoped).
func (p Unsuppress) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the identifiers.
func (p Unsuppress) Validate() error { return validateV2Person("identifiers", &p.Identifiers) }

// DeviceAdd adds or updates a person's push device (PUT
// /api/v1/customers/{id}/devices).
type DeviceAdd struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// Device is the device, as Customer.io's v1 API names it.
	Device customerio.Device `json:"device"`
}

// TaskType returns TypeDeviceAdd.
func (DeviceAdd) TaskType() string { return TypeDeviceAdd }

// Person returns the person (PersonScoped).
func (p DeviceAdd) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the identifiers and the device.
func (p DeviceAdd) Validate() error {
	if err := validateV2Person("identifiers", &p.Identifiers); err != nil {
		return err
	}
	if err := p.Device.Validate(); err != nil {
		return err
	}
	return checkPhoneOperation(p.Identifiers, "device.attributes", func() customerio.Operation {
		return customerio.DeviceOperation(p.Identifiers, p.Device)
	})
}

// DeviceRef names a device by its token.
type DeviceRef struct {
	// ID is the device token.
	ID string `json:"id"`
}

// DeviceDelete deletes a person's push device (DELETE
// /api/v1/customers/{id}/devices/{token}).
type DeviceDelete struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// Device names the device to delete.
	Device DeviceRef `json:"device"`
}

// TaskType returns TypeDeviceDelete.
func (DeviceDelete) TaskType() string { return TypeDeviceDelete }

// Person returns the person (PersonScoped).
func (p DeviceDelete) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the identifiers and the device token.
func (p DeviceDelete) Validate() error {
	if err := validateV2Person("identifiers", &p.Identifiers); err != nil {
		return err
	}
	if p.Device.ID == "" {
		return invalid("device.id", "is required")
	}
	return checkPhoneOperation(p.Identifiers, "device.id", func() customerio.Operation {
		ids := p.Identifiers // a copy, so that p stays on the stack when there is no phone
		return customerio.Operation{Type: customerio.EntityPerson,
			Action: customerio.ActionDeleteDevice, Identifiers: &ids, Device: &customerio.V2Device{Token: p.Device.ID}}
	})
}
