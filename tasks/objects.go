package tasks

import (
	"strconv"

	"github.com/cioq/cioq/customerio"
)

// Objects and relationships (Track v2 entity operations).

// ObjectUpsert creates or updates an object such as a company or account
// (Track v2: type object, action identify). The object is named by
// object_type_id and object_id, or by cio_object_id alone, which only
// updates an object Customer.io already holds.
type ObjectUpsert struct {
	// ObjectTypeID is the object type's id as a string of digits, e.g. "1"
	// (required unless CioObjectID names the object: there is no default
	// type).
	ObjectTypeID string `json:"object_type_id,omitempty"`
	// ObjectID is the object's id (≤ 150 bytes).
	ObjectID string `json:"object_id,omitempty"`
	// CioObjectID is the id Customer.io gave the object, in place of
	// ObjectTypeID and ObjectID (updates only).
	CioObjectID string `json:"cio_object_id,omitempty"`
	// Attributes are the object's attributes (≤ 300, names ≤ 150 bytes,
	// values ≤ 1000 bytes, ≤ 100,000 bytes in all).
	Attributes map[string]any `json:"attributes,omitempty"`
}

// TaskType returns TypeObjectUpsert.
func (ObjectUpsert) TaskType() string { return TypeObjectUpsert }

// Validate checks the object's identity and its attributes, and that the
// upsert can be delivered (see Operations).
func (p ObjectUpsert) Validate() error {
	if err := validateObject(p.ObjectTypeID, p.ObjectID, p.CioObjectID); err != nil {
		return err
	}
	if err := customerio.ValidateObjectAttributes("attributes", p.Attributes); err != nil {
		return err
	}
	_, err := p.Operations()
	return err
}

// AttributeSet returns the object's type and attributes (Attributed).
func (p ObjectUpsert) AttributeSet() (string, string, map[string]any) {
	return p.ObjectTypeID, "attributes", p.Attributes
}

// WithAttributeSet returns a copy of p with attributes attrs.
func (p ObjectUpsert) WithAttributeSet(attrs map[string]any) Payload {
	p.Attributes = attrs
	return p
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
		Identifiers: objectIdentifiers(p.ObjectTypeID, p.ObjectID, p.CioObjectID),
		Attributes:  p.Attributes,
	}
}

// validateObject checks how a payload names an object: object_type_id and
// object_id, or cio_object_id alone.
func validateObject(typeID, id, cioObjectID string) error {
	if cioObjectID != "" {
		if typeID != "" || id != "" {
			return invalid("cio_object_id", "name the object by object_type_id and object_id or by cio_object_id, not both")
		}
		return customerio.ValidatePersonID("cio_object_id", cioObjectID)
	}
	if err := validateObjectTypeID("object_type_id", typeID); err != nil {
		return err
	}
	return customerio.ValidatePersonID("object_id", id)
}

// objectIdentifiers returns the Track v2 identifiers of an object named by
// object_type_id and object_id, or by cio_object_id.
func objectIdentifiers(typeID, id, cioObjectID string) *customerio.Identifiers {
	return &customerio.Identifiers{ObjectTypeID: typeID, ObjectID: id, CioObjectID: cioObjectID}
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

// ObjectDelete deletes an object (Track v2: type object, action delete),
// named by object_type_id and object_id or by cio_object_id.
type ObjectDelete struct {
	// ObjectTypeID is the object type's id as a string of digits (required
	// unless CioObjectID names the object).
	ObjectTypeID string `json:"object_type_id,omitempty"`
	// ObjectID is the object's id.
	ObjectID string `json:"object_id,omitempty"`
	// CioObjectID is the id Customer.io gave the object, in place of
	// ObjectTypeID and ObjectID.
	CioObjectID string `json:"cio_object_id,omitempty"`
}

// TaskType returns TypeObjectDelete.
func (ObjectDelete) TaskType() string { return TypeObjectDelete }

// Validate checks the object's identity.
func (p ObjectDelete) Validate() error {
	if err := validateObject(p.ObjectTypeID, p.ObjectID, p.CioObjectID); err != nil {
		return err
	}
	return p.Operation().Validate()
}

// Operation returns the Track v2 operation that deletes the object.
func (p ObjectDelete) Operation() customerio.Operation {
	return customerio.Operation{
		Type:        customerio.EntityObject,
		Action:      customerio.ActionDelete,
		Identifiers: objectIdentifiers(p.ObjectTypeID, p.ObjectID, p.CioObjectID),
	}
}

// Relate relates a person to an object, e.g. makes them a member of a
// company (Track v2: type person, action add_relationships).
type Relate struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// ObjectTypeID is the object type's id as a string of digits (required
	// unless CioObjectID names the object).
	ObjectTypeID string `json:"object_type_id,omitempty"`
	// ObjectID is the object's id.
	ObjectID string `json:"object_id,omitempty"`
	// CioObjectID is the id Customer.io gave the object, in place of
	// ObjectTypeID and ObjectID.
	CioObjectID string `json:"cio_object_id,omitempty"`
	// RelationshipAttributes describe the relationship, e.g. {"role": "admin"}.
	RelationshipAttributes map[string]any `json:"relationship_attributes,omitempty"`
}

