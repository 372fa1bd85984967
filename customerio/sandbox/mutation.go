package sandbox

import (
	"fmt"
	"strings"
	"time"
)

// mutate runs f under the state lock and wakes WaitFor callers.
func (s *Server) mutate(f func(st *state)) {
	s.mu.Lock()
	s.st.now = s.cfg.Now()
	f(s.st)
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
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

// setPhone gives p the phone identifier phone (a person has at most one).
func (st *state) setPhone(p *person, phone string) {
	if phone == "" || phone == p.phone {
		return
	}
	if p.phone != "" && st.byPhone[p.phone] == p.cioID {
		delete(st.byPhone, p.phone)
	}
	p.phone = phone
	st.byPhone[phone] = p.cioID
}

func (st *state) remove(p *person) {
	delete(st.people, p.cioID)
	if p.id != "" && st.byID[p.id] == p.cioID {
		delete(st.byID, p.id)
	}
	if p.phone != "" && st.byPhone[p.phone] == p.cioID {
		delete(st.byPhone, p.phone)
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

func (st *state) suppress(s *Suppression) {
	st.suppressions = append(st.suppressions, s)
	if s.ID != "" {
		st.suppressed["id:"+s.ID] = s
	}
	if s.Email != "" {
		st.suppressed["email:"+strings.ToLower(s.Email)] = s
	}
	if s.Phone != "" {
		st.suppressed["phone:"+s.Phone] = s
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
		delete(st.suppressed, "phone:"+s.Phone)
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
			// Customer.io merges the anonymous events it receives up to
			// five minutes after the identify that carried their
			// anonymous_id; later ones stay anonymous (orphaned).
			if st.mergeWindow < 0 || !ev.ReceivedAt.After(st.claimedAt[anon].Add(st.mergeWindow)) {
				p.events = append(p.events, ev)
				return true
			}
			ev.Orphaned = true
		}
	}
	st.anonEvents[anon] = append(st.anonEvents[anon], ev)
	return true
}

// claimAnonymous attaches anon's stored events and anonymous relationships
// to p and remembers the link (and when it was made: the merge window) for
// later anonymous events.
func (st *state) claimAnonymous(p *person, anon string) {
	if anon == "" {
		return
	}
	st.byAnon[anon] = p.cioID
	st.claimedAt[anon] = st.now
	if evs := st.anonEvents[anon]; len(evs) > 0 {
		for _, ev := range evs {
			ev.Orphaned = false
			p.events = append(p.events, ev)
		}
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

// ensureObject returns the attributes of an object, creating it (with a
// new cio_object_id) when it does not exist.
func (st *state) ensureObject(typeID, id string) map[string]any {
	k := objKey{typeID, id}
	o := st.objects[k]
	if o == nil {
		o = map[string]any{}
		st.objects[k] = o
		st.nextObject++
		cio := "ob" + strconvHex(st.nextObject)
		st.objCio[k] = cio
		st.byObjCio[cio] = k
	}
	return o
}

// object resolves how an operation names an object: by object_type_id
// and object_id (a new object's key too), or by cio_object_id (false when
// no object has it: a cio_object_id can only name an existing object).
func (st *state) object(r objRef) (objKey, bool) {
	if r.cio != "" {
		k, ok := st.byObjCio[r.cio]
		return k, ok
	}
	return objKey{r.typeID, r.objID}, true
}

func (st *state) deleteObject(typeID, id string) {
	k := objKey{typeID, id}
	delete(st.objects, k)
	if cio, ok := st.objCio[k]; ok {
		delete(st.byObjCio, cio)
		delete(st.objCio, k)
	}
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
// bytes of them as JSON (Customer.io's Track API reference). Customer.io's
// answer to breaking them is not documented; the sandbox refuses the
// operation, so that a test sees it. "" when it fits.
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
	secID, secEmail, secPhone := sec.id, sec.email, sec.phone
	st.remove(sec)
	if pri.id == "" && secID != "" {
		st.setID(pri, secID)
	}
	if pri.phone == "" && secPhone != "" {
		st.setPhone(pri, secPhone)
	}
	if pri.email == "" && secEmail != "" {
		st.setEmail(pri, secEmail)
	}
	pri.updatedAt = now
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
