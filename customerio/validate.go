package customerio

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Documented limits (contract §9), checked before anything is sent. Where
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

// encodedSize is the size of v's JSON encoding (encodeJSON's); -1 when it
// cannot be encoded. Plain JSON values are measured without encoding
// (jsonSize); anything else is encoded into a pooled buffer.
func encodedSize(v any) int {
	if n, ok := jsonSize(v, 0); ok {
		return n
	}
	jb := getJSONBuf()
	defer putJSONBuf(jb)
	if err := jb.enc.Encode(v); err != nil {
		return -1
	}
	return jb.buf.Len() - 1 // the Encoder's newline
}

// checkEncoded refuses a value that cannot be encoded or whose encoding is
// not below limit bytes (strict) or above it.
func checkEncoded(field string, v any, limit int, strict bool, reason string) error {
	n := encodedSize(v)
	if n < 0 {
		return invalid(field, "cannot be encoded as JSON")
	}
	if n > limit || strict && n == limit {
		return invalid(field, reason)
	}
	return nil
}

// checkEventName: non-blank after trimming, at most 100 bytes.
func checkEventName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid(field, "must not be blank")
	}
	if len(name) > MaxEventNameBytes {
		return invalid(field, "must be at most 100 bytes")
	}
	return nil
}

// checkULID accepts "" or 26 Crockford base32 characters.
func checkULID(field, id string) error {
	if id == "" {
		return nil
	}
	if len(id) != 26 || id[0] > '7' {
		return invalid(field, "must be a ULID")
	}
	for i := 0; i < len(id); i++ {
		c := id[i] | 0x20 // lower-case letters
		if !(id[i] >= '0' && id[i] <= '9' || c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u') {
			return invalid(field, "must be a ULID")
		}
	}
	return nil
}

func checkEventType(field string, t EventType) error {
	switch t {
	case "", EventTypeEvent, EventTypePage, EventTypeScreen:
		return nil
	}
	return invalid(field, `must be "event", "page" or "screen"`)
}

func checkEventData(field string, data map[string]any) error {
	if data == nil {
		return nil
	}
	return checkEncoded(field, data, MaxEventDataBytes, false, "must be at most 100000 bytes encoded")
}

// Validate checks a person's event: name non-blank and at most 100 bytes,
// type event|page|screen, id a ULID when set, timestamp not negative, data
// at most 100,000 bytes encoded.
func (e Event) Validate() error {
	if err := checkEventName("name", e.Name); err != nil {
		return err
	}
	if err := checkEventType("type", e.Type); err != nil {
		return err
	}
	if err := checkULID("id", e.ID); err != nil {
		return err
	}
	if e.Timestamp < 0 {
		return invalid("timestamp", "must not be negative")
	}
	return checkEventData("data", e.Data)
}

// Validate checks an anonymous event like Event.Validate; anonymous_id is at
// most 150 bytes, and an invite event (no anonymous_id) needs a non-blank
// data.recipient.
func (e AnonymousEvent) Validate() error {
	if err := (Event{Name: e.Name, ID: e.ID, Type: e.Type, Timestamp: e.Timestamp, Data: e.Data}).Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(e.AnonymousID) == "" {
		if r, _ := e.Data["recipient"].(string); strings.TrimSpace(r) == "" {
			return invalid("data.recipient", "is required for an invite event (no anonymous_id)")
		}
		return nil
	}
	return checkID("anonymous_id", e.AnonymousID)
}

