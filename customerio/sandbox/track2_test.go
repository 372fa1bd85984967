package sandbox

import (
	"fmt"
	"strings"
	"testing"
)

func TestSuppress(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"email":"u1@x.com"}`), 200, `{}`)
	want(t, e.track("POST", "/api/v1/customers/u1/suppress", ""), 200, `{}`)
	if _, ok := e.r.Person("u1"); ok {
		t.Fatal("suppressed person still present")
	}
	// Accepted, ignored: by id and by the suppressed email.
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"a":1}`), 200, `{}`)
	want(t, e.track("PUT", "/api/v1/customers/other", `{"email":"U1@x.com"}`), 200, `{}`)
	want(t, e.track("POST", "/api/v1/customers/u1/events", `{"name":"e"}`), 200, `{}`)
	if n := len(e.r.People()); n != 0 {
		t.Fatalf("suppressed identifiers re-added: %+v", e.r.People())
	}
	want(t, e.track("POST", "/api/v1/customers/u1/unsuppress", "{}"), 200, `{}`)
	if len(e.r.Suppressions()) != 0 {
		t.Fatal("unsuppress left the email blocked")
	}
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"a":1}`), 200, `{}`)
	if p, ok := e.r.Person("u1"); !ok || p.Attributes["a"] != int64(1) || p.Email != "" {
		t.Fatalf("after unsuppress: %+v %v (old profile must not come back)", p, ok)
	}
	want(t, e.track("DELETE", "/api/v1/customers/u1", ""), 200, `{}`)
	if _, ok := e.r.Person("u1"); ok {
		t.Fatal("delete kept the person")
	}
}

func TestMergeCustomers(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("PUT", "/api/v1/customers/p", `{"a":"keep","b":""}`), 200, `{}`)
	want(t, e.track("PUT", "/api/v1/customers/s", `{"email":"s@x.com","a":"lose","b":"fill","c":3}`), 200, `{}`)
	want(t, e.track("POST", "/api/v1/customers/s/events", `{"name":"se"}`), 200, `{}`)
	want(t, e.track("PUT", "/api/v1/customers/s/devices", `{"device":{"id":"t1","platform":"android"}}`), 200, `{}`)
	want(t, e.track("POST", "/api/v1/segments/3/add_customers", `{"ids":["s"]}`), 200, `{}`)
	for _, body := range []string{
		`{"primary":{"id":"p","email":"x"},"secondary":{"id":"s"}}`,
		`{"primary":{},"secondary":{"id":"s"}}`,
		`{"primary":{"id":"p"}}`,
		`{"primary":{"phone":"p"},"secondary":{"id":"s"}}`,
	} {
		r := e.track("POST", "/api/v1/merge_customers", body)
		if r.status != 400 || !strings.Contains(r.body, `"meta":{"error":`) {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
	want(t, e.track("POST", "/api/v1/merge_customers", `{"primary":{"id":"p"},"secondary":{"email":"s@x.com"}}`), 200, `{}`)
	if _, ok := e.r.Person("s"); ok {
		t.Fatal("secondary not deleted")
	}
	p, _ := e.r.Person("p")
	if p.Attributes["a"] != "keep" || p.Attributes["b"] != "fill" || p.Attributes["c"] != int64(3) ||
		len(p.Events) != 1 || len(p.Devices) != 1 || len(p.Segments) != 1 || p.Segments[0] != 3 || p.Email != "s@x.com" {
		t.Fatalf("merged %+v", p)
	}
	if m := e.r.Merges(); len(m) != 1 || !m[0].Applied {
		t.Fatalf("merges %+v", m)
	}
}

func TestSegments(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"email":"u1@x.com"}`), 200, `{}`)
	r := e.track("POST", "/api/v1/segments/99/add_customers", `{"ids":["u1"]}`)
	want(t, r, 404, "Segment not found")
	ids := make([]string, 1001)
	for i := range ids {
		ids[i] = fmt.Sprint("id", i)
	}
	lim := `{"meta":{"error":"ids must contain between 1 and 1000 identifiers"}}`
	want(t, e.track("POST", "/api/v1/segments/1/add_customers", mustJSON(map[string]any{"ids": ids})), 400, lim)
	want(t, e.track("POST", "/api/v1/segments/1/add_customers", `{"ids":[]}`), 400, lim)
	want(t, e.track("POST", "/api/v1/segments/1/add_customers", mustJSON(map[string]any{"ids": ids[:1000]})), 200, `{}`)
	want(t, e.track("POST", "/api/v1/segments/1/add_customers?id_type=email", `{"ids":["U1@x.com"]}`), 200, `{}`)
	want(t, e.track("POST", "/api/v1/segments/1/add_customers?id_type=phone", `{"ids":["u1"]}`), 400, "")
	m, ok := e.r.SegmentMembers(1)
	if !ok || len(m) != 1 || m[0].ID != "u1" {
		t.Fatalf("members %+v", m)
	}
	p, _ := e.r.Person("u1")
	want(t, e.track("POST", "/api/v1/segments/1/remove_customers?id_type=cio_id", `{"ids":["`+p.CioID+`"]}`), 200, `{}`)
	if m, _ := e.r.SegmentMembers(1); len(m) != 0 {
		t.Fatalf("not removed: %+v", m)
	}
	// Segments created through the Go API or control API.
	e.r.AddSegment(99)
	want(t, e.track("POST", "/api/v1/segments/99/add_customers", `{"ids":["u1"]}`), 200, `{}`)
}

