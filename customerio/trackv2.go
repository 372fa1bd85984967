package customerio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

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
// person it names the object (ObjectTypeID and ObjectID, or CioObjectID);
// from an object it names the person (ID, Email or CioID; AnonymousID for
// identify_anonymous).
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
// whole (200 or 207): the items it rejected, by batch_index, each naming an
// item of the batch (Batch refuses an answer whose errors do not). Items
// not listed were accepted.
type BatchResult struct {
	Errors []BatchItemError `json:"errors,omitempty"`
}

// Entity sends one Track v2 operation: POST /api/v2/entity. A 2xx answer
// that still lists errors is reported as a permanent *APIError.
func (c *Client) Entity(ctx context.Context, op Operation) error {
	if err := op.Validate(); err != nil {
		return err
	}
	rq := &request{api: APITrack, op: "entity", method: http.MethodPost, path: []string{"api", "v2", "entity"}, body: op}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return err
	}
	if msg := parseMessage(resp.body); len(resp.body) > 0 && msg != "" && hasErrors(resp.body) {
		return &APIError{API: APITrack, Operation: rq.op, StatusCode: resp.status, Class: ClassPermanent,
			Message: truncate(resp.scrub.scrub(msg), maxMessageBytes)}
	}
	return nil
}

// Batch sends Track v2 operations in one request: POST /api/v2/batch with
// {"batch":[...]}. The error is non-nil when the whole request failed, or
// when its answer does not say which items failed; otherwise the
// BatchResult lists the items Customer.io rejected (from a 207, or from a
// 200 that carries errors), by batch_index. Their texts are scrubbed like
// APIError messages.
//
// An answer that cannot be pinned on items is a permanent *APIError with
// the answer's status: a 207 without a readable errors list, a 2xx whose
// body breaks off (both wrapping ErrUnreadableResponse), or an error
// without a batch_index or with one outside ops. Some items may have been
// applied: send them again one by one (they are idempotent, events carry
// ids) to learn which one Customer.io refuses.
func (c *Client) Batch(ctx context.Context, ops []Operation) (BatchResult, error) {
	if err := ValidateBatch(ops); err != nil {
		return BatchResult{}, err
	}
	rq := &request{api: APITrack, op: "batch", method: http.MethodPost, path: []string{"api", "v2", "batch"}, body: batchBody{ops}}
	return c.batch(ctx, rq, len(ops))
}

// BatchEncoded is Batch for operations the caller has encoded already
// (each exactly as Batch would encode it: JSON without HTML escaping) and
// validated (Operation.ValidateFields, and its encoding below
// MaxEntityBytes: Operation.Validate's rules), as a batcher does to
// measure them: it sends {"batch":[...]} of those bytes as they are,
// without validating or encoding them again. The answer means what
// Batch's does.
func (c *Client) BatchEncoded(ctx context.Context, encoded []json.RawMessage) (BatchResult, error) {
	if len(encoded) == 0 {
		return BatchResult{}, invalid("batch", "must contain at least one operation")
	}
	rq := &request{api: APITrack, op: "batch", method: http.MethodPost, path: []string{"api", "v2", "batch"}, parts: encoded}
	return c.batch(ctx, rq, len(encoded))
}

// joinBatch returns the body {"batch":[parts...]}.
func joinBatch(parts []json.RawMessage) []byte {
	n := len(`{"batch":[]}`) + len(parts)
	for _, e := range parts {
		n += len(e)
	}
	body := make([]byte, 0, n)
	body = append(body, `{"batch":[`...)
	for i, e := range parts {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, e...)
	}
	return append(body, "]}"...)
}

// batchReader reads the body {"batch":[parts...]} from the parts as they
// are, so that a batch request's operations are not copied into a body
// while the request is in flight.
type batchReader struct {
	parts []json.RawMessage
	size  int64  // of the body
	k     int    // the next piece: the head, then the parts with commas between them, then the tail
	cur   []byte // what is left of the piece being read
}

func newBatchReader(parts []json.RawMessage) *batchReader {
	n := len(`{"batch":[]}`) + max(len(parts)-1, 0)
	for _, e := range parts {
		n += len(e)
	}
	return &batchReader{parts: parts, size: int64(n)}
}

// pieces is how many pieces the body has.
func (r *batchReader) pieces() int { return max(2*len(r.parts)+1, 2) }

// piece returns piece k of the body.
func (r *batchReader) piece(k int) []byte {
	switch {
	case k == 0:
		return []byte(`{"batch":[`)
	case k == r.pieces()-1:
		return []byte("]}")
	case k%2 == 1:
		return r.parts[k/2]
	}
	return []byte(",")
}

// Read implements io.Reader.
func (r *batchReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.cur) == 0 {
			if r.k == r.pieces() {
				if n == 0 {
					return 0, io.EOF
				}
				break
			}
			r.cur = r.piece(r.k)
			r.k++
			continue
		}
		c := copy(p[n:], r.cur)
		n += c
		r.cur = r.cur[c:]
	}
	return n, nil
}

