package customerio

import (
	"strconv"
	"time"
)

// Documented limits (Customer.io's Track, App and Pipelines API references
// and its "Invalid API requests" page), checked before anything is sent. Where
// Customer.io says "KB" the client assumes the stricter decimal reading.
const (
	MaxIDBytes             = 150       // person id, object id, identifier values
	MaxAttributeNameBytes  = 150       // attribute names
	MaxAttributeValueBytes = 1000      // attribute values (strings: bytes; others: JSON bytes)
	MaxAttributes          = 300       // attributes per identify call
	MaxEventNameBytes      = 100       // event names
	MaxEventDataBytes      = 100_000   // encoded event data
	MaxEntityBytes         = 32_000    // a Track v2 operation, encoded (< 32 KB); a Pipelines message
	MaxBatchBytes          = 500_000   // a Track v2 or Pipelines batch request, encoded (< 500 KB)
	MaxSegmentIDs          = 1000      // ids per manual segment request (the client splits longer lists)
	MaxEmailRecipients     = 15        // across to, cc and bcc
	MaxAttachmentBytes     = 2_000_000 // total base64 content of an email's attachments (< 2 MB)
	MaxSendAhead           = 90 * 24 * time.Hour
	MaxBroadcastRecipients = 10_000 // broadcast ids or per_user_data rows
)

// ValidationError is a request refused by the client before it was sent,
// because it breaks a documented rule or limit. Its text names the field and
// the rule, never the value.
type ValidationError struct {
	Field  string // wire path of the offending field, e.g. "identifiers", "data", "attributes.plan", "ids"
	Reason string // e.g. "must be at most 150 bytes", "exactly one of id, email, cio_id is required"
}

// Error returns "customerio: <field>: <reason>".
func (e *ValidationError) Error() string {
	return "customerio: " + e.Field + ": " + e.Reason
}

func invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

func idx(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }
