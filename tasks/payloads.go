package tasks

import (
	"strconv"

	"github.com/cioq/cioq/customerio"
)

// Payload is the body of one task: a Customer.io operation that knows its
// task type and checks itself against Customer.io's limits.
type Payload interface {
	// TaskType returns the task type name, e.g. TypeSendEmail.
	TaskType() string
	// Validate returns a *customerio.ValidationError naming the first
	// offending field (by its JSON name in the payload), or nil.
	Validate() error
}

func invalid(field, reason string) error {
	return &customerio.ValidationError{Field: field, Reason: reason}
}

// PathID returns the person identifier Customer.io's Track v1 API takes in
// its paths: the id, else the email, else "cio_" + cio_id. It returns ""
// when none is set.
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
// cio_id, and nothing else.
func validatePerson(field string, ids *customerio.Identifiers) error {
	if ids.AnonymousID != "" {
		return invalid(field+".anonymous_id", "not allowed here; use cio:merge_anonymous to merge anonymous activity")
	}
	if ids.ObjectTypeID != "" || ids.ObjectID != "" {
		return invalid(field, "must name a person, not an object")
	}
	return customerio.ValidatePersonIdentifiers(field, ids)
}

// validateObjectTypeID checks an object type id: required, a positive
// integer written as a string, like "1".
func validateObjectTypeID(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	if n, err := strconv.ParseUint(v, 10, 63); err != nil || n < 1 {
		return invalid(field, `must be a positive integer string, like "1"`)
	}
	return nil
}

// ---- transactional sends (App API) ----

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

// ---- people and events (Track API) ----

// Identify creates or updates a person with attributes (PUT
// /api/v1/customers/{id}).
type Identify struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// Attributes are the person's attributes to set (≤ 300, names ≤ 150
	// bytes, values ≤ 1000 bytes).
	Attributes map[string]any `json:"attributes,omitempty"`
}

// TaskType returns TypeIdentify.
func (Identify) TaskType() string { return TypeIdentify }

// Validate checks the identifiers and attributes.
func (p Identify) Validate() error {
	if err := validatePerson("identifiers", &p.Identifiers); err != nil {
		return err
	}
	return customerio.ValidateAttributes("attributes", p.Attributes)
}

// Track is an event, page view or screen view of a person (POST
// /api/v1/customers/{id}/events). Its JSON is the identifiers next to
// Customer.io's event fields: name, id, type, timestamp, data. The producer
// gives an event without an id a ULID, so Customer.io drops repeats.
type Track struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	customerio.Event
}

// TaskType returns TypeTrack.
func (Track) TaskType() string { return TypeTrack }

// Validate checks the identifiers and the event.
func (p Track) Validate() error {
	if err := validatePerson("identifiers", &p.Identifiers); err != nil {
		return err
	}
	return p.Event.Validate()
}

// TrackAnonymous is an event of a person not yet identified (POST
// /api/v1/events): Customer.io's body, with anonymous_id. Without an
// anonymous_id it is an invite event, which needs data.recipient. The
// producer gives an event without an id a ULID.
type TrackAnonymous customerio.AnonymousEvent

// TaskType returns TypeTrackAnonymous.
func (TrackAnonymous) TaskType() string { return TypeTrackAnonymous }

// Validate applies the client's rules for an anonymous event.
func (p TrackAnonymous) Validate() error { return customerio.AnonymousEvent(p).Validate() }

// MergeAnonymous identifies a person and names the anonymous_id they used
// before signing up, so Customer.io merges that anonymous activity into the
// person (an identify whose attributes carry anonymous_id).
type MergeAnonymous struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// AnonymousID is the anonymous id whose events are merged (required).
	AnonymousID string `json:"anonymous_id"`
	// Attributes are set on the person at the same time (≤ 299: the
	// anonymous_id takes one place).
	Attributes map[string]any `json:"attributes,omitempty"`
}

// TaskType returns TypeMergeAnonymous.
func (MergeAnonymous) TaskType() string { return TypeMergeAnonymous }

