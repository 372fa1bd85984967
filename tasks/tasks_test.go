package tasks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

func TestRegistry(t *testing.T) {
	want := map[string]string{
		tasks.TypeSendEmail: tasks.QueueCritical, tasks.TypeSendPush: tasks.QueueCritical,
		tasks.TypeSendSMS: tasks.QueueCritical, tasks.TypeSendInApp: tasks.QueueCritical,
		tasks.TypeSendInbox: tasks.QueueCritical, tasks.TypeSendWhatsApp: tasks.QueueCritical,
		tasks.TypeIdentify: tasks.QueueDefault, tasks.TypeTrack: tasks.QueueDefault,
		tasks.TypeTrackAnonymous: tasks.QueueDefault, tasks.TypeMergeAnonymous: tasks.QueueDefault,
		tasks.TypeMergePeople: tasks.QueueDefault, tasks.TypeDelete: tasks.QueueDefault,
		tasks.TypeSuppress: tasks.QueueDefault, tasks.TypeUnsuppress: tasks.QueueDefault,
		tasks.TypeDeviceAdd: tasks.QueueDefault, tasks.TypeDeviceDelete: tasks.QueueDefault,
		tasks.TypeObjectUpsert: tasks.QueueDefault, tasks.TypeObjectDelete: tasks.QueueDefault,
		tasks.TypeRelate: tasks.QueueDefault, tasks.TypeUnrelate: tasks.QueueDefault,
		tasks.TypeBroadcastTrigger: tasks.QueueBulk, tasks.TypeSegmentAdd: tasks.QueueBulk,
		tasks.TypeSegmentRemove: tasks.QueueBulk,
		tasks.TypeFormSubmit:    tasks.QueueDefault,
		tasks.TypeMetric:        tasks.QueueDefault,
		tasks.TypeBatch:         tasks.QueueDefault,
		tasks.TypeCDPIdentify:   tasks.QueueDefault, tasks.TypeCDPTrack: tasks.QueueDefault,
		tasks.TypeCDPPage: tasks.QueueDefault, tasks.TypeCDPScreen: tasks.QueueDefault,
		tasks.TypeCDPGroup: tasks.QueueDefault, tasks.TypeCDPAlias: tasks.QueueDefault,
	}
	specs := tasks.Types()
	if len(specs) != len(want) {
		t.Fatalf("Types() has %d types, want %d", len(specs), len(want))
	}
	for i, s := range specs {
		if i > 0 && specs[i-1].Type >= s.Type {
			t.Errorf("Types() not sorted at %d", i)
		}
		if s.Defaults.Queue != want[s.Type] {
			t.Errorf("%s: queue %q, want %q", s.Type, s.Defaults.Queue, want[s.Type])
		}
		if s.Defaults.MaxRetry != tasks.DefaultMaxRetry || s.Defaults.RetryWindow != 24*time.Hour ||
			s.Defaults.Timeout != 30*time.Second || s.Defaults.Expiry != 0 {
			t.Errorf("%s: defaults %+v", s.Type, s.Defaults)
		}
		p := s.New()
		if p.TaskType() != s.Type {
			t.Errorf("%s: New().TaskType() = %q", s.Type, p.TaskType())
		}
		if p2 := s.New(); p2 == p {
			t.Errorf("%s: New returns the same value twice", s.Type)
		}
		got, ok := tasks.Lookup(s.Type)
		if !ok || got.Type != s.Type {
			t.Errorf("Lookup(%s) = %v, %v", s.Type, got.Type, ok)
		}
	}
	if _, ok := tasks.Lookup("cio:nope"); ok {
		t.Error("Lookup of an unknown type succeeded")
	}
	specs[0].Type = "changed"
	if tasks.Types()[0].Type == "changed" {
		t.Error("Types() returns the registry's own slice")
	}
}