func TestFormsRegionAndV1Misc(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("POST", "/api/v1/forms/f1/submit", `{"data":{"email":"f@x.com","name":"Ann","form_name":"x"}}`), 204, "")
	p, ok := e.r.Person("f@x.com")
	if !ok || p.Attributes["name"] != "Ann" || p.Attributes["form_name"] != nil {
		t.Fatalf("form person %+v %v", p, ok)
	}
	for _, body := range []string{`{"data":{"email":"a@x","id":"1"}}`, `{"data":{"name":"x"}}`, `{"data":{"email":"a@x","n":1}}`, `{}`} {
		r := e.track("POST", "/api/v1/forms/f1/submit", body)
		if r.status != 400 || !strings.Contains(r.body, `{"meta":{"errors":[`) {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
	want(t, e.track("GET", "/api/v1/accounts/region", ""), 200, `{"environment_id":1,"region":"us","url":"https://track.customer.io"}`)
	want(t, e.call("GET", "/track/api/v1/accounts/region", basic("x", "y"), ""), 401, "")
	r := e.track("PUT", "/api/v1/customers/u1/devices", `{"device":{"platform":"ios"}}`)
	want(t, r, 400, `{"meta":{"errors":["device.id is required"]}}`)
	want(t, e.call("POST", "/track/unsubscribe/d1", "", "{}", "Content-Type", "text/plain"), 400, "")
	want(t, e.call("POST", "/track/api/v1/metrics", "", `{"delivery_id":"d1","metric":"exploded"}`), 400, "")
}

func TestV2(t *testing.T) {
	e := newEnv(t)
	ulid := "01HZY8J6E7W5S9Q3T2V1X0ABCD"
	batch := []any{
		map[string]any{"type": "person", "action": "identify", "identifiers": map[string]any{"id": "u1"}, "attributes": map[string]any{"plan": "pro"},
			"cio_relationships": []any{map[string]any{"identifiers": map[string]any{"object_type_id": "1", "object_id": "acme"}, "relationship_attributes": map[string]any{"role": "admin"}}}},
		map[string]any{"type": "person", "action": "identify", "identifiers": map[string]any{"id": "u2", "email": "x@y"}},
		map[string]any{"type": "person", "action": "event", "identifiers": map[string]any{"email": "new@x.com"}, "name": "signed_up", "id": ulid},
		map[string]any{"type": "person", "action": "fly", "identifiers": map[string]any{"id": "u1"}},
		map[string]any{"type": "object", "action": "identify", "identifiers": map[string]any{"object_type_id": "1", "object_id": "acme"}, "attributes": map[string]any{"name": "Acme"}},
		map[string]any{"type": "object", "action": "event", "identifiers": map[string]any{"object_type_id": "1", "object_id": "acme"}},
		map[string]any{"type": "delivery", "action": "event", "identifiers": map[string]any{"id": "d1"}, "name": "opened", "attributes": map[string]any{"device_token": "t"}},
		map[string]any{"type": "person", "action": "add_device", "identifiers": map[string]any{"id": "u1"}, "device": map[string]any{"token": "tk", "platform": "ios", "last_used": 1700000000}},
		map[string]any{"type": "person", "action": "event", "identifiers": map[string]any{"anonymous_id": "an1"}, "name": "anon"},
		map[string]any{"type": "person", "action": "merge", "primary": map[string]any{"id": "u1"}, "secondary": map[string]any{"email": "new@x.com"}},
		"not an object",
		map[string]any{"type": "person", "action": "page", "identifiers": map[string]any{"id": "u1"}, "name": "/home", "id": ulid}, // duplicate id: dropped
	}
	r := e.track("POST", "/api/v2/batch", mustJSON(map[string]any{"batch": batch}))
	want(t, r, 207, "")
	errs := r.json(t)["errors"].([]any)
	var idx []int
	for _, x := range errs {
		m := x.(map[string]any)
		if m["reason"] != "invalid" || m["message"] == "" {
			t.Fatalf("error item %+v", m)
		}
		idx = append(idx, int(m["batch_index"].(float64)))
	}
	if fmt.Sprint(idx) != "[1 3 5 10]" {
		t.Fatalf("batch indexes %v (%s)", idx, r.body)
	}
	p, ok := e.r.Person("u1")
	if !ok || p.Attributes["plan"] != "pro" || len(p.Devices) != 1 || len(p.Events) != 1 || p.Events[0].Name != "signed_up" || p.Email != "new@x.com" {
		t.Fatalf("u1 %+v", p)
	}
	if o, ok := e.r.Object("1", "acme"); !ok || o.Attributes["name"] != "Acme" {
		t.Fatalf("object %+v", o)
	}
	if rel := e.r.Relationships("u1"); len(rel) != 1 || rel[0].Attributes["role"] != "admin" {
		t.Fatalf("relationships %+v", rel)
	}
	if len(e.r.AnonymousEvents("an1")) != 1 || len(e.r.DeliveryEvents()) != 1 {
		t.Fatal("anonymous or delivery event missing")
	}
	// All valid → 200 {}; malformed → 400; too large → 400.
	ok1 := mustJSON(map[string]any{"batch": []any{map[string]any{"type": "person", "action": "delete", "identifiers": map[string]any{"id": "u1"}}}})
	want(t, e.track("POST", "/api/v2/batch", ok1), 200, `{}`)
	if _, ok := e.r.Person("u1"); ok {
		t.Fatal("v2 delete ignored")
	}
	r = e.track("POST", "/api/v2/batch", `{"batch":`)
	want(t, r, 400, "")
	if m := r.json(t)["errors"].([]any)[0].(map[string]any); m["message"] == nil || m["reason"] == nil {
		t.Fatalf("malformed body %s", r.body)
	}
	big := mustJSON(map[string]any{"batch": []any{map[string]any{"pad": strings.Repeat("x", MaxBatchBytes)}}})
	want(t, e.track("POST", "/api/v2/batch", big), 400, "")
	item := map[string]any{"type": "person", "action": "identify", "identifiers": map[string]any{"id": "u9"}, "attributes": map[string]any{"p": strings.Repeat("x", 900)}}
	for i := 0; i < 40; i++ {
		item["attributes"].(map[string]any)[fmt.Sprint("k", i)] = strings.Repeat("x", 900)
	}
	r = e.track("POST", "/api/v2/batch", mustJSON(map[string]any{"batch": []any{item}}))
	want(t, r, 207, "")
	want(t, e.track("POST", "/api/v2/entity", mustJSON(item)), 400, "")
	want(t, e.track("POST", "/api/v2/entity", `{"type":"object","action":"identify","identifiers":{"object_type_id":"2","object_id":"o"},"attributes":{"x":1}}`), 200, `{}`)
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"identify","identifiers":{}}`), 400,
		`{"errors":[{"reason":"invalid","field":"identifiers","message":"identifiers must have exactly one of id, email, phone or cio_id"}]}`)
}

// TestV2Attributes: person and object operations refuse the same way an
// attributes value that is not an object or breaks the attribute limits,
// and accept absent or null attributes.
func TestV2Attributes(t *testing.T) {
	e := newEnv(t)
	many := map[string]any{}
	for i := 0; i <= MaxAttributes; i++ {
		many[fmt.Sprint("a", i)] = i
	}
	for _, who := range []string{
		`"type":"person","action":"identify","identifiers":{"id":"u1"}`,
		`"type":"object","action":"identify","identifiers":{"object_type_id":"1","object_id":"o1"}`,
	} {
		want(t, e.track("POST", "/api/v2/entity", `{`+who+`,"attributes":"plan"}`), 400,
			`{"errors":[{"reason":"invalid","field":"attributes","message":"attributes must be an object"}]}`)
		want(t, e.track("POST", "/api/v2/entity", `{`+who+`,"attributes":`+mustJSON(many)+`}`), 400,
			`{"errors":[{"reason":"invalid","field":"attributes","message":"cannot identify more than 300 attributes in one request"}]}`)
		want(t, e.track("POST", "/api/v2/entity", `{`+who+`,"attributes":null}`), 200, `{}`)
		want(t, e.track("POST", "/api/v2/entity", `{`+who+`}`), 200, `{}`)
	}
	if p, ok := e.r.Person("u1"); !ok || len(p.Attributes) != 0 {
		t.Fatalf("person %+v", p)
	}
	if o, ok := e.r.Object("1", "o1"); !ok || len(o.Attributes) != 0 {
		t.Fatalf("object %+v", o)
	}
}

// TestRelationshipRefusals: relationships from a person (naming objects)
// and from an object (naming people) are refused with the same rules:
// a non-empty array, identifiers of the right kind, relationship
// attributes within the attribute limits.
func TestRelationshipRefusals(t *testing.T) {
	e := newEnv(t)
	many := map[string]any{}
	for i := 0; i <= MaxAttributes; i++ {
		many[fmt.Sprint("a", i)] = i
	}
	person := `"type":"person","action":"add_relationships","identifiers":{"id":"u1"}`
	object := `"type":"object","action":"add_relationships","identifiers":{"object_type_id":"1","object_id":"o1"}`
	for _, c := range []struct{ op, rels, msg string }{
		{person, `[]`, "cio_relationships must be a non-empty array"},
		{person, `{"identifiers":{"object_type_id":"1","object_id":"o1"}}`, "cio_relationships must be a non-empty array"},
		{person, `[{"identifiers":{"object_type_id":"1"}}]`, "cio_relationships[0].identifiers must have object_type_id and object_id, or cio_object_id"},
		{person, `[{"identifiers":{"object_type_id":"1","object_id":"o1","cio_object_id":"ob1"}}]`, "cio_relationships[0].identifiers must have object_type_id and object_id, or cio_object_id alone"},
		{person, `[{"identifiers":{"object_type_id":"1","object_id":"o1"}},{"identifiers":{"object_type_id":"1","object_id":"o2"},"relationship_attributes":` + mustJSON(many) + `}]`,
			"cio_relationships[1].relationship_attributes: cannot identify more than 300 attributes in one request"},
		{object, `[]`, "cio_relationships must be a non-empty array"},
		{object, `[{"identifiers":{"id":"u1","email":"u1@x.com"}}]`, "cio_relationships[0].identifiers must have exactly one of id, email, cio_id"},
		{`"type":"object","action":"identify_anonymous","identifiers":{"object_type_id":"1","object_id":"o1"}`, `[{"identifiers":{"id":"u1"}}]`,
			"cio_relationships[0].identifiers must have exactly one of anonymous_id"},
		{object, `[{"identifiers":{"id":"u1"},"relationship_attributes":` + mustJSON(many) + `}]`,
			"cio_relationships[0].relationship_attributes: cannot identify more than 300 attributes in one request"},
	} {
		want(t, e.track("POST", "/api/v2/entity", `{`+c.op+`,"cio_relationships":`+c.rels+`}`), 400,
			`{"errors":[{"reason":"invalid","field":"cio_relationships","message":`+mustJSON(c.msg)+`}]}`)
	}
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"cio_relationships":{"action":"add_relationships","relationships":[]}}`), 400,
		`{"meta":{"error":"cio_relationships.relationships: cio_relationships must be a non-empty array"}}`)
	if len(e.r.Relationships("")) != 0 || len(e.r.People()) != 0 {
		t.Fatal("a refused operation changed the state")
	}
}
