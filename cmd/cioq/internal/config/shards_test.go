package config

import (
	"strings"
	"testing"
)

func TestLoadShards(t *testing.T) {
	for _, c := range []struct {
		v    string
		want int
		ok   bool
	}{{"", 1, true}, {"1", 1, true}, {" 3 ", 3, true}, {"16", 16, true}, {"0", 0, false}, {"17", 0, false}, {"three", 0, false}, {"-2", 0, false}} {
		n, err := LoadShards(func(k string) string {
			if k == EnvQueueShards {
				return c.v
			}
			return ""
		})
		if c.ok && (err != nil || n != c.want) {
			t.Errorf("%q: %d, %v; want %d", c.v, n, err, c.want)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), EnvQueueShards)) {
			t.Errorf("%q: %v; want an error naming %s", c.v, err, EnvQueueShards)
		}
	}
	if len(ShardOptions(1)) != 0 || len(ShardOptions(3)) != 1 {
		t.Error("ShardOptions")
	}
}
