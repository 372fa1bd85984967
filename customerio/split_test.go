package customerio

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// attrsOf returns n attributes a000..a<n-1> of size bytes each.
func attrsOf(n, size int) map[string]any {
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("a%03d", i)] = strings.Repeat("v", size)
	}
	return m
}

func encodedLen(t *testing.T, v any) int {
	t.Helper()
	b, err := encodeJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// checkParts checks that parts are valid operations below the entity limit,
// that each is op with a share of the attributes got returns, that the shares
// together are exactly want, and that each part but the last is full: the
// next part's first attribute would not have fitted.
func checkParts(t *testing.T, op Operation, parts []Operation, want map[string]any, got func(Operation) map[string]any) {
	t.Helper()
	union := map[string]any{}
	for i, p := range parts {
		if err := p.Validate(); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if n := encodedLen(t, p); n >= MaxEntityBytes {
			t.Fatalf("part %d is %d bytes", i, n)
		}
		if !reflect.DeepEqual(p.Identifiers, op.Identifiers) || p.Type != op.Type || p.Action != op.Action {
			t.Fatalf("part %d is not the operation's: %+v", i, p)
		}
		for k, v := range got(p) {
			if _, dup := union[k]; dup {
				t.Fatalf("attribute %s in two parts", k)
			}
			union[k] = v
		}
		if i+1 < len(parts) {
			next := got(parts[i+1])
			first := ""
			for k := range next {
				if first == "" || k < first {
					first = k
				}
			}
			grown := map[string]any{first: next[first]}
			for k, v := range got(p) {
				grown[k] = v
			}
			if n := encodedLen(t, withAttrs(p, grown)); n < MaxEntityBytes {
				t.Errorf("part %d (%d bytes) had room for %s (%d bytes with it)", i, encodedLen(t, p), first, n)
			}
		}
	}
	if !reflect.DeepEqual(union, want) {
		t.Fatalf("parts carry %d attributes, want %d", len(union), len(want))
	}
}

func withAttrs(op Operation, a map[string]any) Operation {
	if len(op.Relationships) == 1 && op.Type == EntityPerson {
		r := op.Relationships[0]
		r.RelationshipAttributes = a
		op.Relationships = []Relationship{r}
		return op
	}
	op.Attributes = a
	return op
}

func objAttrs(o Operation) map[string]any { return o.Attributes }
func relAttrs(o Operation) map[string]any { return o.Relationships[0].RelationshipAttributes }

func TestSplitOperationObject(t *testing.T) {
	ids := &Identifiers{ObjectTypeID: "1", ObjectID: "acme"}
	small := Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: ids, Attributes: attrsOf(3, 10)}
	parts, err := SplitOperation(small, "attributes")
	if err != nil || len(parts) != 1 || !reflect.DeepEqual(parts[0], small) {
		t.Fatalf("small upsert: %v, %d parts", err, len(parts))
	}

	// 95 attributes of 1,000 bytes: ~96 KB, under the 100 KB object limit.
	attrs := attrsOf(95, 1000)
	if err := ValidateObjectAttributes("attributes", attrs); err != nil {
		t.Fatal(err)
	}
	big := Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: ids, Attributes: attrs}
	if err := big.Validate(); err == nil {
		t.Fatal("a 96 KB operation validated whole")
	}
	parts, err = SplitOperation(big, "attributes")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 4 {
		t.Errorf("%d parts, want 4 (31 attributes of ~1 KB fit one)", len(parts))
	}
	checkParts(t, big, parts, attrs, objAttrs)

	// Mixed sizes, values that need escaping, numbers and nulls (which
	// remove an attribute at Customer.io and must be carried too).
	rng := rand.New(rand.NewPCG(1, 2))
	mixed := map[string]any{}
	for i := 0; i < 290; i++ {
		switch i % 5 {
		case 0:
			mixed[fmt.Sprintf("n%d", i)] = rng.IntN(1 << 40)
		case 1:
			mixed[fmt.Sprintf("q%d", i)] = strings.Repeat(`"<\>`, rng.IntN(150))
		case 2:
			mixed[fmt.Sprintf("z%d", i)] = nil
		default:
			mixed[fmt.Sprintf("s%d", i)] = strings.Repeat("é", rng.IntN(500))
		}
	}
	if err := ValidateObjectAttributes("attributes", mixed); err != nil {
		t.Fatal(err)
	}
	op := Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: ids, Attributes: mixed}
	parts, err = SplitOperation(op, "attributes")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 2 {
		t.Fatalf("%d parts for a %d-byte operation", len(parts), encodedLen(t, op))
	}
	checkParts(t, op, parts, mixed, objAttrs)
}