func checkPlatform(field, p string) error {
	switch p {
	case "ios", "android":
		return nil
	}
	return invalid(field, `must be "ios" or "android"`)
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

// Validate checks a v1 device: a non-blank token (id; no length is
// documented), platform ios or android, last_used not negative, and string
// attributes within the attribute limits.
func (d Device) Validate() error {
	if strings.TrimSpace(d.ID) == "" {
		return invalid("device.id", "is required")
	}
	if err := checkPlatform("device.platform", d.Platform); err != nil {
		return err
	}
	if d.LastUsed < 0 {
		return invalid("device.last_used", "must not be negative")
	}
	return checkStringAttributes("device.attributes", d.Attributes)
}

// ValidateSegmentIDs checks the ids of a manual segment request: at least
// one, each non-blank and at most 150 bytes. Lists longer than 1000 are not
// refused: the client splits them.
func ValidateSegmentIDs(field string, ids []string) error {
	if len(ids) == 0 {
		return invalid(field, "at least one id is required")
	}
	for i, id := range ids {
		if err := checkID(idx(field, i), id); err != nil {
			return err
		}
	}
	return nil
}

func checkIDType(field string, t IDType) error {
	switch t {
	case "", IDTypeID, IDTypeEmail, IDTypeCioID:
		return nil
	}
	return invalid(field, `must be "id", "email" or "cio_id"`)
}

// ---- Track v2 ----

// actionMatrix lists the actions each entity type accepts (contract §4.2).
var actionMatrix = map[EntityType]map[Action]bool{
	EntityPerson: {
		ActionIdentify: true, ActionDelete: true, ActionEvent: true, ActionScreen: true, ActionPage: true,
		ActionAddRelationships: true, ActionDeleteRelationships: true, ActionAddDevice: true,
		ActionDeleteDevice: true, ActionMerge: true, ActionSuppress: true, ActionUnsuppress: true,
	},
	EntityObject: {
		ActionIdentify: true, ActionIdentifyAnonymous: true, ActionDelete: true,
		ActionAddRelationships: true, ActionDeleteRelationships: true,
	},
	EntityDelivery: {ActionEvent: true},
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

// Validate checks a Track v2 operation: the entity type and the action
// matrix, the identifiers each needs (exactly one person identifier;
// object_type_id + object_id for objects; a delivery id), the fields each
// action needs, the attribute and event limits, and an encoded size below
// 32,000 bytes.
func (o Operation) Validate() error { return o.validate("") }

func (o Operation) validate(p string) error {
	if err := o.validateFields(p); err != nil {
		return err
	}
	field := p
	if field == "" {
		field = "operation"
	}
	return checkEncoded(field, o, MaxEntityBytes, true, tooLarge)
}

// validateFields is Validate without the size limit.
func (o Operation) validateFields(p string) error {
	actions, ok := actionMatrix[o.Type]
	if !ok {
		return invalid(join(p, "type"), `must be "person", "object" or "delivery"`)
	}
	if !actions[o.Action] {
		return invalid(join(p, "action"), "is not an action of this entity type")
	}
	if o.Action != ActionMerge && (o.Primary != nil || o.Secondary != nil) {
		return invalid(join(p, "primary"), "is only for merge")
	}
	switch o.Type {
	case EntityPerson:
		if o.Action == ActionMerge {
			if o.Identifiers != nil {
				return invalid(join(p, "identifiers"), "must be empty for merge (use primary and secondary)")
			}
			if err := ValidatePersonIdentifiers(join(p, "primary"), o.Primary); err != nil {
				return err
			}
			if err := ValidatePersonIdentifiers(join(p, "secondary"), o.Secondary); err != nil {
				return err
			}
			break
		}
		if err := ValidatePersonIdentifiers(join(p, "identifiers"), o.Identifiers); err != nil {
			return err
		}
	case EntityObject:
		if err := checkObjectIdentifiers(join(p, "identifiers"), o.Identifiers); err != nil {
			return err
		}
	case EntityDelivery:
		if o.Identifiers == nil || o.Identifiers.Email != "" || o.Identifiers.CioID != "" || o.Identifiers.AnonymousID != "" ||
			o.Identifiers.ObjectTypeID != "" || o.Identifiers.ObjectID != "" {
			return invalid(join(p, "identifiers"), "must be the delivery id only")
		}
		if err := checkID(join(p, "identifiers.id"), o.Identifiers.ID); err != nil {
			return err
		}
		if s, _ := o.Attributes["device_token"].(string); strings.TrimSpace(s) == "" {
			return invalid(join(p, "attributes.device_token"), "is required for a delivery event")
		}
	}
	switch o.Action {
	case ActionEvent, ActionPage, ActionScreen:
		if err := checkEventName(join(p, "name"), o.Name); err != nil {
			return err
		}
		if err := checkULID(join(p, "id"), o.ID); err != nil {
			return err
		}
		if err := checkEventData(join(p, "attributes"), o.Attributes); err != nil {
			return err
		}
	case ActionIdentify:
		if err := ValidateAttributes(join(p, "attributes"), o.Attributes); err != nil {
			return err
		}
	case ActionAddDevice, ActionDeleteDevice:
		if o.Device == nil || strings.TrimSpace(o.Device.Token) == "" {
			return invalid(join(p, "device.token"), "is required")
		}
		if o.Action == ActionAddDevice {
			if err := checkPlatform(join(p, "device.platform"), o.Device.Platform); err != nil {
				return err
			}
			if err := checkStringAttributes(join(p, "device.attributes"), o.Device.Attributes); err != nil {
				return err
			}
		}
	case ActionAddRelationships, ActionDeleteRelationships, ActionIdentifyAnonymous:
		if len(o.Relationships) == 0 {
			return invalid(join(p, "cio_relationships"), "at least one relationship is required")
		}
	}
	if o.Timestamp < 0 {
		return invalid(join(p, "timestamp"), "must not be negative")
	}
	for i, r := range o.Relationships {
		f := idx(join(p, "cio_relationships"), i) + ".identifiers"
		var err error
		switch {
		case o.Action == ActionIdentifyAnonymous:
			if r.Identifiers.AnonymousID == "" || r.Identifiers.ID != "" || r.Identifiers.Email != "" || r.Identifiers.CioID != "" ||
				r.Identifiers.ObjectTypeID != "" || r.Identifiers.ObjectID != "" {
				err = invalid(f, "must be an anonymous_id only")
			} else {
				err = checkID(f+".anonymous_id", r.Identifiers.AnonymousID)
			}
		case o.Type == EntityPerson:
			err = checkObjectIdentifiers(f, &r.Identifiers)
		default:
			err = ValidatePersonIdentifiers(f, &r.Identifiers)
		}
		if err != nil {
			return err
		}
		if err := ValidateAttributes(idx(join(p, "cio_relationships"), i)+".relationship_attributes", r.RelationshipAttributes); err != nil {
			return err
		}
	}
	return nil
}

// ValidateBatch checks a Track v2 batch: at least one operation, each valid
// (fields are reported as "batch[i].<field>"), and the encoded request
// {"batch":[...]} below 500,000 bytes.
func ValidateBatch(ops []Operation) error {
	if len(ops) == 0 {
		return invalid("batch", "at least one operation is required")
	}
	for i, o := range ops {
		if err := o.validate(idx("batch", i)); err != nil {
			return err
		}
	}
	return checkEncoded("batch", batchBody{ops}, MaxBatchBytes, true, "must be less than 500000 bytes encoded")
}

type batchBody struct {
	Batch []Operation `json:"batch"`
}

// ---- App API ----

// sendRules says which common fields a channel requires.
type sendRules struct {
	identifiers bool // identifiers required (validated whenever set)
	messageID   bool // transactional_message_id required
}

func (s *SendOptions) validate(r sendRules, now time.Time) error {
	if r.identifiers || s.Identifiers != nil {
		if err := ValidatePersonIdentifiers("identifiers", s.Identifiers); err != nil {
			return err
		}
	}
	if r.messageID && strings.TrimSpace(string(s.TransactionalMessageID)) == "" {
		return invalid("transactional_message_id", "is required")
	}
	if s.SendAt < 0 {
		return invalid("send_at", "must not be negative")
	}
	if s.SendAt > 0 && time.Unix(s.SendAt, 0).After(now.Add(MaxSendAhead)) {
		return invalid("send_at", "must be at most 90 days ahead")
	}
	if s.MessageData != nil && encodedSize(s.MessageData) < 0 {
		return invalid("message_data", "cannot be encoded as JSON")
	}
	return nil
}

// countRecipients counts the comma-separated addresses of a to/cc/bcc field,
// ignoring commas inside quoted display names and angle brackets.
func countRecipients(s string) int {
	n, inQuote, inAngle, has := 0, false, false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == '<' && !inQuote:
			inAngle = true
		case r == '>' && !inQuote:
			inAngle = false
		case r == ',' && !inQuote && !inAngle:
			if has {
				n++
			}
			has = false
			continue
		}
		if r != ' ' && r != '\t' {
			has = true
		}
	}
	if has {
		n++
	}
	return n
}

