package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cioq/cioq/tasks"
)

// Source kinds: what a source sends.
const (
	KindSegment     = "segment"     // Segment spec (Segment, Customer.io Pipelines libraries)
	KindRudderStack = "rudderstack" // Segment spec as RudderStack sends it
	KindMParticle   = "mparticle"   // mParticle server-to-server batches
	KindCustom      = "custom"      // arbitrary JSON read through Mappings
)

// Routing modes: what a source's events become.
const (
	// ModePipelines forwards messages as cdp:* tasks to Customer.io's
	// Pipelines API.
	ModePipelines = "pipelines"
	// ModeTrack translates messages into Track API tasks (cio:*).
	ModeTrack = "track"
)

// FileConfig is the ingest configuration file (JSON; see the package
// documentation for the format). LoadConfig reads and checks it.
type FileConfig struct {
	// Sources are the senders of events, each with its own credentials.
	Sources []SourceConfig `json:"sources"`
	// Tokens are the bearer tokens accepted by POST /v1/tasks.
	Tokens []TokenConfig `json:"tokens,omitempty"`
}

// SourceConfig is one source of events: a sender (Segment, RudderStack,
// mParticle or a custom JSON webhook) with its credentials, routing mode and
// workspace.
type SourceConfig struct {
	// Name identifies the source in paths (/v1/custom/{name}), metrics,
	// logs and idempotency keys: 1 to 64 characters of a-z, 0-9, '_', '-'.
	Name string `json:"name"`
	// Kind is segment, rudderstack, mparticle or custom.
	Kind string `json:"kind"`
	// Mode is pipelines or track (default track). mparticle sources only
	// support track.
	Mode string `json:"mode,omitempty"`
	// Workspace is the Customer.io workspace whose credentials deliver the
	// source's tasks ("" = the default workspace).
	Workspace string `json:"workspace,omitempty"`
	// WriteKey is the HTTP Basic user name the source authenticates with
	// (password empty). WriteKeyEnv names an environment variable holding
	// it instead; give one of them, or a shared secret, or both.
	WriteKey    string `json:"write_key,omitempty"`
	WriteKeyEnv string `json:"write_key_env,omitempty"`
	// SharedSecret verifies X-Signature: the hex HMAC-SHA1 of the raw
	// request body (Segment's webhook destination). SharedSecretEnv names an
	// environment variable holding it instead. Not for mparticle sources
	// (mParticle does not sign); a custom source with one needs the
	// message_id and timestamp mappings (signed messages must carry both).
	SharedSecret    string `json:"shared_secret,omitempty"`
	SharedSecretEnv string `json:"shared_secret_env,omitempty"`
	// EmailFallback (mparticle) identifies a user without a customer id by
	// their email instead of skipping them.
	EmailFallback bool `json:"email_fallback,omitempty"`
	// Mappings (custom sources, required there) say where the fields are.
	Mappings *Mappings `json:"mappings,omitempty"`
}

// Mappings say where a custom source's JSON holds each field, as dotted
// paths ("user.id", "items.0.name"). UserID or Email is required.
type Mappings struct {
	// UserID is the path of the person's id.
	UserID string `json:"user_id,omitempty"`
	// Email is the path of the person's email: an attribute, and the
	// identifier when there is no user id.
	Email string `json:"email,omitempty"`
	// Event is the path of the event name; when it is absent from an item
	// (or not configured) the item only updates the person.
	Event string `json:"event,omitempty"`
	// EventProperties is the path of an object that becomes the event's data.
	EventProperties string `json:"event_properties,omitempty"`
	// MessageID is the path of a unique id of the item, used to drop
	// repeats for 24 h.
	MessageID string `json:"message_id,omitempty"`
	// Timestamp is the path of the event time (ISO-8601 string or unix
	// seconds).
	Timestamp string `json:"timestamp,omitempty"`
	// CustomAttributes maps an attribute name to the path of its value.
	CustomAttributes map[string]string `json:"custom_attributes,omitempty"`
}

// TokenConfig is a bearer token accepted by POST /v1/tasks.
type TokenConfig struct {
	// Name labels the token in metrics and logs.
	Name string `json:"name"`
	// Token is the secret; TokenEnv names an environment variable holding
	// it instead.
	Token    string `json:"token,omitempty"`
	TokenEnv string `json:"token_env,omitempty"`
	// Queues, when set, are the only queues the token's tasks may go to
	// (named in "queue" or their type's default); each must be one the
	// workers serve (Config.Queues). Unset: any of those.
	Queues []string `json:"queues,omitempty"`
}