// batch sends the batch request rq of n operations and reads its answer.
func (c *Client) batch(ctx context.Context, rq *request, n int) (BatchResult, error) {
	resp, err := c.do(ctx, rq)
	if err != nil {
		return BatchResult{}, err
	}
	if resp.readErr != nil {
		return BatchResult{}, resp.unreadable(rq)
	}
	if len(resp.body) == 0 || !hasErrors(resp.body) {
		if resp.status == http.StatusMultiStatus {
			return BatchResult{}, &APIError{API: APITrack, Operation: rq.op, StatusCode: resp.status, Class: ClassPermanent,
				Message: "207 without a readable errors list", Err: ErrUnreadableResponse}
		}
		return BatchResult{}, nil
	}
	var raw struct {
		Errors []struct {
			BatchIndex *int `json:"batch_index"`
			BatchItemError
		} `json:"errors"`
	}
	if err := resp.decode(rq, &raw); err != nil {
		return BatchResult{}, err
	}
	res := BatchResult{Errors: make([]BatchItemError, 0, len(raw.Errors))}
	for _, re := range raw.Errors {
		if re.BatchIndex == nil || *re.BatchIndex < 0 || *re.BatchIndex >= n {
			return BatchResult{}, &APIError{API: APITrack, Operation: rq.op, StatusCode: resp.status, Class: ClassPermanent,
				Message: "an item error names no item of the batch (batch_index missing or out of range)"}
		}
		e := re.BatchItemError
		e.BatchIndex = *re.BatchIndex
		e.Reason = truncate(resp.scrub.scrub(e.Reason), maxMessageBytes)
		e.Field = truncate(resp.scrub.scrub(e.Field), maxMessageBytes)
		e.Message = truncate(resp.scrub.scrub(e.Message), maxMessageBytes)
		res.Errors = append(res.Errors, e)
	}
	return res, nil
}

// hasErrors reports whether a JSON body has a non-empty "errors" member.
func hasErrors(body []byte) bool {
	var v struct {
		Errors []any `json:"errors"`
	}
	return decodeLoose(body, &v) && len(v.Errors) > 0
}

// decodeLoose unmarshals body into v and reports success.
func decodeLoose(body []byte, v any) bool { return json.Unmarshal(body, v) == nil }

// ItemError returns Customer.io's error for item i of the batch, or nil when
// item i was accepted.
func (r BatchResult) ItemError(i int) *BatchItemError {
	for k := range r.Errors {
		if r.Errors[k].BatchIndex == i {
			e := r.Errors[k]
			return &e
		}
	}
	return nil
}

// actionMatrix lists the actions each entity type accepts (the action
// matrix of Track v2 in Customer.io's Track API reference).
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

// Validate checks a Track v2 operation: the entity type and the action
// matrix, the identifiers each needs (exactly one person identifier, a
// phone too except in a merge; object_type_id + object_id, or
// cio_object_id, for objects; a delivery id), the fields each
// action needs, the attribute and event limits, and an encoded size below
// 32,000 bytes.
func (o Operation) Validate() error { return o.validate("") }

// ValidateFields is Validate without the encoded size limit, for a caller
// that encodes the operation itself and checks its length (see
// BatchEncoded).
func (o Operation) ValidateFields() error { return o.validateFields("") }

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

// validateFields is Validate without the size limit: the action matrix,
// then the identifiers, the fields of the action, the timestamp and the
// relationships, each reported at its wire path under p.
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
	if err := o.validateIdentifiers(p); err != nil {
		return err
	}
	if err := o.validateActionFields(p); err != nil {
		return err
	}
	if o.Timestamp < 0 {
		return invalid(join(p, "timestamp"), "must not be negative")
	}
	return o.validateRelationships(p)
}

// validateIdentifiers checks what names the entity: exactly one person
// identifier (primary and secondary for a merge), object_type_id and
// object_id for an object, the delivery id (and a device token) for a
// delivery.
func (o Operation) validateIdentifiers(p string) error {
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
		if err := ValidateV2PersonIdentifiers(join(p, "identifiers"), o.Identifiers); err != nil {
			return err
		}
	case EntityObject:
		if err := checkObjectIdentifiers(join(p, "identifiers"), o.Identifiers); err != nil {
			return err
		}
	case EntityDelivery:
		if o.Identifiers == nil || o.Identifiers.Email != "" || o.Identifiers.Phone != "" || o.Identifiers.CioID != "" ||
			o.Identifiers.AnonymousID != "" || o.Identifiers.ObjectTypeID != "" || o.Identifiers.ObjectID != "" ||
			o.Identifiers.CioObjectID != "" {
			return invalid(join(p, "identifiers"), "must be the delivery id only")
		}
		if err := checkID(join(p, "identifiers.id"), o.Identifiers.ID); err != nil {
			return err
		}
		if s, _ := o.Attributes["device_token"].(string); strings.TrimSpace(s) == "" {
			return invalid(join(p, "attributes.device_token"), "is required for a delivery event")
		}
	}
	return nil
}

// validateActionFields checks the fields the action needs: an event's
// name, id and data, an identify's attributes, a device's token, platform
// and attributes, a relationship action's relationships.
func (o Operation) validateActionFields(p string) error {
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
	return nil
}