// Validate checks the identifiers, the anonymous id and the attributes.
func (p MergeAnonymous) Validate() error {
	if err := validatePerson("identifiers", &p.Identifiers); err != nil {
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
	return customerio.ValidateAttributes("attributes", p.Attributes)
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
// /api/v1/merge_customers); the secondary is deleted.
type MergePeople struct {
	// Primary is the person that remains.
	Primary customerio.Identifiers `json:"primary"`
	// Secondary is the person merged into Primary and then deleted.
	Secondary customerio.Identifiers `json:"secondary"`
}

// TaskType returns TypeMergePeople.
func (MergePeople) TaskType() string { return TypeMergePeople }

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
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
}

// TaskType returns TypeDelete.
func (Delete) TaskType() string { return TypeDelete }

// Validate checks the identifiers.
func (p Delete) Validate() error { return validatePerson("identifiers", &p.Identifiers) }

// Suppress deletes a person and suppresses the identifier, so it is not
// re-added (POST /api/v1/customers/{id}/suppress).
type Suppress struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
}

// TaskType returns TypeSuppress.
func (Suppress) TaskType() string { return TypeSuppress }

// Validate checks the identifiers.
func (p Suppress) Validate() error { return validatePerson("identifiers", &p.Identifiers) }

// Unsuppress lifts a suppression (POST /api/v1/customers/{id}/unsuppress).
type Unsuppress struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
}

// TaskType returns TypeUnsuppress.
func (Unsuppress) TaskType() string { return TypeUnsuppress }

// Validate checks the identifiers.
func (p Unsuppress) Validate() error { return validatePerson("identifiers", &p.Identifiers) }

// DeviceAdd adds or updates a person's push device (PUT
// /api/v1/customers/{id}/devices).
type DeviceAdd struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// Device is the device, as Customer.io's v1 API names it.
	Device customerio.Device `json:"device"`
}

// TaskType returns TypeDeviceAdd.
func (DeviceAdd) TaskType() string { return TypeDeviceAdd }

// Validate checks the identifiers and the device.
func (p DeviceAdd) Validate() error {
	if err := validatePerson("identifiers", &p.Identifiers); err != nil {
		return err
	}
	return p.Device.Validate()
}

// DeviceRef names a device by its token.
type DeviceRef struct {
	// ID is the device token.
	ID string `json:"id"`
}

// DeviceDelete deletes a person's push device (DELETE
// /api/v1/customers/{id}/devices/{token}).
type DeviceDelete struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// Device names the device to delete.
	Device DeviceRef `json:"device"`
}

// TaskType returns TypeDeviceDelete.
func (DeviceDelete) TaskType() string { return TypeDeviceDelete }

// Validate checks the identifiers and the device token.
func (p DeviceDelete) Validate() error {
	if err := validatePerson("identifiers", &p.Identifiers); err != nil {
		return err
	}
	if p.Device.ID == "" {
		return invalid("device.id", "is required")
	}
	return nil
}

// ---- objects and relationships (Track v2) ----

// ObjectUpsert creates or updates an object such as a company or account
// (Track v2: type object, action identify).
type ObjectUpsert struct {
	// ObjectTypeID is the object type's id as a string of digits, e.g. "1"
	// (required: there is no default type).
	ObjectTypeID string `json:"object_type_id"`
	// ObjectID is the object's id (≤ 150 bytes).
	ObjectID string `json:"object_id"`
	// Attributes are the object's attributes (≤ 300, names ≤ 150 bytes,
	// values ≤ 1000 bytes, ≤ 100,000 bytes in all).
	Attributes map[string]any `json:"attributes,omitempty"`
}

// TaskType returns TypeObjectUpsert.
func (ObjectUpsert) TaskType() string { return TypeObjectUpsert }

// Validate checks the object's identity and its attributes, and that the
// upsert can be delivered (see Operations).
func (p ObjectUpsert) Validate() error {
	if err := validateObject(p.ObjectTypeID, p.ObjectID); err != nil {
		return err
	}
	if err := customerio.ValidateObjectAttributes("attributes", p.Attributes); err != nil {
		return err
	}
	_, err := p.Operations()
	return err
}

