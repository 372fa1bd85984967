package sandbox

import (
	"fmt"
	"strings"
	"testing"
)

// Customer.io's documented sizes, read strictly; written out here rather
// than taken from the constants under test.
const (
	entityLimit = 32_000  // /api/v2/entity body, each /api/v2/batch item: smaller than
	batchLimit  = 500_000 // /api/v2/batch body: smaller than
	cdpLimit    = 32_000  // a Pipelines message: at most
)

// eventOp returns a Track v2 person event whose JSON is exactly n bytes.
func eventOp(t *testing.T, id string, n int) string {
	t.Helper()
	head := `{"type":"person","action":"event","identifiers":{"id":"` + id + `"},"name":"e","attributes":{"p":"`
	tail := `"}}`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("no event op of %d bytes", n)
	}
	return head + strings.Repeat("x", pad) + tail
}

// objectOp returns a Track v2 object identify of the given attributes.
func objectOp(id string, attrs map[string]any) map[string]any {
	return map[string]any{"type": "object", "action": "identify",
		"identifiers": map[string]any{"object_type_id": "1", "object_id": id}, "attributes": attrs}
}

// attrsN returns n attributes <prefix>0.. of size bytes each.
func attrsN(prefix string, n, size int) map[string]any {
	m := map[string]any{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("%s%d", prefix, i)] = strings.Repeat("v", size)
	}
	return m
}

// TestV2SizeLimits: an /api/v2/entity body and each /api/v2/batch item must
// be smaller than 32,000 bytes, a batch body smaller than 500,000 (the
// stricter, decimal reading of Customer.io's "32kb" and "500kb", the one
// the client uses).
func TestV2SizeLimits(t *testing.T) {
	e := newEnv(t)
	want(t, e.track("POST", "/api/v2/entity", eventOp(t, "u1", entityLimit-1)), 200, `{}`)
	want(t, e.track("POST", "/api/v2/entity", eventOp(t, "u1", entityLimit)), 400,
		`{"errors":[{"reason":"malformed","field":"","message":"request must be smaller than 32000 bytes"}]}`)

	r := e.track("POST", "/api/v2/batch", `{"batch":[`+eventOp(t, "u2", entityLimit-1)+`,`+eventOp(t, "u2", entityLimit)+`]}`)
	want(t, r, 207, `{"errors":[{"batch_index":1,"reason":"invalid","field":"","message":"batch item must be smaller than 32000 bytes"}]}`)
	if n := len(e.r.Events("u2")); n != 1 {
		t.Fatalf("%d events of u2 stored, want the one that fit", n)
	}

	// A body of exactly n bytes: items of 30,000 bytes and one to make up
	// the rest.
	body := func(n int) string {
		var items []string
		size := len(`{"batch":[]}`)
		for size+1+30_000 < n-1000 {
			if len(items) > 0 {
				size++
			}
			items = append(items, eventOp(t, "u3", 30_000))
			size += 30_000
		}
		items = append(items, eventOp(t, "u3", n-size-1))
		b := `{"batch":[` + strings.Join(items, ",") + `]}`
		if len(b) != n {
			t.Fatalf("batch body of %d bytes, want %d", len(b), n)
		}
		return b
	}
	want(t, e.track("POST", "/api/v2/batch", body(batchLimit-1)), 200, `{}`)
	want(t, e.track("POST", "/api/v2/batch", body(batchLimit)), 400,
		`{"errors":[{"reason":"malformed","field":"","message":"request must be smaller than 500000 bytes"}]}`)
}

