package contracts

import (
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// BenchmarkCheck is the CPU cost of one contract check, without Redis:
// a send whose template needs two variables, an identify with declared
// attributes (none coerced, and one coerced: a copy of the map), and a
// task the contracts do not cover.
func BenchmarkCheck(b *testing.B) {
	f, err := Parse([]byte(testFile))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Compile(f)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    tasks.Payload
	}{
		{"send", email("password_reset", map[string]any{"reset_link": "https://x", "expiry_hours": 1})},
		{"identify", tasks.Identify{Identifiers: customerio.Identifiers{ID: "u"}, Attributes: map[string]any{"total_revenue": 1000, "plan": "pro", "email": "a@example.com"}}},
		{"identify_coerced", tasks.Identify{Identifiers: customerio.Identifiers{ID: "u"}, Attributes: map[string]any{"order_count": "12", "plan": "pro", "email": "a@example.com"}}},
		{"uncovered", tasks.Delete{Identifiers: customerio.Identifiers{ID: "u"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Check("", c.p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