// Validate checks a transactional email: to is required; identifiers, when
// set, name exactly one person; at most 15 recipients across to, cc and bcc;
// attachment names with an extension and valid base64 content, at most
// 2,000,000 bytes in total; send_at at most 90 days ahead.
func (r *SendEmailRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	if err := r.SendOptions.validate(sendRules{}, time.Now()); err != nil {
		return err
	}
	if strings.TrimSpace(r.To) == "" {
		return invalid("to", "is required")
	}
	if countRecipients(r.To)+countRecipients(r.CC)+countRecipients(r.BCC) > MaxEmailRecipients {
		return invalid("to", "at most 15 recipients across to, cc and bcc")
	}
	total := 0
	for name, content := range r.Attachments {
		ext := path.Ext(name)
		if strings.TrimSpace(name) == "" || len(ext) < 2 || strings.ContainsAny(name, "/\\") {
			return invalid("attachments", "file names must have an extension")
		}
		if _, err := base64.StdEncoding.DecodeString(content); err != nil {
			return invalid("attachments", "content must be standard base64")
		}
		total += len(content)
	}
	if total > MaxAttachmentBytes {
		return invalid("attachments", "must total at most 2000000 bytes")
	}
	return nil
}

// Validate checks a transactional push: identifiers (exactly one) and
// transactional_message_id are required; a custom_device needs a token and
// an ios/android platform; send_at at most 90 days ahead.
func (r *SendPushRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	if err := r.SendOptions.validate(sendRules{identifiers: true, messageID: true}, time.Now()); err != nil {
		return err
	}
	if d := r.CustomDevice; d != nil {
		if strings.TrimSpace(d.Token) == "" {
			return invalid("custom_device.token", "is required")
		}
		if err := checkPlatform("custom_device.platform", d.Platform); err != nil {
			return err
		}
		if err := checkStringAttributes("custom_device.attributes", d.Attributes); err != nil {
			return err
		}
	}
	if r.CustomPayload != nil && encodedSize(r.CustomPayload) < 0 {
		return invalid("custom_payload", "cannot be encoded as JSON")
	}
	return nil
}

