package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Redacted replaces every value Redact hides.
const Redacted = "[redacted]"

// emailPattern matches an email address anywhere in a string, also with the
// at sign URL-encoded.
var emailPattern = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+(?:@|%40)[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}`)

// personKeys name values that identify a person: every scalar under them is
// replaced, the shape (object keys, array lengths) is kept. The envelope's
// idempotency_key is one: producers build keys from user ids.
var personKeys = set(
	"idempotency_key",
	"identifiers", "primary", "secondary", "ids", "emails", "email",
	"anonymous_id", "userId", "anonymousId", "previousId", "user_id",
	"customer_id", "cio_id", "phone", "to", "cc", "bcc", "from", "reply_to",
	"fake_bcc", "device", "device_id", "token", "custom_device", "ip",
	"userAgent", "user_agent",
)

// contentKeys name message data: their keys are kept, each value replaced.
var contentKeys = set(
	"message_data", "data", "attributes", "traits", "properties",
	"relationship_attributes", "custom_data", "custom_payload",
	"custom_attributes", "context", "headers", "body", "body_plain",
	"body_amp", "plaintext_body", "amp_body", "subject", "preheader",
	"title", "message",
)

// keepKeys are shown even inside person identifiers: they name no person.
var keepKeys = set("object_type_id", "object_id", "cio_object_id")

// perPersonKeys hold lists of per-person records whose "id" is a person.
var perPersonKeys = set("per_user_data")

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// Redact returns a JSON rendering of a task payload (or result) with person
// identifiers, emails, message data and attachment contents replaced, so an
// operator can still see the envelope (version, workspace, times), the task's
// structure, event names, template, segment, broadcast and object type ids.
//
// Bytes that are not JSON become "[N bytes, not JSON]"; empty input gives "".
func Redact(data []byte) string {
	s, _ := redact(data)
	return s
}

// ScrubText replaces email addresses in free text such as an error message.
func ScrubText(s string) string {
	return emailPattern.ReplaceAllString(s, Redacted)
}

// redact is Redact that also returns the original strings it hid (three
// characters or longer), longest first, so they can be scrubbed from other
// text about the same task, such as its last error.
func redact(data []byte) (string, []string) {
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return fmt.Sprintf("[%d bytes, not JSON]", len(data)), nil
	}
	r := &redactor{seen: map[string]bool{}}
	out := r.walk(v)
	return encodeJSON(out), r.secrets()
}

func encodeJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return Redacted
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

type redactor struct {
	seen map[string]bool
}

// note records a hidden value.
func (r *redactor) note(v any) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		return
	}
	if len(s) >= 3 {
		r.seen[s] = true
	}
}

func (r *redactor) secrets() []string {
	out := make([]string, 0, len(r.seen))
	for s := range r.seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// walk keeps v's structure and scalars, scrubbing emails from strings and
// applying the key rules to object members.
func (r *redactor) walk(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return r.object(x, false)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.walk(e)
		}
		return out
	case string:
		for _, m := range emailPattern.FindAllString(x, -1) {
			r.note(m)
		}
		return ScrubText(x)
	default:
		return v
	}
}

// object applies the key rules; idIsPerson hides "id" members too.
func (r *redactor) object(m map[string]any, idIsPerson bool) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch {
		case keepKeys[k]:
			out[k] = r.walk(v)
		case personKeys[k], idIsPerson && k == "id":
			out[k] = r.all(v)
		case contentKeys[k]:
			out[k] = r.content(v)
		case k == "attachments":
			out[k] = r.attachments(v)
		case perPersonKeys[k]:
			out[k] = r.perPerson(v)
		default:
			out[k] = r.walk(v)
		}
	}
	return out
}

// all replaces every scalar under v, keeping objects' keys and arrays' lengths
// (and the few keepKeys, which name no person).
func (r *redactor) all(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if keepKeys[k] {
				out[k] = r.walk(e)
				continue
			}
			out[k] = r.all(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.all(e)
		}
		return out
	case nil:
		return nil
	default:
		r.note(x)
		return Redacted
	}
}

// content keeps an object's keys and replaces each value whole.
func (r *redactor) content(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil
		}
		r.all(v) // note the secrets
		return Redacted
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		r.all(e)
		out[k] = Redacted
	}
	return out
}

// attachments keeps file names and drops their contents.
func (r *redactor) attachments(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for name, content := range x {
			out[ScrubText(name)] = dropped(content)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = dropped(e)
		}
		return out
	case nil:
		return nil
	default:
		return dropped(v)
	}
}

func dropped(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("[%d bytes dropped]", len(s))
	}
	return "[dropped]"
}

// perPerson redacts a list of per-person records, whose "id" is a person.
func (r *redactor) perPerson(v any) any {
	list, ok := v.([]any)
	if !ok {
		return r.all(v)
	}
	out := make([]any, len(list))
	for i, e := range list {
		if m, ok := e.(map[string]any); ok {
			out[i] = r.object(m, true)
		} else {
			out[i] = r.all(e)
		}
	}
	return out
}

// scrubWith replaces each secret, then any email, in s.
func scrubWith(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, Redacted)
	}
	return ScrubText(s)
}
