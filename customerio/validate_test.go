package customerio

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const testULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

func person(id string) *Identifiers { return &Identifiers{ID: id} }

func manyAttrs(n int) map[string]any {
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("a%d", i)] = i
	}
	return m
}

func manyStrings(n int, f func(int) string) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = f(i)
	}
	return s
}

var (
	long151  = strings.Repeat("x", 151)
	long101  = strings.Repeat("n", 101)
	long1001 = strings.Repeat("v", 1001)
	secret   = "SECRETVALUE-" // marks values that must not appear in error texts
)

// TestValidationThroughClient checks every documented limit: the call
// returns a *ValidationError naming the field, its text does not contain the
// offending value, and nothing reaches the network.
func TestValidationThroughClient(t *testing.T) {
	bigData := map[string]any{"blob": secret + strings.Repeat("d", MaxEventDataBytes)}
	bigAttrs := map[string]any{}
	for i := 0; i < 40; i++ {
		bigAttrs[fmt.Sprintf("a%d", i)] = strings.Repeat("z", 900)
	}
	bigOp := Operation{Type: EntityPerson, Action: ActionIdentify, Identifiers: person("u1"), Attributes: bigAttrs}
	midAttrs := map[string]any{}
	for i := 0; i < 30; i++ {
		midAttrs[fmt.Sprintf("a%d", i)] = strings.Repeat("z", 900)
	}
	midOp := Operation{Type: EntityPerson, Action: ActionIdentify, Identifiers: person("u1"), Attributes: midAttrs}
	bigBatch := make([]Operation, 20)
	for i := range bigBatch {
		bigBatch[i] = midOp
	}
	attach := func(m map[string]string) *SendEmailRequest {
		return &SendEmailRequest{To: "a@example.com", Attachments: m}
	}
	bigMsg := PipelinesMessage{UserID: "u1", Traits: map[string]any{"x": strings.Repeat("t", MaxEntityBytes)}}
	midMsg := PipelinesMessage{Type: CallIdentify, UserID: "u1", Traits: map[string]any{"x": strings.Repeat("t", 30_000)}}
	ids10001 := manyStrings(10_001, func(i int) string { return fmt.Sprint("p", i) })
	rows10001 := make([]PerUserData, 10_001)
	for i := range rows10001 {
		rows10001[i] = PerUserData{ID: fmt.Sprint("p", i)}
	}
	push := func(r SendPushRequest) *SendPushRequest { return &r }

	tests := []struct {
		name  string
		call  func(ctx context.Context, c *Client) error
		field string
	}{
		// Track v1
		{"identify empty id", func(ctx context.Context, c *Client) error { return c.Identify(ctx, " ", nil) }, "id"},
		{"identify id 151 bytes", func(ctx context.Context, c *Client) error { return c.Identify(ctx, long151, nil) }, "id"},
		{"identify 301 attributes", func(ctx context.Context, c *Client) error { return c.Identify(ctx, "u1", manyAttrs(301)) }, "attributes"},
		{"identify attribute name 151", func(ctx context.Context, c *Client) error {
			return c.Identify(ctx, "u1", map[string]any{long151: 1})
		}, "attributes"},
		{"identify attribute value 1001", func(ctx context.Context, c *Client) error {
			return c.Identify(ctx, "u1", map[string]any{"plan": secret + long1001})
		}, "attributes.plan"},
		{"track blank name", func(ctx context.Context, c *Client) error { return c.Track(ctx, "u1", Event{Name: "  "}) }, "name"},
		{"track name 101", func(ctx context.Context, c *Client) error { return c.Track(ctx, "u1", Event{Name: long101}) }, "name"},
		{"track data over 100000", func(ctx context.Context, c *Client) error {
			return c.Track(ctx, "u1", Event{Name: "big", Data: bigData})
		}, "data"},
		{"track bad type", func(ctx context.Context, c *Client) error { return c.Track(ctx, "u1", Event{Name: "e", Type: "click"}) }, "type"},
		{"track id not a ULID", func(ctx context.Context, c *Client) error { return c.Track(ctx, "u1", Event{Name: "e", ID: "123"}) }, "id"},
		{"track person id 151", func(ctx context.Context, c *Client) error { return c.Track(ctx, long151, Event{Name: "e"}) }, "id"},
		{"anonymous invite without recipient", func(ctx context.Context, c *Client) error {
			return c.TrackAnonymous(ctx, AnonymousEvent{Name: "invite", Data: map[string]any{"x": 1}})
		}, "data.recipient"},
		{"anonymous id 151", func(ctx context.Context, c *Client) error {
			return c.TrackAnonymous(ctx, AnonymousEvent{Name: "e", AnonymousID: long151})
		}, "anonymous_id"},
		{"device without token", func(ctx context.Context, c *Client) error { return c.AddDevice(ctx, "u1", Device{Platform: "ios"}) }, "device.id"},
		{"device bad platform", func(ctx context.Context, c *Client) error {
			return c.AddDevice(ctx, "u1", Device{ID: "tok", Platform: "windows"})
		}, "device.platform"},
		{"delete device without id", func(ctx context.Context, c *Client) error { return c.DeleteDevice(ctx, "u1", "") }, "device_id"},
		{"merge primary two identifiers", func(ctx context.Context, c *Client) error {
			return c.MergeCustomers(ctx, Identifiers{ID: "a", Email: secret + "@example.com"}, Identifiers{ID: "b"})
		}, "primary"},
		{"merge secondary none", func(ctx context.Context, c *Client) error {
			return c.MergeCustomers(ctx, Identifiers{ID: "a"}, Identifiers{})
		}, "secondary"},
		{"segment no ids", func(ctx context.Context, c *Client) error { return c.AddToSegment(ctx, 1, "", nil) }, "ids"},
		{"segment id 151", func(ctx context.Context, c *Client) error {
			return c.RemoveFromSegment(ctx, 1, "", []string{"ok", long151})
		}, "ids[1]"},
		{"segment zero", func(ctx context.Context, c *Client) error { return c.AddToSegment(ctx, 0, "", []string{"a"}) }, "segment_id"},
		{"segment bad id_type", func(ctx context.Context, c *Client) error { return c.AddToSegment(ctx, 1, "phone", []string{"a"}) }, "id_type"},
		{"form both identifiers", func(ctx context.Context, c *Client) error {
			return c.SubmitForm(ctx, "f1", map[string]string{"email": "a@example.com", "id": "u1"})
		}, "data"},
		{"form without id", func(ctx context.Context, c *Client) error {
			return c.SubmitForm(ctx, "", map[string]string{"id": "u1"})
		}, "form_id"},
		// Track v2
		{"v2 bad type", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: "account", Action: ActionIdentify, Identifiers: person("u1")})
		}, "type"},
		{"v2 action not for person", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionIdentifyAnonymous, Identifiers: person("u1")})
		}, "action"},
		{"v2 action not for delivery", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityDelivery, Action: ActionIdentify, Identifiers: person("d1")})
		}, "action"},
		{"v2 person two identifiers", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionDelete, Identifiers: &Identifiers{ID: "u1", CioID: "c1"}})
		}, "identifiers"},
		{"v2 person no identifiers", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionSuppress})
		}, "identifiers"},
		{"v2 object without object_id", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: &Identifiers{ObjectTypeID: "1"}})
		}, "identifiers.object_id"},
		{"v2 object bad type id", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityObject, Action: ActionDelete, Identifiers: &Identifiers{ObjectTypeID: "abc", ObjectID: "o"}})
		}, "identifiers.object_type_id"},
		{"v2 merge without secondary", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionMerge, Primary: person("a")})
		}, "secondary"},
		{"v2 add_device without token", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionAddDevice, Identifiers: person("u1"), Device: &V2Device{Platform: "ios"}})
		}, "device.token"},
		{"v2 delivery without device_token", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityDelivery, Action: ActionEvent, Identifiers: person("d1"), Name: "opened"})
		}, "attributes.device_token"},
		{"v2 relationships empty", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionAddRelationships, Identifiers: person("u1")})
		}, "cio_relationships"},
		{"v2 person relationship to a person", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionAddRelationships, Identifiers: person("u1"),
				Relationships: []Relationship{{Identifiers: Identifiers{ID: "u2"}}}})
		}, "cio_relationships[0].identifiers"},
		{"v2 event blank name", func(ctx context.Context, c *Client) error {
			return c.Entity(ctx, Operation{Type: EntityPerson, Action: ActionEvent, Identifiers: person("u1")})
		}, "name"},
		{"v2 entity over 32000 bytes", func(ctx context.Context, c *Client) error { return c.Entity(ctx, bigOp) }, "operation"},
		{"v2 batch empty", func(ctx context.Context, c *Client) error { _, err := c.Batch(ctx, nil); return err }, "batch"},
		{"v2 batch item invalid", func(ctx context.Context, c *Client) error {
			_, err := c.Batch(ctx, []Operation{
				{Type: EntityPerson, Action: ActionDelete, Identifiers: person("u1")},
				{Type: EntityPerson, Action: ActionDelete, Identifiers: &Identifiers{}},
			})
			return err
		}, "batch[1].identifiers"},
		{"v2 batch over 500000 bytes", func(ctx context.Context, c *Client) error { _, err := c.Batch(ctx, bigBatch); return err }, "batch"},
		// App
		{"email 16 recipients", func(ctx context.Context, c *Client) error {
			_, err := c.SendEmail(ctx, &SendEmailRequest{
				To:  strings.Join(manyStrings(10, func(i int) string { return fmt.Sprintf("a%d@example.com", i) }), ","),
				CC:  `"Doe, Jane" <j@example.com>, k@example.com`,
				BCC: "l@example.com,m@example.com,n@example.com,o@example.com",
			})
			return err
		}, "to"},
		{"email without to", func(ctx context.Context, c *Client) error {
			_, err := c.SendEmail(ctx, &SendEmailRequest{})
			return err
		}, "to"},
		{"email attachment without extension", func(ctx context.Context, c *Client) error {
			_, err := c.SendEmail(ctx, attach(map[string]string{"report": "aGk="}))
			return err
		}, "attachments"},
		{"email attachment not base64", func(ctx context.Context, c *Client) error {
			_, err := c.SendEmail(ctx, attach(map[string]string{"r.pdf": "not base64!"}))
			return err
		}, "attachments"},
		{"email attachments over 2MB", func(ctx context.Context, c *Client) error {
			_, err := c.SendEmail(ctx, attach(map[string]string{
				"a.bin": base64.StdEncoding.EncodeToString(make([]byte, 800_000)),
				"b.bin": base64.StdEncoding.EncodeToString(make([]byte, 800_000)),
			}))
			return err
		}, "attachments"},
		{"email send_at 91 days", func(ctx context.Context, c *Client) error {
			r := &SendEmailRequest{To: "a@example.com"}
			r.SendAt = time.Now().Add(91 * 24 * time.Hour).Unix()
			_, err := c.SendEmail(ctx, r)
			return err
		}, "send_at"},
		{"email two identifiers", func(ctx context.Context, c *Client) error {
			r := &SendEmailRequest{To: "a@example.com"}
			r.Identifiers = &Identifiers{ID: "u1", Email: "a@example.com"}
			_, err := c.SendEmail(ctx, r)
			return err
		}, "identifiers"},
		{"push without identifiers", func(ctx context.Context, c *Client) error {
			_, err := c.SendPush(ctx, push(SendPushRequest{SendOptions: SendOptions{TransactionalMessageID: "3"}}))
			return err
		}, "identifiers"},
		{"push without message id", func(ctx context.Context, c *Client) error {
			_, err := c.SendPush(ctx, push(SendPushRequest{SendOptions: SendOptions{Identifiers: person("u1")}}))
			return err
		}, "transactional_message_id"},
		{"push device without token", func(ctx context.Context, c *Client) error {
			_, err := c.SendPush(ctx, push(SendPushRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "3"},
				CustomDevice: &PushDevice{Platform: "ios"}}))
			return err
		}, "custom_device.token"},
		{"sms without to", func(ctx context.Context, c *Client) error {
			_, err := c.SendSMS(ctx, &SendSMSRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "3"}})
			return err
		}, "to"},
		{"whatsapp without to", func(ctx context.Context, c *Client) error {
			_, err := c.SendWhatsApp(ctx, &SendWhatsAppRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "3"}})
			return err
		}, "to"},
		{"in-app without identifiers", func(ctx context.Context, c *Client) error {
			_, err := c.SendInApp(ctx, &SendInAppRequest{SendOptions: SendOptions{TransactionalMessageID: "3"}})
			return err
		}, "identifiers"},
		{"inbox without message id", func(ctx context.Context, c *Client) error {
			_, err := c.SendInbox(ctx, &SendInboxRequest{SendOptions: SendOptions{Identifiers: person("u1")}})
			return err
		}, "transactional_message_id"},
		{"nil email request", func(ctx context.Context, c *Client) error { _, err := c.SendEmail(ctx, nil); return err }, "body"},
		{"broadcast zero id", func(ctx context.Context, c *Client) error { _, err := c.TriggerBroadcast(ctx, 0, nil); return err }, "broadcast_id"},
		{"broadcast two shapes", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{IDs: []string{"a"}, Emails: []string{"a@example.com"}})
			return err
		}, "recipients"},
		{"broadcast ids with email flag", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{IDs: []string{"a"}, EmailIgnoreMissing: true})
			return err
		}, "email_ignore_missing"},
		{"broadcast emails with id flag", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{Emails: []string{"a@example.com"}, IDIgnoreMissing: true})
			return err
		}, "id_ignore_missing"},
		{"broadcast default audience with flag", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{EmailAddDuplicates: true})
			return err
		}, "email_add_duplicates"},
		{"broadcast filter with flag", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{Recipients: &RecipientFilter{Segment: &SegmentRef{ID: 3}}, IDIgnoreMissing: true})
			return err
		}, "id_ignore_missing"},
		{"broadcast 10001 ids", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{IDs: ids10001})
			return err
		}, "ids"},
		{"broadcast 10001 rows", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{PerUserData: rows10001})
			return err
		}, "per_user_data"},
		{"broadcast row with id and email", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{PerUserData: []PerUserData{{ID: "a", Email: "a@example.com"}}})
			return err
		}, "per_user_data[0]"},
		{"broadcast empty filter", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{Recipients: &RecipientFilter{}})
			return err
		}, "recipients"},
		{"broadcast eq without value", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{Recipients: &RecipientFilter{And: []RecipientFilter{
				{Segment: &SegmentRef{ID: 1}}, {Attribute: &AttributeFilter{Field: "plan", Operator: "eq"}}}}})
			return err
		}, "recipients.and[1].attribute.value"},
		{"broadcast bad data_file_url", func(ctx context.Context, c *Client) error {
			_, err := c.TriggerBroadcast(ctx, 1, &TriggerBroadcastRequest{DataFileURL: "ftp://files.example.com/x"})
			return err
		}, "data_file_url"},
		{"trigger status zero trigger", func(ctx context.Context, c *Client) error { _, err := c.TriggerStatus(ctx, 1, 0); return err }, "trigger_id"},
		{"trigger errors negative start", func(ctx context.Context, c *Client) error { _, err := c.TriggerErrors(ctx, 1, 2, -1, 0); return err }, "start"},
		// Pipelines
		{"cdp identify without ids", func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, CallIdentify, PipelinesMessage{Traits: map[string]any{"a": 1}})
		}, "userId"},
		{"cdp track without event", func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, CallTrack, PipelinesMessage{UserID: "u1"})
		}, "event"},
		{"cdp group without groupId", func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, CallGroup, PipelinesMessage{UserID: "u1"})
		}, "groupId"},
		{"cdp alias without previousId", func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, CallAlias, PipelinesMessage{UserID: "u1"})
		}, "previousId"},
		{"cdp type mismatch", func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, CallPage, PipelinesMessage{Type: CallScreen, UserID: "u1"})
		}, "type"},
		{"cdp unknown call", func(ctx context.Context, c *Client) error {
			return c.Pipelines(ctx, "delete", PipelinesMessage{UserID: "u1"})
		}, "type"},
		{"cdp message over 32000", func(ctx context.Context, c *Client) error { return c.Pipelines(ctx, CallIdentify, bigMsg) }, "traits"},
		{"cdp batch item without type", func(ctx context.Context, c *Client) error {
			return c.PipelinesBatch(ctx, []PipelinesMessage{{UserID: "u1"}})
		}, "batch[0].type"},
		{"cdp batch over 500000", func(ctx context.Context, c *Client) error {
			msgs := make([]PipelinesMessage, 17)
			for i := range msgs {
				msgs[i] = midMsg
			}
			return c.PipelinesBatch(ctx, msgs)
		}, "batch"},
		{"cdp batch empty", func(ctx context.Context, c *Client) error { return c.PipelinesBatch(ctx, nil) }, "batch"},
		{"unencodable data", func(ctx context.Context, c *Client) error {
			return c.Track(ctx, "u1", Event{Name: "e", Data: map[string]any{"ch": make(chan int)}})
		}, "data"},
	}
	c, srv := setup(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(context.Background(), c)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v (%T), want *ValidationError", err, err)
			}
			if ve.Field != tt.field {
				t.Errorf("Field = %q, want %q (reason %q)", ve.Field, tt.field, ve.Reason)
			}
			if ClassOf(err) != ClassPermanent {
				t.Errorf("ClassOf = %v, want permanent", ClassOf(err))
			}
			if s := err.Error(); strings.Contains(s, secret) || strings.Contains(s, long151) || strings.Contains(s, "@example.com") {
				t.Errorf("error text carries the value: %.200s", s)
			}
			if !strings.HasPrefix(err.Error(), "customerio: "+tt.field+": ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests reached the network, want 0", n)
	}
}