// TaskType returns TypeRelate.
func (Relate) TaskType() string { return TypeRelate }

// Person returns the person (PersonScoped).
func (p Relate) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the person, the object and the relationship attributes,
// and that the relationship can be delivered (see Operations).
func (p Relate) Validate() error {
	return validateRelation(&p.Identifiers, p.ObjectTypeID, p.ObjectID, p.CioObjectID, p.RelationshipAttributes, p.Operation())
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
	return relationOp(customerio.ActionAddRelationships, p.Identifiers, objectIdentifiers(p.ObjectTypeID, p.ObjectID, p.CioObjectID), p.RelationshipAttributes)
}

// Unrelate removes a person's relationship to an object (Track v2: type
// person, action delete_relationships).
type Unrelate struct {
	// Identifiers names the person: exactly one of id, email, phone, cio_id.
	Identifiers customerio.Identifiers `json:"identifiers"`
	// ObjectTypeID is the object type's id as a string of digits (required
	// unless CioObjectID names the object).
	ObjectTypeID string `json:"object_type_id,omitempty"`
	// ObjectID is the object's id.
	ObjectID string `json:"object_id,omitempty"`
	// CioObjectID is the id Customer.io gave the object, in place of
	// ObjectTypeID and ObjectID.
	CioObjectID string `json:"cio_object_id,omitempty"`
	// RelationshipAttributes are accepted for symmetry with Relate.
	RelationshipAttributes map[string]any `json:"relationship_attributes,omitempty"`
}

// TaskType returns TypeUnrelate.
func (Unrelate) TaskType() string { return TypeUnrelate }

// Person returns the person (PersonScoped).
func (p Unrelate) Person() customerio.Identifiers { return p.Identifiers }

// Validate checks the person and the object, and that the removal can be
// delivered (see Operations).
func (p Unrelate) Validate() error {
	return validateRelation(&p.Identifiers, p.ObjectTypeID, p.ObjectID, p.CioObjectID, p.RelationshipAttributes, p.Operation())
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
	return relationOp(customerio.ActionDeleteRelationships, p.Identifiers, objectIdentifiers(p.ObjectTypeID, p.ObjectID, p.CioObjectID), p.RelationshipAttributes)
}

func validateRelation(ids *customerio.Identifiers, typeID, objID, cioObjectID string, attrs map[string]any, op customerio.Operation) error {
	if err := validateV2Person("identifiers", ids); err != nil {
		return err
	}
	if err := validateObject(typeID, objID, cioObjectID); err != nil {
		return err
	}
	if err := customerio.ValidateObjectAttributes("relationship_attributes", attrs); err != nil {
		return err
	}
	_, err := customerio.SplitOperation(op, "relationship_attributes")
	return err
}

func relationOp(action customerio.Action, ids customerio.Identifiers, obj *customerio.Identifiers, attrs map[string]any) customerio.Operation {
	return customerio.Operation{
		Type:        customerio.EntityPerson,
		Action:      action,
		Identifiers: &ids,
		Relationships: []customerio.Relationship{{
			Identifiers:            *obj,
			RelationshipAttributes: attrs,
		}},
	}
}
