package contracts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cioq/cioq/tasks"
)

// Policy says what a contract does with a value of the wrong type: refuse
// the task, or coerce the value ("1000" → 1000) and let it through.
type Policy string

// Policies.
const (
	// Refuse refuses the task, naming the field (the default).
	Refuse Policy = "refuse"
	// Coerce converts the value to the declared type when it can be
	// converted without guessing, and refuses it otherwise.
	Coerce Policy = "coerce"
)

// Types of attributes and template variables.
const (
	TypeAny       = "any"       // anything (a pulled variable whose type the template does not tell)
	TypeString    = "string"    // a JSON string
	TypeNumber    = "number"    // a JSON number
	TypeBoolean   = "boolean"   // true or false
	TypeTimestamp = "timestamp" // a Unix time in seconds (a JSON number)
	TypeArray     = "array"     // a JSON array
	TypeObject    = "object"    // a JSON object
)

var knownTypes = []string{TypeAny, TypeString, TypeNumber, TypeBoolean, TypeTimestamp, TypeArray, TypeObject}

// Channels a template may declare: the channels of the transactional sends
// (tasks.ChannelEmail, ...).
var knownChannels = []string{tasks.ChannelEmail, tasks.ChannelPush, tasks.ChannelSMS, tasks.ChannelInApp, tasks.ChannelInbox, tasks.ChannelWhatsApp}

// File is a contracts file: the contracts of each Customer.io workspace,
// by workspace name ("default" is the default workspace).
type File struct {
	Workspaces map[string]*Workspace `json:"workspaces"`
}

// Workspace is one workspace's contracts.
type Workspace struct {
	// Transactional are the workspace's transactional messages.
	Transactional *Transactional `json:"transactional,omitempty"`
	// Attributes are the declared types of people's and objects'
	// attributes.
	Attributes *Attributes `json:"attributes,omitempty"`
	// Events say how event timestamps are checked.
	Events *Events `json:"events,omitempty"`
}

// Transactional lists the workspace's transactional messages (templates).
type Transactional struct {
	// StrictIDs refuses a send whose transactional_message_id is not one
	// of Messages (by id, or by trigger name). Without it such a send is
	// not checked.
	StrictIDs bool `json:"strict_ids,omitempty"`
	// Messages are the templates.
	Messages []*Message `json:"messages"`
}

// Message is one transactional message: how a send names it and the
// message_data variables its Liquid uses.
type Message struct {
	// ID is Customer.io's numeric id of the message.
	ID int64 `json:"id,omitempty"`
	// Trigger is the trigger name a send may use instead of the id
	// (compared case-insensitively). When empty, Name is used.
	Trigger string `json:"trigger,omitempty"`
	// Name is the message's name in Customer.io.
	Name string `json:"name,omitempty"`
	// Channel is the message's channel (email, push, sms, in_app, inbox,
	// whatsapp); a send of another channel is refused. Empty: not checked.
	Channel string `json:"channel,omitempty"`
	// Source is "pulled" for a message `cioq contracts pull` wrote (and
	// refreshes on the next pull); empty for one written by hand, which
	// pull never changes.
	Source string `json:"source,omitempty"`
	// Variables are the message_data variables, by path: "reset_link",
	// "order.id" (a key of an object), "items[].price" (a key of every
	// element of an array).
	Variables map[string]*Variable `json:"variables,omitempty"`
}

// Variable is one message_data variable of a template.
type Variable struct {
	// Type is the variable's type (default any).
	Type string `json:"type,omitempty"`
	// Optional variables may be missing: the template gives a default
	// (a Liquid default filter) or only tests them in a condition.
	Optional bool `json:"optional,omitempty"`
	// Note says where pull found the variable (for people reading the
	// file); it changes nothing.
	Note string `json:"note,omitempty"`
}

// Attributes declare attribute types for people and for each object type.
type Attributes struct {
	// Policy is the default policy of every attribute (default refuse).
	Policy Policy `json:"policy,omitempty"`
	// People are the rules of people's attributes (identify, merge on
	// signup, Pipelines identify traits).
	People *AttributeRules `json:"people,omitempty"`
	// Objects are the rules of each object type's attributes (object
	// upserts, Pipelines group traits), by object type id ("1", "2", ...).
	Objects map[string]*AttributeRules `json:"objects,omitempty"`
}