// ConfigError is a problem of the configuration file. Its text names the
// offending entry and field, never a secret.
type ConfigError struct {
	// Path is the file ("" when the configuration did not come from a file).
	Path string
	// Field names the entry, e.g. `sources[2] "shop": mappings.user_id`.
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error returns "ingest config <path>: <field>: <reason>".
func (e *ConfigError) Error() string {
	s := "ingest config"
	if e.Path != "" {
		s += " " + e.Path
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Reason
}

// LoadConfig reads and checks the configuration file at path (the binary
// takes the path from CIOQ_INGEST_CONFIG). Unknown keys, duplicate names or
// keys, missing credentials, unset *_env variables and bad kinds or modes
// are errors naming the entry.
func LoadConfig(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Path: path, Reason: "cannot read: " + errReason(err)}
	}
	fc, err := ParseConfig(bytes.NewReader(b))
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return nil, err
	}
	return fc, nil
}

func errReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ParseConfig decodes and checks a configuration from r (see LoadConfig).
func ParseConfig(r io.Reader) (*FileConfig, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var fc FileConfig
	if err := dec.Decode(&fc); err != nil {
		return nil, &ConfigError{Reason: jsonReason(err)}
	}
	if dec.More() {
		return nil, &ConfigError{Reason: "unexpected data after the JSON object"}
	}
	if _, err := fc.resolve(os.Getenv); err != nil {
		return nil, err
	}
	return &fc, nil
}

// jsonReason describes a decoding error without quoting the input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("%s must be %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return "must be " + jsonKind(te.Type.Kind().String())
	case errors.Is(err, io.EOF):
		return "empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	// DisallowUnknownFields: `json: unknown field "x"` names the key only.
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
		return "unknown key " + strings.TrimPrefix(s, "json: unknown field ")
	}
	return "malformed JSON"
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "interface":
		return "a JSON value"
	}
	return "a number"
}

// source is a checked source with its secrets resolved.
type source struct {
	SourceConfig
	writeKey []byte // "" when none
	secret   []byte // "" when none
	mode     string
}

// token is a checked bearer token.
type token struct {
	name      string
	value     []byte
	queues    map[string]bool // TokenConfig.Queues; nil: the workers' queues
	queueList []string        // TokenConfig.Queues as given
}

// resolved is the checked configuration.
type resolved struct {
	sources map[string]*source
	list    []*source
	tokens  []token
}

// resolve checks the configuration and reads the *_env variables.
func (fc *FileConfig) resolve(getenv func(string) string) (*resolved, error) {
	res := &resolved{sources: map[string]*source{}}
	keys := map[[32]byte]string{} // write key hash → source name
	for i, sc := range fc.Sources {
		s, err := resolveSource(entryName("sources", i, sc.Name), sc, getenv, res.sources, keys)
		if err != nil {
			return nil, err
		}
		res.sources[sc.Name] = s
		res.list = append(res.list, s)
	}
	names := map[string]bool{}
	tks := map[[32]byte]bool{}
	for i, tc := range fc.Tokens {
		t, err := resolveToken(entryName("tokens", i, tc.Name), tc, getenv, names, tks)
		if err != nil {
			return nil, err
		}
		res.tokens = append(res.tokens, t)
	}
	return res, nil
}

// entryName names the i-th entry of a list in errors: `sources[2] "shop"`.
func entryName(list string, i int, name string) string {
	where := fmt.Sprintf("%s[%d]", list, i)
	if name != "" {
		where += fmt.Sprintf(" %q", name)
	}
	return where
}

// entryError is a problem of the entry where, in its field ("" for the
// entry itself).
func entryError(where, field, reason string) error {
	if field != "" {
		where += ": " + field
	}
	return &ConfigError{Field: where, Reason: reason}
}

// resolveSource checks one source; seen are the sources before it, keys
// the hashes of their write keys (the source's is added).
func resolveSource(where string, sc SourceConfig, getenv func(string) string, seen map[string]*source, keys map[[32]byte]string) (*source, error) {
	if err := checkName(sc.Name); err != nil {
		return nil, entryError(where, "name", err.Error())
	}
	if _, dup := seen[sc.Name]; dup {
		return nil, entryError(where, "name", "duplicate source name")
	}
	switch sc.Kind {
	case KindSegment, KindRudderStack, KindMParticle, KindCustom:
	case "":
		return nil, entryError(where, "kind", "is required (segment, rudderstack, mparticle or custom)")
	default:
		return nil, entryError(where, "kind", "must be segment, rudderstack, mparticle or custom")
	}
	s := &source{SourceConfig: sc, mode: sc.Mode}
	switch sc.Mode {
	case "":
		s.mode = ModeTrack
	case ModeTrack, ModePipelines:
	default:
		return nil, entryError(where, "mode", "must be pipelines or track")
	}
	if sc.Kind == KindMParticle && s.mode != ModeTrack {
		return nil, entryError(where, "mode", "mparticle sources support only track")
	}
	if err := tasks.ValidateWorkspace(sc.Workspace); err != nil {
		return nil, entryError(where, "workspace", "must be 1 to 64 characters of a-z, 0-9, '_' and '-'")
	}
	if err := s.resolveAuth(where, getenv, keys); err != nil {
		return nil, err
	}
	if sc.EmailFallback && sc.Kind != KindMParticle {
		return nil, entryError(where, "email_fallback", "applies to mparticle sources only")
	}
	if sc.Kind == KindMParticle && s.secret != nil {
		return nil, entryError(where, "shared_secret", "mparticle sources authenticate by write key (mParticle does not sign requests)")
	}
	if sc.Kind == KindCustom {
		if err := checkMappings(sc.Mappings); err != nil {
			return nil, entryError(where, "mappings", err.Error())
		}
		if s.secret != nil && (sc.Mappings.MessageID == "" || sc.Mappings.Timestamp == "") {
			return nil, entryError(where, "mappings",
				"message_id and timestamp are required with a shared secret: a signed request can be replayed by anyone who saw it, and only its id and time tell a replay")
		}
	} else if sc.Mappings != nil {
		return nil, entryError(where, "mappings", "applies to custom sources only")
	}
	return s, nil
}

