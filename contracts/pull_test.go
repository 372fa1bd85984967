package contracts_test

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
)

// receipt is a real-looking template: a loop with a nested loop, a
// conditional, default filters, an assign, filters with arguments, and a
// French translation that uses one more variable.
var receipt = sandbox.TransactionalMessage{ID: 31, Name: "receipt", Contents: []sandbox.TransactionalContent{
	{ID: 1, Type: "email", Subject: `Your receipt {{ trigger.order.number }}`,
		PreheaderText: `{{ trigger.items.size }} items, {{ trigger.order.total | money }}`,
		Body: `{% assign shipping = trigger.shipping %}<h1>Hi {{ customer.first_name | default: "there" }}</h1>
<table>{% for item in trigger.items %}
  <tr><td>{{ item.name | escape }}</td><td>{{ item.quantity }}</td><td>{{ item.price | times: 1.0 }}</td>
  {% for o in item.options %}<td>{{ o.label }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if trigger.coupon %}<p>Coupon {{ trigger.coupon.code }} saved you {{ trigger.coupon.amount }}</p>{% endif %}
<p>Ships to {{ shipping.city }} by {{ trigger.delivery_date | date: "%B %-d" | default: "soon" }}</p>
{% unless trigger.gift %}<p>Invoice: {{ trigger.invoice_url }}</p>{% endunless %}`},
	{ID: 2, Type: "email", Language: "fr", Subject: `Votre reçu {{ trigger.order.number }}`,
		Body: `{{ trigger.greeting_fr }}`},
}}

func TestPullFromSandbox(t *testing.T) {
	msgs := append(sandbox.DefaultTransactionalMessages(), receipt)
	r := sandbox.NewTestServer(t, sandbox.Config{TransactionalMessages: msgs})
	c, err := customerio.New(customerio.Config{AppAPIKey: sandbox.DefaultAppAPIKey, AppURL: r.URL + sandbox.AppPrefix})
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := contracts.Pull(context.Background(), c, contracts.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]map[string]string{}
	for _, p := range pulled {
		if p.Problem != "" {
			t.Fatalf("message %d: %s", p.Message.ID, p.Problem)
		}
		if p.Message.Channel != "email" || p.Message.Source != contracts.SourcePulled {
			t.Errorf("message %d: channel %q source %q", p.Message.ID, p.Message.Channel, p.Message.Source)
		}
		vs := map[string]string{}
		for k, v := range p.Message.Variables {
			s := "required"
			if v.Optional {
				s = "optional"
			}
			vs[k] = s + " " + v.Type
		}
		got[p.Message.ID] = vs
	}
	want := map[int64]map[string]string{
		1: {"reset_link": "required any", "expiry_hours": "optional any"},
		2: {"order_id": "required any", "total": "required any", "items": "optional array",
			"items[].quantity": "required any", "items[].name": "required any", "items[].price": "required any",
			"coupon": "optional any"},
		31: {"order.number": "required any", "order.total": "required any", "items": "optional array",
			"items[].name": "required any", "items[].quantity": "required any", "items[].price": "required any",
			"items[].options": "optional array", "items[].options[].label": "required any",
			"coupon": "optional any", "coupon.code": "optional any", "coupon.amount": "optional any",
			"shipping.city": "required any", "delivery_date": "optional any",
			"gift": "optional any", "invoice_url": "optional any", "greeting_fr": "required any"},
	}
	if !reflect.DeepEqual(got, want) {
		for id := range want {
			if !reflect.DeepEqual(got[id], want[id]) {
				t.Errorf("message %d:\n got  %v\n want %v", id, keys(got[id]), keys(want[id]))
			}
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// TestPullRateLimited: a pull faster than the App API's rate limit waits
// out each 429's Retry-After and still reads every message.
func TestPullRateLimited(t *testing.T) {
	var msgs []sandbox.TransactionalMessage
	for i := int64(1); i <= 6; i++ {
		msgs = append(msgs, sandbox.TransactionalMessage{ID: i, Name: "m", Contents: []sandbox.TransactionalContent{{Type: "push", Body: "{{ trigger.x }}"}}})
	}
	r := sandbox.NewTestServer(t, sandbox.Config{TransactionalMessages: msgs, AppRateLimit: 4})
	c, _ := customerio.New(customerio.Config{AppAPIKey: sandbox.DefaultAppAPIKey, AppURL: r.URL + sandbox.AppPrefix})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pulled, err := contracts.Pull(ctx, c, contracts.PullOptions{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(pulled) != 6 || pulled[5].Message.Variables["x"] == nil || pulled[5].Message.Channel != "push" {
		t.Fatalf("pulled %+v", pulled)
	}
	throttled := 0
	for _, q := range r.Requests(sandbox.RequestFilter{}) {
		if q.Status == 429 {
			throttled++
		}
	}
	if throttled == 0 {
		t.Error("the sandbox never throttled: the test proves nothing")
	}
}

// TestMerge: pull never changes attribute rules or messages written by
// hand, keeps a pulled message's trigger and declared types, and removes
// pulled messages Customer.io no longer has.
func TestMerge(t *testing.T) {
	f, err := contracts.Parse([]byte(`{"workspaces":{"default":{
	  "transactional":{"strict_ids":true,"messages":[
	    {"id":1,"name":"password_reset","trigger":"reset","source":"pulled","variables":{"reset_link":{"type":"string"},"old":{}}},
	    {"id":2,"name":"order_confirmation","variables":{"by_hand":{}}},
	    {"id":9,"name":"gone","source":"pulled"}]},
	  "attributes":{"people":{"attributes":{"total_revenue":{"type":"number"}}}},
	  "events":{"timestamp_policy":"coerce"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	pulled := []contracts.Pulled{
		{Message: &contracts.Message{ID: 1, Name: "password_reset", Channel: "email", Source: contracts.SourcePulled,
			Variables: map[string]*contracts.Variable{"reset_link": {Type: "any"}, "expiry_hours": {Type: "any", Optional: true}}}},
		{Message: &contracts.Message{ID: 2, Name: "order_confirmation", Source: contracts.SourcePulled, Variables: map[string]*contracts.Variable{"x": {}}}},
		{Message: &contracts.Message{ID: 3, Name: "new", Source: contracts.SourcePulled}},
	}
	rep := contracts.Merge(f, "default", pulled)
	if !reflect.DeepEqual(rep, contracts.MergeReport{Added: []string{`3 "new"`}, Updated: []string{`1 "password_reset"`}, Removed: []string{`9 "gone"`}, KeptByHand: []string{`2 "order_confirmation"`}}) {
		t.Errorf("report %+v", rep)
	}
	w := f.Workspaces["default"]
	m := w.Transactional.Messages
	if len(m) != 3 || m[0].ID != 1 || m[1].ID != 2 || m[2].ID != 3 {
		t.Fatalf("messages %+v", m)
	}
	if m[0].Trigger != "reset" || m[0].Variables["reset_link"].Type != "string" || m[0].Variables["old"] != nil || m[0].Variables["expiry_hours"] == nil {
		t.Errorf("pulled message 1: %+v", m[0])
	}
	if m[1].Variables["by_hand"] == nil || m[1].Variables["x"] != nil {
		t.Errorf("hand-written message 2 changed: %+v", m[1])
	}
	if !w.Transactional.StrictIDs || w.Attributes.People.Attributes["total_revenue"].Type != "number" || w.Events.TimestampPolicy != "coerce" {
		t.Errorf("hand-written rules changed: %+v", w)
	}
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contracts.Parse(b); err != nil {
		t.Errorf("the merged file does not load: %v\n%s", err, b)
	}
}
