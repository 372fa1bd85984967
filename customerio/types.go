package customerio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
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

// EventType is the kind of a tracked event: a plain event, a page view or a
// screen view.
type EventType string

// Event types accepted by the Track API.
const (
	EventTypeEvent  EventType = "event"
	EventTypePage   EventType = "page"
	EventTypeScreen EventType = "screen"
)

// Event is the body of POST /api/v1/customers/{id}/events. For page views
// Name is the page URL or path; for screen views, the screen name.
type Event struct {
	Name string `json:"name"`
	// ID is a ULID; Customer.io drops an event whose id it has already seen.
	ID        string         `json:"id,omitempty"`
	Type      EventType      `json:"type,omitempty"`
	Timestamp int64          `json:"timestamp,omitempty"` // unix seconds
	Data      map[string]any `json:"data,omitempty"`
}

// AnonymousEvent is the body of POST /api/v1/events. With AnonymousID empty
// it is an invite event, which needs Data["recipient"].
type AnonymousEvent struct {
	AnonymousID string         `json:"anonymous_id,omitempty"`
	Name        string         `json:"name"`
	ID          string         `json:"id,omitempty"`
	Type        EventType      `json:"type,omitempty"`
	Timestamp   int64          `json:"timestamp,omitempty"`
	Data        map[string]any `json:"data,omitempty"`
}

// Device is a push device for PUT /api/v1/customers/{id}/devices (v1 names the
// token "id"). Attributes are strings per the API (device_os, app_version, ...).
type Device struct {
	ID         string            `json:"id"`
	Platform   string            `json:"platform"`
	LastUsed   int64             `json:"last_used,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// IDType says what the ids of a manual segment request are.
type IDType string

// Identifier types for segment membership requests and merges.
const (
	IDTypeID    IDType = "id"
	IDTypeEmail IDType = "email"
	IDTypeCioID IDType = "cio_id"
)

// ---- Track v2 ----

// EntityType is the "type" of a Track v2 operation.
type EntityType string

// Entity types of Track v2 operations.
const (
	EntityPerson   EntityType = "person"
	EntityObject   EntityType = "object"
	EntityDelivery EntityType = "delivery"
)

// Action is the "action" of a Track v2 operation.
type Action string

// Track v2 actions (see the action matrix in Customer.io's Track v2 docs).
const (
	ActionIdentify            Action = "identify"
	ActionIdentifyAnonymous   Action = "identify_anonymous"
	ActionDelete              Action = "delete"
	ActionEvent               Action = "event"
	ActionPage                Action = "page"
	ActionScreen              Action = "screen"
	ActionAddRelationships    Action = "add_relationships"
	ActionDeleteRelationships Action = "delete_relationships"
	ActionAddDevice           Action = "add_device"
	ActionDeleteDevice        Action = "delete_device"
	ActionMerge               Action = "merge"
	ActionSuppress            Action = "suppress"
	ActionUnsuppress          Action = "unsuppress"
)

// Relationship links a person and an object in cio_relationships. From a
// person it names the object (ObjectTypeID, ObjectID); from an object it names
// the person (ID, Email, CioID or AnonymousID).
type Relationship struct {
	Identifiers            Identifiers    `json:"identifiers"`
	RelationshipAttributes map[string]any `json:"relationship_attributes,omitempty"`
}

// V2Device is the device of a Track v2 add_device/delete_device operation.
type V2Device struct {
	Token      string            `json:"token"`
	Platform   string            `json:"platform,omitempty"`
	LastUsed   int64             `json:"last_used,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Operation is one Track v2 entity operation, sent alone to /api/v2/entity or
// as an item of /api/v2/batch. Which fields apply depends on Type and Action.
type Operation struct {
	Type          EntityType     `json:"type"`
	Action        Action         `json:"action"`
	Identifiers   *Identifiers   `json:"identifiers,omitempty"`
	Name          string         `json:"name,omitempty"`
	ID            string         `json:"id,omitempty"`
	Timestamp     int64          `json:"timestamp,omitempty"`
	Attributes    map[string]any `json:"attributes,omitempty"`
	Relationships []Relationship `json:"cio_relationships,omitempty"`
	Device        *V2Device      `json:"device,omitempty"`
	Primary       *Identifiers   `json:"primary,omitempty"`
	Secondary     *Identifiers   `json:"secondary,omitempty"`
}

// BatchItemError is Customer.io's report on one failed item of a v2 batch.
type BatchItemError struct {
	BatchIndex int    `json:"batch_index"`
	Reason     string `json:"reason,omitempty"`
	Field      string `json:"field,omitempty"`
	Message    string `json:"message,omitempty"`
}

// BatchResult is the outcome of a v2 batch that Customer.io accepted as a
// whole (200 or 207): the items it rejected, by batch_index. Items not listed
// were accepted.
type BatchResult struct {
	Errors []BatchItemError `json:"errors,omitempty"`
}

// ---- App API: transactional messages ----

// MessageID is a transactional message: a numeric template id or a trigger
// name. All-digit values are sent as JSON numbers (the documented integer id);
// others as strings. It decodes from either.
type MessageID string

// MarshalJSON writes an all-digit id as a number and anything else as a string.
func (m MessageID) MarshalJSON() ([]byte, error) {
	if m != "" {
		if _, err := strconv.ParseUint(string(m), 10, 63); err == nil {
			return []byte(m), nil
		}
	}
	return json.Marshal(string(m))
}

// UnmarshalJSON accepts a JSON number or string. Any other JSON value is a
// *json.UnmarshalTypeError naming its kind (never its contents), which
// encoding/json completes with the field.
func (m *MessageID) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*m = MessageID(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKindOf(b), Type: reflect.TypeFor[MessageID]()}
	}
	*m = MessageID(s)
	return nil
}

