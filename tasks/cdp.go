package tasks

import (
	"time"

	"github.com/cioq/cioq/customerio"
)

// Pipelines (CDP) messages: Segment-spec calls to Customer.io Data Pipelines.
//
// The CDP types are defined as customerio.PipelinesMessage, and a defined
// type does not inherit methods: each declares MarshalJSON and UnmarshalJSON
// delegating to PipelinesMessage's, so Segment fields the struct does not
// name (sentAt, channel, ...) survive Decode and reach Customer.io.

// CDPIdentify is a Pipelines identify: a Segment-spec message (camelCase),
// userId or anonymousId required. The producer gives a message without a
// messageId a ULID.
type CDPIdentify customerio.PipelinesMessage

// TaskType returns TypeCDPIdentify.
func (CDPIdentify) TaskType() string { return TypeCDPIdentify }

// EventID returns the messageId (Deduplicated).
func (p CDPIdentify) EventID() string { return p.MessageID }

// EventIDField returns "messageId".
func (CDPIdentify) EventIDField() string { return "messageId" }

// WithEventID returns a copy of p with its messageId set to id.
func (p CDPIdentify) WithEventID(id string) Payload {
	p.MessageID = id
	return p
}

// Validate applies the client's rules for a Pipelines identify.
func (p CDPIdentify) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallIdentify)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPIdentify) MarshalJSON() ([]byte, error) {
	return customerio.PipelinesMessage(p).MarshalJSON()
}

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPIdentify) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPTrack is a Pipelines track: event required, plus userId or anonymousId.
type CDPTrack customerio.PipelinesMessage

// TaskType returns TypeCDPTrack.
func (CDPTrack) TaskType() string { return TypeCDPTrack }

// EventID returns the messageId (Deduplicated).
func (p CDPTrack) EventID() string { return p.MessageID }

// EventIDField returns "messageId".
func (CDPTrack) EventIDField() string { return "messageId" }

// WithEventID returns a copy of p with its messageId set to id.
func (p CDPTrack) WithEventID(id string) Payload {
	p.MessageID = id
	return p
}

// Validate applies the client's rules for a Pipelines track.
func (p CDPTrack) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallTrack)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPTrack) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPTrack) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPPage is a Pipelines page view.
type CDPPage customerio.PipelinesMessage

// TaskType returns TypeCDPPage.
func (CDPPage) TaskType() string { return TypeCDPPage }

// EventID returns the messageId (Deduplicated).
func (p CDPPage) EventID() string { return p.MessageID }

// EventIDField returns "messageId".
func (CDPPage) EventIDField() string { return "messageId" }

// WithEventID returns a copy of p with its messageId set to id.
func (p CDPPage) WithEventID(id string) Payload {
	p.MessageID = id
	return p
}

// Validate applies the client's rules for a Pipelines page.
func (p CDPPage) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallPage)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPPage) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPPage) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPScreen is a Pipelines screen view.
type CDPScreen customerio.PipelinesMessage

// TaskType returns TypeCDPScreen.
func (CDPScreen) TaskType() string { return TypeCDPScreen }

// EventID returns the messageId (Deduplicated).
func (p CDPScreen) EventID() string { return p.MessageID }

// EventIDField returns "messageId".
func (CDPScreen) EventIDField() string { return "messageId" }

// WithEventID returns a copy of p with its messageId set to id.
func (p CDPScreen) WithEventID(id string) Payload {
	p.MessageID = id
	return p
}

// Validate applies the client's rules for a Pipelines screen.
func (p CDPScreen) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallScreen)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPScreen) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPScreen) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPGroup is a Pipelines group: groupId required.
type CDPGroup customerio.PipelinesMessage

// TaskType returns TypeCDPGroup.
func (CDPGroup) TaskType() string { return TypeCDPGroup }

// EventID returns the messageId (Deduplicated).
func (p CDPGroup) EventID() string { return p.MessageID }

// EventIDField returns "messageId".
func (CDPGroup) EventIDField() string { return "messageId" }

// WithEventID returns a copy of p with its messageId set to id.
func (p CDPGroup) WithEventID(id string) Payload {
	p.MessageID = id
	return p
}

// Validate applies the client's rules for a Pipelines group.
func (p CDPGroup) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallGroup)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPGroup) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPGroup) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

// CDPAlias is a Pipelines alias: previousId and userId required.
type CDPAlias customerio.PipelinesMessage

// TaskType returns TypeCDPAlias.
func (CDPAlias) TaskType() string { return TypeCDPAlias }

// EventID returns the messageId (Deduplicated).
func (p CDPAlias) EventID() string { return p.MessageID }

// EventIDField returns "messageId".
func (CDPAlias) EventIDField() string { return "messageId" }

// WithEventID returns a copy of p with its messageId set to id.
func (p CDPAlias) WithEventID(id string) Payload {
	p.MessageID = id
	return p
}

// Validate applies the client's rules for a Pipelines alias.
func (p CDPAlias) Validate() error {
	return validateCDP(customerio.PipelinesMessage(p), customerio.CallAlias)
}

// MarshalJSON writes the message as [customerio.PipelinesMessage] does,
// its Extra fields included.
func (p CDPAlias) MarshalJSON() ([]byte, error) { return customerio.PipelinesMessage(p).MarshalJSON() }

