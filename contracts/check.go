package contracts

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// Rules a Violation names.
const (
	// RuleRequired: a variable a template needs is missing from message_data.
	RuleRequired = "required"
	// RuleType: a value is not of its declared type (and could not be
	// coerced, or the policy is refuse).
	RuleType = "type"
	// RuleUnknownTemplate: transactional_message_id names no template of
	// the contracts, which has strict_ids.
	RuleUnknownTemplate = "unknown_template"
	// RuleChannel: the send's channel is not its template's.
	RuleChannel = "channel"
	// RuleTimestamp: an event timestamp is not Unix seconds (Track) or
	// ISO-8601 (Pipelines).
	RuleTimestamp = "timestamp"
)

// Violation is one broken rule: the field as the payload names it, the
// rule, and what the contract wanted and found (never the value).
type Violation struct {
	// Field is the JSON path in the payload: "message_data.reset_link",
	// "attributes.total_revenue", "message_data.items[2].price".
	Field string `json:"field"`
	// Rule is RuleRequired, RuleType, RuleUnknownTemplate, RuleChannel or
	// RuleTimestamp.
	Rule string `json:"rule"`
	// Reason says what the contract wanted and what was found, e.g.
	// `required by template "password_reset" (id 7), missing`.
	Reason string `json:"reason"`
}

// Error is a task a contract refuses. Its text names every violation
// (up to maxShown); it unwraps to a *customerio.ValidationError naming
// the first field, so code that handles validation errors (the ingest
// front door's 400s, the CLI's messages) handles it too.
type Error struct {
	// Workspace is the workspace whose contracts refused the task.
	Workspace string
	// Violations are the broken rules, ordered by field.
	Violations []Violation
}

// maxShown is how many violations an Error's text names.
const maxShown = 10

// Error returns "contracts: <field>: <reason>; <field>: <reason>...".
func (e *Error) Error() string { return "contracts: " + e.text() }

func (e *Error) text() string {
	parts := make([]string, 0, min(len(e.Violations), maxShown)+1)
	for i, v := range e.Violations {
		if i == maxShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Violations)-maxShown))
			break
		}
		parts = append(parts, v.Field+": "+v.Reason)
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the *customerio.ValidationError of the first violation,
// whose reason goes on with the others.
func (e *Error) Unwrap() error {
	if len(e.Violations) == 0 {
		return nil
	}
	first := e.Violations[0]
	reason := first.Reason
	if len(e.Violations) > 1 {
		rest := &Error{Violations: e.Violations[1:]}
		reason += "; " + rest.text()
	}
	return &customerio.ValidationError{Field: first.Field, Reason: reason}
}

// Coercion is one value a contract converted to its declared type.
type Coercion struct {
	// Field is the JSON path in the payload ("attributes.total_revenue",
	// "timestamp").
	Field string `json:"field"`
	// Type is the type the value was coerced to (number, string, boolean,
	// timestamp).
	Type string `json:"type"`
	// From says what it was: "a string", "milliseconds", "an ISO-8601
	// string", ...
	From string `json:"from"`
	// Value is the coerced value.
	Value any `json:"-"`

	path []string // Field as keys
}

// Result is what Check made of a payload.
type Result struct {
	// Payload is the payload to enqueue or deliver: the one given, or a
	// copy with the coerced values (a pointer when a pointer was given).
	Payload tasks.Payload
	// Coerced lists the coerced values, ordered by field.
	Coerced []Coercion
}

// Patch writes the coercions into raw, the payload's JSON: the bytes a
// raw enqueue stores. Other fields keep their values (the objects on the
// path of a coerced value are re-encoded, with sorted keys).
func (r Result) Patch(raw json.RawMessage) (json.RawMessage, error) {
	var err error
	for _, c := range r.Coerced {
		if raw, err = setPath(raw, c.path, c.Value); err != nil {
			return nil, fmt.Errorf("contracts: %s: %w", c.Field, err)
		}
	}
	return raw, nil
}