func TestRetryBudgetCoversWindow(t *testing.T) {
	if n := tasks.RetriesFor(tasks.DefaultRetryWindow, tasks.BackoffBase, tasks.BackoffCap); n != tasks.DefaultMaxRetry {
		t.Fatalf("RetriesFor(24h, 1s, 10m) = %d, DefaultMaxRetry = %d", n, tasks.DefaultMaxRetry)
	}
	// Worst case: every delay halved by jitter.
	var total time.Duration
	d := tasks.BackoffBase
	for i := 0; i < tasks.DefaultMaxRetry; i++ {
		total += min(d, tasks.BackoffCap) / 2
		d *= 2
		if d > tasks.BackoffCap {
			d = tasks.BackoffCap
		}
	}
	if total < 24*time.Hour {
		t.Fatalf("DefaultMaxRetry retries last at least %v, want ≥ 24h", total)
	}
}

func TestPathID(t *testing.T) {
	for _, tc := range []struct {
		ids  customerio.Identifiers
		want string
	}{
		{customerio.Identifiers{ID: "u1"}, "u1"},
		{customerio.Identifiers{Email: "a@b.c"}, "a@b.c"},
		{customerio.Identifiers{CioID: "abc"}, "cio_abc"},
		{customerio.Identifiers{}, ""},
	} {
		if got := tasks.PathID(tc.ids); got != tc.want {
			t.Errorf("PathID(%+v) = %q, want %q", tc.ids, got, tc.want)
		}
	}
}

const secret = "s3cr3t-value"

