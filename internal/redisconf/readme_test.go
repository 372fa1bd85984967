package redisconf_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/redisconf"
)

// readmeURL finds Redis URLs in the README: in backticks, code blocks or
// prose, up to a character a URL example never contains.
var readmeURL = regexp.MustCompile("\\b(?:rediss?|redis-socket|redis-sentinel|rediss?-cluster)://[^\\s`'\"|<>)]*")

// TestReadmeRedisURLsParse: every concrete Redis URL in the README parses
// (the syntax lines, with [optional] parts or …, and bare schemes are not
// examples), there is an example of each form, and each row of the Redis
// URLs table says what its example's parse really holds.
func TestReadmeRedisURLsParse(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	schemes := map[string]int{}
	for _, u := range readmeURL.FindAllString(readme, -1) {
		scheme, rest, _ := strings.Cut(u, "://")
		if rest == "" || strings.ContainsAny(rest, "[…") {
			continue
		}
		if _, err := redisconf.Parse(u); err != nil {
			t.Errorf("README's %s does not parse: %v", u, err)
			continue
		}
		schemes[scheme]++
		if pw := passwordOf(u); pw != "" && strings.Contains(redisconf.Redact(u), pw) {
			t.Errorf("Redact(%s) = %s: the password shows", u, redisconf.Redact(u))
		}
	}
	for _, s := range []string{"redis", "rediss", "redis-socket", "redis-sentinel", "redis-cluster", "rediss-cluster"} {
		if schemes[s] == 0 {
			t.Errorf("README has no example of a %s:// URL", s)
		}
	}

	// The table: | form | example | connects to |.
	start := strings.Index(readme, "\n### Redis URLs\n")
	if start < 0 {
		t.Fatal("README has no Redis URLs section")
	}
	section := readme[start+1:]
	section = section[:strings.Index(section[4:], "\n#")+4]
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) != 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		ex := readmeURL.FindString(cells[1])
		if ex == "" || strings.Contains(ex, "…") {
			continue
		}
		rows++
		says := cells[2]
		opt, err := redisconf.Parse(ex)
		if err != nil {
			t.Errorf("table example %s: %v", ex, err)
			continue
		}
		mentions := func(what, v string) {
			if v != "" && !strings.Contains(says, "`"+v+"`") {
				t.Errorf("table row of %s does not name its %s `%s`: %q", ex, what, v, says)
			}
		}
		database := func(db int) {
			if db != 0 && !strings.Contains(says, fmt.Sprintf("database %d", db)) {
				t.Errorf("table row of %s does not say database %d: %q", ex, db, says)
			}
		}
		switch o := opt.(type) {
		case asynq.RedisClientOpt:
			mentions("password", o.Password)
			mentions("user", o.Username)
			database(o.DB)
		case asynq.RedisFailoverClientOpt:
			if len(o.SentinelAddrs) < 2 || o.MasterName == "" || o.SentinelPassword == "" || o.Password == "" || o.DB == 0 {
				t.Errorf("the sentinel example should show several sentinels, a master name, both passwords and a database: %+v", o)
			}
			mentions("master name", o.MasterName)
			mentions("sentinel password", o.SentinelPassword)
			mentions("master password", o.Password)
			database(o.DB)
		case asynq.RedisClusterClientOpt:
			if len(o.Addrs) < 2 {
				t.Errorf("the cluster example %s should list several nodes", ex)
			}
			mentions("password", o.Password)
			if o.TLSConfig != nil {
				mentions("TLS server name", o.TLSConfig.ServerName)
			}
		}
	}
	if rows < 5 {
		t.Errorf("found %d examples in the Redis URLs table, want one per form", rows)
	}
}

// passwordOf returns the password in a URL's user info ("" if none).
func passwordOf(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}