// jsonKindOf names the kind of a JSON value as encoding/json's
// UnmarshalTypeError.Value does: object, array, bool, string or number.
func jsonKindOf(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	}
	return "number"
}

// SendOptions are the fields every transactional send shares.
type SendOptions struct {
	TransactionalMessageID  MessageID      `json:"transactional_message_id,omitempty"`
	Identifiers             *Identifiers   `json:"identifiers,omitempty"`
	MessageData             map[string]any `json:"message_data,omitempty"`
	SendAt                  int64          `json:"send_at,omitempty"` // unix seconds, ≤ 90 days ahead
	DisableMessageRetention *bool          `json:"disable_message_retention,omitempty"`
	SendToUnsubscribed      *bool          `json:"send_to_unsubscribed,omitempty"`
	QueueDraft              *bool          `json:"queue_draft,omitempty"`
	Language                string         `json:"language,omitempty"`
	AutoCreate              *bool          `json:"auto_create,omitempty"`
}

// SendEmailRequest is the body of POST /v1/send/email.
type SendEmailRequest struct {
	SendOptions
	To                      string            `json:"to"`
	CC                      string            `json:"cc,omitempty"`
	BCC                     string            `json:"bcc,omitempty"`
	From                    string            `json:"from,omitempty"`
	ReplyTo                 string            `json:"reply_to,omitempty"`
	Subject                 string            `json:"subject,omitempty"`
	Preheader               string            `json:"preheader,omitempty"`
	Body                    string            `json:"body,omitempty"`
	BodyPlain               string            `json:"body_plain,omitempty"`
	BodyAMP                 string            `json:"body_amp,omitempty"`
	Headers                 map[string]string `json:"headers,omitempty"`
	Attachments             map[string]string `json:"attachments,omitempty"` // file name → base64 content
	FakeBCC                 *bool             `json:"fake_bcc,omitempty"`
	DisableCSSPreprocessing *bool             `json:"disable_css_preprocessing,omitempty"`
	Tracked                 *bool             `json:"tracked,omitempty"`
}