// AttributeRules are the declared attributes of people or of one object
// type. Attributes not declared are not checked.
type AttributeRules struct {
	// Policy overrides Attributes.Policy for these attributes.
	Policy Policy `json:"policy,omitempty"`
	// Attributes are the declared attributes by name.
	Attributes map[string]*Attribute `json:"attributes"`
}

// Attribute is one declared attribute.
type Attribute struct {
	// Type is number, string, boolean, timestamp (Unix seconds), array or
	// object.
	Type string `json:"type"`
	// Policy overrides the rules' policy for this attribute.
	Policy Policy `json:"policy,omitempty"`
}

// Events say how event timestamps are checked.
type Events struct {
	// TimestampPolicy checks the timestamp of every Track event (Unix
	// seconds: a millisecond value is a date in the year 55,000, which
	// Customer.io's Track v2 silently replaces by the time it received
	// the event) and Pipelines message (ISO-8601): refuse or coerce.
	// Empty: timestamps are not checked.
	TimestampPolicy Policy `json:"timestamp_policy,omitempty"`
}

// Load reads and checks the contracts file at path (strictly: unknown keys,
// unknown types and policies, malformed variable paths are errors naming
// the key) and compiles it.
func Load(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("contracts: %s: %w", path, errors.Unwrap(err))
	}
	return Compile(f)
}

// ReadFile reads and checks a contracts file without compiling it (what
// `cioq contracts pull` merges into). A missing file is an empty File.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &File{Workspaces: map[string]*Workspace{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("contracts: %s: %w", path, errors.Unwrap(err))
	}
	return f, nil
}

// Parse reads a contracts file's JSON strictly. Errors name the key by its
// path in the file ("workspaces.default.attributes.people.attributes.total_revenue.type").
func Parse(b []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("contracts: %w", fileError{"", "is not valid JSON: " + syntaxText(err)})
	}
	if dec.More() {
		return nil, fmt.Errorf("contracts: %w", fileError{"", "has more than one JSON value"})
	}
	f, err := parseFile(v)
	if err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	return f, nil
}

func syntaxText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return err.Error()
}

// fileError is a problem of the file, at a key path.
type fileError struct{ at, msg string }

func (e fileError) Error() string {
	if e.at == "" {
		return "the file " + e.msg
	}
	return e.at + ": " + e.msg
}

// obj reads v as an object whose keys must be among known.
func obj(v any, at string, known ...string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fileError{at, "must be an object, got " + kindOf(v)}
	}
	for k := range m {
		if !slices.Contains(known, k) {
			return nil, fileError{join(at, k), "is not a known key (want " + strings.Join(known, ", ") + ")"}
		}
	}
	return m, nil
}

func str(m map[string]any, k, at string) (string, error) {
	v, ok := m[k]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fileError{join(at, k), "must be a string, got " + kindOf(v)}
	}
	return s, nil
}

func boolean(m map[string]any, k, at string) (bool, error) {
	v, ok := m[k]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fileError{join(at, k), "must be true or false, got " + kindOf(v)}
	}
	return b, nil
}

