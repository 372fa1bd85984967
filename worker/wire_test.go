package worker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
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