func TestSplitOperationBoundary(t *testing.T) {
	ids := &Identifiers{ObjectTypeID: "1", ObjectID: "o"}
	// 31 attributes of 1,000 bytes and one padded so the operation is
	// exactly n bytes.
	sized := func(n int) Operation {
		op := Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: ids, Attributes: attrsOf(31, 1000)}
		op.Attributes["pad"] = ""
		op.Attributes["pad"] = strings.Repeat("p", n-encodedLen(t, op))
		if got := encodedLen(t, op); got != n {
			t.Fatalf("sized %d is %d", n, got)
		}
		return op
	}
	if parts, err := SplitOperation(sized(MaxEntityBytes-1), "attributes"); err != nil || len(parts) != 1 {
		t.Errorf("%d bytes: %d parts, %v; want it alone", MaxEntityBytes-1, len(parts), err)
	}
	op := sized(MaxEntityBytes)
	parts, err := SplitOperation(op, "attributes")
	if err != nil || len(parts) != 2 {
		t.Fatalf("%d bytes: %d parts, %v; want 2", MaxEntityBytes, len(parts), err)
	}
	checkParts(t, op, parts, op.Attributes, objAttrs)
}

func TestSplitOperationRelationship(t *testing.T) {
	attrs := attrsOf(90, 1000)
	op := Operation{Type: EntityPerson, Action: ActionAddRelationships, Identifiers: &Identifiers{ID: "p"},
		Relationships: []Relationship{{Identifiers: Identifiers{ObjectTypeID: "1", ObjectID: "acme"}, RelationshipAttributes: attrs}}}
	parts, err := SplitOperation(op, "relationship_attributes")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for _, p := range parts {
		if len(p.Relationships) != 1 || p.Relationships[0].Identifiers != op.Relationships[0].Identifiers {
			t.Fatalf("part relationships %+v", p.Relationships)
		}
	}
	checkParts(t, op, parts, attrs, relAttrs)
	if len(op.Relationships[0].RelationshipAttributes) != 90 {
		t.Error("splitting changed the caller's operation")
	}
}

func TestSplitOperationRefusals(t *testing.T) {
	var ve *ValidationError
	// A person identify has Track v1: it is not split.
	person := Operation{Type: EntityPerson, Action: ActionIdentify, Identifiers: &Identifiers{ID: "p"}, Attributes: attrsOf(60, 1000)}
	if _, err := SplitOperation(person, "attributes"); !errors.As(err, &ve) || ve.Field != "attributes" {
		t.Errorf("person identify: %v", err)
	}
	// An event is not split either (its data is one value).
	ev := Operation{Type: EntityPerson, Action: ActionEvent, Identifiers: &Identifiers{ID: "p"}, Name: "e",
		Attributes: map[string]any{"blob": strings.Repeat("x", 40_000)}}
	if _, err := SplitOperation(ev, "data"); !errors.As(err, &ve) || ve.Field != "data" {
		t.Errorf("event: %v", err)
	}
	// One attribute too large for an operation alone (a reserved name
	// escapes the 1,000-byte value limit).
	obj := Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: &Identifiers{ObjectTypeID: "1", ObjectID: "o"},
		Attributes: map[string]any{"x": 1, "cio_subscription_preferences": map[string]any{"topics": map[string]any{"t": strings.Repeat("y", 33_000)}}}}
	if _, err := SplitOperation(obj, "attributes"); !errors.As(err, &ve) || ve.Field != "attributes.cio_subscription_preferences" {
		t.Errorf("huge attribute: %v", err)
	}
	// The operation's own rules still apply.
	bad := Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: &Identifiers{ObjectTypeID: "x", ObjectID: "o"}}
	if _, err := SplitOperation(bad, "attributes"); !errors.As(err, &ve) || ve.Field != "identifiers.object_type_id" {
		t.Errorf("bad identifiers: %v", err)
	}
}

func TestValidateObjectAttributesTotal(t *testing.T) {
	// 100 attributes of 1,000 bytes are 101,001 bytes encoded: over.
	var ve *ValidationError
	if err := ValidateObjectAttributes("attributes", attrsOf(100, 1000)); !errors.As(err, &ve) || ve.Field != "attributes" {
		t.Errorf("over 100,000 bytes: %v", err)
	}
	// Pad 97 attributes of 1,000 bytes to exactly 100,000 bytes with
	// attributes of at most 900.
	exact := attrsOf(97, 1000)
	last := ""
	for i := 0; ; i++ {
		room := MaxObjectAttributesBytes - encodedLen(t, exact)
		last = fmt.Sprintf("p%d", i)
		over := len(`,"` + last + `":""`)
		if room-over <= 900 {
			exact[last] = strings.Repeat("p", room-over)
			break
		}
		exact[last] = strings.Repeat("p", 900)
	}
	if n := encodedLen(t, exact); n != MaxObjectAttributesBytes {
		t.Fatalf("exact is %d", n)
	}
	if err := ValidateObjectAttributes("attributes", exact); err != nil {
		t.Errorf("exactly 100,000 bytes: %v", err)
	}
	exact[last] = exact[last].(string) + "p"
	if err := ValidateObjectAttributes("relationship_attributes", exact); !errors.As(err, &ve) || ve.Field != "relationship_attributes" {
		t.Errorf("100,001 bytes: %v", err)
	}
}