// TestObjectAndRelationshipLimits: an object or a relationship holds at
// most 300 attributes of at most 100,000 bytes in all, over every operation
// that set them; attribute names and values have the person limits. An
// operation that would break them is refused and changes nothing.
func TestObjectAndRelationshipLimits(t *testing.T) {
	e := newEnv(t)
	// Four operations of ~27.5 KB each (each under 32 KB): the fourth would
	// take the object over 100,000 bytes.
	var batch []any
	for i := 0; i < 4; i++ {
		batch = append(batch, objectOp("acme", attrsN(fmt.Sprintf("o%d_", i), 30, 900)))
	}
	r := e.track("POST", "/api/v2/batch", mustJSON(map[string]any{"batch": batch}))
	want(t, r, 207, `{"errors":[{"batch_index":3,"reason":"invalid","field":"attributes","message":"the attributes of an object cannot total more than 100000 bytes"}]}`)
	o, _ := e.r.Object("1", "acme")
	if len(o.Attributes) != 90 {
		t.Fatalf("object holds %d attributes, want 90", len(o.Attributes))
	}
	// Setting attributes it holds again does not add to them; removing
	// some (null) makes room.
	want(t, e.track("POST", "/api/v2/entity", mustJSON(objectOp("acme", attrsN("o0_", 30, 900)))), 200, `{}`)
	drop := map[string]any{}
	for k := range attrsN("o0_", 30, 0) {
		drop[k] = nil
	}
	want(t, e.track("POST", "/api/v2/entity", mustJSON(objectOp("acme", drop))), 200, `{}`)
	want(t, e.track("POST", "/api/v2/entity", mustJSON(batch[3])), 200, `{}`)

	// 300 attributes at most.
	want(t, e.track("POST", "/api/v2/entity", mustJSON(objectOp("many", attrsN("a", 200, 1)))), 200, `{}`)
	want(t, e.track("POST", "/api/v2/entity", mustJSON(objectOp("many", attrsN("b", 101, 1)))), 400,
		`{"errors":[{"reason":"invalid","field":"attributes","message":"an object cannot have more than 300 attributes"}]}`)
	if o, _ := e.r.Object("1", "many"); len(o.Attributes) != 200 {
		t.Fatalf("object holds %d attributes, want 200", len(o.Attributes))
	}

	// Relationship attributes: a value over 1,000 bytes, and the same
	// totals as an object.
	rel := func(attrs map[string]any) string {
		return mustJSON(map[string]any{"type": "person", "action": "add_relationships", "identifiers": map[string]any{"id": "p1"},
			"cio_relationships": []any{map[string]any{"identifiers": map[string]any{"object_type_id": "1", "object_id": "acme"},
				"relationship_attributes": attrs}}})
	}
	want(t, e.track("POST", "/api/v2/entity", rel(map[string]any{"role": strings.Repeat("y", 1001)})), 400,
		`{"errors":[{"reason":"invalid","field":"cio_relationships","message":"cio_relationships[0].relationship_attributes: value for attribute 'role' cannot be longer than 1000 bytes"}]}`)
	for i := 0; i < 3; i++ {
		want(t, e.track("POST", "/api/v2/entity", rel(attrsN(fmt.Sprintf("r%d_", i), 30, 900))), 200, `{}`)
	}
	want(t, e.track("POST", "/api/v2/entity", rel(attrsN("r3_", 30, 900))), 400,
		`{"errors":[{"reason":"invalid","field":"cio_relationships[0].relationship_attributes","message":"the attributes of a relationship cannot total more than 100000 bytes"}]}`)
	if rs := e.r.Relationships("p1"); len(rs) != 1 || len(rs[0].Attributes) != 90 {
		t.Fatalf("relationships %+v", len(rs))
	}
}

// TestCDPMessageLimit: a Pipelines message of at most 32,000 bytes is
// processed; a larger one is answered 200 and dropped (permissive), or 400
// in strict mode.
func TestCDPMessageLimit(t *testing.T) {
	e := newEnv(t)
	msg := func(n int) string {
		head, tail := `{"userId":"c1","traits":{"p":"`, `"}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	want(t, e.cdp("/identify", msg(cdpLimit), "X-Strict-Mode", "1"), 200, `{}`)
	want(t, e.cdp("/identify", msg(cdpLimit+1), "X-Strict-Mode", "1"), 400, "")
	if n := len(e.r.CDPMessages()); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
}
