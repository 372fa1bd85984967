package redisconf_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/internal/testredis"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want asynq.RedisConnOpt
	}{
		{"redis://127.0.0.1:6379/9", asynq.RedisClientOpt{Addr: "127.0.0.1:6379", DB: 9}},
		{"redis://localhost", asynq.RedisClientOpt{Addr: "localhost:6379"}},
		{"redis://:pw@h:1/2", asynq.RedisClientOpt{Addr: "h:1", Password: "pw", DB: 2}},
		{"redis://app:pw@h:1", asynq.RedisClientOpt{Addr: "h:1", Username: "app", Password: "pw"}},
		{"redis-socket:///tmp/redis.sock?db=3", asynq.RedisClientOpt{Network: "unix", Addr: "/tmp/redis.sock", DB: 3}},
		{"redis-sentinel://:spw@s1:26379,s2:26379?master=mymaster&master_password=mpw",
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"}, SentinelPassword: "spw", Password: "mpw"}},
		{"redis-cluster://:pw@n1:7000,n2:7001,n3", asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, Password: "pw"}},
	} {
		got, err := redisconf.Parse(tc.url)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.url, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) =\n %#v\nwant\n %#v", tc.url, got, tc.want)
		}
	}

	got, err := redisconf.Parse("rediss://:pw@cache.example.com:6380/1")
	if err != nil {
		t.Fatal(err)
	}
	opt := got.(asynq.RedisClientOpt)
	if opt.TLSConfig == nil || opt.TLSConfig.ServerName != "cache.example.com" || opt.Addr != "cache.example.com:6380" || opt.DB != 1 {
		t.Errorf("rediss = %#v", opt)
	}
	got, err = redisconf.Parse("rediss-cluster://n1:7000,n2:7000")
	if err != nil {
		t.Fatal(err)
	}
	if c := got.(asynq.RedisClusterClientOpt); c.TLSConfig == nil || c.TLSConfig.ServerName != "n1" {
		t.Errorf("rediss-cluster = %#v", c)
	}
}

func TestParseErrors(t *testing.T) {
	const pw = "hunter2secret"
	for _, u := range []string{
		"",
		"127.0.0.1:6379",
		"http://:" + pw + "@h:1",
		"redis://:" + pw + "@h:1/notanumber",
		"redis://:" + pw + "@h:port/0",
		"redis://:" + pw + "@",
		"redis://:" + pw + "@a:1,b:2",
		"redis-sentinel://:" + pw + "@s1:26379",
		"redis-cluster://:" + pw + "@n1:7000/3",
		"redis-cluster://:" + pw + "@n1:7000,,n2",
		"redis-socket://:" + pw + "@",
		"redis://user:" + pw + "%zz@h:1",
	} {
		_, err := redisconf.Parse(u)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", u)
			continue
		}
		var re *redisconf.Error
		if !errors.As(err, &re) {
			t.Errorf("Parse(%q) = %T, want *redisconf.Error", u, err)
		}
		if !strings.HasPrefix(err.Error(), "REDIS_URL: ") {
			t.Errorf("Parse(%q) = %q, want it to name REDIS_URL", u, err)
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "hunter") {
			t.Errorf("Parse(%q) error contains the password: %q", u, err)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := redisconf.Redact("redis://app:hunter2@h:1/0"); strings.Contains(got, "hunter2") || !strings.Contains(got, "h:1") {
		t.Errorf("Redact = %q", got)
	}
}

func TestNewClientConnects(t *testing.T) {
	db := testredis.New(t)
	c, err := redisconf.NewClient(db.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "redisconf-probe", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The key landed in the test's own database.
	if n, err := db.Client.Exists(ctx, "redisconf-probe").Result(); err != nil || n != 1 {
		t.Fatalf("Exists = %d, %v", n, err)
	}
}

// TestParseRefusesUnknownQueryParameters: a query parameter a form does
// not take is refused, naming what it takes and never echoing the URL.
func TestParseRefusesUnknownQueryParameters(t *testing.T) {
	const pw = "hunter2secret"
	for _, tc := range []struct{ url, want string }{
		{"redis://:" + pw + "@h:1/0?db=2", "redis:// takes no query parameters (the database is the path"},
		{"rediss://h:1?" + pw + "=1", "rediss:// takes no query parameters"},
		{"redis-socket:///tmp/r.sock?database=2", "redis-socket:// takes only the query parameters db"},
		{"redis-sentinel://:" + pw + "@s1:26379,s2:26379?master=m&master_pasword=" + pw, "redis-sentinel:// takes only the query parameters master, master_username, master_password"},
		{"redis-sentinel://s1:26379?master=m&db=2", "redis-sentinel:// takes only"},
		{"redis-cluster://n1:7000,n2:7000?readonly=true", "redis-cluster:// takes no query parameters"},
	} {
		_, err := redisconf.Parse(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.url, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "hunter") {
			t.Errorf("Parse(%q) error contains the password: %q", tc.url, err)
		}
	}
}

func TestParseSentinelCredentials(t *testing.T) {
	got, err := redisconf.Parse("redis-sentinel://sentinel-user:spw@s1:26379,s2/3?master=mm&master_username=app&master_password=mpw")
	if err != nil {
		t.Fatal(err)
	}
	want := asynq.RedisFailoverClientOpt{
		MasterName: "mm", SentinelAddrs: []string{"s1:26379", "s2:6379"},
		SentinelUsername: "sentinel-user", SentinelPassword: "spw", Username: "app", Password: "mpw", DB: 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n %#v\nwant\n %#v", got, want)
	}
}

// TestRedactHidesEveryPassword: the user info's password and a sentinel
// URL's master_password, for single- and multi-host URLs.
func TestRedactHidesEveryPassword(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://app:hunter2@h:1/0", "redis://app:xxxxx@h:1/0"},
		{"redis-sentinel://:hunter2@s1:26379,s2:26379/2?master=m&master_password=hunter3", "redis-sentinel://:xxxxx@s1:26379,s2:26379/2?master=m&master_password=xxxxx"},
		{"redis-cluster://:hunter2@n1:7000,n2:7000", "redis-cluster://:xxxxx@n1:7000,n2:7000"},
		{"redis://h:1/0", "redis://h:1/0"},
	} {
		if got := redisconf.Redact(tc.url); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}
