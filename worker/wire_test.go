package worker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestIdentifySpecialAttributesBothModes: an identify's "_timestamp"
// (v1's back-dating) and "cio_relationships" mean the same whether the
// task goes out through Track v1 or in a v2 batch: in v1 they stay in the
// body as written; in v2 they become the operation's timestamp and
// cio_relationships, never attributes. The sandbox stores the back-dated
// time and the relationship the same way in both. An identify that deletes
// relationships is sent through v1 even with batching on.
func TestIdentifySpecialAttributesBothModes(t *testing.T) {
	t.Parallel()
	const ts = 1700000000
	for _, mode := range []string{"v1", "batched"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Batching.Off = mode == "v1" })
			ctx := context.Background()
			rel := map[string]any{"action": "add_relationships", "relationships": []any{
				map[string]any{"identifiers": map[string]any{"object_type_id": "1", "object_id": "acme"}, "relationship_attributes": map[string]any{"role": "admin"}},
			}}
			r, err := h.prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "ada"},
				Attributes: map[string]any{"plan": "pro", "_timestamp": ts, "cio_relationships": rel}})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "identify delivered", func() bool { return h.done(r.TaskID) })

			p, ok := h.sb.Person("ada")
			if !ok {
				t.Fatal("no person")
			}
			if _, has := p.Attributes["_timestamp"]; has || p.Attributes["plan"] != "pro" {
				t.Errorf("attributes %v: want plan and no _timestamp", p.Attributes)
			}
			if !p.UpdatedAt.Equal(time.Unix(ts, 0)) || !p.CreatedAt.Equal(time.Unix(ts, 0)) {
				t.Errorf("created %s updated %s, want both %s", p.CreatedAt, p.UpdatedAt, time.Unix(ts, 0).UTC())
			}
			if rels := h.sb.Relationships("ada"); len(rels) != 1 || rels[0].ObjectID != "acme" || rels[0].Attributes["role"] != "admin" {
				t.Errorf("relationships %+v, want ada → acme (role admin)", rels)
			}

			// The exact body sent.
			if mode == "v1" {
				reqs := requestsTo(h.sb, sandbox.GroupTrack, "/api/v1/customers/ada")
				if len(reqs) != 1 {
					t.Fatalf("%d v1 requests", len(reqs))
				}
				want := `{"_timestamp":1700000000,"cio_relationships":{"action":"add_relationships","relationships":[{"identifiers":{"object_id":"acme","object_type_id":"1"},"relationship_attributes":{"role":"admin"}}]},"plan":"pro"}`
				if got := reqs[0].Body; got != want {
					t.Errorf("v1 body\n got  %s\n want %s", got, want)
				}
			} else {
				reqs := requestsTo(h.sb, sandbox.GroupTrack, "/api/v2/batch")
				if len(reqs) != 1 {
					t.Fatalf("%d batch requests", len(reqs))
				}
				want := `{"batch":[{"type":"person","action":"identify","identifiers":{"id":"ada"},"timestamp":1700000000,"attributes":{"plan":"pro"},"cio_relationships":[{"identifiers":{"object_type_id":"1","object_id":"acme"},"relationship_attributes":{"role":"admin"}}]}]}`
				if got := reqs[0].Body; got != want {
					t.Errorf("v2 body\n got  %s\n want %s", got, want)
				}
			}

			// Deleting the relationship through an identify: v1 in both modes.
			del := map[string]any{"action": "delete_relationships", "relationships": rel["relationships"]}
			r, err = h.prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "ada"},
				Attributes: map[string]any{"cio_relationships": del}})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "delete delivered", func() bool { return h.done(r.TaskID) })
			if rels := h.sb.Relationships("ada"); len(rels) != 0 {
				t.Errorf("relationships after delete: %+v", rels)
			}
			if p, _ := h.sb.Person("ada"); p.Attributes["cio_relationships"] != nil {
				t.Errorf("cio_relationships stored as an attribute: %v", p.Attributes)
			}
		})
	}
}

// TestIdentifyTimestampRefusedWhenNotSeconds: a _timestamp that is not a
// whole number of seconds is refused at enqueue, naming the field.
func TestIdentifyTimestampRefusedWhenNotSeconds(t *testing.T) {
	for _, v := range []any{"yesterday", 1.5, -1} {
		err := tasks.Identify{Identifiers: customerio.Identifiers{ID: "ada"}, Attributes: map[string]any{"_timestamp": v}}.Validate()
		ve, ok := err.(*customerio.ValidationError)
		if !ok || ve.Field != "attributes._timestamp" {
			b, _ := json.Marshal(v)
			t.Errorf("_timestamp %s: %v", b, err)
		}
	}
}