func setPath(raw json.RawMessage, path []string, v any) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	if len(path) == 1 {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		m[path[0]] = b
	} else {
		inner, err := setPath(m[path[0]], path[1:], v)
		if err != nil {
			return nil, err
		}
		m[path[0]] = inner
	}
	return json.Marshal(m)
}

// Observer is told of every coercion and refusal (for metrics). Its
// methods are called concurrently and must not block. rule is a
// Coercion's Type or a Violation's Rule; workspace is a name of the
// contracts file ("default" for the default workspace).
type Observer interface {
	Coerced(workspace, rule string)
	Refused(workspace, rule string)
}

// Set is a compiled contracts file: what the producer, the CLI, the ingest
// front door and the worker check tasks against. It is immutable and safe
// for concurrent use; a nil *Set checks nothing.
type Set struct {
	file *File
	ws   map[string]*workspace
	obs  atomic.Pointer[Observer]
}

// workspace is one workspace's compiled contracts.
type workspace struct {
	name      string
	strictIDs bool
	templates bool                 // any template, or strict_ids
	byID      map[int64]*template  // by Customer.io id
	byName    map[string]*template // by lower-cased trigger (or name)
	people    *rules
	objects   map[string]*rules
	tsPolicy  Policy
}

type template struct {
	label   string // `template "password_reset" (id 7)`
	channel string
	vars    []*variable // ordered by path
}

type variable struct {
	path     []seg
	raw      string
	typ      string
	optional bool
}

type rules struct {
	who   string // "people attributes", "object type 1 attributes"
	attrs map[string]attrRule
}

type attrRule struct {
	typ    string
	policy Policy
}

// Compile compiles a File (from Parse, or built in Go) into a Set,
// checking it as Parse does.
func Compile(f *File) (*Set, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	if f, err = Parse(b); err != nil { // the same checks whatever made f
		return nil, err
	}
	s := &Set{file: f, ws: map[string]*workspace{}}
	for name, w := range f.Workspaces {
		cw := &workspace{name: name, byID: map[int64]*template{}, byName: map[string]*template{}}
		if t := w.Transactional; t != nil {
			cw.strictIDs = t.StrictIDs
			cw.templates = t.StrictIDs || len(t.Messages) > 0
			// Trigger names first: a name (of a message without trigger)
			// never hides another message's trigger, and of two messages
			// of one name the first is found.
			compiled := make([]*template, len(t.Messages))
			for i, m := range t.Messages {
				compiled[i] = compileTemplate(m)
				if m.ID != 0 {
					cw.byID[m.ID] = compiled[i]
				}
				if m.Trigger != "" {
					cw.byName[strings.ToLower(m.Trigger)] = compiled[i]
				}
			}
			for i, m := range t.Messages {
				if n := strings.ToLower(m.Name); m.Trigger == "" && n != "" && cw.byName[n] == nil {
					cw.byName[n] = compiled[i]
				}
			}
		}
		if a := w.Attributes; a != nil {
			if a.People != nil {
				cw.people = compileRules(a.People, a.Policy, "people attributes")
			}
			for typ, r := range a.Objects {
				if cw.objects == nil {
					cw.objects = map[string]*rules{}
				}
				cw.objects[typ] = compileRules(r, a.Policy, "object type "+typ+" attributes")
			}
		}
		if w.Events != nil {
			cw.tsPolicy = w.Events.TimestampPolicy
		}
		s.ws[name] = cw
	}
	return s, nil
}

