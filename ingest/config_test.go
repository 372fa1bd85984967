package ingest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleConfig(t *testing.T) {
	for _, k := range []string{"CIOQ_WEB_WRITE_KEY", "CIOQ_SEGMENT_WEBHOOK_SECRET", "CIOQ_RUDDER_WRITE_KEY", "CIOQ_MPARTICLE_WRITE_KEY", "CIOQ_SHOP_WRITE_KEY", "CIOQ_TASKS_TOKEN"} {
		t.Setenv(k, "value-of-"+k)
	}
	fc, err := LoadConfig("testdata/example-config.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.Sources) != 5 || len(fc.Tokens) != 1 || fc.Sources[4].Mappings.CustomAttributes["first_item"] != "order.items.0.name" {
		t.Errorf("config = %+v", fc)
	}
	// An unset variable stops start-up, naming it.
	os.Unsetenv("CIOQ_SHOP_WRITE_KEY")
	_, err = LoadConfig("testdata/example-config.json")
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `sources[4] "shop"`) || !strings.Contains(err.Error(), "CIOQ_SHOP_WRITE_KEY is not set") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("INGEST_TEST_KEY", "the-env-key")
	cases := []struct {
		name, json, want string
	}{
		{"unknown top key", `{"sources":[], "extra": 1}`, `unknown key "extra"`},
		{"unknown source key", `{"sources":[{"name":"a","kind":"segment","write_key":"k","writekey":"x"}]}`, `unknown key "writekey"`},
		{"malformed", `{"sources":[`, "truncated JSON"},
		{"wrong type", `{"sources":{"name":"a"}}`, "must be an array"},
		{"missing name", `{"sources":[{"kind":"segment","write_key":"k"}]}`, "sources[0]: name: is required"},
		{"bad name", `{"sources":[{"name":"Web Site","kind":"segment","write_key":"k"}]}`, "name: must contain only"},
		{"duplicate name", `{"sources":[{"name":"a","kind":"segment","write_key":"k1"},{"name":"a","kind":"segment","write_key":"k2"}]}`, `sources[1] "a": name: duplicate source name`},
		{"duplicate key", `{"sources":[{"name":"a","kind":"segment","write_key":"k1"},{"name":"b","kind":"segment","write_key":"k1"}]}`, `sources[1] "b": write_key: the same write key as source "a"`},
		{"missing kind", `{"sources":[{"name":"a","write_key":"k"}]}`, "kind: is required"},
		{"bad kind", `{"sources":[{"name":"a","kind":"amplitude","write_key":"k"}]}`, "kind: must be segment, rudderstack, mparticle or custom"},
		{"bad mode", `{"sources":[{"name":"a","kind":"segment","mode":"direct","write_key":"k"}]}`, "mode: must be pipelines or track"},
		{"mparticle pipelines", `{"sources":[{"name":"a","kind":"mparticle","mode":"pipelines","write_key":"k"}]}`, "mparticle sources support only track"},
		{"missing auth", `{"sources":[{"name":"a","kind":"segment"}]}`, "missing auth"},
		{"both inline and env", `{"sources":[{"name":"a","kind":"segment","write_key":"k","write_key_env":"INGEST_TEST_KEY"}]}`, "write_key and write_key_env are both set"},
		{"unset env", `{"sources":[{"name":"a","kind":"segment","shared_secret_env":"INGEST_TEST_NOPE"}]}`, "INGEST_TEST_NOPE is not set"},
		{"bad workspace", `{"sources":[{"name":"a","kind":"segment","write_key":"k","workspace":"EU"}]}`, "workspace:"},
		{"custom without mappings", `{"sources":[{"name":"a","kind":"custom","write_key":"k"}]}`, "mappings: are required"},
		{"custom without identity", `{"sources":[{"name":"a","kind":"custom","write_key":"k","mappings":{"event":"e"}}]}`, "user_id or email is required"},
		{"bad path", `{"sources":[{"name":"a","kind":"custom","write_key":"k","mappings":{"user_id":"a..b"}}]}`, "user_id: path has an empty segment"},
		{"mappings on segment", `{"sources":[{"name":"a","kind":"segment","write_key":"k","mappings":{"user_id":"a"}}]}`, "applies to custom sources only"},
		{"unknown mapping key", `{"sources":[{"name":"a","kind":"custom","write_key":"k","mappings":{"userId":"a"}}]}`, `unknown key "userId"`},
		{"token without secret", `{"sources":[],"tokens":[{"name":"t"}]}`, "tokens[0] \"t\": missing auth"},
		{"duplicate token name", `{"sources":[],"tokens":[{"name":"t","token":"a"},{"name":"t","token":"b"}]}`, "duplicate token name"},
		{"mparticle with a shared secret", `{"sources":[{"name":"a","kind":"mparticle","write_key":"k","shared_secret":"s"}]}`, `sources[0] "a": shared_secret: mparticle sources authenticate by write key`},
		{"signed custom without message_id", `{"sources":[{"name":"a","kind":"custom","shared_secret":"s","mappings":{"user_id":"u","timestamp":"t"}}]}`, "mappings: message_id and timestamp are required with a shared secret"},
		{"signed custom without timestamp", `{"sources":[{"name":"a","kind":"custom","write_key":"k","shared_secret":"s","mappings":{"user_id":"u","message_id":"m"}}]}`, "mappings: message_id and timestamp are required with a shared secret"},
		{"token with no queues", `{"sources":[],"tokens":[{"name":"t","token":"a","queues":[]}]}`, `tokens[0] "t": queues: must list at least one queue`},
		{"token with an empty queue", `{"sources":[],"tokens":[{"name":"t","token":"a","queues":["bulk",""]}]}`, `tokens[0] "t": queues: must not hold an empty name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ingest.json")
			os.WriteFile(p, []byte(c.json), 0o600)
			_, err := LoadConfig(p)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want it to name %q and the file", err, c.want)
			}
			if strings.Contains(err.Error(), "the-env-key") || strings.Contains(err.Error(), `"k1"`) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("missing file: %v", err)
	}
	// New checks a FileConfig built in code, with the env of Config.Getenv.
	_, err := New(Config{Producer: nil, File: &FileConfig{}})
	if err == nil {
		t.Error("New without a producer succeeded")
	}
}

func TestLookup(t *testing.T) {
	var doc any = map[string]any{
		"a":     map[string]any{"b": map[string]any{"c": "deep"}},
		"items": []any{map[string]any{"name": "first"}, map[string]any{"name": "second"}},
		"n":     42.0,
		"nil":   nil,
	}
	cases := []struct {
		path string
		want any
		ok   bool
	}{
		{"a.b.c", "deep", true},
		{"items.0.name", "first", true},
		{"items.1.name", "second", true},
		{"items.2.name", nil, false},
		{"items.-1", nil, false},
		{"items.x", nil, false},
		{"a.b.c.d", nil, false},
		{"a.missing", nil, false},
		{"n", 42.0, true},
		{"nil", nil, true},
		{"", nil, false},
	}
	for _, c := range cases {
		got, ok := Lookup(doc, c.path)
		if ok != c.ok || got != c.want && c.ok && c.want != nil {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
	if s := lookupString(doc, "n"); s != "42" {
		t.Errorf("lookupString(n) = %q", s)
	}
}

func TestUnixSeconds(t *testing.T) {
	for in, want := range map[string]int64{
		"2026-01-02T03:04:05Z":          1767323045,
		"2026-01-02T03:04:05.999Z":      1767323045,
		"2026-01-02T04:04:05+01:00":     1767323045,
		"2026-01-02T04:04:05.123+0100":  1767323045,
		"2026-01-02T03:04:05.123456789": 1767323045,
		"2026-01-02":                    1767312000,
	} {
		got, err := unixSeconds(in)
		if err != nil || got != want {
			t.Errorf("unixSeconds(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []any{"yesterday", "01/02/2026", -5.0, true} {
		if _, err := unixSeconds(in); err == nil {
			t.Errorf("unixSeconds(%v) accepted", in)
		}
	}
	if got, _ := unixSeconds(1767323045123.0); got != 1767323045 {
		t.Errorf("milliseconds: %d", got)
	}
}
