package tasks

import (
	"errors"
	"strconv"
)

// Sentinel causes of a *DecodeError, for errors.Is.
var (
	// ErrUnknownType: no payload is registered for the task type.
	ErrUnknownType = errors.New("unknown task type")
	// ErrUnsupportedVersion: the envelope is newer than this build reads.
	ErrUnsupportedVersion = errors.New("unsupported envelope version")
	// ErrMalformed: the bytes are not a valid envelope or payload.
	ErrMalformed = errors.New("malformed task")
)

// DecodeError says why a task's bytes could not be read. Its text never
// contains the bytes themselves, so it can be logged and stored as the
// dead-letter reason: a value found in the wrong type is named by its kind
// (a number by its digits only where a number is expected; see
// DescribeJSONError).
type DecodeError struct {
	// Type is the task type.
	Type string
	// Field is the JSON path of the offending value in the bytes as they
	// were written: "timestamp" or "per_user_data[1].id" in a bare
	// payload, "payload.timestamp" or "expires_at" in an envelope. ""
	// when the problem is not one field's (malformed JSON, an unknown
	// type, a newer envelope version).
	Field string
	// Reason describes the problem: "must be an integer, got 1.5", "is
	// not valid UTF-8", "malformed JSON at offset 12".
	Reason string
	// Err is ErrUnknownType, ErrUnsupportedVersion or ErrMalformed.
	Err error
}

// Error returns "tasks: decode <type>: invalid field "<field>": <reason>",
// or "tasks: decode <type>: <reason>" when Field is "".
func (e *DecodeError) Error() string {
	if e.Field != "" {
		return "tasks: decode " + e.Type + ": invalid field " + strconv.Quote(e.Field) + ": " + e.Reason
	}
	return "tasks: decode " + e.Type + ": " + e.Reason
}

// Unwrap returns the sentinel cause.
func (e *DecodeError) Unwrap() error { return e.Err }

func malformed(typ, reason string) error {
	return &DecodeError{Type: typ, Reason: reason, Err: ErrMalformed}
}

func malformedField(typ, field, reason string) error {
	return &DecodeError{Type: typ, Field: field, Reason: reason, Err: ErrMalformed}
}
