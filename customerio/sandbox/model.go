package sandbox

import (
	"strings"
	"time"
)

// Person is a copy of one stored person profile.
type Person struct {
	// CioID is the immutable id the sandbox assigned (without "cio_").
	CioID string `json:"cio_id"`
	// ID is the workspace's own identifier ("" if none).
	ID string `json:"id,omitempty"`
	// Email is the email identifier ("" if none).
	Email string `json:"email,omitempty"`
	// Phone is the phone identifier, E.164 ("" if none): set by Track v2
	// operations that name the person by identifiers.phone. An attribute
	// named phone is an attribute only (whether Customer.io also reads it
	// as the identifier is UNCONFIRMED).
	Phone string `json:"phone,omitempty"`
	// Attributes holds every attribute set (numbers as int64 or float64).
	Attributes map[string]any `json:"attributes"`
	// Devices are the person's devices, in insertion order.
	Devices []Device `json:"devices,omitempty"`
	// Events are the person's events, in arrival order, deduplicated by id.
	Events []Event `json:"events,omitempty"`
	// Segments are the manual segments the person belongs to, ascending.
	Segments []int `json:"segments,omitempty"`
	// CreatedAt is when the sandbox created the profile.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is the last change to the profile.
	UpdatedAt time.Time `json:"updated_at"`
}

// Ref returns the path reference that addresses this person: "cio_<cio_id>".
func (p Person) Ref() string { return "cio_" + p.CioID }