// Validate checks a transactional SMS: identifiers (exactly one),
// transactional_message_id and to are required; send_at at most 90 days
// ahead.
func (r *SendSMSRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return validateMessageTo(&r.SendOptions, r.To)
}

// Validate checks a transactional WhatsApp message like an SMS.
func (r *SendWhatsAppRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return validateMessageTo(&r.SendOptions, r.To)
}

// validateMessageTo checks a send addressed to a phone number (SMS,
// WhatsApp): identifiers and transactional_message_id required, send_at at
// most 90 days ahead, a non-blank to.
func validateMessageTo(o *SendOptions, to string) error {
	if err := o.validate(sendRules{identifiers: true, messageID: true}, time.Now()); err != nil {
		return err
	}
	if strings.TrimSpace(to) == "" {
		return invalid("to", "is required")
	}
	return nil
}

// Validate checks a transactional in-app message: identifiers (exactly one)
// and transactional_message_id are required; send_at at most 90 days ahead.
func (r *SendInAppRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return r.SendOptions.validate(sendRules{identifiers: true, messageID: true}, time.Now())
}

// Validate checks a transactional inbox message like an in-app message.
func (r *SendInboxRequest) Validate() error {
	if r == nil {
		return invalid("body", "is required")
	}
	return r.SendOptions.validate(sendRules{identifiers: true, messageID: true}, time.Now())
}