// UnmarshalJSON reads the message as [customerio.PipelinesMessage] does,
// keeping unknown fields in Extra.
func (p *CDPAlias) UnmarshalJSON(b []byte) error {
	return (*customerio.PipelinesMessage)(p).UnmarshalJSON(b)
}

func validateCDP(m customerio.PipelinesMessage, call customerio.PipelinesCall) error {
	if m.Type != "" && m.Type != call {
		return invalid("type", "must be empty or "+string(call)+" for this task type")
	}
	return m.Validate(call)
}

// EventTimestamp returns the message's ISO-8601 timestamp (Timestamped).
func (p CDPIdentify) EventTimestamp() (int64, string) { return 0, p.Timestamp }

// WithEventTimestamp returns a copy of p with timestamp sec, as RFC 3339 UTC.
func (p CDPIdentify) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = rfc3339(sec)
	return p
}

// EventTimestamp returns the message's ISO-8601 timestamp (Timestamped).
func (p CDPTrack) EventTimestamp() (int64, string) { return 0, p.Timestamp }

// WithEventTimestamp returns a copy of p with timestamp sec, as RFC 3339 UTC.
func (p CDPTrack) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = rfc3339(sec)
	return p
}

// EventTimestamp returns the message's ISO-8601 timestamp (Timestamped).
func (p CDPPage) EventTimestamp() (int64, string) { return 0, p.Timestamp }

// WithEventTimestamp returns a copy of p with timestamp sec, as RFC 3339 UTC.
func (p CDPPage) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = rfc3339(sec)
	return p
}

// EventTimestamp returns the message's ISO-8601 timestamp (Timestamped).
func (p CDPScreen) EventTimestamp() (int64, string) { return 0, p.Timestamp }

// WithEventTimestamp returns a copy of p with timestamp sec, as RFC 3339 UTC.
func (p CDPScreen) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = rfc3339(sec)
	return p
}

// EventTimestamp returns the message's ISO-8601 timestamp (Timestamped).
func (p CDPGroup) EventTimestamp() (int64, string) { return 0, p.Timestamp }

// WithEventTimestamp returns a copy of p with timestamp sec, as RFC 3339 UTC.
func (p CDPGroup) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = rfc3339(sec)
	return p
}

// EventTimestamp returns the message's ISO-8601 timestamp (Timestamped).
func (p CDPAlias) EventTimestamp() (int64, string) { return 0, p.Timestamp }

// WithEventTimestamp returns a copy of p with timestamp sec, as RFC 3339 UTC.
func (p CDPAlias) WithEventTimestamp(sec int64) Payload {
	p.Timestamp = rfc3339(sec)
	return p
}

// AnonymousActor returns anonymousId when the message has no userId.
func (p CDPTrack) AnonymousActor() string { return anonymousActor(customerio.PipelinesMessage(p)) }

// AnonymousActor returns anonymousId when the message has no userId.
func (p CDPPage) AnonymousActor() string { return anonymousActor(customerio.PipelinesMessage(p)) }

// AnonymousActor returns anonymousId when the message has no userId.
func (p CDPScreen) AnonymousActor() string { return anonymousActor(customerio.PipelinesMessage(p)) }

// AttributeSet returns the person's traits (Attributed).
func (p CDPIdentify) AttributeSet() (string, string, map[string]any) { return "", "traits", p.Traits }

// WithAttributeSet returns a copy of p with traits attrs.
func (p CDPIdentify) WithAttributeSet(attrs map[string]any) Payload {
	p.Traits = attrs
	return p
}

// AnonymousMerge returns anonymousId and the userId person when the
// identify carries both (AnonymousMerger).
func (p CDPIdentify) AnonymousMerge() (string, customerio.Identifiers) {
	if p.UserID != "" && p.AnonymousID != "" {
		return p.AnonymousID, customerio.Identifiers{ID: p.UserID}
	}
	return "", customerio.Identifiers{}
}

// AttributeSet returns the group's object type (traits.objectTypeId,
// default "1") and its traits (Attributed).
func (p CDPGroup) AttributeSet() (string, string, map[string]any) {
	typ := "1"
	if s, ok := p.Traits["objectTypeId"].(string); ok && s != "" {
		typ = s
	}
	return typ, "traits", p.Traits
}

// WithAttributeSet returns a copy of p with traits attrs.
func (p CDPGroup) WithAttributeSet(attrs map[string]any) Payload {
	p.Traits = attrs
	return p
}

// AnonymousMerge returns previousId and the userId person: an alias merges
// the previous (often anonymous) id into the person (AnonymousMerger).
func (p CDPAlias) AnonymousMerge() (string, customerio.Identifiers) {
	if p.UserID != "" && p.PreviousID != "" {
		return p.PreviousID, customerio.Identifiers{ID: p.UserID}
	}
	return "", customerio.Identifiers{}
}

func anonymousActor(m customerio.PipelinesMessage) string {
	if m.UserID == "" {
		return m.AnonymousID
	}
	return ""
}

// rfc3339 writes a unix second as Pipelines timestamps are written.
func rfc3339(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }
