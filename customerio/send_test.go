package customerio

import (
	"encoding/json"
	"testing"
)

func TestMessageIDJSON(t *testing.T) {
	for _, tt := range []struct {
		id   MessageID
		wire string
	}{{"3", `3`}, {"welcome", `"welcome"`}, {"007x", `"007x"`}} {
		b, err := json.Marshal(tt.id)
		if err != nil || string(b) != tt.wire {
			t.Errorf("Marshal(%q) = %s, %v; want %s", tt.id, b, err, tt.wire)
		}
		var back MessageID
		if err := json.Unmarshal(b, &back); err != nil || back != tt.id {
			t.Errorf("Unmarshal(%s) = %q, %v", b, back, err)
		}
	}
}