func TestValidateNamesField(t *testing.T) {
	long := strings.Repeat("x", 151)
	person := customerio.Identifiers{ID: "u1"}
	for _, tc := range []struct {
		name  string
		p     tasks.Payload
		field string
	}{
		{"identify no identifiers", tasks.Identify{}, "identifiers"},
		{"identify two identifiers", tasks.Identify{Identifiers: customerio.Identifiers{ID: secret, Email: "a@b.c"}}, "identifiers"},
		{"identify anonymous id", tasks.Identify{Identifiers: customerio.Identifiers{ID: "u", AnonymousID: secret}}, "identifiers.anonymous_id"},
		{"identify long id", tasks.Identify{Identifiers: customerio.Identifiers{ID: long}}, "identifiers.id"},
		{"identify long attribute", tasks.Identify{Identifiers: person, Attributes: map[string]any{"plan": strings.Repeat(secret, 100)}}, "attributes.plan"},
		{"track no name", tasks.Track{Identifiers: person}, "name"},
		{"track bad id", tasks.Track{Identifiers: person, Event: customerio.Event{Name: "x", ID: secret}}, "id"},
		{"track bad type", tasks.Track{Identifiers: person, Event: customerio.Event{Name: "x", Type: "click"}}, "type"},
		{"anonymous invite without recipient", tasks.TrackAnonymous{Name: "invite"}, "data.recipient"},
		{"merge anonymous without anonymous_id", tasks.MergeAnonymous{Identifiers: person}, "anonymous_id"},
		{"merge anonymous attribute clash", tasks.MergeAnonymous{Identifiers: person, AnonymousID: "a", Attributes: map[string]any{"anonymous_id": secret}}, "attributes.anonymous_id"},
		{"merge people same", tasks.MergePeople{Primary: person, Secondary: person}, "secondary"},
		{"merge people no secondary", tasks.MergePeople{Primary: person}, "secondary"},
		{"delete", tasks.Delete{}, "identifiers"},
		{"suppress", tasks.Suppress{Identifiers: customerio.Identifiers{Email: "nope"}}, "identifiers.email"},
		{"unsuppress", tasks.Unsuppress{Identifiers: customerio.Identifiers{ObjectTypeID: "1", ObjectID: "x"}}, "identifiers"},
		{"device platform", tasks.DeviceAdd{Identifiers: person, Device: customerio.Device{ID: "t", Platform: "windows"}}, "device.platform"},
		{"device delete token", tasks.DeviceDelete{Identifiers: person}, "device.id"},
		{"object type id missing", tasks.ObjectUpsert{ObjectID: "acme"}, "object_type_id"},
		{"object type id not digits", tasks.ObjectUpsert{ObjectTypeID: "company", ObjectID: "acme"}, "object_type_id"},
		{"object id missing", tasks.ObjectDelete{ObjectTypeID: "1"}, "object_id"},
		{"object attributes", tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: map[string]any{long: 1}}, "attributes"},
		{"relate object", tasks.Relate{Identifiers: person, ObjectTypeID: "0", ObjectID: "acme"}, "object_type_id"},
		{"relate attrs", tasks.Relate{Identifiers: person, ObjectTypeID: "1", ObjectID: "acme", RelationshipAttributes: map[string]any{"role": strings.Repeat("y", 1001)}}, "relationship_attributes.role"},
		{"unrelate person", tasks.Unrelate{ObjectTypeID: "1", ObjectID: "acme"}, "identifiers"},
		{"broadcast id", tasks.BroadcastTrigger{}, "broadcast_id"},
		{"broadcast shapes", tasks.BroadcastTrigger{BroadcastID: 1, TriggerBroadcastRequest: customerio.TriggerBroadcastRequest{IDs: []string{"a"}, Emails: []string{"a@b.c"}}}, "recipients"},
		{"segment id", tasks.SegmentAdd{IDs: []string{"a"}}, "segment_id"},
		{"segment ids", tasks.SegmentRemove{SegmentID: 1}, "ids"},
		{"segment id type", tasks.SegmentAdd{SegmentID: 1, IDs: []string{"a"}, IDType: "phone"}, "id_type"},
		{"email to", tasks.SendEmail{}, "to"},
		{"push identifiers", tasks.SendPush{}, "identifiers"},
		{"sms message id", tasks.SendSMS{SendOptions: customerio.SendOptions{Identifiers: &person}, To: "+1"}, "transactional_message_id"},
		{"sms to", tasks.SendSMS{SendOptions: customerio.SendOptions{Identifiers: &person, TransactionalMessageID: "x"}}, "to"},
		{"in app", tasks.SendInApp{}, "identifiers"},
		{"inbox", tasks.SendInbox{SendOptions: customerio.SendOptions{Identifiers: &person}}, "transactional_message_id"},
		{"whatsapp", tasks.SendWhatsApp{SendOptions: customerio.SendOptions{Identifiers: &person, TransactionalMessageID: "x"}}, "to"},
		{"cdp identify", tasks.CDPIdentify{}, "userId"},
		{"cdp track event", tasks.CDPTrack{UserID: "u"}, "event"},
		{"cdp type mismatch", tasks.CDPPage{UserID: "u", Type: customerio.CallTrack}, "type"},
		{"cdp screen", tasks.CDPScreen{}, "userId"},
		{"cdp group", tasks.CDPGroup{UserID: "u"}, "groupId"},
		{"cdp alias", tasks.CDPAlias{UserID: "u"}, "previousId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			var ve *customerio.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *customerio.ValidationError", err)
			}
			if ve.Field != tc.field {
				t.Errorf("Field = %q, want %q (%v)", ve.Field, tc.field, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error text contains the value: %v", err)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	enq := time.UnixMilli(1767222000123)
	exp := time.Unix(1767225600, 0)
	p := tasks.SendEmail{To: "ada@example.com", SendOptions: customerio.SendOptions{TransactionalMessageID: "3"}}
	b, err := tasks.Encode(p, tasks.Meta{Workspace: "eu", ExpiresAt: exp, EnqueuedAt: enq})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"workspace":"eu","expires_at":1767225600,"enqueued_at":1767222000123,"payload":{"transactional_message_id":3,"to":"ada@example.com"}}`
	if string(b) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", b, want)
	}
	env, got, err := tasks.Decode(tasks.TypeSendEmail, b)
	if err != nil {
		t.Fatal(err)
	}
	if env.V != 1 || env.Workspace != "eu" || env.ExpiresAt != exp.Unix() || env.EnqueuedAt != enq.UnixMilli() {
		t.Errorf("envelope = %+v", env)
	}
	if e, ok := env.Expiry(); !ok || !e.Equal(exp) {
		t.Errorf("Expiry() = %v, %v", e, ok)
	}
	if q, ok := env.Enqueued(); !ok || !q.Equal(enq) {
		t.Errorf("Enqueued() = %v, %v", q, ok)
	}
	if !env.Expired(exp) || env.Expired(exp.Add(-time.Second)) {
		t.Error("Expired is wrong around the expiry")
	}
	se, ok := got.(*tasks.SendEmail)
	if !ok || se.To != "ada@example.com" || se.TransactionalMessageID != "3" {
		t.Fatalf("payload = %#v", got)
	}

	// No workspace, no expiry: omitted.
	b, _ = tasks.Encode(tasks.Delete{Identifiers: customerio.Identifiers{ID: "u"}}, tasks.Meta{EnqueuedAt: enq})
	if want := `{"v":1,"enqueued_at":1767222000123,"payload":{"identifiers":{"id":"u"}}}`; string(b) != want {
		t.Errorf("Encode = %s, want %s", b, want)
	}
	// The idempotency key is kept in the envelope, after the order, and
	// read back on both decoding paths (fast, and through the map when an
	// unknown field sends Decode there); a key that is not printable ASCII
	// is still written as valid JSON.
	for _, key := range []string{"order:person-7731", `a"b\c`, "tab\there\u00e9"} {
		b, err = tasks.Encode(tasks.Delete{Identifiers: customerio.Identifiers{ID: "u"}}, tasks.Meta{EnqueuedAt: enq, IdempotencyKey: key})
		if err != nil || !json.Valid(b) {
			t.Fatalf("Encode with key %q = %s, %v", key, b, err)
		}
		for _, in := range [][]byte{b, bytes.Replace(b, []byte(`"payload":`), []byte(`"x":1,"payload":`), 1)} {
			env, _, err = tasks.Decode(tasks.TypeDelete, in)
			if err != nil || env.IdempotencyKey != key {
				t.Errorf("Decode(%s).IdempotencyKey = %q, %v; want %q", in, env.IdempotencyKey, err, key)
			}
			if out, _ := json.Marshal(env); !bytes.Contains(out, mustJSON(key)) {
				t.Errorf("MarshalJSON lost the key: %s", out)
			}
		}
	}
	b, _ = tasks.Encode(tasks.Delete{Identifiers: customerio.Identifiers{ID: "u"}}, tasks.Meta{EnqueuedAt: enq, OrderKey: "ok", Seq: 2, IdempotencyKey: "del:u"})
	if want := `{"v":1,"enqueued_at":1767222000123,"order_key":"ok","seq":2,"idempotency_key":"del:u","payload":{"identifiers":{"id":"u"}}}`; string(b) != want {
		t.Errorf("Encode = %s, want %s", b, want)
	}
	// Zero EnqueuedAt means now.
	before := time.Now().UnixMilli()
	b, _ = tasks.Encode(tasks.Delete{Identifiers: customerio.Identifiers{ID: "u"}}, tasks.Meta{})
	env, _, _ = tasks.Decode(tasks.TypeDelete, b)
	if env.EnqueuedAt < before || env.EnqueuedAt > time.Now().UnixMilli() {
		t.Errorf("EnqueuedAt = %d, want now", env.EnqueuedAt)
	}
}

