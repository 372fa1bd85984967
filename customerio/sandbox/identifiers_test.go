package sandbox

import (
	"strings"
	"testing"
)

// TestV2PhoneIdentifier: Track v2 person operations name a person by
// identifiers.phone (E.164): the sandbox creates, finds, suppresses and
// unsuppresses them by it. Track v1 reads a phone number in its path as an
// id (another person); merges and transactional sends refuse a phone.
func TestV2PhoneIdentifier(t *testing.T) {
	e := newEnv(t)
	const phone = "+15555550100"
	ph := `"identifiers":{"phone":"` + phone + `"}`
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"identify",`+ph+`,"attributes":{"plan":"pro"}}`), 200, `{}`)
	want(t, e.track("POST", "/api/v2/batch", `{"batch":[{"type":"person","action":"event",`+ph+`,"name":"signed_up"},`+
		`{"type":"person","action":"add_device",`+ph+`,"device":{"token":"tok","platform":"ios"}}]}`), 200, `{}`)
	p, ok := e.r.PersonBy("phone", phone)
	if !ok || p.Phone != phone || p.ID != "" || p.Attributes["plan"] != "pro" || len(p.Events) != 1 || len(p.Devices) != 1 {
		t.Fatalf("person by phone: %+v %v", p, ok)
	}
	if n := len(e.r.People()); n != 1 {
		t.Fatalf("%d people, want 1", n)
	}

	// An identify by phone that names an existing person's id in its
	// attributes gives that person the phone (the identify resolution rules).
	want(t, e.track("PUT", "/api/v1/customers/ada", `{"a":1}`), 200, `{}`)
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"identify","identifiers":{"phone":"+15555550111"},"attributes":{"id":"ada"}}`), 200, `{}`)
	if a, _ := e.r.Person("ada"); a.Phone != "+15555550111" {
		t.Fatalf("ada after identify by phone: %+v", a)
	}

	// Track v1: the same number in a path is an id.
	want(t, e.track("PUT", "/api/v1/customers/"+strings.Replace(phone, "+", "%2B", 1), `{"v1":true}`), 200, `{}`)
	if v1, ok := e.r.Person(phone); !ok || v1.ID != phone || v1.Phone != "" || v1.CioID == p.CioID {
		t.Fatalf("v1 path phone: %+v %v, want a person with id %s, apart from %s", v1, ok, phone, p.CioID)
	}

	// Refused: a phone not in E.164 form; a phone in a merge or a send.
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"identify","identifiers":{"phone":"555-0100"}}`), 400,
		`{"errors":[{"reason":"invalid","field":"identifiers.phone","message":"phone must be in E.164 format, like +14155552671"}]}`)
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"merge","primary":{"phone":"`+phone+`"},"secondary":{"id":"ada"}}`), 400, "")
	want(t, e.track("POST", "/api/v1/merge_customers", `{"primary":{"phone":"`+phone+`"},"secondary":{"id":"ada"}}`), 400, "")
	want(t, e.app("POST", "/v1/send/sms", `{"transactional_message_id":3,"identifiers":{"phone":"`+phone+`"},"to":"`+phone+`"}`), 400, "")

	// Suppressed by phone: deleted, and the phone stays blocked until unsuppressed.
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"suppress",`+ph+`}`), 200, `{}`)
	if _, ok := e.r.PersonBy("phone", phone); ok {
		t.Fatal("suppressed person still present")
	}
	if s := e.r.Suppressions(); len(s) != 1 || s[0].Phone != phone || s[0].CioID != p.CioID {
		t.Fatalf("suppressions %+v", s)
	}
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"identify",`+ph+`}`), 200, `{}`)
	if _, ok := e.r.PersonBy("phone", phone); ok {
		t.Fatal("a suppressed phone was identified again")
	}
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"unsuppress",`+ph+`}`), 200, `{}`)
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"identify",`+ph+`}`), 200, `{}`)
	if q, ok := e.r.PersonBy("phone", phone); !ok || q.CioID == p.CioID {
		t.Fatalf("after unsuppress: %+v %v (a new profile)", q, ok)
	}
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"delete",`+ph+`}`), 200, `{}`)
	if _, ok := e.r.PersonBy("phone", phone); ok {
		t.Fatal("delete by phone kept the person")
	}
}

// TestV2CioObjectID: the sandbox gives every object a cio_object_id, and
// Track v2 object operations and relationships (v2, and v1 identify's
// cio_relationships) name an object by it instead of object_type_id and
// object_id. An unknown cio_object_id changes nothing; both forms at once
// are refused.
func TestV2CioObjectID(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("POST", "/api/v2/entity", `{"type":"object","action":"identify","identifiers":{"object_type_id":"1","object_id":"acme"},"attributes":{"plan":"pro"}}`), 200, `{}`)
	o, ok := e.r.Object("1", "acme")
	if !ok || !strings.HasPrefix(o.CioObjectID, "ob") {
		t.Fatalf("object %+v %v", o, ok)
	}
	cio := `"identifiers":{"cio_object_id":"` + o.CioObjectID + `"}`
	want(t, e.track("POST", "/api/v2/entity", `{"type":"object","action":"identify",`+cio+`,"attributes":{"seats":5}}`), 200, `{}`)
	if o2, _ := e.r.ObjectByCioID(o.CioObjectID); o2.ID != "acme" || o2.Attributes["plan"] != "pro" || o2.Attributes["seats"] != int64(5) {
		t.Fatalf("after update by cio_object_id: %+v", o2)
	}
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"add_relationships","identifiers":{"id":"ada"},"cio_relationships":[{`+cio+`,"relationship_attributes":{"role":"admin"}}]}`), 200, `{}`)
	want(t, e.track("PUT", "/api/v1/customers/bob", `{"cio_relationships":{"action":"add_relationships","relationships":[{`+cio+`}]}}`), 200, `{}`)
	rels := e.r.Relationships("")
	if len(rels) != 2 || rels[0].ObjectID != "acme" || rels[1].ObjectID != "acme" {
		t.Fatalf("relationships %+v", rels)
	}
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"delete_relationships","identifiers":{"id":"bob"},"cio_relationships":[{`+cio+`}]}`), 200, `{}`)
	if rels := e.r.Relationships("bob"); len(rels) != 0 {
		t.Fatalf("bob's relationships after delete: %+v", rels)
	}

	// Unknown: accepted, nothing created.
	want(t, e.track("POST", "/api/v2/entity", `{"type":"object","action":"identify","identifiers":{"cio_object_id":"obnothing"},"attributes":{"x":1}}`), 200, `{}`)
	want(t, e.track("POST", "/api/v2/entity", `{"type":"person","action":"add_relationships","identifiers":{"id":"ada"},"cio_relationships":[{"identifiers":{"cio_object_id":"obnothing"}}]}`), 200, `{}`)
	if n, r := len(e.r.Snapshot().Objects), len(e.r.Relationships("ada")); n != 1 || r != 1 {
		t.Fatalf("an unknown cio_object_id changed the state: %d objects, %d relationships of ada", n, r)
	}
	// Both forms at once.
	want(t, e.track("POST", "/api/v2/entity", `{"type":"object","action":"delete","identifiers":{"object_type_id":"1","object_id":"acme","cio_object_id":"`+o.CioObjectID+`"}}`), 400,
		`{"errors":[{"reason":"invalid","field":"identifiers","message":"identifiers must have object_type_id and object_id, or cio_object_id alone"}]}`)

	want(t, e.track("POST", "/api/v2/entity", `{"type":"object","action":"delete",`+cio+`}`), 200, `{}`)
	if _, ok := e.r.ObjectByCioID(o.CioObjectID); ok || len(e.r.Relationships("")) != 0 {
		t.Fatalf("delete by cio_object_id left the object or its relationships: %+v", e.r.Relationships(""))
	}
	// A new object of the same ids gets a new cio_object_id.
	want(t, e.track("POST", "/api/v2/entity", `{"type":"object","action":"identify","identifiers":{"object_type_id":"1","object_id":"acme"}}`), 200, `{}`)
	if o3, _ := e.r.Object("1", "acme"); o3.CioObjectID == o.CioObjectID || o3.CioObjectID == "" {
		t.Fatalf("recreated object's cio_object_id %q (old %q)", o3.CioObjectID, o.CioObjectID)
	}
}