// validateRelationships checks each of cio_relationships: from a person
// it names an object (object_type_id and object_id, or cio_object_id),
// from an object a person by id, email or cio_id (Customer.io's
// v2_cio_relationships has no phone; identify_anonymous: an anonymous_id
// only), and its attributes keep the attribute limits.
func (o Operation) validateRelationships(p string) error {
	for i, r := range o.Relationships {
		f := idx(join(p, "cio_relationships"), i) + ".identifiers"
		var err error
		switch {
		case o.Action == ActionIdentifyAnonymous:
			if r.Identifiers.AnonymousID == "" || r.Identifiers.ID != "" || r.Identifiers.Email != "" || r.Identifiers.Phone != "" ||
				r.Identifiers.CioID != "" || r.Identifiers.ObjectTypeID != "" || r.Identifiers.ObjectID != "" || r.Identifiers.CioObjectID != "" {
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

const tooLarge = "must be less than 32000 bytes encoded"

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

// IdentifyOperation returns the Track v2 identify of the person ids whose
// attributes attrs are those of a Track v1 identify body, with the two
// attributes that have a special meaning in v1 moved to the v2 operation's
// own fields: "_timestamp" (Unix seconds, v1's way to back-date an
// identify) becomes Timestamp, and "cio_relationships"
// ({"action":"add_relationships","relationships":[...]}) becomes
// Relationships. In v2 neither means anything as an attribute, so sending
// them as attributes would store a custom attribute and lose the
// relationships. attrs is not modified; it is copied only when it holds one
// of them.
//
// ok is false when attrs cannot be one v2 operation: cio_relationships that
// deletes relationships (v2 needs a separate delete_relationships
// operation), or either attribute not in its documented shape. Such an
// identify is sent through Track v1 ([Client.Identify]), which takes it as
// written.
func IdentifyOperation(ids Identifiers, attrs map[string]any) (op Operation, ok bool) {
	op = Operation{Type: EntityPerson, Action: ActionIdentify, Identifiers: &ids, Attributes: attrs}
	ts, hasTS := attrs["_timestamp"]
	rels, hasRels := attrs["cio_relationships"]
	if !hasTS && !hasRels {
		return op, true
	}
	rest := make(map[string]any, len(attrs))
	for k, v := range attrs {
		if k != "_timestamp" && k != "cio_relationships" {
			rest[k] = v
		}
	}
	op.Attributes = rest
	if len(rest) == 0 {
		op.Attributes = nil
	}
	if hasTS && ts != nil {
		sec, isInt := unixSeconds(ts)
		if !isInt {
			return Operation{}, false
		}
		op.Timestamp = sec
	}
	if hasRels && rels != nil {
		rs, isAdd := v1AddRelationships(rels)
		if !isAdd {
			return Operation{}, false
		}
		op.Relationships = rs
	}
	return op, true
}

// EventOperation returns the Track v2 operation of the Track v1 event ev of
// the person ids: action event, page or screen (as ev.Type says), with ev's
// name, id and timestamp, and its data as the operation's attributes.
func EventOperation(ids Identifiers, ev Event) Operation {
	a := ActionEvent
	switch ev.Type {
	case EventTypePage:
		a = ActionPage
	case EventTypeScreen:
		a = ActionScreen
	}
	return Operation{Type: EntityPerson, Action: a, Identifiers: &ids,
		Name: ev.Name, ID: ev.ID, Timestamp: ev.Timestamp, Attributes: ev.Data}
}

// DeviceOperation returns the Track v2 add_device of the person ids for the
// Track v1 device d (v1's device.id is v2's device.token).
func DeviceOperation(ids Identifiers, d Device) Operation {
	return Operation{Type: EntityPerson, Action: ActionAddDevice, Identifiers: &ids,
		Device: &V2Device{Token: d.ID, Platform: d.Platform, LastUsed: d.LastUsed, Attributes: d.Attributes}}
}

// unixSeconds reads a JSON number that is a whole, non-negative number of
// seconds.
func unixSeconds(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		if x >= 0 && x == float64(int64(x)) {
			return int64(x), true
		}
	case int64:
		return x, x >= 0
	case int:
		return int64(x), x >= 0
	case json.Number:
		n, err := x.Int64()
		return n, err == nil && n >= 0
	}
	return 0, false
}

// v1AddRelationships reads a v1 identify's cio_relationships when it adds
// relationships: {"action":"add_relationships","relationships":[{
// "identifiers":{"object_type_id":..,"object_id":..},
// "relationship_attributes":{..}}]}.
func v1AddRelationships(v any) ([]Relationship, bool) {
	m, isObj := v.(map[string]any)
	if !isObj || m["action"] != string(ActionAddRelationships) {
		return nil, false
	}
	b, err := json.Marshal(m["relationships"])
	if err != nil {
		return nil, false
	}
	var rs []Relationship
	if json.Unmarshal(b, &rs) != nil || len(rs) == 0 {
		return nil, false
	}
	return rs, true
}