func TestUnknownFieldsSurvive(t *testing.T) {
	in := []byte(`{"v":1,"workspace":"w1","enqueued_at":5,"trace":{"id":"t-1"},"payload":{"identifiers":{"id":"u"},"attributes":{"a":1},"future_field":[1,2]}}`)
	env, p, err := tasks.Decode(tasks.TypeIdentify, in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env.Payload, []byte(`"future_field":[1,2]`)) {
		t.Errorf("payload bytes lost the unknown field: %s", env.Payload)
	}
	if string(env.Extra["trace"]) != `{"id":"t-1"}` {
		t.Errorf("Extra = %v", env.Extra)
	}
	if p.(*tasks.Identify).Identifiers.ID != "u" {
		t.Errorf("payload = %+v", p)
	}
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal(in, &a)
	json.Unmarshal(out, &b)
	if ja, _ := json.Marshal(a); !bytes.Equal(ja, mustJSON(b)) {
		t.Errorf("re-encoding changed the task:\n in  %s\n out %s", in, out)
	}
	var env2 tasks.Envelope
	if err := json.Unmarshal(out, &env2); err != nil || env2.Workspace != "w1" || string(env2.Extra["trace"]) != `{"id":"t-1"}` {
		t.Errorf("Envelope.UnmarshalJSON = %+v, %v", env2, err)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestDecodeBarePayload(t *testing.T) {
	in := []byte(` {"identifiers":{"email":"a@b.c"},"name":"signup","extra":true} `)
	env, p, err := tasks.Decode(tasks.TypeTrack, in)
	if err != nil {
		t.Fatal(err)
	}
	if env.V != 1 || env.EnqueuedAt != 0 || env.Workspace != "" {
		t.Errorf("envelope = %+v", env)
	}
	if !bytes.Contains(env.Payload, []byte(`"extra":true`)) {
		t.Errorf("payload = %s", env.Payload)
	}
	if tr := p.(*tasks.Track); tr.Name != "signup" || tr.Identifiers.Email != "a@b.c" {
		t.Errorf("payload = %+v", tr)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  string
		in   string
		is   error
	}{
		{"unknown type", "cio:nope", `{}`, tasks.ErrUnknownType},
		{"newer version", tasks.TypeIdentify, `{"v":2,"payload":{"identifiers":{"id":"` + secret + `"}}}`, tasks.ErrUnsupportedVersion},
		{"version zero", tasks.TypeIdentify, `{"v":0,"payload":{}}`, tasks.ErrMalformed},
		{"not JSON", tasks.TypeIdentify, `{"identifiers": ` + secret, tasks.ErrMalformed},
		{"not an object", tasks.TypeIdentify, `["` + secret + `"]`, tasks.ErrMalformed},
		{"empty", tasks.TypeIdentify, ``, tasks.ErrMalformed},
		{"payload not object", tasks.TypeIdentify, `{"v":1,"payload":"` + secret + `"}`, tasks.ErrMalformed},
		{"missing payload", tasks.TypeIdentify, `{"v":1}`, tasks.ErrMalformed},
		{"bad envelope field", tasks.TypeIdentify, `{"v":1,"enqueued_at":"` + secret + `","payload":{}}`, tasks.ErrMalformed},
		{"bad workspace", tasks.TypeIdentify, `{"v":1,"workspace":"` + secret + `!","payload":{}}`, tasks.ErrMalformed},
		{"wrong field type", tasks.TypeIdentify, `{"v":1,"payload":{"identifiers":{"id":12345678901}}}`, tasks.ErrMalformed},
		{"wrong number type", tasks.TypeSegmentAdd, `{"segment_id":1.5,"ids":["` + secret + `"]}`, tasks.ErrMalformed},
		{"cdp wrong field type", tasks.TypeCDPTrack, `{"userId":"` + secret + `","traits":["` + secret + `"]}`, tasks.ErrMalformed},
		{"bad message id", tasks.TypeSendEmail, `{"transactional_message_id":{"x":"` + secret + `"}}`, tasks.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tasks.Decode(tc.typ, []byte(tc.in))
			var de *tasks.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode = %v, want *DecodeError", err)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("Decode = %v, want errors.Is %v", err, tc.is)
			}
			// Strings are never quoted, nor a number given for a string
			// (identifier) field; a number in a numeric field is shown
			// ("segment_id": must be an integer, got 1.5).
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "12345678901") {
				t.Errorf("error text quotes the task: %v", err)
			}
			if de.Reason == "" || de.Type != tc.typ {
				t.Errorf("DecodeError = %+v", de)
			}
		})
	}
}