// Operations returns the Track v2 operations that perform the upsert: its
// Operation, or, when that is too large for one (32,000 bytes encoded),
// several that each fit, sharing out the attributes (Customer.io merges an
// object's attributes; there is no Track v1 object endpoint to take a larger
// one). See customerio.SplitOperation.
func (p ObjectUpsert) Operations() ([]customerio.Operation, error) {
	return customerio.SplitOperation(p.Operation(), "attributes")
}

// Operation returns the Track v2 operation that performs the upsert, unsplit.
func (p ObjectUpsert) Operation() customerio.Operation {
	return customerio.Operation{
		Type:        customerio.EntityObject,
		Action:      customerio.ActionIdentify,
		Identifiers: &customerio.Identifiers{ObjectTypeID: p.ObjectTypeID, ObjectID: p.ObjectID},
		Attributes:  p.Attributes,
	}
}

func validateObject(typeID, id string) error {
	if err := validateObjectTypeID("object_type_id", typeID); err != nil {
		return err
	}
	return customerio.ValidatePersonID("object_id", id)
}

// ObjectDelete deletes an object (Track v2: type object, action delete).
type ObjectDelete struct {
	// ObjectTypeID is the object type's id as a string of digits (required).
	ObjectTypeID string `json:"object_type_id"`
	// ObjectID is the object's id.
	ObjectID string `json:"object_id"`
}

// TaskType returns TypeObjectDelete.
func (ObjectDelete) TaskType() string { return TypeObjectDelete }

// Validate checks the object's identity.
func (p ObjectDelete) Validate() error {
	if err := validateObject(p.ObjectTypeID, p.ObjectID); err != nil {
		return err
	}
	return p.Operation().Validate()
}

// Operation returns the Track v2 operation that deletes the object.
func (p ObjectDelete) Operation() customerio.Operation {
	return customerio.Operation{
		Type:        customerio.EntityObject,
		Action:      customerio.ActionDelete,
		Identifiers: &customerio.Identifiers{ObjectTypeID: p.ObjectTypeID, ObjectID: p.ObjectID},
	}
}

// Relate relates a person to an object, e.g. makes them a member of a
// company (Track v2: type person, action add_relationships).
type Relate struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// ObjectTypeID is the object type's id as a string of digits (required).
	ObjectTypeID string `json:"object_type_id"`
	// ObjectID is the object's id.
	ObjectID string `json:"object_id"`
	// RelationshipAttributes describe the relationship, e.g. {"role": "admin"}.
	RelationshipAttributes map[string]any `json:"relationship_attributes,omitempty"`
}

// TaskType returns TypeRelate.
func (Relate) TaskType() string { return TypeRelate }

// Validate checks the person, the object and the relationship attributes,
// and that the relationship can be delivered (see Operations).
func (p Relate) Validate() error {
	return validateRelation(&p.Identifiers, p.ObjectTypeID, p.ObjectID, p.RelationshipAttributes, p.Operation())
}

// Operations returns the Track v2 operations that add the relationship: its
// Operation, or, when the relationship attributes make that too large for
// one (32,000 bytes encoded), several that each fit, sharing out the
// relationship attributes (Customer.io merges them). See
// customerio.SplitOperation.
func (p Relate) Operations() ([]customerio.Operation, error) {
	return customerio.SplitOperation(p.Operation(), "relationship_attributes")
}

// Operation returns the Track v2 operation that adds the relationship,
// unsplit.
func (p Relate) Operation() customerio.Operation {
	return relationOp(customerio.ActionAddRelationships, p.Identifiers, p.ObjectTypeID, p.ObjectID, p.RelationshipAttributes)
}