// resolveAuth reads the source's write key and shared secret (one at
// least), refusing a write key another source has (keys).
func (s *source) resolveAuth(where string, getenv func(string) string, keys map[[32]byte]string) error {
	wk, err := secret(s.WriteKey, s.WriteKeyEnv, "write_key", getenv)
	if err != nil {
		return entryError(where, "", err.Error())
	}
	sec, err := secret(s.SharedSecret, s.SharedSecretEnv, "shared_secret", getenv)
	if err != nil {
		return entryError(where, "", err.Error())
	}
	if wk == "" && sec == "" {
		return entryError(where, "", "missing auth: give write_key, write_key_env, shared_secret or shared_secret_env")
	}
	if wk != "" {
		h := sha256.Sum256([]byte(wk))
		if other, dup := keys[h]; dup {
			return entryError(where, "write_key", fmt.Sprintf("the same write key as source %q", other))
		}
		keys[h] = s.Name
		s.writeKey = []byte(wk)
	}
	if sec != "" {
		s.secret = []byte(sec)
	}
	return nil
}

// resolveToken checks one bearer token; names and tks are those of the
// tokens before it (its own are added).
func resolveToken(where string, tc TokenConfig, getenv func(string) string, names map[string]bool, tks map[[32]byte]bool) (token, error) {
	if err := checkName(tc.Name); err != nil {
		return token{}, entryError(where, "name", err.Error())
	}
	if names[tc.Name] {
		return token{}, entryError(where, "name", "duplicate token name")
	}
	names[tc.Name] = true
	v, err := secret(tc.Token, tc.TokenEnv, "token", getenv)
	if err != nil {
		return token{}, entryError(where, "", err.Error())
	}
	if v == "" {
		return token{}, entryError(where, "", "missing auth: give token or token_env")
	}
	h := sha256.Sum256([]byte(v))
	if tks[h] {
		return token{}, entryError(where, "token", "the same token as another entry")
	}
	tks[h] = true
	t := token{name: tc.Name, value: []byte(v)}
	if tc.Queues != nil {
		if len(tc.Queues) == 0 {
			return token{}, entryError(where, "queues", "must list at least one queue (leave it out for any the workers serve)")
		}
		t.queues = map[string]bool{}
		for _, q := range tc.Queues {
			if strings.TrimSpace(q) == "" {
				return token{}, entryError(where, "queues", "must not hold an empty name")
			}
			t.queues[q] = true
		}
		t.queueList = tc.Queues
	}
	return t, nil
}

// secret returns an inline secret or the value of the named env variable.
func secret(inline, env, field string, getenv func(string) string) (string, error) {
	if inline != "" && env != "" {
		return "", fmt.Errorf("%s and %s_env are both set; give one", field, field)
	}
	if env != "" {
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s_env: environment variable %s is not set", field, env)
		}
		return v, nil
	}
	return inline, nil
}

func checkName(n string) error {
	if n == "" {
		return errors.New("is required")
	}
	if len(n) > 64 {
		return errors.New("must be at most 64 characters")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return errors.New("must contain only a-z, 0-9, '_' and '-'")
		}
	}
	return nil
}

func checkMappings(m *Mappings) error {
	if m == nil {
		return errors.New("are required for custom sources")
	}
	if m.UserID == "" && m.Email == "" {
		return errors.New("user_id or email is required")
	}
	check := func(field, p string) error {
		if p == "" {
			return nil
		}
		if err := checkPath(p); err != nil {
			return fmt.Errorf("%s: %v", field, err)
		}
		return nil
	}
	for _, f := range []struct{ name, p string }{
		{"user_id", m.UserID}, {"email", m.Email}, {"event", m.Event},
		{"event_properties", m.EventProperties}, {"message_id", m.MessageID}, {"timestamp", m.Timestamp},
	} {
		if err := check(f.name, f.p); err != nil {
			return err
		}
	}
	for name, p := range m.CustomAttributes {
		if strings.TrimSpace(name) == "" || strings.HasPrefix(name, "_") {
			return errors.New("custom_attributes: attribute names must not be blank or start with '_'")
		}
		if p == "" {
			return fmt.Errorf("custom_attributes.%s: path is required", name)
		}
		if err := check("custom_attributes."+name, p); err != nil {
			return err
		}
	}
	return nil
}