// TestValidatorsAccept checks that valid inputs at the limits pass.
func TestValidatorsAccept(t *testing.T) {
	at := func(n int, c string) string { return strings.Repeat(c, n) }
	attrs := manyAttrs(299)
	attrs["a0"] = at(1000, "v")
	attrs[at(150, "k")] = true
	cases := []struct {
		name string
		err  error
	}{
		{"person id 150", ValidatePersonID("id", at(150, "i"))},
		{"cio id", ValidatePersonID("id", "cio_abc")},
		{"identifiers email", ValidatePersonIdentifiers("identifiers", &Identifiers{Email: "a@example.com"})},
		{"identifiers cio_id", ValidatePersonIdentifiers("identifiers", &Identifiers{CioID: "a3000001"})},
		{"attributes at limits", ValidateAttributes("attributes", attrs)},
		{"reserved attributes", ValidateAttributes("attributes", map[string]any{"cio_relationships": map[string]any{"x": at(2000, "r")}})},
		{"event at limits", Event{Name: at(100, "e"), ID: testULID, Type: EventTypePage, Timestamp: 1700000000}.Validate()},
		{"event lower-case ulid", Event{Name: "e", ID: strings.ToLower(testULID)}.Validate()},
		{"anonymous invite", AnonymousEvent{Name: "invite", Data: map[string]any{"recipient": "a@example.com"}}.Validate()},
		{"anonymous", AnonymousEvent{Name: "e", AnonymousID: "anon"}.Validate()},
		{"device", Device{ID: "tok", Platform: "android", Attributes: map[string]string{"app_version": "1.2"}}.Validate()},
		{"segment ids", ValidateSegmentIDs("ids", manyStrings(2500, func(i int) string { return fmt.Sprint(i) }))},
		{"v2 person identify", Operation{Type: EntityPerson, Action: ActionIdentify, Identifiers: person("u1"), Attributes: map[string]any{"plan": "pro"}}.Validate()},
		{"v2 person merge", Operation{Type: EntityPerson, Action: ActionMerge, Primary: person("a"), Secondary: &Identifiers{Email: "b@example.com"}}.Validate()},
		{"v2 person relationships", Operation{Type: EntityPerson, Action: ActionAddRelationships, Identifiers: person("u1"),
			Relationships: []Relationship{{Identifiers: Identifiers{ObjectTypeID: "1", ObjectID: "acme"}}}}.Validate()},
		{"v2 object identify_anonymous", Operation{Type: EntityObject, Action: ActionIdentifyAnonymous, Identifiers: &Identifiers{ObjectTypeID: "2", ObjectID: "acme"},
			Relationships: []Relationship{{Identifiers: Identifiers{AnonymousID: "anon"}}}}.Validate()},
		{"v2 object relationships to people", Operation{Type: EntityObject, Action: ActionAddRelationships, Identifiers: &Identifiers{ObjectTypeID: "1", ObjectID: "acme"},
			Relationships: []Relationship{{Identifiers: Identifiers{Email: "a@example.com"}}}}.Validate()},
		{"v2 delivery event", Operation{Type: EntityDelivery, Action: ActionEvent, Identifiers: person("dlv"), Name: "opened",
			Attributes: map[string]any{"device_token": "tok"}}.Validate()},
		{"v2 add device", Operation{Type: EntityPerson, Action: ActionAddDevice, Identifiers: person("u1"), Device: &V2Device{Token: "t", Platform: "ios"}}.Validate()},
		{"v2 delete device", Operation{Type: EntityPerson, Action: ActionDeleteDevice, Identifiers: person("u1"), Device: &V2Device{Token: "t"}}.Validate()},
		{"batch", ValidateBatch([]Operation{{Type: EntityPerson, Action: ActionSuppress, Identifiers: person("u1")}})},
		{"email 15 recipients", (&SendEmailRequest{To: strings.Join(manyStrings(13, func(i int) string { return fmt.Sprintf("a%d@example.com", i) }), ", "),
			CC: `"Doe, Jane" <j@example.com>`, BCC: "b@example.com",
			Attachments: map[string]string{"r.pdf": base64.StdEncoding.EncodeToString([]byte("%PDF"))}}).Validate()},
		{"email send_at 89 days", (&SendEmailRequest{To: "a@example.com", SendOptions: SendOptions{SendAt: time.Now().Add(89 * 24 * time.Hour).Unix()}}).Validate()},
		{"push", (&SendPushRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "welcome"}}).Validate()},
		{"sms", (&SendSMSRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "3"}, To: "+15555550100"}).Validate()},
		{"whatsapp", (&SendWhatsAppRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "3"}, To: "+15555550100"}).Validate()},
		{"in-app", (&SendInAppRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "3"}}).Validate()},
		{"inbox", (&SendInboxRequest{SendOptions: SendOptions{Identifiers: person("u1"), TransactionalMessageID: "3"}}).Validate()},
		{"broadcast nil", (*TriggerBroadcastRequest)(nil).Validate()},
		{"broadcast default", (&TriggerBroadcastRequest{Data: map[string]any{"a": 1}}).Validate()},
		{"broadcast 10000 ids", (&TriggerBroadcastRequest{IDs: manyStrings(10_000, func(i int) string { return fmt.Sprint(i) }), IDIgnoreMissing: true}).Validate()},
		{"broadcast emails flags", (&TriggerBroadcastRequest{Emails: []string{"a@example.com"}, EmailIgnoreMissing: true, EmailAddDuplicates: true}).Validate()},
		{"broadcast rows all flags", (&TriggerBroadcastRequest{PerUserData: []PerUserData{{ID: "a"}, {Email: "b@example.com"}},
			IDIgnoreMissing: true, EmailIgnoreMissing: true, EmailAddDuplicates: true}).Validate()},
		{"broadcast file all flags", (&TriggerBroadcastRequest{DataFileURL: "https://files.example.com/a.jsonl", IDIgnoreMissing: true}).Validate()},
		{"broadcast filter", (&TriggerBroadcastRequest{Recipients: &RecipientFilter{Or: []RecipientFilter{
			{Not: &RecipientFilter{Segment: &SegmentRef{ID: 4}}}, {Attribute: &AttributeFilter{Field: "plan", Operator: "exists"}}}}}).Validate()},
		{"cdp identify anonymous", PipelinesMessage{AnonymousID: "anon"}.Validate(CallIdentify)},
		{"cdp group track", PipelinesMessage{Event: "e", GroupID: "g"}.Validate(CallTrack)},
		{"cdp alias", PipelinesMessage{UserID: "u", PreviousID: "p"}.Validate(CallAlias)},
		{"cdp group", PipelinesMessage{Type: CallGroup, UserID: "u", GroupID: "g"}.Validate(CallGroup)},
	}
	for _, c := range cases {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
}

func TestValidatePersonIdentifiers(t *testing.T) {
	tests := []struct {
		ids   *Identifiers
		field string
	}{
		{nil, "who"},
		{&Identifiers{}, "who"},
		{&Identifiers{ID: "a", Email: "a@example.com"}, "who"},
		{&Identifiers{ID: "a", CioID: "c"}, "who"},
		{&Identifiers{AnonymousID: "x"}, "who"},
		{&Identifiers{ID: "a", ObjectID: "o"}, "who"},
		{&Identifiers{Email: long151 + "@x.io"}, "who.email"},
		{&Identifiers{Email: "no-at-sign"}, "who.email"},
		{&Identifiers{CioID: long151}, "who.cio_id"},
	}
	for i, tt := range tests {
		err := ValidatePersonIdentifiers("who", tt.ids)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("case %d: err = %v, want field %q", i, err, tt.field)
		}
	}
}

func TestValidationErrorText(t *testing.T) {
	err := ValidateAttributes("attributes", map[string]any{"plan": secret + long1001})
	if got, want := err.Error(), "customerio: attributes.plan: must be at most 1000 bytes"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
