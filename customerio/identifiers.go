package customerio

import (
	"strconv"
	"strings"
)

// Identifiers names a person (exactly one of ID, Email, CioID, or AnonymousID
// where Customer.io accepts it), an object (ObjectTypeID and ObjectID), or a
// delivery (ID). JSON names are Customer.io's. CioID is the bare cio_id value,
// without the "cio_" prefix used in v1 paths.
type Identifiers struct {
	ID           string `json:"id,omitempty"`
	Email        string `json:"email,omitempty"`
	CioID        string `json:"cio_id,omitempty"`
	AnonymousID  string `json:"anonymous_id,omitempty"`
	ObjectTypeID string `json:"object_type_id,omitempty"`
	ObjectID     string `json:"object_id,omitempty"`
}

// checkID requires a non-blank value of at most MaxIDBytes bytes.
func checkID(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return invalid(field, "is required")
	}
	if len(v) > MaxIDBytes {
		return invalid(field, "must be at most 150 bytes")
	}
	return nil
}

// ValidatePersonID checks a person identifier used in a path (an id, an
// email, or "cio_<cio_id>"): non-blank and at most 150 bytes.
func ValidatePersonID(field, id string) error { return checkID(field, id) }

// ValidatePersonIdentifiers checks that ids names exactly one person by
// exactly one of id, email or cio_id (bare value), each at most 150 bytes,
// and sets no other identifier.
func ValidatePersonIdentifiers(field string, ids *Identifiers) error {
	if ids == nil {
		return invalid(field, "exactly one of id, email, cio_id is required")
	}
	if ids.AnonymousID != "" || ids.ObjectTypeID != "" || ids.ObjectID != "" {
		return invalid(field, "must name a person by id, email or cio_id only")
	}
	n := 0
	for _, f := range []struct{ name, v string }{{"id", ids.ID}, {"email", ids.Email}, {"cio_id", ids.CioID}} {
		if f.v == "" {
			continue
		}
		n++
		if err := checkID(join(field, f.name), f.v); err != nil {
			return err
		}
	}
	if n != 1 {
		return invalid(field, "exactly one of id, email, cio_id is required")
	}
	if ids.Email != "" && !strings.Contains(ids.Email, "@") {
		return invalid(join(field, "email"), "must be an email address")
	}
	return nil
}

// checkObjectIdentifiers: object_type_id a positive integer string,
// object_id non-blank and at most 150 bytes, nothing else.
func checkObjectIdentifiers(field string, ids *Identifiers) error {
	if ids == nil {
		return invalid(field, "object_type_id and object_id are required")
	}
	if ids.ID != "" || ids.Email != "" || ids.CioID != "" || ids.AnonymousID != "" {
		return invalid(field, "must name an object by object_type_id and object_id only")
	}
	if n, err := strconv.ParseUint(ids.ObjectTypeID, 10, 63); err != nil || n < 1 {
		return invalid(join(field, "object_type_id"), "must be a positive integer string")
	}
	return checkID(join(field, "object_id"), ids.ObjectID)
}
