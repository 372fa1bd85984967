package customerio

import "testing"

func TestReplaceWord(t *testing.T) {
	for _, tt := range []struct{ s, old, want string }{
		{"customer 7 not found", "7", "customer [redacted] not found"},
		{"limit 1000 exceeded", "1", "limit 1000 exceeded"},
		{"id=u1,u1x", "u1", "id=[redacted],u1x"},
		{"'zed' and zed", "zed", "'[redacted]' and [redacted]"},
	} {
		if got := replaceWord(tt.s, tt.old, redacted); got != tt.want {
			t.Errorf("replaceWord(%q, %q) = %q, want %q", tt.s, tt.old, got, tt.want)
		}
	}
}
