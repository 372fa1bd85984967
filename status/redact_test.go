package status

import "testing"

func TestRedactIdentifiers(t *testing.T) {
	for in, want := range map[string]string{
		"550 5.1.1 <bounce@example.com>: mailbox unavailable": "550 5.1.1 <[redacted]>: mailbox unavailable",
		"SMS to +1 (555) 555-0100 failed":                     "SMS to [redacted] failed",
		"Missing liquid variable 'reset_link'":                "Missing liquid variable 'reset_link'",
		// Over-redaction is the safe side: a date with a time looks like a number.
		"421 4.7.0 try again at 2026-12-02 10:00": "421 4.7.0 try again at [redacted]:00",
		"": "",
	} {
		if got := RedactIdentifiers(in); got != want {
			t.Errorf("RedactIdentifiers(%q) = %q, want %q", in, got, want)
		}
	}
}