// Unrelate removes a person's relationship to an object (Track v2: type
// person, action delete_relationships).
type Unrelate struct {
	// Identifiers names the person: exactly one of id, email, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// ObjectTypeID is the object type's id as a string of digits (required).
	ObjectTypeID string `json:"object_type_id"`
	// ObjectID is the object's id.
	ObjectID string `json:"object_id"`
	// RelationshipAttributes are accepted for symmetry with Relate.
	RelationshipAttributes map[string]any `json:"relationship_attributes,omitempty"`
}

// TaskType returns TypeUnrelate.
func (Unrelate) TaskType() string { return TypeUnrelate }

// Validate checks the person and the object, and that the removal can be
// delivered (see Operations).
func (p Unrelate) Validate() error {
	return validateRelation(&p.Identifiers, p.ObjectTypeID, p.ObjectID, p.RelationshipAttributes, p.Operation())
}

// Operations returns the Track v2 operations that remove the relationship:
// its Operation, or several that each fit one operation when the
// relationship attributes make it too large (each removes the same
// relationship, so sending several is harmless). See
// customerio.SplitOperation.
func (p Unrelate) Operations() ([]customerio.Operation, error) {
	return customerio.SplitOperation(p.Operation(), "relationship_attributes")
}

// Operation returns the Track v2 operation that removes the relationship,
// unsplit.
func (p Unrelate) Operation() customerio.Operation {
	return relationOp(customerio.ActionDeleteRelationships, p.Identifiers, p.ObjectTypeID, p.ObjectID, p.RelationshipAttributes)
}

func validateRelation(ids *customerio.Identifiers, typeID, objID string, attrs map[string]any, op customerio.Operation) error {
	if err := validatePerson("identifiers", ids); err != nil {
		return err
	}
	if err := validateObject(typeID, objID); err != nil {
		return err
	}
	if err := customerio.ValidateObjectAttributes("relationship_attributes", attrs); err != nil {
		return err
	}
	_, err := customerio.SplitOperation(op, "relationship_attributes")
	return err
}

func relationOp(action customerio.Action, ids customerio.Identifiers, typeID, objID string, attrs map[string]any) customerio.Operation {
	return customerio.Operation{
		Type:        customerio.EntityPerson,
		Action:      action,
		Identifiers: &ids,
		Relationships: []customerio.Relationship{{
			Identifiers:            customerio.Identifiers{ObjectTypeID: typeID, ObjectID: objID},
			RelationshipAttributes: attrs,
		}},
	}
}

// ---- broadcasts and segments ----

// BroadcastTrigger triggers an API-triggered broadcast (POST
// /v1/campaigns/{broadcast_id}/triggers). Its JSON is broadcast_id next to
// Customer.io's trigger body.
type BroadcastTrigger struct {
	// BroadcastID is the broadcast (campaign) id (required).
	BroadcastID int `json:"broadcast_id"`
	customerio.TriggerBroadcastRequest
}

// TaskType returns TypeBroadcastTrigger.
func (BroadcastTrigger) TaskType() string { return TypeBroadcastTrigger }

// Validate checks the broadcast id and the trigger body.
func (p BroadcastTrigger) Validate() error {
	if p.BroadcastID <= 0 {
		return invalid("broadcast_id", "must be a positive integer")
	}
	return p.TriggerBroadcastRequest.Validate()
}

// SegmentAdd adds people to a manual segment (POST
// /api/v1/segments/{segment_id}/add_customers). The worker splits more than
// 1000 ids into several requests.
type SegmentAdd struct {
	// SegmentID is the manual segment's id (required).
	SegmentID int `json:"segment_id"`
	// IDs are the people's identifiers, of the kind IDType says.
	IDs []string `json:"ids"`
	// IDType is id (default), email or cio_id.
	IDType customerio.IDType `json:"id_type,omitempty"`
}

// TaskType returns TypeSegmentAdd.
func (SegmentAdd) TaskType() string { return TypeSegmentAdd }

// Validate checks the segment id, the ids and the id type.
func (p SegmentAdd) Validate() error { return validateSegment(p.SegmentID, p.IDs, p.IDType) }

