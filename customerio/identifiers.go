package customerio

import (
	"strconv"
	"strings"
)

// Identifiers names a person, an object or a delivery. JSON names are
// Customer.io's.
//
//   - A person: exactly one of ID, Email or CioID; Phone in Track v2 person
//     operations only; AnonymousID where Customer.io accepts it. CioID is
//     the bare cio_id value, without the "cio_" prefix used in v1 paths.
//   - An object: ObjectTypeID and ObjectID, or CioObjectID alone.
//   - A delivery (a Track v2 delivery operation): ID, the delivery id.
type Identifiers struct {
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
	// Phone is a phone number in E.164 form: "+" and up to 15 digits, like
	// "+14155552671". Confirmed in Customer.io's Track API reference
	// (docs.customer.io/integrations/api/track/tag/track_v2/entity/: "one
	// of id, email, phone, or cio_id"; person_common in its OpenAPI,
	// docs.customer.io/files/journeys-track.json): a Track v2 person
	// operation takes identifiers {"phone": ...}, where the workspace has
	// phone enabled as an identifier. Track v1 does not
	// (its path identifier treats a phone number as an id), nor do merges
	// (v1 and v2: id, email or cio_id), the App API's transactional sends
	// or an object's relationships to people; ValidatePersonIdentifiers
	// refuses it there.
	Phone        string `json:"phone,omitempty"`
	CioID        string `json:"cio_id,omitempty"`
	AnonymousID  string `json:"anonymous_id,omitempty"`
	ObjectTypeID string `json:"object_type_id,omitempty"`
	ObjectID     string `json:"object_id,omitempty"`
	// CioObjectID is the immutable id Customer.io gives an object when it
	// is created. Confirmed in the same reference (object_identifiers):
	// an object is named by object_type_id and object_id, or by
	// cio_object_id alone; an object identify by cio_object_id only
	// updates an existing object (it cannot create one).
	CioObjectID string `json:"cio_object_id,omitempty"`
}

// checkID requires a non-blank value of at most MaxIDBytes bytes.
func checkID(field, v string) error {
	if r := idFault(v); r != "" {
		return invalid(field, r)
	}
	return nil
}

// idFault is why v is not an identifier (blank, longer than MaxIDBytes
// bytes), "" when it is one.
func idFault(v string) string {
	if strings.TrimSpace(v) == "" {
		return "is required"
	}
	if len(v) > MaxIDBytes {
		return "must be at most 150 bytes"
	}
	return ""
}

// ValidatePersonID checks a person identifier used in a path (an id, an
// email, or "cio_<cio_id>"): non-blank and at most 150 bytes.
func ValidatePersonID(field, id string) error { return checkID(field, id) }

// ValidatePersonIdentifiers checks that ids names exactly one person by
// exactly one of id, email or cio_id (bare value), each at most 150 bytes,
// and sets no other identifier. A phone identifier is refused, naming
// "<field>.phone": only Track v2 person operations take one (see
// ValidateV2PersonIdentifiers).
func ValidatePersonIdentifiers(field string, ids *Identifiers) error {
	return validatePersonIdentifiers(field, ids, false)
}

// ValidateV2PersonIdentifiers is ValidatePersonIdentifiers for a Track v2
// person operation (other than a merge), which may also name the person by
// phone: exactly one of id, email, phone or cio_id, a phone in E.164 form.
func ValidateV2PersonIdentifiers(field string, ids *Identifiers) error {
	return validatePersonIdentifiers(field, ids, true)
}

// phoneNotHere is the reason a phone identifier is refused where Customer.io
// does not take one.
const phoneNotHere = "Customer.io takes a phone number as an identifier only in Track v2 person operations; name the person by id, email or cio_id here"

func validatePersonIdentifiers(field string, ids *Identifiers, phone bool) error {
	required := "exactly one of id, email, cio_id is required"
	only := "must name a person by id, email or cio_id only"
	if phone {
		required = "exactly one of id, email, phone, cio_id is required"
		only = "must name a person by id, email, phone or cio_id only"
	}
	if ids == nil {
		return invalid(field, required)
	}
	if ids.AnonymousID != "" || ids.ObjectTypeID != "" || ids.ObjectID != "" || ids.CioObjectID != "" {
		return invalid(field, only)
	}
	if ids.Phone != "" && !phone {
		return invalid(join(field, "phone"), phoneNotHere)
	}
	n := 0
	for _, f := range []struct{ name, v string }{{"id", ids.ID}, {"email", ids.Email}, {"phone", ids.Phone}, {"cio_id", ids.CioID}} {
		if f.v == "" {
			continue
		}
		n++
		// The field's name is made only for an error: this runs for every
		// operation a worker delivers.
		if r := idFault(f.v); r != "" {
			return invalid(join(field, f.name), r)
		}
	}
	if n != 1 {
		return invalid(field, required)
	}
	if ids.Email != "" && !strings.Contains(ids.Email, "@") {
		return invalid(join(field, "email"), "must be an email address")
	}
	if ids.Phone != "" && !isE164(ids.Phone) {
		return invalid(join(field, "phone"), `must be a phone number in E.164 form: "+" and up to 15 digits, like "+14155552671"`)
	}
	return nil
}

// isE164 reports whether s is "+" followed by 1 to 15 ASCII digits, the
// first not 0 (Customer.io: "a leading + followed by up to 15 digits").
func isE164(s string) bool {
	d, ok := strings.CutPrefix(s, "+")
	if !ok || len(d) < 1 || len(d) > 15 || d[0] == '0' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// checkObjectIdentifiers: object_type_id a positive integer string and
// object_id non-blank and at most 150 bytes, or cio_object_id alone
// (non-blank, at most 150 bytes); nothing else.
func checkObjectIdentifiers(field string, ids *Identifiers) error {
	const required = "object_type_id and object_id, or cio_object_id, are required"
	if ids == nil {
		return invalid(field, required)
	}
	if ids.ID != "" || ids.Email != "" || ids.Phone != "" || ids.CioID != "" || ids.AnonymousID != "" {
		return invalid(field, "must name an object by object_type_id and object_id, or by cio_object_id, only")
	}
	if ids.CioObjectID != "" {
		if ids.ObjectTypeID != "" || ids.ObjectID != "" {
			return invalid(field, "name the object by object_type_id and object_id or by cio_object_id, not both")
		}
		return checkID(join(field, "cio_object_id"), ids.CioObjectID)
	}
	if n, err := strconv.ParseUint(ids.ObjectTypeID, 10, 63); err != nil || n < 1 {
		return invalid(join(field, "object_type_id"), "must be a positive integer string")
	}
	return checkID(join(field, "object_id"), ids.ObjectID)
}
