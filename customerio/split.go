package customerio

import (
	"sort"
	"strconv"
)

// MaxObjectAttributesBytes is the most the attributes of one object, or of
// one relationship, may total, encoded (Customer.io: "100 Kilobytes", read
// as 100,000 bytes).
const MaxObjectAttributesBytes = 100_000

// ValidateObjectAttributes checks the attributes of an object or of a
// relationship: ValidateAttributes's rules, and a total of at most
// 100,000 bytes encoded.
func ValidateObjectAttributes(field string, attrs map[string]any) error {
	if err := ValidateAttributes(field, attrs); err != nil {
		return err
	}
	if attrs == nil {
		return nil
	}
	return checkEncoded(field, attrs, MaxObjectAttributesBytes, false, "must total at most 100000 bytes encoded")
}

// SplitOperation returns op as Track v2 operations that each encode to
// fewer than MaxEntityBytes bytes, so that each is a valid /api/v2/entity
// request and a valid batch item. An operation that fits is returned alone.
//
// One that does not is split by its attributes, for the operations whose
// attributes Customer.io merges into what it holds (an attribute an
// operation does not name is left as it is): an object identify, split by
// attributes, and an add_relationships or delete_relationships of one
// relationship, split by its relationship_attributes. Every part is op with
// a share of those attributes (its identifiers and everything else
// repeated), dealt out in name order, each part as full as it can be.
// Sending the parts in any order, or again, leaves the same state.
//
// Any other operation too large, or an attribute too large for an
// operation on its own, is a *ValidationError naming field (where the
// caller's payload holds those attributes, e.g. "attributes") or the
// attribute under it. op is checked with Operation.Validate's rules first.
func SplitOperation(op Operation, field string) ([]Operation, error) {
	if err := op.validateFields(""); err != nil {
		return nil, err
	}
	n := encodedSize(op)
	if n < 0 {
		return nil, invalid("operation", "cannot be encoded as JSON")
	}
	if n < MaxEntityBytes {
		return []Operation{op}, nil
	}
	var attrs map[string]any
	var key string
	var with func(map[string]any) Operation
	switch {
	case op.Type == EntityObject && op.Action == ActionIdentify:
		attrs, key = op.Attributes, "attributes"
		with = func(a map[string]any) Operation {
			o := op
			o.Attributes = a
			return o
		}
	case (op.Action == ActionAddRelationships || op.Action == ActionDeleteRelationships) && len(op.Relationships) == 1:
		attrs, key = op.Relationships[0].RelationshipAttributes, "relationship_attributes"
		with = func(a map[string]any) Operation {
			o := op
			r := op.Relationships[0]
			r.RelationshipAttributes = a
			o.Relationships = []Relationship{r}
			return o
		}
	default:
		return nil, invalid(field, tooLarge)
	}
	if len(attrs) == 0 {
		return nil, invalid(field, tooLarge)
	}

	// The size of a part: the operation without those attributes, plus
	// `,"<key>":{` and `}`, plus each attribute's `"name":value`, plus the
	// commas between them.
	base := encodedSize(with(nil))
	if base < 0 {
		return nil, invalid("operation", "cannot be encoded as JSON")
	}
	base += 1 + quotedSize(key) + 1 + 2
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	var parts []Operation
	cur, size := map[string]any{}, base
	for _, name := range names {
		vs := encodedSize(attrs[name])
		if vs < 0 {
			return nil, invalid(join(field, name), "cannot be encoded as JSON")
		}
		entry := quotedSize(name) + 1 + vs
		if base+entry >= MaxEntityBytes {
			return nil, invalid(join(field, name), "is too large for one Track v2 operation: with the identifiers it must encode to less than "+
				strconv.Itoa(MaxEntityBytes)+" bytes")
		}
		grown := size + entry
		if len(cur) > 0 {
			grown++ // the comma before it
		}
		if grown >= MaxEntityBytes {
			parts = append(parts, with(cur))
			cur, grown = map[string]any{}, base+entry
		}
		cur[name] = attrs[name]
		size = grown
	}
	parts = append(parts, with(cur))
	for i := range parts {
		// The arithmetic above is exact; this guards it.
		if err := checkEncoded(idx("operation.part", i), parts[i], MaxEntityBytes, true, tooLarge); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

const tooLarge = "must be less than 32000 bytes encoded"