func TestWorkspace(t *testing.T) {
	for _, w := range []string{"", "eu", "prod_1", "a-b", strings.Repeat("a", 64)} {
		if err := tasks.ValidateWorkspace(w); err != nil {
			t.Errorf("ValidateWorkspace(%q) = %v", w, err)
		}
	}
	for _, w := range []string{"EU", "a b", "a/b", "é", strings.Repeat("a", 65), "a.b"} {
		err := tasks.ValidateWorkspace(w)
		var ve *customerio.ValidationError
		if !errors.As(err, &ve) || ve.Field != "workspace" {
			t.Errorf("ValidateWorkspace(%q) = %v", w, err)
		}
		if _, err := tasks.Encode(tasks.Delete{Identifiers: customerio.Identifiers{ID: "u"}}, tasks.Meta{Workspace: w}); err == nil {
			t.Errorf("Encode accepted workspace %q", w)
		}
	}
}

func TestMergeAnonymousAttrs(t *testing.T) {
	p := tasks.MergeAnonymous{Identifiers: customerio.Identifiers{ID: "u"}, AnonymousID: "anon", Attributes: map[string]any{"plan": "pro"}}
	m := p.Attrs()
	if m["anonymous_id"] != "anon" || m["plan"] != "pro" || len(p.Attributes) != 1 {
		t.Errorf("Attrs() = %v; Attributes = %v", m, p.Attributes)
	}
}