// Device is a person's device (a push token).
type Device struct {
	// Token is the device token (v1 device.id, v2 device.token).
	Token string `json:"token"`
	// Platform is ios or android.
	Platform string `json:"platform,omitempty"`
	// LastUsed is unix seconds (0 if not given).
	LastUsed int64 `json:"last_used,omitempty"`
	// Attributes are the device attributes.
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Event is a stored event (person event, anonymous event, page or screen).
type Event struct {
	// ID is the event's ULID id ("" if the sender gave none).
	ID string `json:"id,omitempty"`
	// Name is the trimmed event name (page URL for pages).
	Name string `json:"name"`
	// Type is event, page or screen.
	Type string `json:"type"`
	// Timestamp is the sender's unix seconds (0 if not given).
	Timestamp int64 `json:"timestamp,omitempty"`
	// Data is the event data (nil when null or absent).
	Data map[string]any `json:"data,omitempty"`
	// AnonymousID is set for anonymous events (also once merged).
	AnonymousID string `json:"anonymous_id,omitempty"`
	// Orphaned is set on an anonymous event whose visitor had been merged
	// into a person more than Config.AnonymousMergeWindow before the event
	// arrived: Customer.io does not associate it with the person.
	Orphaned bool `json:"orphaned,omitempty"`
	// Source tells which API delivered it: track_v1, track_v2 or cdp.
	Source string `json:"source"`
	// ReceivedAt is when the sandbox stored it.
	ReceivedAt time.Time `json:"received_at"`
}

// Object is a copy of a stored object (a "group" in Pipelines terms).
type Object struct {
	// TypeID is the object_type_id ("1", "2", ...).
	TypeID string `json:"object_type_id"`
	// ID is the object_id.
	ID string `json:"object_id"`
	// CioObjectID is the immutable id the sandbox gave the object when it
	// was created ("ob" and hex digits): Track v2 operations may name the
	// object by it ({"cio_object_id": ...}).
	CioObjectID string `json:"cio_object_id"`
	// Attributes are the object's attributes.
	Attributes map[string]any `json:"attributes"`
}

// Relationship links a person (or an anonymous id awaiting a person) to an
// object.
type Relationship struct {
	// PersonCioID is the person's cio_id ("" for an anonymous relationship).
	PersonCioID string `json:"person_cio_id,omitempty"`
	// AnonymousID is set for relationships made with identify_anonymous
	// that no person has claimed yet.
	AnonymousID string `json:"anonymous_id,omitempty"`
	// ObjectTypeID and ObjectID name the object.
	ObjectTypeID string `json:"object_type_id"`
	ObjectID     string `json:"object_id"`
	// Attributes are the relationship attributes.
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Suppression is one suppressed profile's blocked identifiers.
type Suppression struct {
	ID    string    `json:"id,omitempty"`
	Email string    `json:"email,omitempty"`
	Phone string    `json:"phone,omitempty"`
	CioID string    `json:"cio_id,omitempty"`
	At    time.Time `json:"at"`
}

// Merge records one merge (merge_customers, v2 merge or a Pipelines alias).
type Merge struct {
	// Primary and Secondary are the identifiers as sent ({"id": "..."}).
	Primary   map[string]string `json:"primary"`
	Secondary map[string]string `json:"secondary"`
	// Applied is false when either person did not exist (nothing changed).
	Applied bool      `json:"applied"`
	At      time.Time `json:"at"`
}

// Delivery is a recorded transactional send.
type Delivery struct {
	// Channel is email, push, sms, in_app, inbox_message or whatsapp.
	Channel string `json:"channel"`
	// DeliveryID is the id the sandbox answered with.
	DeliveryID string `json:"delivery_id"`
	// QueuedAt is the answered queued_at.
	QueuedAt time.Time `json:"queued_at"`
	// SendAt is the requested future send time (zero if none).
	SendAt time.Time `json:"send_at,omitzero"`
	// TransactionalMessageID is the template id or trigger name as a string.
	TransactionalMessageID string `json:"transactional_message_id,omitempty"`
	// Identifiers is the identifiers object as sent (nil if none).
	Identifiers map[string]string `json:"identifiers,omitempty"`
	// PersonCioID is the person the send addressed ("" if none).
	PersonCioID string `json:"person_cio_id,omitempty"`
	// To is the to field as sent.
	To string `json:"to,omitempty"`
	// MessageData is message_data as sent.
	MessageData map[string]any `json:"message_data,omitempty"`
	// Request is the whole request body.
	Request map[string]any `json:"request"`
	// Status is what became of the delivery after the sandbox accepted it:
	// DeliveryDelivered, DeliveryBounced, DeliveryFailed, DeliveryScheduled
	// or DeliveryDrafted. The sandbox's reporting webhooks (SetWebhooks),
	// GET /v1/messages/{id} and /_sandbox/deliveries report Status and
	// FailureMessage as Customer.io would.
	Status string `json:"status"`
	// FailureMessage says why a bounced or failed delivery did not arrive
	// (Customer.io's failure_message), e.g. the Liquid error of a variable
	// message_data lacked.
	FailureMessage string `json:"failure_message,omitempty"`
	// TemplateID is the id of the transactional message the send named
	// (0 when it named none the sandbox knows).
	TemplateID int64 `json:"template_id,omitempty"`
	// BroadcastID and TriggerID name the API-triggered broadcast and its
	// trigger of a broadcast message (Trigger.Messages); 0 for a
	// transactional send.
	BroadcastID int `json:"broadcast_id,omitempty"`
	TriggerID   int `json:"trigger_id,omitempty"`
}

// DeliveryEvent is a delivery metric reported to the sandbox: through
// /api/v1/metrics, /push/events, /unsubscribe, a v2 delivery operation or a
// Pipelines "Report Delivery Event".
type DeliveryEvent struct {
	// Source is metrics, push_events, unsubscribe, track_v2 or cdp.
	Source string `json:"source"`
	// DeliveryID is the delivery the metric is about.
	DeliveryID string `json:"delivery_id"`
	// Metric is the metric or event name (opened, delivered, ...).
	Metric string `json:"metric"`
	// Body is the request body or batch item.
	Body map[string]any `json:"body"`
	At   time.Time      `json:"at"`
}

// Trigger is an API-triggered broadcast trigger.
type Trigger struct {
	ID          int `json:"id"`
	BroadcastID int `json:"broadcast_id"`
	// CreatedAt is when it was accepted.
	CreatedAt time.Time `json:"created_at"`
	// ProcessedAt is when it was processed (zero while queued).
	ProcessedAt time.Time `json:"processed_at,omitzero"`
	// Shape is the recipient shape: default, recipients, emails, ids,
	// per_user_data or data_file_url.
	Shape string `json:"shape"`
	// Body is the request body.
	Body map[string]any `json:"body"`
	// Errors are the per-recipient errors found when it was processed
	// ("line <n>: <text>").
	Errors []string `json:"errors,omitempty"`
	// Messages are the broadcast's emails the trigger sent when it was
	// processed: one per person of its ids, emails or per_user_data who
	// exists and has an email address (the other audiences send nothing in
	// the sandbox), each delivered, or bounced for a bounce address, and
	// reported by the reporting webhooks with broadcast_id and trigger_id.
	Messages []Delivery `json:"messages,omitempty"`
}

// FormSubmission is one form submit.
type FormSubmission struct {
	FormID string            `json:"form_id"`
	Data   map[string]string `json:"data"`
	At     time.Time         `json:"at"`
}

// CDPMessage is one Pipelines message (a batch is stored item by item).
type CDPMessage struct {
	// Type is identify, track, page, screen, group or alias.
	Type string `json:"type"`
	// Body is the message as received (for batch items with the batch
	// context merged in when the item had none).
	Body map[string]any `json:"body,omitempty"`
	// Raw is the body text when it was not a JSON object.
	Raw string `json:"raw,omitempty"`
	// Applied tells whether the message changed people/objects state.
	Applied bool `json:"applied"`
	// Problem describes why a permissive request was stored but not
	// applied ("" when fine).
	Problem    string    `json:"problem,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// Snapshot is a copy of the whole sandbox state.
type Snapshot struct {
	People          []Person           `json:"people"`
	AnonymousEvents map[string][]Event `json:"anonymous_events"`
	Objects         []Object           `json:"objects"`
	Relationships   []Relationship     `json:"relationships"`
	Segments        map[int][]string   `json:"segments"` // segment id -> member cio_ids
	Broadcasts      []int              `json:"broadcasts"`
	Suppressions    []Suppression      `json:"suppressions"`
	Merges          []Merge            `json:"merges"`
	Deliveries      []Delivery         `json:"deliveries"`
	DeliveryEvents  []DeliveryEvent    `json:"delivery_events"`
	Triggers        []Trigger          `json:"triggers"`
	Forms           []FormSubmission   `json:"forms"`
	CDPMessages     []CDPMessage       `json:"cdp_messages"`
}

// person is a stored profile; readers hand out a Person copy of it.
type person struct {
	cioID, id, email, phone string
	attrs                   map[string]any
	devices                 []Device
	events                  []Event
	createdAt               time.Time
	updatedAt               time.Time
}

// objKey names an object: object_type_id and object_id.
type objKey struct{ typeID, id string }

// relKey names a relationship: who (a person or an anonymous id) and the
// object.
type relKey struct {
	cio    string // person cio_id or "anon:"+anonymous id
	typeID string
	objID  string
}

// broadcast is an API-triggered broadcast and its triggers.
type broadcast struct {
	lastTrigger time.Time
	triggers    []*Trigger
}

// state is everything the sandbox's workspace holds, with the indexes
// that resolve identifiers. Server.mu guards it: mutation.go changes it
// under mutate, readers.go copies it out under read.
type state struct {
	nextCio      int
	people       map[string]*person   // by cio_id
	byID         map[string]string    // id -> cio_id
	byEmail      map[string]string    // lower(email) -> cio_id
	byPhone      map[string]string    // phone -> cio_id
	byAnon       map[string]string    // anonymous_id attribute -> cio_id
	claimedAt    map[string]time.Time // anonymous_id -> when an identify carried it
	mergeWindow  time.Duration        // Config.AnonymousMergeWindow
	now          time.Time            // the clock at the start of the mutation
	anonEvents   map[string][]Event   // anonymous id ("" = invite events)
	eventIDs     map[string]struct{}
	objects      map[objKey]map[string]any
	objCio       map[objKey]string // object -> cio_object_id
	byObjCio     map[string]objKey // cio_object_id -> object
	nextObject   int
	rels         map[relKey]map[string]any
	segments     map[int]map[string]struct{}
	suppressed   map[string]*Suppression // "id:x", "email:x", "cio:x"
	suppressions []*Suppression
	merges       []Merge
	deliveries   []Delivery
	deliveryIdx  map[string]int
	devents      []DeliveryEvent
	broadcasts   map[int]*broadcast
	triggers     []*Trigger
	nextTrigger  int
	forms        []FormSubmission
	cdp          []CDPMessage
	cdpIDs       map[string]struct{}
	nextDelivery uint64
}

// newState returns an empty workspace with the configured segments and
// broadcasts.
func newState(cfg Config) *state {
	st := &state{
		nextCio:     0x3000000,
		people:      map[string]*person{},
		byID:        map[string]string{},
		byEmail:     map[string]string{},
		byPhone:     map[string]string{},
		byAnon:      map[string]string{},
		claimedAt:   map[string]time.Time{},
		mergeWindow: cfg.AnonymousMergeWindow,
		anonEvents:  map[string][]Event{},
		eventIDs:    map[string]struct{}{},
		objects:     map[objKey]map[string]any{},
		objCio:      map[objKey]string{},
		byObjCio:    map[string]objKey{},
		nextObject:  0xb7fd050100,
		rels:        map[relKey]map[string]any{},
		segments:    map[int]map[string]struct{}{},
		suppressed:  map[string]*Suppression{},
		deliveryIdx: map[string]int{},
		broadcasts:  map[int]*broadcast{},
		cdpIDs:      map[string]struct{}{},
	}
	for _, id := range cfg.Segments {
		st.segments[id] = map[string]struct{}{}
	}
	for _, id := range cfg.Broadcasts {
		st.broadcasts[id] = &broadcast{}
	}
	return st
}

// lookup resolves a path reference: cio_<x>, an email (falls back to id) or
// an id.
func (st *state) lookup(ref string) *person {
	if cio, ok := strings.CutPrefix(ref, "cio_"); ok {
		if p := st.people[cio]; p != nil {
			return p
		}
	}
	if strings.Contains(ref, "@") {
		if c, ok := st.byEmail[strings.ToLower(ref)]; ok {
			return st.people[c]
		}
	}
	if c, ok := st.byID[ref]; ok {
		return st.people[c]
	}
	return nil
}

// lookupTyped resolves an identifier of a known type (id, email, phone,
// cio_id, anonymous_id).
func (st *state) lookupTyped(typ, v string) *person {
	switch typ {
	case "id":
		return st.people[st.byID[v]]
	case "email":
		return st.people[st.byEmail[strings.ToLower(v)]]
	case "phone":
		return st.people[st.byPhone[v]]
	case "cio_id":
		return st.people[strings.TrimPrefix(v, "cio_")]
	case "anonymous_id":
		return st.people[st.byAnon[v]]
	}
	return nil
}

func (st *state) isSuppressed(id, email, cio string) bool {
	if len(st.suppressed) == 0 {
		return false
	}
	if id != "" && st.suppressed["id:"+id] != nil {
		return true
	}
	if email != "" && st.suppressed["email:"+strings.ToLower(email)] != nil {
		return true
	}
	return cio != "" && st.suppressed["cio:"+cio] != nil
}

// refSuppressed tells whether a path reference names a blocked identifier.
func (st *state) refSuppressed(ref string) bool {
	if c, ok := strings.CutPrefix(ref, "cio_"); ok && st.suppressed["cio:"+c] != nil {
		return true
	}
	if strings.Contains(ref, "@") && st.suppressed["email:"+strings.ToLower(ref)] != nil {
		return true
	}
	return st.suppressed["id:"+ref] != nil
}