// TestFormAndMetricTasks: cio:form_submit and cio:metric are delivered
// through Track v1 (batching on or off: neither has a v2 operation that
// takes every metric) with the exact body Customer.io documents; a metric
// Customer.io does not know is refused at enqueue, naming the field.
func TestFormAndMetricTasks(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"v1", "batched"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Batching.Off = mode == "v1" })
			ctx := context.Background()
			f, err := h.prod.SubmitForm(ctx, tasks.FormSubmit{FormID: "newsletter", Data: map[string]string{"email": "ada@example.com", "plan": "pro"}})
			if err != nil {
				t.Fatal(err)
			}
			m, err := h.prod.ReportMetric(ctx, tasks.Metric{DeliveryID: "dlv-1", Metric: "opened", Timestamp: 1767222000})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "both delivered", func() bool { return h.done(f.TaskID) && h.done(m.TaskID) })

			forms := h.sb.Forms()
			if len(forms) != 1 || forms[0].FormID != "newsletter" || forms[0].Data["plan"] != "pro" {
				t.Errorf("forms %+v", forms)
			}
			ev := h.sb.DeliveryEvents()
			if len(ev) != 1 || ev[0].Source != "metrics" || ev[0].DeliveryID != "dlv-1" || ev[0].Metric != "opened" {
				t.Errorf("delivery events %+v", ev)
			}
			for path, want := range map[string]string{
				"/api/v1/forms/newsletter/submit": `{"data":{"email":"ada@example.com","plan":"pro"}}`,
				"/api/v1/metrics":                 `{"delivery_id":"dlv-1","metric":"opened","timestamp":1767222000}`,
			} {
				reqs := requestsTo(h.sb, sandbox.GroupTrack, path)
				if len(reqs) != 1 || reqs[0].Body != want {
					t.Errorf("%s: %d requests %+v, want one with %s", path, len(reqs), reqs, want)
				}
			}

			_, err = h.prod.ReportMetric(ctx, tasks.Metric{DeliveryID: "dlv-1", Metric: "read"})
			var ve *customerio.ValidationError
			if !errors.As(err, &ve) || ve.Field != "metric" {
				t.Errorf("unknown metric: %v", err)
			}
		})
	}
}

// TestWhatsAppTrackedBothModes: "tracked" on a WhatsApp send (in
// Customer.io's sendWhatsApp schema, sent by the Ruby SDK) is accepted at
// enqueue, as a raw payload too, and reaches Customer.io as written, with
// batching on or off (sends are never batched).
func TestWhatsAppTrackedBothModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"v1", "batched"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Batching.Off = mode == "v1" })
			ctx := context.Background()
			r, err := h.prod.EnqueueRaw(ctx, tasks.TypeSendWhatsApp,
				json.RawMessage(`{"transactional_message_id":"order_update","identifiers":{"id":"ada"},"to":"+15555550100","tracked":false}`))
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "send delivered", func() bool { return h.done(r.TaskID) })
			reqs := requestsTo(h.sb, sandbox.GroupApp, "/v1/send/whatsapp")
			want := `{"transactional_message_id":"order_update","identifiers":{"id":"ada"},"to":"+15555550100","tracked":false}`
			if len(reqs) != 1 || reqs[0].Body != want {
				t.Fatalf("%d requests %+v, want one with %s", len(reqs), reqs, want)
			}
			d := h.sb.Deliveries()
			if len(d) != 1 || d[0].Channel != "whatsapp" || d[0].Request["tracked"] != false {
				t.Errorf("deliveries %+v", d)
			}
		})
	}
}

// wireStep enqueues one task, waits until it is delivered and checks the
// one Track v2 request it made: its operations' exact JSON, sent as one
// /api/v2/entity request each without batching, or in one /api/v2/batch
// with it.
func wireStep(t *testing.T, h *harness, batched bool, enqueue func() (string, error), ops ...string) {
	t.Helper()
	path := "/api/v2/entity"
	if batched {
		path = "/api/v2/batch"
	}
	before := len(requestsTo(h.sb, sandbox.GroupTrack, path))
	id, err := enqueue()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "task delivered", func() bool { return h.done(id) })
	reqs := requestsTo(h.sb, sandbox.GroupTrack, path)[before:]
	var want []string
	if batched {
		b := `{"batch":[`
		for i, op := range ops {
			if i > 0 {
				b += ","
			}
			b += op
		}
		want = []string{b + "]}"}
	} else {
		want = ops
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests to %s, want %d: %+v", len(reqs), path, len(want), reqs)
	}
	for i := range want {
		if reqs[i].Body != want[i] || reqs[i].Status != 200 {
			t.Errorf("request %d (status %d)\n got  %s\n want %s", i, reqs[i].Status, reqs[i].Body, want[i])
		}
	}
}

