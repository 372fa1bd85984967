package tasks

import "errors"

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
// dead-letter reason.
type DecodeError struct {
	// Type is the task type.
	Type string
	// Reason describes the problem, e.g. "malformed JSON at offset 12".
	Reason string
	// Err is ErrUnknownType, ErrUnsupportedVersion or ErrMalformed.
	Err error
}

// Error returns "tasks: decode <type>: <reason>".
func (e *DecodeError) Error() string { return "tasks: decode " + e.Type + ": " + e.Reason }

// Unwrap returns the sentinel cause.
func (e *DecodeError) Unwrap() error { return e.Err }

func malformed(typ, reason string) error {
	return &DecodeError{Type: typ, Reason: reason, Err: ErrMalformed}
}