func TestOperations(t *testing.T) {
	person := customerio.Identifiers{ID: "u"}
	op := tasks.Relate{Identifiers: person, ObjectTypeID: "1", ObjectID: "acme", RelationshipAttributes: map[string]any{"role": "admin"}}.Operation()
	if op.Type != customerio.EntityPerson || op.Action != customerio.ActionAddRelationships || op.Identifiers.ID != "u" ||
		len(op.Relationships) != 1 || op.Relationships[0].Identifiers.ObjectID != "acme" || op.Relationships[0].RelationshipAttributes["role"] != "admin" {
		t.Errorf("Relate.Operation() = %+v", op)
	}
	if err := op.Validate(); err != nil {
		t.Error(err)
	}
	op = tasks.Unrelate{Identifiers: person, ObjectTypeID: "1", ObjectID: "acme"}.Operation()
	if op.Action != customerio.ActionDeleteRelationships {
		t.Errorf("Unrelate.Operation() = %+v", op)
	}
	op = tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: map[string]any{"plan": "x"}}.Operation()
	if op.Type != customerio.EntityObject || op.Action != customerio.ActionIdentify || op.Identifiers.ObjectTypeID != "1" || op.Attributes["plan"] != "x" {
		t.Errorf("ObjectUpsert.Operation() = %+v", op)
	}
	op = tasks.ObjectDelete{ObjectTypeID: "1", ObjectID: "acme"}.Operation()
	if op.Action != customerio.ActionDelete || op.Identifiers.ObjectID != "acme" {
		t.Errorf("ObjectDelete.Operation() = %+v", op)
	}
}

// kAttrs returns n attributes k000..k<n-1> of size bytes each.
func kAttrs(n, size int) map[string]any {
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", size)
	}
	return m
}