func compileTemplate(m *Message) *template {
	t := &template{channel: m.Channel}
	switch {
	case m.lookupName() != "" && m.ID != 0:
		t.label = fmt.Sprintf("template %q (id %d)", m.lookupName(), m.ID)
	case m.ID != 0:
		t.label = fmt.Sprintf("template %d", m.ID)
	default:
		t.label = fmt.Sprintf("template %q", m.lookupName())
	}
	paths := make([]string, 0, len(m.Variables))
	for p := range m.Variables {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		v := m.Variables[p]
		segs, _ := parsePath(p) // checked by Parse
		t.vars = append(t.vars, &variable{path: segs, raw: p, typ: v.Type, optional: v.Optional})
	}
	return t
}

func compileRules(r *AttributeRules, def Policy, who string) *rules {
	cr := &rules{who: who, attrs: map[string]attrRule{}}
	for name, a := range r.Attributes {
		p := a.Policy
		if p == "" {
			p = r.Policy
		}
		if p == "" {
			p = def
		}
		if p == "" {
			p = Refuse
		}
		cr.attrs[name] = attrRule{typ: a.Type, policy: p}
	}
	return cr
}

// File returns the contracts as loaded (do not modify it).
func (s *Set) File() *File {
	if s == nil {
		return &File{Workspaces: map[string]*Workspace{}}
	}
	return s.file
}

// SetObserver makes o the Observer of every later check.
func (s *Set) SetObserver(o Observer) {
	if s != nil {
		s.obs.Store(&o)
	}
}

// canonical names the default workspace "default", as the file does.
func canonical(ws string) string {
	if ws == "" {
		return "default"
	}
	return ws
}

// Has reports whether the file has contracts for the workspace.
func (s *Set) Has(ws string) bool {
	return s != nil && s.ws[canonical(ws)] != nil
}

// Check checks p, a payload of a task for workspace ws ("" or "default"
// for the default workspace), against the workspace's contracts: the
// template a send names (strict_ids, channel, every variable the template
// needs in message_data, their declared types), the declared attribute
// types of a person's or an object's attributes, and event timestamps.
// Values of the wrong type are coerced where the policy says coerce and
// the value converts without guessing; the Result's Payload then is a copy
// carrying them (p is never modified). A refused task is an *Error naming
// every violation. A workspace the file does not name is not checked.
func (s *Set) Check(ws string, p tasks.Payload) (Result, error) {
	return s.check(ws, p, true)
}

// CheckQuiet is Check without telling the Observer: for a check made
// before the enqueue that checks again.
func (s *Set) CheckQuiet(ws string, p tasks.Payload) (Result, error) {
	return s.check(ws, p, false)
}

func (s *Set) check(ws string, p tasks.Payload, observe bool) (Result, error) {
	res := Result{Payload: p}
	if s == nil || p == nil {
		return res, nil
	}
	w := s.ws[canonical(ws)]
	if w == nil {
		return res, nil
	}
	c := &checker{w: w}
	if t, ok := p.(tasks.Templated); ok && w.templates {
		c.send(t)
	}
	out := p
	if a, ok := p.(tasks.Attributed); ok && (w.people != nil || w.objects != nil) {
		if attrs := c.attributes(a); attrs != nil {
			out = a.WithAttributeSet(attrs)
		}
	}
	if ts, ok := out.(tasks.Timestamped); ok && w.tsPolicy != "" {
		if np := c.timestamp(ts); np != nil {
			out = np
		}
	}
	var obs Observer
	if observe {
		if o := s.obs.Load(); o != nil {
			obs = *o
		}
	}
	if len(c.violations) > 0 {
		sort.SliceStable(c.violations, func(i, j int) bool { return c.violations[i].Field < c.violations[j].Field })
		if obs != nil {
			seen := map[string]bool{}
			for _, v := range c.violations {
				if !seen[v.Rule] {
					seen[v.Rule] = true
					obs.Refused(w.name, v.Rule)
				}
			}
		}
		return Result{Payload: p}, &Error{Workspace: w.name, Violations: c.violations}
	}
	if len(c.coerced) > 0 {
		sort.SliceStable(c.coerced, func(i, j int) bool { return c.coerced[i].Field < c.coerced[j].Field })
		res.Payload, res.Coerced = reshape(p, out), c.coerced
		if obs != nil {
			for _, co := range c.coerced {
				obs.Coerced(w.name, co.Type)
			}
		}
	}
	return res, nil
}

