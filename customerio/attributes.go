package customerio

import "strings"

// reservedAttributes hold structures, not values; the 1000-byte value limit
// does not apply to them.
var reservedAttributes = map[string]bool{"cio_relationships": true, "cio_subscription_preferences": true}

// ValidateAttributes checks person or object attributes: at most 300,
// names non-blank and at most 150 bytes, values at most 1000 bytes (a string
// by its bytes, anything else by its JSON encoding).
func ValidateAttributes(field string, attrs map[string]any) error {
	if len(attrs) > MaxAttributes {
		return invalid(field, "must have at most 300 attributes")
	}
	for name, v := range attrs {
		if strings.TrimSpace(name) == "" {
			return invalid(field, "attribute names must not be blank")
		}
		if len(name) > MaxAttributeNameBytes {
			return invalid(field, "attribute names must be at most 150 bytes")
		}
		if reservedAttributes[name] {
			continue
		}
		if valueSize(v) > MaxAttributeValueBytes {
			return invalid(join(field, name), "must be at most 1000 bytes")
		}
	}
	return nil
}

func valueSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case string:
		return len(x)
	}
	n := encodedSize(v)
	if n < 0 {
		return MaxEventDataBytes + 1
	}
	return n
}

func checkStringAttributes(field string, attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return invalid(field, "must have at most 300 attributes")
	}
	for name, v := range attrs {
		if strings.TrimSpace(name) == "" || len(name) > MaxAttributeNameBytes {
			return invalid(field, "attribute names must be non-blank and at most 150 bytes")
		}
		if len(v) > MaxAttributeValueBytes {
			return invalid(join(field, name), "must be at most 1000 bytes")
		}
	}
	return nil
}

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

// ValidatePersonAttributes is ValidateAttributes for the attributes of a
// person identify, which may also carry "_timestamp", the time of the
// identify for back-dating: a whole, non-negative number of Unix seconds.
func ValidatePersonAttributes(field string, attrs map[string]any) error {
	if v, ok := attrs["_timestamp"]; ok && v != nil {
		if _, isInt := unixSeconds(v); !isInt {
			return invalid(join(field, "_timestamp"), "must be a whole number of Unix seconds")
		}
	}
	return ValidateAttributes(field, attrs)
}