// Validate checks an API-triggered broadcast: at most one recipient shape
// (none means the default audience), only the flags of that shape (ids:
// id_ignore_missing; emails: email_ignore_missing, email_add_duplicates;
// per_user_data and data_file_url: all three; default audience and a
// recipients filter: none), at most 10,000 ids or per_user_data rows, each
// row naming exactly one of id or email, a well-formed recipients filter and
// an absolute http(s) data_file_url.
func (r *TriggerBroadcastRequest) Validate() error {
	if r == nil {
		return nil // the default audience with no data
	}
	shapes := 0
	var shape string
	if r.Recipients != nil {
		shapes, shape = shapes+1, "recipients"
	}
	if r.Emails != nil {
		shapes, shape = shapes+1, "emails"
	}
	if r.IDs != nil {
		shapes, shape = shapes+1, "ids"
	}
	if r.PerUserData != nil {
		shapes, shape = shapes+1, "per_user_data"
	}
	if r.DataFileURL != "" {
		shapes, shape = shapes+1, "data_file_url"
	}
	if shapes > 1 {
		return invalid("recipients", "at most one of recipients, emails, ids, per_user_data, data_file_url may be set")
	}
	allowed := map[string]bool{}
	switch shape {
	case "ids":
		allowed["id_ignore_missing"] = true
	case "emails":
		allowed["email_ignore_missing"], allowed["email_add_duplicates"] = true, true
	case "per_user_data", "data_file_url":
		allowed["id_ignore_missing"], allowed["email_ignore_missing"], allowed["email_add_duplicates"] = true, true, true
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"id_ignore_missing", r.IDIgnoreMissing}, {"email_ignore_missing", r.EmailIgnoreMissing}, {"email_add_duplicates", r.EmailAddDuplicates}} {
		if f.set && !allowed[f.name] {
			if shape == "" {
				shape = "the default audience"
			}
			return invalid(f.name, "does not apply to "+shape)
		}
	}
	switch shape {
	case "recipients":
		if err := checkFilter("recipients", r.Recipients, 0); err != nil {
			return err
		}
	case "emails":
		if len(r.Emails) == 0 {
			return invalid("emails", "at least one email is required")
		}
		for i, e := range r.Emails {
			if strings.TrimSpace(e) == "" || !strings.Contains(e, "@") {
				return invalid(idx("emails", i), "must be an email address")
			}
		}
	case "ids":
		if len(r.IDs) == 0 {
			return invalid("ids", "at least one id is required")
		}
		if len(r.IDs) > MaxBroadcastRecipients {
			return invalid("ids", "at most 10000 ids")
		}
		for i, id := range r.IDs {
			if err := checkID(idx("ids", i), id); err != nil {
				return err
			}
		}
	case "per_user_data":
		if len(r.PerUserData) == 0 {
			return invalid("per_user_data", "at least one row is required")
		}
		if len(r.PerUserData) > MaxBroadcastRecipients {
			return invalid("per_user_data", "at most 10000 rows")
		}
		for i, row := range r.PerUserData {
			f := idx("per_user_data", i)
			if (row.ID == "") == (row.Email == "") {
				return invalid(f, "exactly one of id, email is required")
			}
			if err := checkID(f, row.ID+row.Email); err != nil {
				return err
			}
		}
	case "data_file_url":
		u, err := url.Parse(r.DataFileURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("data_file_url", "must be an absolute http or https URL")
		}
	}
	if r.Data != nil && encodedSize(r.Data) < 0 {
		return invalid("data", "cannot be encoded as JSON")
	}
	return nil
}

// checkFilter: exactly one key per level; and/or non-empty; segment id > 0;
// attribute field set, operator eq (with a value) or exists.
func checkFilter(field string, f *RecipientFilter, depth int) error {
	if f == nil {
		return invalid(field, "exactly one of and, or, not, segment, attribute is required")
	}
	if depth > 20 {
		return invalid(field, "is nested too deeply")
	}
	n := 0
	for _, set := range []bool{f.And != nil, f.Or != nil, f.Not != nil, f.Segment != nil, f.Attribute != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalid(field, "exactly one of and, or, not, segment, attribute is required")
	}
	switch {
	case f.And != nil || f.Or != nil:
		list, name := f.And, "and"
		if f.Or != nil {
			list, name = f.Or, "or"
		}
		if len(list) == 0 {
			return invalid(join(field, name), "at least one filter is required")
		}
		for i := range list {
			if err := checkFilter(idx(join(field, name), i), &list[i], depth+1); err != nil {
				return err
			}
		}
	case f.Not != nil:
		return checkFilter(join(field, "not"), f.Not, depth+1)
	case f.Segment != nil:
		if f.Segment.ID < 1 {
			return invalid(join(field, "segment.id"), "must be a positive segment id")
		}
	case f.Attribute != nil:
		a := f.Attribute
		if strings.TrimSpace(a.Field) == "" {
			return invalid(join(field, "attribute.field"), "is required")
		}
		switch a.Operator {
		case "eq":
			if a.Value == nil {
				return invalid(join(field, "attribute.value"), `is required with operator "eq"`)
			}
		case "exists":
		default:
			return invalid(join(field, "attribute.operator"), `must be "eq" or "exists"`)
		}
	}
	return nil
}

