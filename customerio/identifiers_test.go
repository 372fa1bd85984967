package customerio_test

import (
	"errors"
	"testing"

	"github.com/cioq/cioq/customerio"
)

// TestOperationIdentifiers: Track v2 person operations take a phone
// (E.164) except a merge and an object's relationships to people; object
// operations and a person's relationships take object_type_id and
// object_id or cio_object_id alone.
func TestOperationIdentifiers(t *testing.T) {
	ph := &customerio.Identifiers{Phone: "+15555550100"}
	byCio := customerio.Identifiers{CioObjectID: "obb7fd050101"}
	person := customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionDelete}
	for _, tc := range []struct {
		name  string
		op    customerio.Operation
		field string // "" = valid
	}{
		{"person by phone", customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionDelete, Identifiers: ph}, ""},
		{"event by phone", customerio.EventOperation(*ph, customerio.Event{Name: "e"}), ""},
		{"device by phone", customerio.DeviceOperation(*ph, customerio.Device{ID: "tok", Platform: "ios"}), ""},
		{"phone not E.164", customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionDelete,
			Identifiers: &customerio.Identifiers{Phone: "+0123"}}, "identifiers.phone"},
		{"phone too long", customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionDelete,
			Identifiers: &customerio.Identifiers{Phone: "+1234567890123456"}}, "identifiers.phone"},
		{"merge by phone", customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionMerge,
			Primary: ph, Secondary: &customerio.Identifiers{ID: "ada"}}, "primary.phone"},
		{"object relating a phone", customerio.Operation{Type: customerio.EntityObject, Action: customerio.ActionAddRelationships,
			Identifiers: &byCio, Relationships: []customerio.Relationship{{Identifiers: *ph}}}, "cio_relationships[0].identifiers.phone"},
		{"object by cio_object_id", customerio.Operation{Type: customerio.EntityObject, Action: customerio.ActionIdentify, Identifiers: &byCio}, ""},
		{"object by both", customerio.Operation{Type: customerio.EntityObject, Action: customerio.ActionDelete,
			Identifiers: &customerio.Identifiers{ObjectTypeID: "1", ObjectID: "acme", CioObjectID: "ob1"}}, "identifiers"},
		{"person relating by cio_object_id", func() customerio.Operation {
			o := person
			o.Action, o.Identifiers, o.Relationships = customerio.ActionAddRelationships, ph, []customerio.Relationship{{Identifiers: byCio}}
			return o
		}(), ""},
		{"person named by cio_object_id", customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionDelete, Identifiers: &byCio}, "identifiers"},
		{"delivery with a phone", customerio.Operation{Type: customerio.EntityDelivery, Action: customerio.ActionEvent, Name: "opened",
			Identifiers: &customerio.Identifiers{ID: "d1", Phone: "+15555550100"}, Attributes: map[string]any{"device_token": "t"}}, "identifiers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var ve *customerio.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Validate() = %v, want a *customerio.ValidationError naming %s", err, tc.field)
			}
		})
	}
	// Where only id, email or cio_id are taken (transactional sends, merges).
	var ve *customerio.ValidationError
	if err := customerio.ValidatePersonIdentifiers("identifiers", ph); !errors.As(err, &ve) || ve.Field != "identifiers.phone" {
		t.Errorf("ValidatePersonIdentifiers(phone) = %v", err)
	}
}