// reshape returns out as a pointer when orig is one (the worker's payloads
// are pointers; the With* methods return values).
func reshape(orig, out tasks.Payload) tasks.Payload {
	ot := reflect.TypeOf(orig)
	if ot.Kind() != reflect.Pointer || reflect.TypeOf(out).Kind() == reflect.Pointer {
		return out
	}
	pv := reflect.New(ot.Elem())
	pv.Elem().Set(reflect.ValueOf(out))
	return pv.Interface().(tasks.Payload)
}

// checker collects one check's violations and coercions.
type checker struct {
	w          *workspace
	violations []Violation
	coerced    []Coercion
}

func (c *checker) refuse(field, rule, reason string) {
	for _, v := range c.violations {
		if v.Field == field {
			return // one violation per field (a variable and its elements' keys may say the same)
		}
	}
	c.violations = append(c.violations, Violation{Field: field, Rule: rule, Reason: reason})
}

// lookup finds the template a transactional_message_id names: an all-digit
// id by its number, anything else by trigger name (case-insensitively).
func (w *workspace) lookup(id customerio.MessageID) *template {
	if n, err := strconv.ParseInt(string(id), 10, 64); err == nil {
		return w.byID[n]
	}
	return w.byName[strings.ToLower(string(id))]
}

// idText shows a transactional_message_id as the send gave it.
func idText(id customerio.MessageID) string {
	if _, err := strconv.ParseInt(string(id), 10, 64); err == nil {
		return string(id)
	}
	return strconv.Quote(string(id))
}

func (c *checker) send(t tasks.Templated) {
	channel, id, data := t.Template()
	if strings.TrimSpace(string(id)) == "" {
		return
	}
	tpl := c.w.lookup(id)
	if tpl == nil {
		if c.w.strictIDs {
			c.refuse("transactional_message_id", RuleUnknownTemplate,
				fmt.Sprintf("must name a template of the contracts of workspace %q (strict_ids), got %s", c.w.name, idText(id)))
		}
		return
	}
	if tpl.channel != "" && tpl.channel != channel {
		c.refuse("transactional_message_id", RuleChannel, fmt.Sprintf("%s is %s message, got a %s send", tpl.label, article(tpl.channel), channel))
		return
	}
	md := map[string]any(data)
	for _, v := range tpl.vars {
		c.variable(tpl, v, md, 0, "message_data")
	}
}

func article(channel string) string {
	switch channel {
	case tasks.ChannelEmail, tasks.ChannelInApp, tasks.ChannelInbox, tasks.ChannelSMS:
		return "an " + channel
	}
	return "a " + channel
}

// variable checks the rest of v's path, from step i, in container (the
// object holding path[i]); field is container's path in the payload.
func (c *checker) variable(tpl *template, v *variable, container any, i int, field string) {
	s := v.path[i]
	obj, _ := asObject(container)
	val, present := obj[s.key]
	if val == nil {
		present = false
	}
	f := field + "." + s.key
	last := i == len(v.path)-1
	if !present {
		// An absent array has no elements to check; anything else the
		// template needs is missing.
		if !v.optional && !eachFrom(v.path, i) {
			c.refuse(field+"."+pathString(v.path[i:]), RuleRequired, fmt.Sprintf("required by %s, missing", tpl.label))
		}
		return
	}
	switch {
	case s.each:
		arr, ok := asArray(val)
		if !ok {
			c.refuse(f, RuleType, fmt.Sprintf("%s needs an array (for %s), got %s", tpl.label, v.raw, kindOf(normalKind(val))))
			return
		}
		for j, el := range arr {
			ef := fmt.Sprintf("%s[%d]", f, j)
			if jsonKind(el) != TypeObject {
				if el != nil || !v.optional {
					c.refuse(ef, RuleType, fmt.Sprintf("%s needs an object (for %s), got %s", tpl.label, v.raw, kindOf(normalKind(el))))
				}
				continue
			}
			c.variable(tpl, v, el, i+1, ef)
		}
	case last:
		if !typeMatches(v.typ, val) {
			c.refuse(f, RuleType, fmt.Sprintf("%s declares %s, got %s", tpl.label, typeText(v.typ), valueText(val)))
		}
	default:
		if jsonKind(val) != TypeObject {
			c.refuse(f, RuleType, fmt.Sprintf("%s needs an object (for %s), got %s", tpl.label, v.raw, kindOf(normalKind(val))))
			return
		}
		c.variable(tpl, v, val, i+1, f)
	}
}

