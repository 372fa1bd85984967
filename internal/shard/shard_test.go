package shard

import (
	"strings"
	"testing"
)

// TestSlot checks the hash slot against values Redis's CLUSTER KEYSLOT
// gives (the Redis Cluster specification's and its command reference's
// examples); internal/testredis/topology compares against a real cluster.
func TestSlot(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3 (CRC-16/XMODEM check value)", got)
	}
	for _, c := range []struct {
		key  string
		slot int
	}{
		{"somekey", 11058},
		{"foo{hash_tag}", 2515},
		{"foo", 12182},
		{"bar", 5061},
		{"{foo}:anything", 12182},
		{"foo{}{bar}", Slot("foo{}{bar}")}, // an empty tag: the whole key
		{"asynq:{default}:pending", Slot("default")},
	} {
		if got := Slot(c.key); got != c.slot {
			t.Errorf("Slot(%q) = %d, want %d", c.key, got, c.slot)
		}
	}
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Error(`Slot("foo{}{bar}") took "bar" as the tag; an empty first tag means the whole key`)
	}
}

func TestNames(t *testing.T) {
	if got := Names("default", 1); len(got) != 1 || got[0] != "default" {
		t.Fatalf("Names(default, 1) = %v, want the plain name", got)
	}
	for n := 2; n <= Max; n++ {
		seen := map[string]bool{}
		for i, name := range Names("default", n) {
			if !strings.HasPrefix(name, "default.s") || seen[name] {
				t.Fatalf("n=%d: shard %d = %q (duplicate or wrong form)", n, i, name)
			}
			seen[name] = true
			slot := QueueSlot(name)
			lo, hi := i*Slots/n, (i+1)*Slots/n
			if slot < lo || slot >= hi {
				t.Errorf("n=%d: shard %d %q is in slot %d, outside part %d [%d, %d)", n, i, name, slot, i, lo, hi)
			}
		}
	}
	// The standard 3-master layout (redis-cli --cluster create).
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for _, q := range []string{"critical", "default", "bulk", "my-queue"} {
		for i, name := range Names(q, 3) {
			s := QueueSlot(name)
			if s < ranges[i][0] || s > ranges[i][1] {
				t.Errorf("%s shard %d (%s) in slot %d, not on master %d (%d-%d)", q, i, name, s, i, ranges[i][0], ranges[i][1])
			}
		}
	}
}

func TestIndex(t *testing.T) {
	for n := 1; n <= Max; n++ {
		for i, name := range Names("bulk", n) {
			q, idx, ok := Parse(name)
			if n == 1 {
				if ok || q != "bulk" {
					t.Fatalf("Parse(%q) = %q, %v; want the plain queue, not a shard", name, q, ok)
				}
				continue
			}
			if !ok || q != "bulk" || idx != i {
				t.Errorf("Parse(%q) = %q %d %v, want bulk %d (of %d)", name, q, idx, ok, i, n)
			}
			if Logical(name) != "bulk" {
				t.Errorf("Logical(%q) = %q", name, Logical(name))
			}
		}
	}
	for _, plain := range []string{"default", "a.b", "x.s1.zzzz9", "q.s01.1", "q.s.1", ".s0.0", "bulk.s17.0"} {
		if q, _, ok := Parse(plain); ok || q != plain {
			t.Errorf("Parse(%q) = %q, %v; want the plain queue", plain, q, ok)
		}
	}
	// The same key picks the same shard; keys spread over all of them.
	counts := make([]int, 3)
	for i := 0; i < 3000; i++ {
		k := "person-" + string(rune('a'+i%26)) + strings.Repeat("x", i%7) + string(rune('0'+i%10)) + string(rune('A'+i/260))
		i3 := Index(k, 3)
		counts[i3]++
		if again := Index(strings.Clone(k), 3); again != i3 {
			t.Fatalf("Index(%q) = %d, then %d", k, i3, again)
		}
	}
	for i, c := range counts {
		if c < 500 {
			t.Errorf("shard %d got %d of 3000 keys: %v", i, c, counts)
		}
	}
	if Index("anything", 1) != 0 {
		t.Error("Index(_, 1) != 0")
	}
}