// PushDevice is the custom_device of a push send: upserted before sending.
type PushDevice struct {
	Token      string            `json:"token"`
	Platform   string            `json:"platform"`
	LastUsed   int64             `json:"last_used,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// SendPushRequest is the body of POST /v1/send/push.
type SendPushRequest struct {
	SendOptions
	To            string            `json:"to,omitempty"` // all (default), last_used, or a device token
	Title         string            `json:"title,omitempty"`
	Message       string            `json:"message,omitempty"`
	ImageURL      string            `json:"image_url,omitempty"`
	Link          string            `json:"link,omitempty"`
	Sound         string            `json:"sound,omitempty"`
	CustomData    map[string]string `json:"custom_data,omitempty"`
	CustomPayload map[string]any    `json:"custom_payload,omitempty"`
	CustomDevice  *PushDevice       `json:"custom_device,omitempty"`
}

// SendSMSRequest is the body of POST /v1/send/sms.
type SendSMSRequest struct {
	SendOptions
	To      string `json:"to"`
	From    string `json:"from,omitempty"`
	Tracked *bool  `json:"tracked,omitempty"`
}

// SendWhatsAppRequest is the body of POST /v1/send/whatsapp.
type SendWhatsAppRequest struct {
	SendOptions
	To   string `json:"to"`
	From string `json:"from,omitempty"`
}

// SendInAppRequest is the body of POST /v1/send/in_app.
type SendInAppRequest struct {
	SendOptions
}

// SendInboxRequest is the body of POST /v1/send/inbox_message.
type SendInboxRequest struct {
	SendOptions
	To string `json:"to,omitempty"`
}

// SendResponse is Customer.io's answer to a transactional send.
type SendResponse struct {
	DeliveryID string `json:"delivery_id"`
	QueuedAt   int64  `json:"queued_at"`
	SendAt     int64  `json:"send_at,omitempty"`
}

// ---- App API: API-triggered broadcasts ----

// RecipientFilter is a broadcast audience filter: exactly one of its fields.
type RecipientFilter struct {
	And       []RecipientFilter `json:"and,omitempty"`
	Or        []RecipientFilter `json:"or,omitempty"`
	Not       *RecipientFilter  `json:"not,omitempty"`
	Segment   *SegmentRef       `json:"segment,omitempty"`
	Attribute *AttributeFilter  `json:"attribute,omitempty"`
}

// SegmentRef names a segment in a recipient filter.
type SegmentRef struct {
	ID int `json:"id"`
}

// AttributeFilter matches people by an attribute: operator "eq" (with Value)
// or "exists".
type AttributeFilter struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    any    `json:"value,omitempty"`
}

// PerUserData is one row of a broadcast's per_user_data: ID or Email, and the
// data for that person's message.
type PerUserData struct {
	ID    string         `json:"id,omitempty"`
	Email string         `json:"email,omitempty"`
	Data  map[string]any `json:"data,omitempty"`
}

// TriggerBroadcastRequest is the body of POST /v1/campaigns/{id}/triggers. At
// most one recipient shape (Recipients, Emails, IDs, PerUserData, DataFileURL)
// is set; none means the broadcast's default audience. Only the flags that
// belong to the chosen shape may be set: ids → IDIgnoreMissing; emails →
// EmailIgnoreMissing, EmailAddDuplicates; per_user_data and data_file_url → all.
type TriggerBroadcastRequest struct {
	Data               map[string]any   `json:"data,omitempty"`
	Recipients         *RecipientFilter `json:"recipients,omitempty"`
	Emails             []string         `json:"emails,omitempty"`
	IDs                []string         `json:"ids,omitempty"`
	PerUserData        []PerUserData    `json:"per_user_data,omitempty"`
	DataFileURL        string           `json:"data_file_url,omitempty"`
	IDIgnoreMissing    bool             `json:"id_ignore_missing,omitempty"`
	EmailIgnoreMissing bool             `json:"email_ignore_missing,omitempty"`
	EmailAddDuplicates bool             `json:"email_add_duplicates,omitempty"`
}

// BroadcastTrigger is Customer.io's answer to a trigger: the trigger id.
type BroadcastTrigger struct {
	ID int `json:"id"`
}

// TriggerStatus is a broadcast trigger's state.
type TriggerStatus struct {
	ID          int   `json:"id"`
	BroadcastID int   `json:"broadcast_id"`
	CreatedAt   int64 `json:"created_at"`
	ProcessedAt int64 `json:"processed_at,omitempty"`
}

// TriggerErrors is one page of a trigger's errors. Next is the start offset of
// the following page.
type TriggerErrors struct {
	Errors []string `json:"errors"`
	Next   int      `json:"next,omitempty"`
}

// ---- Pipelines (CDP) ----

// PipelinesCall is the kind of a Pipelines API call.
type PipelinesCall string

// Pipelines calls; each is also the "type" of a batch item.
const (
	CallIdentify PipelinesCall = "identify"
	CallTrack    PipelinesCall = "track"
	CallPage     PipelinesCall = "page"
	CallScreen   PipelinesCall = "screen"
	CallGroup    PipelinesCall = "group"
	CallAlias    PipelinesCall = "alias"
)

// PipelinesMessage is a Segment-spec message for Customer.io's Pipelines API
// (camelCase fields). Type is implicit in the route and required in batches.
// Timestamp is ISO-8601.
//
// Fields the struct does not name (sentAt, originalTimestamp, receivedAt,
// channel, version, ...) are kept in Extra by UnmarshalJSON and written back
// by MarshalJSON, so a message decoded and re-encoded reaches Customer.io
// whole. The client's limits (32,000 bytes per message, 500,000 per batch)
// count them.
type PipelinesMessage struct {
	Type         PipelinesCall  `json:"type,omitempty"`
	UserID       string         `json:"userId,omitempty"`
	AnonymousID  string         `json:"anonymousId,omitempty"`
	MessageID    string         `json:"messageId,omitempty"`
	Timestamp    string         `json:"timestamp,omitempty"`
	Context      map[string]any `json:"context,omitempty"`
	Integrations map[string]any `json:"integrations,omitempty"`
	Traits       map[string]any `json:"traits,omitempty"`
	Event        string         `json:"event,omitempty"`
	Properties   map[string]any `json:"properties,omitempty"`
	Name         string         `json:"name,omitempty"`
	Category     string         `json:"category,omitempty"`
	GroupID      string         `json:"groupId,omitempty"`
	PreviousID   string         `json:"previousId,omitempty"`
	// Extra holds the message's other top-level fields, by JSON name, as
	// raw JSON values. MarshalJSON writes them after the named fields in
	// key order; a key that names one of the fields above (compared as
	// encoding/json does, ignoring case) is never written from Extra: the
	// field wins. A nil or empty value is written as null.
	Extra map[string]json.RawMessage `json:"-"`
}

// pipelinesFields is PipelinesMessage without its methods.
type pipelinesFields PipelinesMessage

// pipelinesKnown are the JSON names of PipelinesMessage's named fields.
var pipelinesKnown = []string{
	"type", "userId", "anonymousId", "messageId", "timestamp", "context", "integrations",
	"traits", "event", "properties", "name", "category", "groupId", "previousId",
}

func isPipelinesKnown(key string) bool {
	for _, k := range pipelinesKnown {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// MarshalJSON writes the named fields as tagged, then the Extra fields in
// key order (see Extra).
func (m PipelinesMessage) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(pipelinesFields(m))
	if err != nil || len(m.Extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		if !isPipelinesKnown(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return b, nil
	}
	sort.Strings(keys)
	b = b[:len(b)-1] // drop '}'
	for _, k := range keys {
		if len(b) > 1 {
			b = append(b, ',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b = append(b, kb...)
		b = append(b, ':')
		v := m.Extra[k]
		switch {
		case len(v) == 0:
			b = append(b, "null"...)
		case !json.Valid(v):
			return nil, fmt.Errorf("customerio: pipelines message field %s: invalid JSON value", strconv.Quote(k))
		default:
			b = append(b, v...)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the named fields and keeps every other top-level
// field in Extra (nil when there is none). It replaces all of m; JSON null
// leaves m unchanged.
func (m *PipelinesMessage) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var f pipelinesFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k, v := range all {
		if isPipelinesKnown(k) {
			continue
		}
		if f.Extra == nil {
			f.Extra = make(map[string]json.RawMessage)
		}
		f.Extra[k] = v
	}
	*m = PipelinesMessage(f)
	return nil
}
