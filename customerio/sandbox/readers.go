package sandbox

import (
	"context"
	"sort"
	"strings"
)

// read runs f under the state lock, once the broadcast triggers due by now
// are processed, so that every reader sees them.
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

// PersonBy returns a copy of the person a typed identifier names, as a
// Track v2 operation's identifiers do: typ is id, email, phone or cio_id
// (the bare value).
func (s *Server) PersonBy(typ, value string) (Person, bool) {
	var out Person
	var ok bool
	s.read(func(st *state) {
		if typ == "anonymous_id" {
			return
		}
		if p := st.lookupTyped(typ, value); p != nil {
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
		if k := (objKey{typeID, id}); st.objects[k] != nil {
			out, ok = st.objectCopy(k), true
		}
	})
	return out, ok
}

// ObjectByCioID returns a copy of the object whose cio_object_id is cio.
func (s *Server) ObjectByCioID(cio string) (Object, bool) {
	var out Object
	var ok bool
	s.read(func(st *state) {
		if k, found := st.byObjCio[cio]; found {
			out, ok = st.objectCopy(k), true
		}
	})
	return out, ok
}

func (st *state) objectCopy(k objKey) Object {
	return Object{TypeID: k.typeID, ID: k.id, CioObjectID: st.objCio[k], Attributes: copyMap(st.objects[k])}
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

// copyOut is the body of the readers of a list of records: under the
// state lock it takes the list pick chooses and returns cp's copy of each
// record, in order (nil when there is none). cp copies deeply, so the
// caller may change what it gets without changing the sandbox.
func copyOut[R, C any](s *Server, pick func(*state) []R, cp func(R) C) []C {
	var out []C
	s.read(func(st *state) {
		for _, r := range pick(st) {
			out = append(out, cp(r))
		}
	})
	return out
}

// Suppressions returns the suppressed identifier sets.
func (s *Server) Suppressions() []Suppression {
	return copyOut(s, func(st *state) []*Suppression { return st.suppressions }, copySuppression)
}

// Merges returns every merge in order.
func (s *Server) Merges() []Merge {
	return copyOut(s, func(st *state) []Merge { return st.merges }, copyMerge)
}

// Deliveries returns every transactional send in order.
func (s *Server) Deliveries() []Delivery {
	return copyOut(s, func(st *state) []Delivery { return st.deliveries }, copyDelivery)
}

// DeliveryEvents returns every reported delivery metric in order.
func (s *Server) DeliveryEvents() []DeliveryEvent {
	return copyOut(s, func(st *state) []DeliveryEvent { return st.devents }, copyDeliveryEvent)
}

// Triggers returns every broadcast trigger in order.
func (s *Server) Triggers() []Trigger {
	return copyOut(s, func(st *state) []*Trigger { return st.triggers }, copyTrigger)
}

// Forms returns every form submission in order.
func (s *Server) Forms() []FormSubmission {
	return copyOut(s, func(st *state) []FormSubmission { return st.forms }, copyForm)
}

// CDPMessages returns every stored Pipelines message in order.
func (s *Server) CDPMessages() []CDPMessage {
	return copyOut(s, func(st *state) []CDPMessage { return st.cdp }, copyCDPMessage)
}

// Snapshot returns a copy of the whole state.
func (s *Server) Snapshot() Snapshot {
	var snap Snapshot
	s.read(func(st *state) {
		snap.AnonymousEvents = map[string][]Event{}
		for a, evs := range st.anonEvents {
			snap.AnonymousEvents[a] = copyEvents(evs)
		}
		for k := range st.objects {
			snap.Objects = append(snap.Objects, st.objectCopy(k))
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

func (st *state) personCopy(p *person) Person {
	out := Person{
		CioID: p.cioID, ID: p.id, Email: p.email, Phone: p.phone,
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

func copySuppression(x *Suppression) Suppression { return *x }

func copyMerge(m Merge) Merge {
	m.Primary, m.Secondary = copyStrMap(m.Primary), copyStrMap(m.Secondary)
	return m
}

func copyDelivery(d Delivery) Delivery {
	d.Identifiers = copyStrMap(d.Identifiers)
	d.MessageData = copyMap(d.MessageData)
	d.Request = copyMap(d.Request)
	return d
}

func copyDeliveryEvent(d DeliveryEvent) DeliveryEvent {
	d.Body = copyMap(d.Body)
	return d
}

func copyTrigger(t *Trigger) Trigger {
	c := *t
	c.Body = copyMap(t.Body)
	c.Errors = append([]string(nil), t.Errors...)
	if t.Messages != nil {
		c.Messages = make([]Delivery, len(t.Messages))
		for i, d := range t.Messages {
			c.Messages[i] = copyDelivery(d)
		}
	}
	return c
}

func copyForm(f FormSubmission) FormSubmission {
	f.Data = copyStrMap(f.Data)
	return f
}

func copyCDPMessage(m CDPMessage) CDPMessage {
	m.Body = copyMap(m.Body)
	return m
}
