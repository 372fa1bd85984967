package contracts

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

// v is a Variable for the tables: "r" required, "o" optional; a type
// after a colon ("o:array").
func v(spec string) Variable {
	opt, typ, _ := strings.Cut(spec, ":")
	if typ == "" {
		typ = TypeAny
	}
	return Variable{Type: typ, Optional: opt == "o"}
}

func TestTemplateVariables(t *testing.T) {
	cases := []struct {
		name  string
		parts []string
		want  map[string]string
	}{
		{"output, filters, default", []string{
			`Hi {{ customer.first_name | default: "there" }}, reset: {{ trigger.reset_link }}`,
			`Expires in {{ trigger.expiry_hours | default: 24 }} hours ({{ trigger.plan | upcase }})`,
		}, map[string]string{"reset_link": "r", "expiry_hours": "o", "plan": "r"}},
		{"nested keys", []string{
			`Order {{ trigger.order.id }} for {{ trigger.order.customer.name }} {{ trigger["gift note"] }}`,
		}, map[string]string{"order.id": "r", "order.customer.name": "r", "gift note": "r"}},
		{"loops", []string{
			`{% for item in trigger.items limit: trigger.max %}{{ item.quantity }} x {{ item.name }} {{ item.price | money }}` +
				`{% for v in item.variants %}{{ v.sku }}{% endfor %}{% else %}{{ trigger.empty_text }}{% endfor %}` +
				`Total: {{ trigger.total }}`,
		}, map[string]string{"items": "o:array", "items[].quantity": "r", "items[].name": "r", "items[].price": "r",
			"items[].variants": "o:array", "items[].variants[].sku": "r", "max": "o", "empty_text": "o", "total": "r"}},
		{"conditionals", []string{
			`{% if trigger.coupon %}Use {{ trigger.coupon }}{% elsif trigger.points > 100 %}{{ trigger.points }} points{% else %}{{ trigger.fallback }}{% endif %}` +
				`{% unless trigger.gift %}{{ trigger.price }}{% endunless %}` +
				`{% case trigger.plan %}{% when "pro" %}{{ trigger.pro_link }}{% endcase %}{{ trigger.plan }}`,
		}, map[string]string{"coupon": "o", "points": "o", "fallback": "o", "gift": "o", "price": "o", "plan": "r", "pro_link": "o"}},
		{"assign and capture", []string{
			`{% assign o = trigger.order %}{{ o.id }}{% assign n = trigger.nick | default: "friend" %}{{ n }}` +
				`{% capture greeting %}Hello {{ trigger.name }}{% endcapture %}{{ greeting }}` +
				`{% assign total = trigger.price | times: trigger.qty %}{{ total }}`,
		}, map[string]string{"order.id": "r", "nick": "o", "name": "r", "price": "r", "qty": "o"}},
		{"indexes, ranges, other objects", []string{
			`{{ trigger.items[0].name }} {{ trigger.items.size }} {{ trigger.tags.first }}` +
				`{% for i in (1..trigger.count) %}{{ i }}{% endfor %}{{ event.name }}{{ customer.email }}{{ forloop.index }}` +
				`{% comment %}{{ trigger.commented }}{% endcomment %}{% raw %}{{ trigger.raw }}{% endraw %}` +
				`{% unsubscribe_url %}{{ trigger.when | date: "%B %-d, %Y" }}`,
		}, map[string]string{"items": "o", "tags": "o", "count": "o", "when": "r"}},
		{"required anywhere wins, array anywhere wins", []string{
			`{% if trigger.note %}{{ trigger.note }}{% endif %}`, `{{ trigger.note }}`,
			`{% for x in trigger.list %}{% endfor %}`, `{{ trigger.list | join: ", " }}`,
		}, map[string]string{"note": "r", "list": "r:array"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var parts []Part
			for i, p := range c.parts {
				parts = append(parts, Part{Name: "part " + string(rune('a'+i)), Source: p})
			}
			got, err := TemplateVariables(parts...)
			if err != nil {
				t.Fatal(err)
			}
			g := map[string]Variable{}
			for k, x := range got {
				g[k] = Variable{Type: x.Type, Optional: x.Optional}
			}
			w := map[string]Variable{}
			for k, spec := range c.want {
				w[k] = v(spec)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got  %v\nwant %v", sorted(g), sorted(w))
			}
		})
	}
}

func sorted(m map[string]Variable) []string {
	var out []string
	for k, x := range m {
		s := "r"
		if x.Optional {
			s = "o"
		}
		out = append(out, k+"="+s+":"+x.Type)
	}
	sort.Strings(out)
	return out
}

func TestTemplateVariablesParseError(t *testing.T) {
	_, err := TemplateVariables(Part{Name: "body (fr)", Source: "line one\n{% if trigger.a %}never closed"})
	if err == nil || !strings.Contains(err.Error(), "body (fr)") {
		t.Fatalf("err = %v, want a parse error naming the part", err)
	}
}