func receipt(r producer.Receipt, err error) (string, error) { return r.TaskID, err }

// TestPhoneIdentifierBothModes: a person named by identifiers.phone
// (Track v2 only) is identified, tracked, given a device, related to an
// object and deleted through Track v2 with batching on (in /api/v2/batch)
// and off (one /api/v2/entity request each), never through Track v1, whose
// path would read the phone number as an id. The sandbox keeps them as one
// person with that phone. Phone is refused where Customer.io takes none,
// naming identifiers.phone.
func TestPhoneIdentifierBothModes(t *testing.T) {
	t.Parallel()
	const phone = "+15555550100"
	ph := `"identifiers":{"phone":"` + phone + `"}`
	for _, mode := range []string{"v1", "batched"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Batching.Off = mode == "v1" })
			h.dumpOnFailure(t)
			ctx := context.Background()
			ids := customerio.Identifiers{Phone: phone}
			batched := mode == "batched"
			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.Identify(ctx, tasks.Identify{Identifiers: ids, Attributes: map[string]any{"plan": "pro", "_timestamp": 1767222000}}))
			}, `{"type":"person","action":"identify",`+ph+`,"timestamp":1767222000,"attributes":{"plan":"pro"}}`)
			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.Track(ctx, tasks.Track{Identifiers: ids,
					Event: customerio.Event{Name: "signed_up", ID: "01HZY8V4Q6W5M3K2J1N0P9R8S7", Timestamp: 1767222000, Data: map[string]any{"plan": "pro"}}}))
			}, `{"type":"person","action":"event",`+ph+`,"name":"signed_up","id":"01HZY8V4Q6W5M3K2J1N0P9R8S7","timestamp":1767222000,"attributes":{"plan":"pro"}}`)
			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.AddDevice(ctx, tasks.DeviceAdd{Identifiers: ids, Device: customerio.Device{ID: "tok", Platform: "ios", LastUsed: 1767222000}}))
			}, `{"type":"person","action":"add_device",`+ph+`,"device":{"token":"tok","platform":"ios","last_used":1767222000}}`)
			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.Relate(ctx, tasks.Relate{Identifiers: ids, ObjectTypeID: "1", ObjectID: "acme", RelationshipAttributes: map[string]any{"role": "admin"}}))
			}, `{"type":"person","action":"add_relationships",`+ph+`,"cio_relationships":[{"identifiers":{"object_type_id":"1","object_id":"acme"},"relationship_attributes":{"role":"admin"}}]}`)

			p, ok := h.sb.PersonBy("phone", phone)
			if !ok || p.ID != "" || p.Attributes["plan"] != "pro" || len(p.Events) != 1 || len(p.Devices) != 1 {
				t.Fatalf("person by phone: %+v %v", p, ok)
			}
			if !p.CreatedAt.Equal(time.Unix(1767222000, 0)) {
				t.Errorf("created %s, want the identify's _timestamp", p.CreatedAt)
			}
			if rels := h.sb.Relationships("cio_" + p.CioID); len(rels) != 1 || rels[0].ObjectID != "acme" {
				t.Errorf("relationships %+v", rels)
			}
			if n := len(h.sb.People()); n != 1 {
				t.Errorf("%d people, want the one named by phone", n)
			}

			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.Delete(ctx, tasks.Delete{Identifiers: ids}))
			}, `{"type":"person","action":"delete",`+ph+`}`)
			if _, ok := h.sb.PersonBy("phone", phone); ok {
				t.Error("deleted by phone, still there")
			}
			if v1 := requestsTo(h.sb, sandbox.GroupTrack, "/api/v1/"); len(v1) != 0 {
				t.Errorf("Track v1 requests: %+v", v1)
			}

			// Where Customer.io takes no phone: refused at enqueue, naming it.
			for name, enq := range map[string]func() error{
				"primary.phone": func() error {
					_, err := h.prod.MergePeople(ctx, tasks.MergePeople{Primary: ids, Secondary: customerio.Identifiers{ID: "ada"}})
					return err
				},
				"identifiers.phone": func() error {
					_, err := h.prod.SendSMS(ctx, tasks.SendSMS{SendOptions: customerio.SendOptions{TransactionalMessageID: "3", Identifiers: &ids}, To: phone})
					return err
				},
			} {
				var ve *customerio.ValidationError
				if err := enq(); !errors.As(err, &ve) || ve.Field != name {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

// TestCioObjectIDBothModes: an object named by cio_object_id (Track v2's
// other object identifier) is updated, related, unrelated and deleted with
// batching on and off, with the exact operations Customer.io documents; a
// v1-style identify's cio_relationships may name one too.
func TestCioObjectIDBothModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"v1", "batched"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Batching.Off = mode == "v1" })
			h.dumpOnFailure(t)
			ctx := context.Background()
			batched := mode == "batched"
			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: map[string]any{"plan": "pro"}}))
			}, `{"type":"object","action":"identify","identifiers":{"object_type_id":"1","object_id":"acme"},"attributes":{"plan":"pro"}}`)
			o, ok := h.sb.Object("1", "acme")
			if !ok || o.CioObjectID == "" {
				t.Fatalf("object %+v %v", o, ok)
			}
			cio := o.CioObjectID
			byCio := `"identifiers":{"cio_object_id":"` + cio + `"}`

			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.UpsertObject(ctx, tasks.ObjectUpsert{CioObjectID: cio, Attributes: map[string]any{"seats": 5}}))
			}, `{"type":"object","action":"identify",`+byCio+`,"attributes":{"seats":5}}`)
			if o, _ := h.sb.Object("1", "acme"); o.Attributes["plan"] != "pro" || o.Attributes["seats"] != int64(5) {
				t.Errorf("object after update by cio_object_id: %+v", o)
			}
			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.Relate(ctx, tasks.Relate{Identifiers: customerio.Identifiers{ID: "ada"}, CioObjectID: cio, RelationshipAttributes: map[string]any{"role": "admin"}}))
			}, `{"type":"person","action":"add_relationships","identifiers":{"id":"ada"},"cio_relationships":[{`+byCio+`,"relationship_attributes":{"role":"admin"}}]}`)
			if rels := h.sb.Relationships("ada"); len(rels) != 1 || rels[0].ObjectID != "acme" || rels[0].Attributes["role"] != "admin" {
				t.Errorf("ada's relationships %+v", rels)
			}
			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.Unrelate(ctx, tasks.Unrelate{Identifiers: customerio.Identifiers{ID: "ada"}, CioObjectID: cio}))
			}, `{"type":"person","action":"delete_relationships","identifiers":{"id":"ada"},"cio_relationships":[{`+byCio+`}]}`)
			if rels := h.sb.Relationships("ada"); len(rels) != 0 {
				t.Errorf("ada's relationships after unrelate %+v", rels)
			}

			// A v1 identify's cio_relationships naming the object by cio_object_id.
			rel := map[string]any{"action": "add_relationships", "relationships": []any{map[string]any{"identifiers": map[string]any{"cio_object_id": cio}}}}
			r, err := h.prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "bob"}, Attributes: map[string]any{"cio_relationships": rel}})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "identify delivered", func() bool { return h.done(r.TaskID) })
			if batched {
				reqs := requestsTo(h.sb, sandbox.GroupTrack, "/api/v2/batch")
				want := `{"batch":[{"type":"person","action":"identify","identifiers":{"id":"bob"},"cio_relationships":[{` + byCio + `}]}]}`
				if got := reqs[len(reqs)-1].Body; got != want {
					t.Errorf("batched identify\n got  %s\n want %s", got, want)
				}
			} else {
				reqs := requestsTo(h.sb, sandbox.GroupTrack, "/api/v1/customers/bob")
				want := `{"cio_relationships":{"action":"add_relationships","relationships":[{"identifiers":{"cio_object_id":"` + cio + `"}}]}}`
				if len(reqs) != 1 || reqs[0].Body != want {
					t.Errorf("v1 identify: %+v, want one with %s", reqs, want)
				}
			}
			if rels := h.sb.Relationships("bob"); len(rels) != 1 || rels[0].ObjectID != "acme" {
				t.Errorf("bob's relationships %+v", rels)
			}

			wireStep(t, h, batched, func() (string, error) {
				return receipt(h.prod.DeleteObject(ctx, tasks.ObjectDelete{CioObjectID: cio}))
			}, `{"type":"object","action":"delete",`+byCio+`}`)
			if _, ok := h.sb.Object("1", "acme"); ok {
				t.Error("deleted by cio_object_id, still there")
			}
		})
	}
}
