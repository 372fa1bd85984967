package customerio

import (
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// emailPattern matches email-looking strings, redacted from every message.
var emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+`)

// Redaction markers.
const (
	redacted      = "[redacted]"
	redactedEmail = "[email]"
)

// scrubber removes the credentials and the values of one request from text
// that ends up in an error: keys anywhere, request values (identifiers,
// emails, data) where they stand as words of their own, then anything that
// looks like an email address.
//
// The request's values are collected on the first scrub, not when the
// request is sent: a successful call never pays for parsing its body again.
type scrubber struct {
	secrets []string // removed wherever they occur
	once    sync.Once
	rq      *request // whose values are collected by the first scrub
	body    []byte
	values  []string // removed where not part of a longer word, longest first
}

// skipKeys are JSON keys whose string values are vocabulary, not data, and
// are left alone (redacting "person" or "1" would garble messages).
var skipKeys = map[string]bool{
	"type": true, "action": true, "operator": true, "platform": true,
	"transactional_message_id": true, "language": true, "object_type_id": true,
	"objectTypeId": true, "id_type": true, "sound": true, "field": true,
}

func (c *Client) newScrubber(rq *request, body []byte) *scrubber {
	return &scrubber{secrets: c.secrets, rq: rq, body: body}
}

// collect gathers the request's values, longest first (once, on the first
// scrub).
func (sc *scrubber) collect() {
	rq, body := sc.rq, sc.body
	sc.rq, sc.body = nil, nil
	if rq == nil {
		return
	}
	seen := map[string]bool{}
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			sc.values = append(sc.values, s)
		}
	}
	for _, v := range rq.pathValues {
		add(v)
		add(strings.TrimPrefix(v, "cio_"))
		add(escapeSegment(v)) // as it appears in an echoed path
		add(url.PathEscape(v))
		add(url.QueryEscape(v))
	}
	for _, vs := range rq.query {
		for _, v := range vs {
			add(v)
		}
	}
	if body == nil && rq.parts != nil {
		body = joinBatch(rq.parts)
	}
	if len(body) > 0 {
		var v any
		if json.Unmarshal(body, &v) == nil {
			collectValues(v, "", add)
		}
	}
	sort.Slice(sc.values, func(i, j int) bool { return len(sc.values[i]) > len(sc.values[j]) })
}

// collectValues calls add with every string leaf of v, except those under
// skipKeys.
func collectValues(v any, key string, add func(string)) {
	switch x := v.(type) {
	case string:
		if !skipKeys[key] {
			add(x)
		}
	case map[string]any:
		for k, y := range x {
			collectValues(y, k, add)
		}
	case []any:
		for _, y := range x {
			collectValues(y, key, add)
		}
	}
}

func (sc *scrubber) scrub(s string) string {
	if sc == nil || s == "" {
		return s
	}
	sc.once.Do(sc.collect)
	for _, k := range sc.secrets {
		if k != "" {
			s = strings.ReplaceAll(s, k, redacted)
		}
	}
	for _, v := range sc.values {
		s = replaceWord(s, v, redacted)
	}
	return emailPattern.ReplaceAllString(s, redactedEmail)
}

// replaceWord replaces occurrences of old in s that are not glued to a
// letter or digit on either side.
func replaceWord(s, old, repl string) string {
	if old == "" || !strings.Contains(s, old) {
		return s
	}
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(s[i:], old)
		if j < 0 {
			b.WriteString(s[i:])
			return b.String()
		}
		j += i
		end := j + len(old)
		if !wordChar(lastRune(s[:j])) && !wordChar(firstRune(s[end:])) {
			b.WriteString(s[i:j])
			b.WriteString(repl)
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
}

func wordChar(r rune) bool {
	return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > utf8.RuneSelf
}

func lastRune(s string) rune {
	if s == "" {
		return ' '
	}
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

func firstRune(s string) rune {
	if s == "" {
		return ' '
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r
}
