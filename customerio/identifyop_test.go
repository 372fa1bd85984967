package customerio_test

import (
	"encoding/json"
	"testing"

	"github.com/cioq/cioq/customerio"
)

func TestIdentifyOperation(t *testing.T) {
	ids := customerio.Identifiers{ID: "ada"}
	rels := map[string]any{"action": "add_relationships", "relationships": []any{
		map[string]any{"identifiers": map[string]any{"object_type_id": "1", "object_id": "acme"}}}}
	for _, c := range []struct {
		name  string
		attrs map[string]any
		ok    bool
		want  string
	}{
		{"plain", map[string]any{"plan": "pro"}, true,
			`{"type":"person","action":"identify","identifiers":{"id":"ada"},"attributes":{"plan":"pro"}}`},
		{"timestamp", map[string]any{"plan": "pro", "_timestamp": float64(1700000000)}, true,
			`{"type":"person","action":"identify","identifiers":{"id":"ada"},"timestamp":1700000000,"attributes":{"plan":"pro"}}`},
		{"json.Number timestamp only", map[string]any{"_timestamp": json.Number("1700000000")}, true,
			`{"type":"person","action":"identify","identifiers":{"id":"ada"},"timestamp":1700000000}`},
		{"add relationships", map[string]any{"cio_relationships": rels}, true,
			`{"type":"person","action":"identify","identifiers":{"id":"ada"},"cio_relationships":[{"identifiers":{"object_type_id":"1","object_id":"acme"}}]}`},
		{"delete relationships", map[string]any{"cio_relationships": map[string]any{"action": "delete_relationships", "relationships": rels["relationships"]}}, false, ""},
		{"timestamp not seconds", map[string]any{"_timestamp": "yesterday"}, false, ""},
		{"relationships not a list", map[string]any{"cio_relationships": map[string]any{"action": "add_relationships", "relationships": "acme"}}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := json.Marshal(c.attrs)
			op, ok := customerio.IdentifyOperation(ids, c.attrs)
			if after, _ := json.Marshal(c.attrs); string(after) != string(before) {
				t.Errorf("attrs modified: %s → %s", before, after)
			}
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if err := op.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if b, _ := json.Marshal(op); string(b) != c.want {
				t.Errorf("got  %s\nwant %s", b, c.want)
			}
		})
	}
}
