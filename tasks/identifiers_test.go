package tasks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// TestPhoneIdentifier: identifiers.phone is accepted by the payloads that
// Track v2 delivers as person operations, refused (naming it) where
// Customer.io takes no phone: merges, transactional sends, a malformed
// number; and a phone-identified task must be one Track v2 operation.
func TestPhoneIdentifier(t *testing.T) {
	ph := customerio.Identifiers{Phone: "+15555550100"}
	for _, p := range []tasks.Payload{
		tasks.Identify{Identifiers: ph, Attributes: map[string]any{"plan": "pro"}},
		tasks.Track{Identifiers: ph, Event: customerio.Event{Name: "signed_up"}},
		tasks.MergeAnonymous{Identifiers: ph, AnonymousID: "anon-1"},
		tasks.Delete{Identifiers: ph},
		tasks.Suppress{Identifiers: ph},
		tasks.Unsuppress{Identifiers: ph},
		tasks.DeviceAdd{Identifiers: ph, Device: customerio.Device{ID: "tok", Platform: "ios"}},
		tasks.DeviceDelete{Identifiers: ph, Device: tasks.DeviceRef{ID: "tok"}},
		tasks.Relate{Identifiers: ph, ObjectTypeID: "1", ObjectID: "acme"},
		tasks.Unrelate{Identifiers: ph, ObjectTypeID: "1", ObjectID: "acme"},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s by phone: %v", p.TaskType(), err)
		}
	}

	bigData := map[string]any{"blob": strings.Repeat("x", 40_000)}
	manyAttrs := map[string]any{}
	for i := 0; i < 40; i++ {
		manyAttrs[strings.Repeat("a", 3)+string(rune('A'+i))] = strings.Repeat("v", 1000)
	}
	deleteRels := map[string]any{"action": "delete_relationships", "relationships": []any{
		map[string]any{"identifiers": map[string]any{"object_type_id": "1", "object_id": "acme"}}}}
	other := customerio.Identifiers{ID: "ada"}
	for _, tc := range []struct {
		name  string
		p     tasks.Payload
		field string
	}{
		{"not E.164", tasks.Identify{Identifiers: customerio.Identifiers{Phone: "555-0100"}}, "identifiers.phone"},
		{"phone and id", tasks.Identify{Identifiers: customerio.Identifiers{Phone: "+15555550100", ID: "ada"}}, "identifiers"},
		{"merge primary", tasks.MergePeople{Primary: ph, Secondary: other}, "primary.phone"},
		{"merge secondary", tasks.MergePeople{Primary: other, Secondary: ph}, "secondary.phone"},
		{"send", tasks.SendSMS{SendOptions: customerio.SendOptions{TransactionalMessageID: "3", Identifiers: &ph}, To: "+15555550100"}, "identifiers.phone"},
		{"email send", tasks.SendEmail{SendOptions: customerio.SendOptions{Identifiers: &ph}, To: "a@b.c"}, "identifiers.phone"},
		{"identify deleting relationships", tasks.Identify{Identifiers: ph, Attributes: map[string]any{"cio_relationships": deleteRels}}, "attributes.cio_relationships"},
		{"event over one operation", tasks.Track{Identifiers: ph, Event: customerio.Event{Name: "e", Data: bigData}}, "data"},
		{"identify over one operation", tasks.Identify{Identifiers: ph, Attributes: manyAttrs}, "attributes"},
		{"merge anonymous over one operation", tasks.MergeAnonymous{Identifiers: ph, AnonymousID: "a", Attributes: manyAttrs}, "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ve *customerio.ValidationError
			if err := tc.p.Validate(); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Validate() = %v, want a *customerio.ValidationError naming %s", err, tc.field)
			}
		})
	}
	// The same payloads by id keep Track v1's larger limits.
	if err := (tasks.Track{Identifiers: other, Event: customerio.Event{Name: "e", Data: bigData}}).Validate(); err != nil {
		t.Errorf("large event by id: %v", err)
	}
	if err := (tasks.Identify{Identifiers: other, Attributes: map[string]any{"cio_relationships": deleteRels}}).Validate(); err != nil {
		t.Errorf("identify by id deleting relationships: %v", err)
	}
	// The JSON form, through the strict decoder of every front door.
	if _, _, err := tasks.DecodeStrict(tasks.TypeTrack, []byte(`{"identifiers":{"phone":"+15555550100"},"name":"signed_up"}`)); err != nil {
		t.Errorf("DecodeStrict: %v", err)
	}
}

// TestCioObjectID: an object payload names the object by object_type_id
// and object_id or by cio_object_id, not both; its operations carry
// whichever it was given.
func TestCioObjectID(t *testing.T) {
	person := customerio.Identifiers{ID: "ada"}
	for _, p := range []tasks.Payload{
		tasks.ObjectUpsert{CioObjectID: "obb7fd050101", Attributes: map[string]any{"plan": "pro"}},
		tasks.ObjectDelete{CioObjectID: "obb7fd050101"},
		tasks.Relate{Identifiers: person, CioObjectID: "obb7fd050101"},
		tasks.Unrelate{Identifiers: person, CioObjectID: "obb7fd050101"},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s by cio_object_id: %v", p.TaskType(), err)
		}
	}
	for _, tc := range []struct {
		name  string
		p     tasks.Payload
		field string
	}{
		{"both", tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", CioObjectID: "ob1"}, "cio_object_id"},
		{"both with type only", tasks.ObjectDelete{ObjectTypeID: "1", CioObjectID: "ob1"}, "cio_object_id"},
		{"blank", tasks.Relate{Identifiers: person, CioObjectID: "  "}, "cio_object_id"},
		{"long", tasks.Unrelate{Identifiers: person, CioObjectID: strings.Repeat("o", 151)}, "cio_object_id"},
		{"neither", tasks.ObjectDelete{}, "object_type_id"},
		{"person by cio_object_id", tasks.Delete{Identifiers: customerio.Identifiers{CioObjectID: "ob1"}}, "identifiers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ve *customerio.ValidationError
			if err := tc.p.Validate(); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Validate() = %v, want a *customerio.ValidationError naming %s", err, tc.field)
			}
		})
	}
	_, p, err := tasks.DecodeStrict(tasks.TypeRelate, []byte(`{"identifiers":{"id":"ada"},"cio_object_id":"ob1","relationship_attributes":{"role":"admin"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := p.(*tasks.Relate).Operations()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ops)
	if want := `[{"type":"person","action":"add_relationships","identifiers":{"id":"ada"},"cio_relationships":[{"identifiers":{"cio_object_id":"ob1"},"relationship_attributes":{"role":"admin"}}]}]`; string(b) != want {
		t.Errorf("operations\n got  %s\n want %s", b, want)
	}
	b, _ = json.Marshal(tasks.ObjectUpsert{CioObjectID: "ob1"})
	if want := `{"cio_object_id":"ob1"}`; string(b) != want {
		t.Errorf("payload JSON %s, want %s", b, want)
	}
}