// ---- Pipelines ----

func checkCall(field string, call PipelinesCall) error {
	switch call {
	case CallIdentify, CallTrack, CallPage, CallScreen, CallGroup, CallAlias:
		return nil
	}
	return invalid(field, "must be identify, track, page, screen, group or alias")
}

// Validate checks a Pipelines message for call: type empty or equal to
// call; userId or anonymousId (alias: userId and previousId); track needs
// event, group needs groupId; encoded size at most 32,000 bytes (Pipelines'
// limit per message: a larger one is refused naming the top-level field that
// takes the most room, e.g. "properties").
func (m PipelinesMessage) Validate(call PipelinesCall) error { return m.validate("", call) }

func (m PipelinesMessage) validate(p string, call PipelinesCall) error {
	if err := checkCall(join(p, "type"), call); err != nil {
		return err
	}
	if m.Type != "" && m.Type != call {
		return invalid(join(p, "type"), "does not match the call")
	}
	switch call {
	case CallAlias:
		if strings.TrimSpace(m.UserID) == "" {
			return invalid(join(p, "userId"), "is required")
		}
		if strings.TrimSpace(m.PreviousID) == "" {
			return invalid(join(p, "previousId"), "is required")
		}
	default:
		if strings.TrimSpace(m.UserID) == "" && strings.TrimSpace(m.AnonymousID) == "" {
			if call == CallTrack && m.GroupID != "" {
				break // a group-level track event
			}
			return invalid(join(p, "userId"), "userId or anonymousId is required")
		}
	}
	switch call {
	case CallTrack:
		if strings.TrimSpace(m.Event) == "" {
			return invalid(join(p, "event"), "is required")
		}
	case CallGroup:
		if strings.TrimSpace(m.GroupID) == "" {
			return invalid(join(p, "groupId"), "is required")
		}
	}
	n := encodedSize(m)
	if n < 0 {
		return invalid(join(p, "message"), "cannot be encoded as JSON")
	}
	if n > MaxEntityBytes {
		return invalid(join(p, largestField(m)), "makes the message "+strconv.Itoa(n)+" bytes encoded; a Pipelines message must be at most 32000")
	}
	return nil
}

// largestField returns the name of the top-level field that takes the most
// room in m's encoding (as the message spells it, e.g. "properties"), to
// name it when the message is too large; "message" if there is none.
func largestField(m PipelinesMessage) string {
	b, err := m.MarshalJSON()
	if err != nil {
		return "message"
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return "message"
	}
	name, size := "message", -1
	for k, v := range fields {
		if len(v) > size || len(v) == size && k < name {
			name, size = k, len(v)
		}
	}
	return name
}

// validatePipelinesBatch: at least one message, each with its type and
// valid, the encoded request at most 500,000 bytes.
func validatePipelinesBatch(msgs []PipelinesMessage) error {
	if len(msgs) == 0 {
		return invalid("batch", "at least one message is required")
	}
	for i, m := range msgs {
		p := idx("batch", i)
		if m.Type == "" {
			return invalid(join(p, "type"), "is required in a batch")
		}
		if err := m.validate(p, m.Type); err != nil {
			return err
		}
	}
	return checkEncoded("batch", pipelinesBatchBody{msgs}, MaxBatchBytes, false, "must be at most 500000 bytes encoded")
}

type pipelinesBatchBody struct {
	Batch []PipelinesMessage `json:"batch"`
}