// SegmentRemove removes people from a manual segment (POST
// /api/v1/segments/{segment_id}/remove_customers).
type SegmentRemove struct {
	// SegmentID is the manual segment's id (required).
	SegmentID int `json:"segment_id"`
	// IDs are the people's identifiers, of the kind IDType says.
	IDs []string `json:"ids"`
	// IDType is id (default), email or cio_id.
	IDType customerio.IDType `json:"id_type,omitempty"`
}

// TaskType returns TypeSegmentRemove.
func (SegmentRemove) TaskType() string { return TypeSegmentRemove }

// Validate checks the segment id, the ids and the id type.
func (p SegmentRemove) Validate() error { return validateSegment(p.SegmentID, p.IDs, p.IDType) }

func validateSegment(id int, ids []string, idType customerio.IDType) error {
	if id <= 0 {
		return invalid("segment_id", "must be a positive integer")
	}
	switch idType {
	case "", customerio.IDTypeID, customerio.IDTypeEmail, customerio.IDTypeCioID:
	default:
		return invalid("id_type", "must be id, email or cio_id")
	}
	return customerio.ValidateSegmentIDs("ids", ids)
}

// ---- Pipelines (CDP) ----
//
// The CDP types are defined as customerio.PipelinesMessage, and a defined
// type does not inherit methods: each declares MarshalJSON and UnmarshalJSON
// delegating to PipelinesMessage's, so Segment fields the struct does not
// name (sentAt, channel, ...) survive Decode and reach Customer.io.

// CDPIdentify is a Pipelines identify: a Segment-spec message (camelCase),
// userId or anonymousId required. The producer gives a message without a
// messageId a ULID.
type CDPIdentify customerio.PipelinesMessage

// TaskType returns TypeCDPIdentify.
func (CDPIdentify) TaskType() string { return TypeCDPIdentify }

// Validate applies the client's rules for a Pipelines identify.
func (p CDPIdentify) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallIdentify)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPIdentify) MarshalJSON() ([]byte, error) {
	return customerio.PipelinesMessage(p).MarshalJSON()
}

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPIdentify) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPTrack is a Pipelines track: event required, plus userId or anonymousId.
type CDPTrack customerio.PipelinesMessage

// TaskType returns TypeCDPTrack.
func (CDPTrack) TaskType() string { return TypeCDPTrack }

// Validate applies the client's rules for a Pipelines track.
func (p CDPTrack) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallTrack)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPTrack) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPTrack) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPPage is a Pipelines page view.
type CDPPage customerio.PipelinesMessage

// TaskType returns TypeCDPPage.
func (CDPPage) TaskType() string { return TypeCDPPage }

// Validate applies the client's rules for a Pipelines page.
func (p CDPPage) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallPage)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPPage) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPPage) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPScreen is a Pipelines screen view.
type CDPScreen customerio.PipelinesMessage

// TaskType returns TypeCDPScreen.
func (CDPScreen) TaskType() string { return TypeCDPScreen }

// Validate applies the client's rules for a Pipelines screen.
func (p CDPScreen) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallScreen)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPScreen) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPScreen) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPGroup is a Pipelines group: groupId required.
type CDPGroup customerio.PipelinesMessage

// TaskType returns TypeCDPGroup.
func (CDPGroup) TaskType() string { return TypeCDPGroup }

// Validate applies the client's rules for a Pipelines group.
func (p CDPGroup) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallGroup)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPGroup) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPGroup) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPAlias is a Pipelines alias: previousId and userId required.
type CDPAlias customerio.PipelinesMessage

// TaskType returns TypeCDPAlias.
func (CDPAlias) TaskType() string { return TypeCDPAlias }

// Validate applies the client's rules for a Pipelines alias.
func (p CDPAlias) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallAlias)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPAlias) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPAlias) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

func validateCDP(m customerio.PipelinesMessage, call customerio.PipelinesCall) error {
	if m.Type != "" && m.Type != call {
		return invalid("type", "must be empty or "+string(call)+" for this task type")
	}
	return m.Validate(call)
}
