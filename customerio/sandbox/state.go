package sandbox

import (
	"context"
	"fmt"
	"sort"
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

// ---- internal state ----

type person struct {
	cioID, id, email string
	attrs            map[string]any
	devices          []Device
	events           []Event
	createdAt        time.Time
	updatedAt        time.Time
}

type objKey struct{ typeID, id string }

type relKey struct {
	cio    string // person cio_id or "anon:"+anonymous id
	typeID string
	objID  string
}

type broadcast struct {
	lastTrigger time.Time
	triggers    []*Trigger
}

type state struct {
	nextCio      int
	people       map[string]*person // by cio_id
	byID         map[string]string  // id -> cio_id
	byEmail      map[string]string  // lower(email) -> cio_id
	byAnon       map[string]string  // anonymous_id attribute -> cio_id
	anonEvents   map[string][]Event // anonymous id ("" = invite events)
	eventIDs     map[string]struct{}
	objects      map[objKey]map[string]any
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

func newState(cfg Config) *state {
	st := &state{
		nextCio:     0x3000000,
		people:      map[string]*person{},
		byID:        map[string]string{},
		byEmail:     map[string]string{},
		byAnon:      map[string]string{},
		anonEvents:  map[string][]Event{},
		eventIDs:    map[string]struct{}{},
		objects:     map[objKey]map[string]any{},
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

// lookupTyped resolves an identifier of a known type (id, email, cio_id,
// anonymous_id).
func (st *state) lookupTyped(typ, v string) *person {
	switch typ {
	case "id":
		return st.people[st.byID[v]]
	case "email":
		return st.people[st.byEmail[strings.ToLower(v)]]
	case "cio_id":
		return st.people[strings.TrimPrefix(v, "cio_")]
	case "anonymous_id":
		return st.people[st.byAnon[v]]
	}
	return nil
}

func (st *state) create(id, email string, now time.Time) *person {
	st.nextCio++
	p := &person{cioID: strings.ToLower(strconvHex(st.nextCio)), attrs: map[string]any{}, createdAt: now, updatedAt: now}
	st.people[p.cioID] = p
	st.setID(p, id)
	st.setEmail(p, email)
	return p
}

func strconvHex(n int) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = digits[n%16]
		n /= 16
	}
	return string(b[i:])
}

func (st *state) setID(p *person, id string) {
	if id == "" || id == p.id {
		return
	}
	if p.id != "" && st.byID[p.id] == p.cioID {
		delete(st.byID, p.id)
	}
	p.id = id
	st.byID[id] = p.cioID
}

func (st *state) setEmail(p *person, email string) {
	if email == "" || strings.EqualFold(email, p.email) {
		if email != "" {
			p.email = email
		}
		return
	}
	if p.email != "" && st.byEmail[strings.ToLower(p.email)] == p.cioID {
		delete(st.byEmail, strings.ToLower(p.email))
	}
	p.email = email
	st.byEmail[strings.ToLower(email)] = p.cioID
}

func (st *state) remove(p *person) {
	delete(st.people, p.cioID)
	if p.id != "" && st.byID[p.id] == p.cioID {
		delete(st.byID, p.id)
	}
	if p.email != "" && st.byEmail[strings.ToLower(p.email)] == p.cioID {
		delete(st.byEmail, strings.ToLower(p.email))
	}
	for a, c := range st.byAnon {
		if c == p.cioID {
			delete(st.byAnon, a)
		}
	}
	for _, m := range st.segments {
		delete(m, p.cioID)
	}
	for k := range st.rels {
		if k.cio == p.cioID {
			delete(st.rels, k)
		}
	}
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

func (st *state) suppress(s *Suppression) {
	st.suppressions = append(st.suppressions, s)
	if s.ID != "" {
		st.suppressed["id:"+s.ID] = s
	}
	if s.Email != "" {
		st.suppressed["email:"+strings.ToLower(s.Email)] = s
	}
	if s.CioID != "" {
		st.suppressed["cio:"+s.CioID] = s
	}
}

func (st *state) unsuppress(keys ...string) {
	for _, k := range keys {
		s := st.suppressed[k]
		if s == nil {
			continue
		}
		delete(st.suppressed, "id:"+s.ID)
		delete(st.suppressed, "email:"+strings.ToLower(s.Email))
		delete(st.suppressed, "cio:"+s.CioID)
		for i, x := range st.suppressions {
			if x == s {
				st.suppressions = append(st.suppressions[:i], st.suppressions[i+1:]...)
				break
			}
		}
	}
}

// addEvent stores ev for p unless its id was seen; it reports whether it
// was stored.
func (st *state) addEvent(p *person, ev Event) bool {
	if ev.ID != "" {
		if _, dup := st.eventIDs[ev.ID]; dup {
			return false
		}
		st.eventIDs[ev.ID] = struct{}{}
	}
	p.events = append(p.events, ev)
	p.updatedAt = ev.ReceivedAt
	return true
}

func (st *state) addAnonEvent(anon string, ev Event) bool {
	if ev.ID != "" {
		if _, dup := st.eventIDs[ev.ID]; dup {
			return false
		}
		st.eventIDs[ev.ID] = struct{}{}
	}
	if anon != "" {
		if p := st.people[st.byAnon[anon]]; p != nil {
			p.events = append(p.events, ev)
			return true
		}
	}
	st.anonEvents[anon] = append(st.anonEvents[anon], ev)
	return true
}

// claimAnonymous attaches anon's stored events and anonymous relationships
// to p and remembers the link for later anonymous events.
func (st *state) claimAnonymous(p *person, anon string) {
	if anon == "" {
		return
	}
	st.byAnon[anon] = p.cioID
	if evs := st.anonEvents[anon]; len(evs) > 0 {
		p.events = append(p.events, evs...)
		delete(st.anonEvents, anon)
	}
	for k, v := range st.rels {
		if k.cio == "anon:"+anon {
			delete(st.rels, k)
			st.rels[relKey{p.cioID, k.typeID, k.objID}] = v
		}
	}
}

func (st *state) upsertDevice(p *person, d Device) {
	for i := range p.devices {
		if p.devices[i].Token == d.Token {
			p.devices[i] = d
			return
		}
	}
	p.devices = append(p.devices, d)
}

func (st *state) deleteDevice(p *person, token string) {
	for i := range p.devices {
		if p.devices[i].Token == token {
			p.devices = append(p.devices[:i], p.devices[i+1:]...)
			return
		}
	}
}

func (st *state) ensureObject(typeID, id string) map[string]any {
	k := objKey{typeID, id}
	o := st.objects[k]
	if o == nil {
		o = map[string]any{}
		st.objects[k] = o
	}
	return o
}

func (st *state) deleteObject(typeID, id string) {
	delete(st.objects, objKey{typeID, id})
	for k := range st.rels {
		if k.typeID == typeID && k.objID == id {
			delete(st.rels, k)
		}
	}
}

func (st *state) relate(who, typeID, objID string, attrs map[string]any) {
	st.ensureObject(typeID, objID)
	k := relKey{who, typeID, objID}
	cur := st.rels[k]
	if cur == nil {
		cur = map[string]any{}
		st.rels[k] = cur
	}
	mergeAttrs(cur, attrs)
}

// attrsRefusal says why merging attrs into cur (an object's or a
// relationship's attributes) would break Customer.io's limits for what an
// object or a relationship holds: at most 300 attributes, at most 100,000
// bytes of them as JSON (contract §9). Customer.io's answer to breaking them
// is not documented; the sandbox refuses the operation, so that a test sees
// it. "" when it fits.
func attrsRefusal(what string, cur, attrs map[string]any) string {
	if len(attrs) == 0 {
		return ""
	}
	merged := make(map[string]any, len(cur)+len(attrs))
	for k, v := range cur {
		merged[k] = v
	}
	mergeAttrs(merged, attrs)
	if len(merged) > MaxObjectAttributes {
		return fmt.Sprintf("%s cannot have more than %d attributes", what, MaxObjectAttributes)
	}
	if jsonLen(merged) > MaxObjectAttrBytes {
		return fmt.Sprintf("the attributes of %s cannot total more than %d bytes", what, MaxObjectAttrBytes)
	}
	return ""
}

// objectRefusal is attrsRefusal for an object.
func (st *state) objectRefusal(typeID, id string, attrs map[string]any) string {
	return attrsRefusal("an object", st.objects[objKey{typeID, id}], attrs)
}

// relationRefusal is attrsRefusal for a relationship.
func (st *state) relationRefusal(who, typeID, objID string, attrs map[string]any) string {
	return attrsRefusal("a relationship", st.rels[relKey{who, typeID, objID}], attrs)
}

// mergeAttrs sets attrs into dst; null or "" removes an attribute.
func mergeAttrs(dst, attrs map[string]any) {
	for k, v := range attrs {
		if v == nil || v == "" {
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
}

// merge folds secondary into primary and deletes secondary.
func (st *state) merge(pri, sec *person, now time.Time) {
	for k, v := range sec.attrs {
		if cur, ok := pri.attrs[k]; !ok || cur == nil || cur == "" {
			pri.attrs[k] = v
		}
	}
	pri.events = append(pri.events, sec.events...)
	for _, d := range sec.devices {
		found := false
		for _, x := range pri.devices {
			if x.Token == d.Token {
				found = true
			}
		}
		if !found {
			pri.devices = append(pri.devices, d)
		}
	}
	for _, m := range st.segments {
		if _, ok := m[sec.cioID]; ok {
			m[pri.cioID] = struct{}{}
		}
	}
	for k, v := range st.rels {
		if k.cio == sec.cioID {
			nk := relKey{pri.cioID, k.typeID, k.objID}
			if _, ok := st.rels[nk]; !ok {
				st.rels[nk] = v
			}
		}
	}
	for a, c := range st.byAnon {
		if c == sec.cioID {
			st.byAnon[a] = pri.cioID
		}
	}
	secID, secEmail := sec.id, sec.email
	st.remove(sec)
	if pri.id == "" && secID != "" {
		st.setID(pri, secID)
	}
	if pri.email == "" && secEmail != "" {
		st.setEmail(pri, secEmail)
	}
	pri.updatedAt = now
}

func (st *state) personCopy(p *person) Person {
	out := Person{
		CioID: p.cioID, ID: p.id, Email: p.email,
		Attributes: copyMap(p.attrs),
		CreatedAt:  p.createdAt, UpdatedAt: p.updatedAt,
	}
	for _, d := range p.devices {
		d.Attributes = copyMap(d.Attributes)
		out.Devices = append(out.Devices, d)
	}
	out.Events = copyEvents(p.events)
	for id, m := range st.segments {
		if _, ok := m[p.cioID]; ok {
			out.Segments = append(out.Segments, id)
		}
	}
	sort.Ints(out.Segments)
	return out
}

func copyEvents(evs []Event) []Event {
	if evs == nil {
		return nil
	}
	out := make([]Event, len(evs))
	for i, ev := range evs {
		ev.Data = copyMap(ev.Data)
		out[i] = ev
	}
	return out
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyMap(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = copyValue(x[i])
		}
		return out
	}
	return v
}

func copyStrMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- public readers ----

func (s *Server) read(f func(st *state)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processTriggers(s.cfg.Now())
	f(s.st)
}

// Person returns a copy of the person ref addresses: an id, an email or
// "cio_<cio_id>", resolved like a Track v1 path identifier.
func (s *Server) Person(ref string) (Person, bool) {
	var out Person
	var ok bool
	s.read(func(st *state) {
		if p := st.lookup(ref); p != nil {
			out, ok = st.personCopy(p), true
		}
	})
	return out, ok
}

// People returns copies of every person, ordered by cio_id (creation order).
func (s *Server) People() []Person {
	var out []Person
	s.read(func(st *state) {
		for _, p := range st.people {
			out = append(out, st.personCopy(p))
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].CioID) != len(out[j].CioID) {
			return len(out[i].CioID) < len(out[j].CioID)
		}
		return out[i].CioID < out[j].CioID
	})
	return out
}

// Events returns the events of the person ref addresses (nil if unknown).
func (s *Server) Events(ref string) []Event {
	var out []Event
	s.read(func(st *state) {
		if p := st.lookup(ref); p != nil {
			out = copyEvents(p.events)
		}
	})
	return out
}

// AnonymousEvents returns the stored anonymous events of anonID that no
// person has claimed; anonID "" returns invite events (sent without an
// anonymous_id).
func (s *Server) AnonymousEvents(anonID string) []Event {
	var out []Event
	s.read(func(st *state) { out = copyEvents(st.anonEvents[anonID]) })
	return out
}

// Object returns a copy of an object.
func (s *Server) Object(typeID, id string) (Object, bool) {
	var out Object
	var ok bool
	s.read(func(st *state) {
		if o, found := st.objects[objKey{typeID, id}]; found {
			out, ok = Object{TypeID: typeID, ID: id, Attributes: copyMap(o)}, true
		}
	})
	return out, ok
}

// Relationships returns the relationships of the person personRef
// addresses ("" = all relationships), sorted by object.
func (s *Server) Relationships(personRef string) []Relationship {
	var out []Relationship
	s.read(func(st *state) {
		cio := ""
		if personRef != "" {
			p := st.lookup(personRef)
			if p == nil {
				return
			}
			cio = p.cioID
		}
		out = st.relationships(cio)
	})
	return out
}

func (st *state) relationships(cio string) []Relationship {
	var out []Relationship
	for k, v := range st.rels {
		if cio != "" && k.cio != cio {
			continue
		}
		r := Relationship{ObjectTypeID: k.typeID, ObjectID: k.objID, Attributes: copyMap(v)}
		if a, ok := strings.CutPrefix(k.cio, "anon:"); ok {
			r.AnonymousID = a
		} else {
			r.PersonCioID = k.cio
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ObjectTypeID != b.ObjectTypeID {
			return a.ObjectTypeID < b.ObjectTypeID
		}
		if a.ObjectID != b.ObjectID {
			return a.ObjectID < b.ObjectID
		}
		return a.PersonCioID+a.AnonymousID < b.PersonCioID+b.AnonymousID
	})
	return out
}

// SegmentMembers returns copies of the members of a manual segment, and
// whether the segment exists.
func (s *Server) SegmentMembers(segmentID int) ([]Person, bool) {
	var out []Person
	var ok bool
	s.read(func(st *state) {
		var m map[string]struct{}
		m, ok = st.segments[segmentID]
		for cio := range m {
			if p := st.people[cio]; p != nil {
				out = append(out, st.personCopy(p))
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CioID < out[j].CioID })
	return out, ok
}

// Suppressions returns the suppressed identifier sets.
func (s *Server) Suppressions() []Suppression {
	var out []Suppression
	s.read(func(st *state) {
		for _, x := range st.suppressions {
			out = append(out, *x)
		}
	})
	return out
}

// Merges returns every merge in order.
func (s *Server) Merges() []Merge {
	var out []Merge
	s.read(func(st *state) {
		for _, m := range st.merges {
			m.Primary, m.Secondary = copyStrMap(m.Primary), copyStrMap(m.Secondary)
			out = append(out, m)
		}
	})
	return out
}

// Deliveries returns every transactional send in order.
func (s *Server) Deliveries() []Delivery {
	var out []Delivery
	s.read(func(st *state) {
		for _, d := range st.deliveries {
			out = append(out, copyDelivery(d))
		}
	})
	return out
}

func copyDelivery(d Delivery) Delivery {
	d.Identifiers = copyStrMap(d.Identifiers)
	d.MessageData = copyMap(d.MessageData)
	d.Request = copyMap(d.Request)
	return d
}

// DeliveryEvents returns every reported delivery metric in order.
func (s *Server) DeliveryEvents() []DeliveryEvent {
	var out []DeliveryEvent
	s.read(func(st *state) {
		for _, d := range st.devents {
			d.Body = copyMap(d.Body)
			out = append(out, d)
		}
	})
	return out
}

// Triggers returns every broadcast trigger in order.
func (s *Server) Triggers() []Trigger {
	var out []Trigger
	s.read(func(st *state) {
		for _, t := range st.triggers {
			out = append(out, copyTrigger(t))
		}
	})
	return out
}

func copyTrigger(t *Trigger) Trigger {
	c := *t
	c.Body = copyMap(t.Body)
	c.Errors = append([]string(nil), t.Errors...)
	return c
}

// Forms returns every form submission in order.
func (s *Server) Forms() []FormSubmission {
	var out []FormSubmission
	s.read(func(st *state) {
		for _, f := range st.forms {
			f.Data = copyStrMap(f.Data)
			out = append(out, f)
		}
	})
	return out
}

// CDPMessages returns every stored Pipelines message in order.
func (s *Server) CDPMessages() []CDPMessage {
	var out []CDPMessage
	s.read(func(st *state) {
		for _, m := range st.cdp {
			m.Body = copyMap(m.Body)
			out = append(out, m)
		}
	})
	return out
}

// Snapshot returns a copy of the whole state.
func (s *Server) Snapshot() Snapshot {
	var snap Snapshot
	s.read(func(st *state) {
		snap.AnonymousEvents = map[string][]Event{}
		for a, evs := range st.anonEvents {
			snap.AnonymousEvents[a] = copyEvents(evs)
		}
		for k, o := range st.objects {
			snap.Objects = append(snap.Objects, Object{TypeID: k.typeID, ID: k.id, Attributes: copyMap(o)})
		}
		snap.Relationships = st.relationships("")
		snap.Segments = map[int][]string{}
		for id, m := range st.segments {
			members := []string{}
			for c := range m {
				members = append(members, c)
			}
			sort.Strings(members)
			snap.Segments[id] = members
		}
		for id := range st.broadcasts {
			snap.Broadcasts = append(snap.Broadcasts, id)
		}
	})
	sort.Ints(snap.Broadcasts)
	sort.Slice(snap.Objects, func(i, j int) bool {
		a, b := snap.Objects[i], snap.Objects[j]
		return a.TypeID < b.TypeID || a.TypeID == b.TypeID && a.ID < b.ID
	})
	snap.People = s.People()
	snap.Suppressions = s.Suppressions()
	snap.Merges = s.Merges()
	snap.Deliveries = s.Deliveries()
	snap.DeliveryEvents = s.DeliveryEvents()
	snap.Triggers = s.Triggers()
	snap.Forms = s.Forms()
	snap.CDPMessages = s.CDPMessages()
	return snap
}

// AddSegment makes a manual segment exist (no-op if it does).
func (s *Server) AddSegment(id int) {
	s.mutate(func(st *state) {
		if st.segments[id] == nil {
			st.segments[id] = map[string]struct{}{}
		}
	})
}

// AddBroadcast makes an API-triggered broadcast exist (no-op if it does).
func (s *Server) AddBroadcast(id int) {
	s.mutate(func(st *state) {
		if st.broadcasts[id] == nil {
			st.broadcasts[id] = &broadcast{}
		}
	})
}

// mutate runs f under the state lock and wakes WaitFor callers.
func (s *Server) mutate(f func(st *state)) {
	s.mu.Lock()
	f(s.st)
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change of state or of the
// recording. Take it, check the condition, then wait on it.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// WaitFor blocks until cond(s) is true or ctx is done, re-checking after
// every change of state or recording. cond runs without any sandbox lock
// held and may call the readers. A request's effect on the state is visible
// a moment before the request itself is recorded (with its status): to
// assert on Requests, wait for the requests, not for the state.
func (s *Server) WaitFor(ctx context.Context, cond func(*Server) bool) error {
	for {
		ch := s.Changed()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