// TestLargePayloadLimits: what enqueue accepts is what some Customer.io
// endpoint takes (Track v1 for people and events, several Track v2
// operations for objects and relationships), and what no endpoint takes is
// refused naming the field.
func TestLargePayloadLimits(t *testing.T) {
	person := customerio.Identifiers{ID: "u1"}
	obj := func(a map[string]any) tasks.ObjectUpsert {
		return tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: a}
	}
	rel := func(a map[string]any) tasks.Relate {
		return tasks.Relate{Identifiers: person, ObjectTypeID: "1", ObjectID: "acme", RelationshipAttributes: a}
	}
	huge := map[string]any{"cio_subscription_preferences": map[string]any{"topics": map[string]any{"t": strings.Repeat("y", 40_000)}}}
	for _, tc := range []struct {
		name  string
		p     tasks.Payload
		field string // "" = valid
	}{
		{"event with 50,000 bytes of data", tasks.Track{Identifiers: person, Event: customerio.Event{Name: "big", Data: map[string]any{"blob": strings.Repeat("x", 50_000)}}}, ""},
		{"event data over 100,000 bytes", tasks.Track{Identifiers: person, Event: customerio.Event{Name: "big", Data: map[string]any{"blob": strings.Repeat("x", 100_000)}}}, "data"},
		{"identify of 300 attributes of 1,000 bytes", tasks.Identify{Identifiers: person, Attributes: kAttrs(300, 1000)}, ""},
		{"identify of 301 attributes", tasks.Identify{Identifiers: person, Attributes: kAttrs(301, 1)}, "attributes"},
		{"merge_anonymous of 299 attributes of 1,000 bytes", tasks.MergeAnonymous{Identifiers: person, AnonymousID: "a", Attributes: kAttrs(299, 1000)}, ""},
		{"device of 300 attributes of 1,000 bytes", tasks.DeviceAdd{Identifiers: person, Device: customerio.Device{ID: "t", Platform: "ios", Attributes: func() map[string]string {
			m := map[string]string{}
			for k := range kAttrs(300, 0) {
				m[k] = strings.Repeat("d", 1000)
			}
			return m
		}()}}, ""},
		{"object of 95 attributes of 1,000 bytes", obj(kAttrs(95, 1000)), ""},
		{"object attributes over 100,000 bytes", obj(kAttrs(100, 1000)), "attributes"},
		{"object attribute too large for one operation", obj(huge), "attributes.cio_subscription_preferences"},
		{"relationship of 95 attributes of 1,000 bytes", rel(kAttrs(95, 1000)), ""},
		{"relationship attributes over 100,000 bytes", rel(kAttrs(100, 1000)), "relationship_attributes"},
		{"unrelate with large attributes", tasks.Unrelate{Identifiers: person, ObjectTypeID: "1", ObjectID: "acme", RelationshipAttributes: kAttrs(95, 1000)}, ""},
		{"cdp message over 32,000 bytes", tasks.CDPTrack{UserID: "u", Event: "Big", Properties: map[string]any{"blob": strings.Repeat("x", 32_000)}}, "properties"},
		{"cdp message of 31,000 bytes", tasks.CDPTrack{UserID: "u", Event: "Big", Properties: map[string]any{"blob": strings.Repeat("x", 31_000)}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *customerio.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Validate() = %v, want a *customerio.ValidationError on %q", err, tc.field)
			}
		})
	}
	// The parts of a large object or relationship each fit one Track v2
	// operation and carry every attribute.
	for _, sp := range []interface {
		Operations() ([]customerio.Operation, error)
	}{obj(kAttrs(95, 1000)), rel(kAttrs(95, 1000))} {
		ops, err := sp.Operations()
		if err != nil || len(ops) < 2 {
			t.Fatalf("%T: %d parts, %v", sp, len(ops), err)
		}
		n := 0
		for _, op := range ops {
			if err := op.Validate(); err != nil {
				t.Errorf("%T part: %v", sp, err)
			}
			n += len(op.Attributes)
			if len(op.Relationships) == 1 {
				n += len(op.Relationships[0].RelationshipAttributes)
			}
		}
		if n != 95 {
			t.Errorf("%T: parts carry %d attributes, want 95", sp, n)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	p := tasks.Track{Identifiers: customerio.Identifiers{ID: "user-123"}, Event: customerio.Event{Name: "order_completed", ID: "01HZY8V4Q6W5M3K2J1N0P9R8S7", Data: map[string]any{"order_id": "ORD-1", "total": 59.98}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tasks.Encode(p, tasks.Meta{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	p := tasks.Track{Identifiers: customerio.Identifiers{ID: "user-123"}, Event: customerio.Event{Name: "order_completed", ID: "01HZY8V4Q6W5M3K2J1N0P9R8S7", Data: map[string]any{"order_id": "ORD-1", "total": 59.98}}}
	in, _ := tasks.Encode(p, tasks.Meta{Workspace: "eu"})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tasks.Decode(tasks.TypeTrack, in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCDPKeepsSegmentFields: the CDP payload types keep the fields
// customerio.PipelinesMessage does not name through Decode, Encode and the
// conversion the worker makes, and that message sends them.
func TestCDPKeepsSegmentFields(t *testing.T) {
	const in = `{"userId":"u1","event":"Signed Up","groupId":"g1","previousId":"p1",` +
		`"sentAt":"2026-01-02T03:04:06Z","channel":"server","version":2,"originalTimestamp":"2026-01-02T03:04:04Z"}`
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sent = append(sent, string(b))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := customerio.New(customerio.Config{PipelinesWriteKey: "k", PipelinesURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var plain customerio.PipelinesMessage
	if err := json.Unmarshal([]byte(in), &plain); err != nil {
		t.Fatal(err)
	}
	wantJSON := string(mustJSON(plain))
	for _, tc := range []struct {
		typ  string
		call customerio.PipelinesCall
		msg  func(tasks.Payload) customerio.PipelinesMessage
	}{
		{tasks.TypeCDPIdentify, customerio.CallIdentify, func(p tasks.Payload) customerio.PipelinesMessage {
			return customerio.PipelinesMessage(*p.(*tasks.CDPIdentify))
		}},
		{tasks.TypeCDPTrack, customerio.CallTrack, func(p tasks.Payload) customerio.PipelinesMessage {
			return customerio.PipelinesMessage(*p.(*tasks.CDPTrack))
		}},
		{tasks.TypeCDPPage, customerio.CallPage, func(p tasks.Payload) customerio.PipelinesMessage {
			return customerio.PipelinesMessage(*p.(*tasks.CDPPage))
		}},
		{tasks.TypeCDPScreen, customerio.CallScreen, func(p tasks.Payload) customerio.PipelinesMessage {
			return customerio.PipelinesMessage(*p.(*tasks.CDPScreen))
		}},
		{tasks.TypeCDPGroup, customerio.CallGroup, func(p tasks.Payload) customerio.PipelinesMessage {
			return customerio.PipelinesMessage(*p.(*tasks.CDPGroup))
		}},
		{tasks.TypeCDPAlias, customerio.CallAlias, func(p tasks.Payload) customerio.PipelinesMessage {
			return customerio.PipelinesMessage(*p.(*tasks.CDPAlias))
		}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			b, err := tasks.EncodeRaw(json.RawMessage(in), tasks.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			_, p, err := tasks.Decode(tc.typ, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			// The payload type encodes exactly like PipelinesMessage.
			if got := string(mustJSON(p)); got != wantJSON {
				t.Errorf("payload JSON =\n%s\nwant\n%s", got, wantJSON)
			}
			m := tc.msg(p)
			if string(m.Extra["sentAt"]) != `"2026-01-02T03:04:06Z"` || string(m.Extra["channel"]) != `"server"` {
				t.Fatalf("converted message lost extra fields: %+v", m.Extra)
			}
			if err := c.Pipelines(context.Background(), tc.call, m); err != nil {
				t.Fatal(err)
			}
			if last := sent[len(sent)-1]; last != wantJSON {
				t.Errorf("sent\n%s\nwant\n%s", last, wantJSON)
			}
			// Round trip through Encode.
			eb, err := tasks.Encode(p, tasks.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if env, _, err := tasks.Decode(tc.typ, eb); err != nil || string(env.Payload) != wantJSON {
				t.Errorf("Encode payload = %s, %v", env.Payload, err)
			}
		})
	}

	// Without extra fields the JSON is the struct's, as before.
	b, _ := json.Marshal(tasks.CDPTrack{UserID: "u", Event: "e", Properties: map[string]any{"a": 1}})
	if want := `{"userId":"u","event":"e","properties":{"a":1}}`; string(b) != want {
		t.Errorf("CDPTrack JSON = %s, want %s", b, want)
	}
}