func policy(m map[string]any, k, at string) (Policy, error) {
	s, err := str(m, k, at)
	if err != nil || s == "" {
		return "", err
	}
	if p := Policy(s); p == Refuse || p == Coerce {
		return p, nil
	}
	return "", fileError{join(at, k), fmt.Sprintf("must be %q or %q, got %q", Refuse, Coerce, s)}
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func parseFile(v any) (*File, error) {
	m, err := obj(v, "", "workspaces")
	if err != nil {
		return nil, err
	}
	f := &File{Workspaces: map[string]*Workspace{}}
	wv, ok := m["workspaces"]
	if !ok {
		return nil, fileError{"workspaces", "is required"}
	}
	if wv == nil {
		return f, nil
	}
	ws, err := obj(wv, "workspaces", keysOf(wv)...)
	if err != nil {
		return nil, err
	}
	for name, w := range ws {
		at := "workspaces." + name
		if err := tasks.ValidateWorkspace(name); err != nil || name == "" {
			return nil, fileError{at, "is not a workspace name (1 to 64 characters of a-z, 0-9, '_' and '-')"}
		}
		pw, err := parseWorkspace(w, at)
		if err != nil {
			return nil, err
		}
		f.Workspaces[name] = pw
	}
	return f, nil
}

func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func parseWorkspace(v any, at string) (*Workspace, error) {
	m, err := obj(v, at, "transactional", "attributes", "events")
	if err != nil {
		return nil, err
	}
	w := &Workspace{}
	if t, ok := m["transactional"]; ok && t != nil {
		if w.Transactional, err = parseTransactional(t, at+".transactional"); err != nil {
			return nil, err
		}
	}
	if a, ok := m["attributes"]; ok && a != nil {
		if w.Attributes, err = parseAttributes(a, at+".attributes"); err != nil {
			return nil, err
		}
	}
	if e, ok := m["events"]; ok && e != nil {
		em, err := obj(e, at+".events", "timestamp_policy")
		if err != nil {
			return nil, err
		}
		w.Events = &Events{}
		if w.Events.TimestampPolicy, err = policy(em, "timestamp_policy", at+".events"); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func parseTransactional(v any, at string) (*Transactional, error) {
	m, err := obj(v, at, "strict_ids", "messages")
	if err != nil {
		return nil, err
	}
	t := &Transactional{Messages: []*Message{}}
	if t.StrictIDs, err = boolean(m, "strict_ids", at); err != nil {
		return nil, err
	}
	mv, ok := m["messages"]
	if !ok || mv == nil {
		return t, nil
	}
	list, ok := mv.([]any)
	if !ok {
		return nil, fileError{at + ".messages", "must be an array, got " + kindOf(mv)}
	}
	ids, triggers := map[int64]int{}, map[string]int{}
	for i, e := range list {
		mat := fmt.Sprintf("%s.messages[%d]", at, i)
		msg, err := parseMessage(e, mat)
		if err != nil {
			return nil, err
		}
		if msg.ID != 0 {
			if j, dup := ids[msg.ID]; dup {
				return nil, fileError{mat + ".id", fmt.Sprintf("%d is also the id of messages[%d]", msg.ID, j)}
			}
			ids[msg.ID] = i
		}
		if n := strings.ToLower(msg.Trigger); n != "" {
			if j, dup := triggers[n]; dup {
				return nil, fileError{mat + ".trigger", fmt.Sprintf("%q is also the trigger of messages[%d]", msg.Trigger, j)}
			}
			triggers[n] = i
		}
		t.Messages = append(t.Messages, msg)
	}
	return t, nil
}

// lookupName is the name a send may use for the message: its trigger, or
// its name when it has no trigger.
func (m *Message) lookupName() string {
	if m.Trigger != "" {
		return m.Trigger
	}
	return m.Name
}

func parseMessage(v any, at string) (*Message, error) {
	m, err := obj(v, at, "id", "trigger", "name", "channel", "source", "variables")
	if err != nil {
		return nil, err
	}
	msg := &Message{}
	if idv, ok := m["id"]; ok && idv != nil {
		n, ok := idv.(json.Number)
		id, err := strconv.ParseInt(n.String(), 10, 64)
		if !ok || err != nil || id <= 0 {
			return nil, fileError{at + ".id", "must be a positive integer"}
		}
		msg.ID = id
	}
	for _, f := range []struct {
		k   string
		dst *string
	}{{"trigger", &msg.Trigger}, {"name", &msg.Name}, {"channel", &msg.Channel}, {"source", &msg.Source}} {
		if *f.dst, err = str(m, f.k, at); err != nil {
			return nil, err
		}
	}
	if msg.ID == 0 && msg.lookupName() == "" {
		return nil, fileError{at, "needs an id, a trigger or a name: how sends name it"}
	}
	if msg.Channel != "" && !slices.Contains(knownChannels, msg.Channel) {
		return nil, fileError{at + ".channel", fmt.Sprintf("must be one of %s, got %q", strings.Join(knownChannels, ", "), msg.Channel)}
	}
	if msg.Source != "" && msg.Source != SourcePulled {
		return nil, fileError{at + ".source", fmt.Sprintf("must be %q or absent, got %q", SourcePulled, msg.Source)}
	}
	if vv, ok := m["variables"]; ok && vv != nil {
		vars, err := obj(vv, at+".variables", keysOf(vv)...)
		if err != nil {
			return nil, err
		}
		msg.Variables = map[string]*Variable{}
		for path, x := range vars {
			vat := at + ".variables." + path
			if _, err := parsePath(path); err != nil {
				return nil, fileError{vat, err.Error()}
			}
			xm, err := obj(x, vat, "type", "optional", "note")
			if err != nil {
				return nil, err
			}
			va := &Variable{}
			if va.Type, err = typeName(xm, vat, true); err != nil {
				return nil, err
			}
			if va.Optional, err = boolean(xm, "optional", vat); err != nil {
				return nil, err
			}
			if va.Note, err = str(xm, "note", vat); err != nil {
				return nil, err
			}
			msg.Variables[path] = va
		}
	}
	return msg, nil
}

// SourcePulled is Message.Source of the messages pull writes.
const SourcePulled = "pulled"

func typeName(m map[string]any, at string, optional bool) (string, error) {
	s, err := str(m, "type", at)
	if err != nil {
		return "", err
	}
	if s == "" {
		if optional {
			return "", nil
		}
		return "", fileError{at + ".type", "is required (one of " + strings.Join(knownTypes[1:], ", ") + ")"}
	}
	if !slices.Contains(knownTypes, s) || (!optional && s == TypeAny) {
		allowed := knownTypes
		if !optional {
			allowed = knownTypes[1:]
		}
		return "", fileError{at + ".type", fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), s)}
	}
	return s, nil
}

func parseAttributes(v any, at string) (*Attributes, error) {
	m, err := obj(v, at, "policy", "people", "objects")
	if err != nil {
		return nil, err
	}
	a := &Attributes{}
	if a.Policy, err = policy(m, "policy", at); err != nil {
		return nil, err
	}
	if p, ok := m["people"]; ok && p != nil {
		if a.People, err = parseRules(p, at+".people"); err != nil {
			return nil, err
		}
	}
	if o, ok := m["objects"]; ok && o != nil {
		om, err := obj(o, at+".objects", keysOf(o)...)
		if err != nil {
			return nil, err
		}
		a.Objects = map[string]*AttributeRules{}
		for typ, r := range om {
			oat := at + ".objects." + typ
			if n, err := strconv.ParseUint(typ, 10, 63); err != nil || n < 1 {
				return nil, fileError{oat, `is not an object type id (a positive integer, like "1")`}
			}
			if a.Objects[typ], err = parseRules(r, oat); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

func parseRules(v any, at string) (*AttributeRules, error) {
	m, err := obj(v, at, "policy", "attributes")
	if err != nil {
		return nil, err
	}
	r := &AttributeRules{Attributes: map[string]*Attribute{}}
	if r.Policy, err = policy(m, "policy", at); err != nil {
		return nil, err
	}
	if av, ok := m["attributes"]; ok && av != nil {
		am, err := obj(av, at+".attributes", keysOf(av)...)
		if err != nil {
			return nil, err
		}
		for name, x := range am {
			aat := at + ".attributes." + name
			xm, err := obj(x, aat, "type", "policy")
			if err != nil {
				return nil, err
			}
			attr := &Attribute{}
			if attr.Type, err = typeName(xm, aat, false); err != nil {
				return nil, err
			}
			if attr.Policy, err = policy(xm, "policy", aat); err != nil {
				return nil, err
			}
			r.Attributes[name] = attr
		}
	}
	return r, nil
}

// Marshal writes the file as indented JSON (keys sorted), as pull writes it.
func (f *File) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// kindOf names the JSON kind of a decoded value.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, float32, int, int64, int32, uint, uint64, uint32:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a " + fmt.Sprintf("%T", v)
}