// eachFrom reports whether a step from i on is an array's elements.
func eachFrom(p []seg, i int) bool {
	for _, s := range p[i:] {
		if s.each {
			return true
		}
	}
	return false
}

// normalKind maps a Go value to a decoded JSON value of the same kind, for
// kindOf.
func normalKind(v any) any {
	switch jsonKind(v) {
	case TypeString:
		return ""
	case TypeNumber:
		return json.Number("0")
	case TypeBoolean:
		return false
	case TypeArray:
		return []any{}
	case TypeObject:
		return map[string]any{}
	}
	return nil
}

// typeMatches reports whether v is of type typ.
func typeMatches(typ string, v any) bool {
	switch typ {
	case "", TypeAny:
		return true
	case TypeTimestamp:
		f, _, ok := number(v)
		return ok && unixKind(f) == tsSeconds && f == float64(int64(f))
	}
	return jsonKind(v) == typ
}

// typeText names a declared type in a reason.
func typeText(typ string) string {
	switch typ {
	case TypeTimestamp:
		return "a timestamp (Unix seconds)"
	case TypeArray, TypeObject:
		return "an " + typ
	}
	return "a " + typ
}

// valueText says what a value is, without showing it: its JSON kind, and
// for a number declared a timestamp what kind of time it looks like.
func valueText(v any) string {
	if f, _, ok := number(v); ok {
		switch unixKind(f) {
		case tsMillis:
			return "a number in milliseconds"
		case tsOutOfRange:
			return "a number that is no Unix time"
		}
		if f != float64(int64(f)) {
			return "a fractional number"
		}
	}
	return kindOf(normalKind(v))
}

// attributes checks a's attributes against the declared types; it returns
// the attributes with the coerced values (a new map), or nil when nothing
// was coerced.
func (c *checker) attributes(a tasks.Attributed) map[string]any {
	objType, field, attrs := a.AttributeSet()
	r := c.w.people
	if objType != "" {
		r = c.w.objects[objType]
	}
	if r == nil || len(attrs) == 0 {
		return nil
	}
	var out map[string]any
	for name, v := range attrs {
		rule, ok := r.attrs[name]
		if !ok || v == nil || typeMatches(rule.typ, v) {
			continue
		}
		f := field + "." + name
		if rule.policy == Coerce {
			if nv, from, ok := coerce(rule.typ, v); ok {
				if out == nil {
					out = make(map[string]any, len(attrs))
					for k, x := range attrs {
						out[k] = x
					}
				}
				out[name] = nv
				c.coerced = append(c.coerced, Coercion{Field: f, Type: rule.typ, From: from, Value: nv, path: []string{field, name}})
				continue
			}
			c.refuse(f, RuleType, fmt.Sprintf("declared %s (%s), got %s that cannot be coerced", typeText(rule.typ), r.who, valueText(v)))
			continue
		}
		c.refuse(f, RuleType, fmt.Sprintf("declared %s (%s), got %s", typeText(rule.typ), r.who, valueText(v)))
	}
	return out
}

// coerce converts v to typ when it converts without guessing: "1000" →
// 1000, "true" → true, 1000 → "1000", a millisecond or ISO-8601 timestamp
// (or fractional seconds) → Unix seconds. from says what v was.
func coerce(typ string, v any) (out any, from string, ok bool) {
	s, isString := v.(string)
	if !isString && jsonKind(v) == TypeString {
		s, isString = reflect.ValueOf(v).String(), true
	}
	switch typ {
	case TypeNumber:
		if t := strings.TrimSpace(s); isString && numberText(t) {
			return json.Number(t), "a string", true
		}
	case TypeBoolean:
		if isString {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				return true, "a string", true
			case "false":
				return false, "a string", true
			}
		}
	case TypeString:
		if _, text, ok := number(v); ok {
			return text, "a number", true
		}
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b), "a boolean", true
		}
	case TypeTimestamp:
		if isString {
			t := strings.TrimSpace(s)
			if numberText(t) {
				f, _ := strconv.ParseFloat(t, 64)
				if sec, what, ok := toSeconds(f); ok {
					return sec, what + " as a string", true
				}
				return nil, "", false
			}
			if tm, ok := parseISO(t); ok && tm.Unix() >= 0 {
				return tm.Unix(), "an ISO-8601 string", true
			}
			return nil, "", false
		}
		if f, _, ok := number(v); ok {
			return toSecondsValue(f)
		}
	}
	return nil, "", false
}

func toSecondsValue(f float64) (any, string, bool) {
	sec, what, ok := toSeconds(f)
	if !ok {
		return nil, "", false
	}
	return sec, what, true
}

// toSeconds reads a number as Unix seconds or milliseconds.
func toSeconds(f float64) (int64, string, bool) {
	switch unixKind(f) {
	case tsSeconds:
		if f != float64(int64(f)) {
			return int64(f), "fractional seconds", true
		}
		return int64(f), "seconds", true
	case tsMillis:
		return int64(f / 1000), "milliseconds", true
	}
	return 0, "", false
}

// timestamp checks an event's timestamp; it returns the payload with the
// coerced timestamp, or nil.
func (c *checker) timestamp(ts tasks.Timestamped) tasks.Payload {
	unix, text := ts.EventTimestamp()
	coerce := c.w.tsPolicy == Coerce
	switch {
	case unix != 0:
		switch unixKind(float64(unix)) {
		case tsSeconds:
			return nil
		case tsMillis:
			if coerce {
				sec := unix / 1000
				c.coerced = append(c.coerced, Coercion{Field: "timestamp", Type: TypeTimestamp, From: "milliseconds", Value: sec, path: []string{"timestamp"}})
				return ts.WithEventTimestamp(sec)
			}
			c.refuse("timestamp", RuleTimestamp, "must be Unix seconds, got milliseconds (read as seconds, a date around the year 55,000)")
		default:
			c.refuse("timestamp", RuleTimestamp, "must be Unix seconds, got a number that is no Unix time")
		}
	case text != "":
		if _, ok := parseISO(text); ok {
			return nil
		}
		t := strings.TrimSpace(text)
		if numberText(t) {
			f, _ := strconv.ParseFloat(t, 64)
			if sec, what, ok := toSeconds(f); ok && coerce {
				np := ts.WithEventTimestamp(sec)
				_, v := np.(tasks.Timestamped).EventTimestamp()
				c.coerced = append(c.coerced, Coercion{Field: "timestamp", Type: TypeTimestamp, From: "Unix " + what + " as text", Value: v, path: []string{"timestamp"}})
				return np
			}
			c.refuse("timestamp", RuleTimestamp, "must be an ISO-8601 time, got a number as text")
			return nil
		}
		c.refuse("timestamp", RuleTimestamp, "must be an ISO-8601 time (like 2026-01-02T15:04:05Z), got text that is not one")
	}
	return nil
}
