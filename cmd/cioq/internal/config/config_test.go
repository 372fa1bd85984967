package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

const secret = "s3cr3t-value"

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "workspaces.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{EnvRedisURL: "redis://127.0.0.1:6379/3", EnvSiteID: "site", EnvTrackAPIKey: secret}
		for k, v := range extra {
			if v == "-" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	fileOK := writeFile(t, `{"workspaces": {
		"eu-shop": {"site_id": "s2", "track_api_key_env": "EU_TRACK", "app_api_key": "`+secret+`", "region": "eu"},
		"cdp-only": {"pipelines_write_key_env": "CDP_KEY", "pipelines_url": "http://127.0.0.1:9/cdp/v1"}}}`)
	fileDefault := writeFile(t, `{"workspaces": {"default": {"app_api_key": "`+secret+`"}}}`)
	fileMissingEnv := writeFile(t, `{"workspaces": {"x": {"app_api_key_env": "NOPE"}}}`)
	fileBoth := writeFile(t, `{"workspaces": {"x": {"app_api_key": "`+secret+`", "app_api_key_env": "A"}}}`)
	fileBadRegion := writeFile(t, `{"workspaces": {"x": {"app_api_key": "`+secret+`", "region": "mars"}}}`)
	fileHalfTrack := writeFile(t, `{"workspaces": {"x": {"track_api_key": "`+secret+`"}}}`)
	fileUnknown := writeFile(t, `{"workspaces": {"x": {"app_key": "`+secret+`"}}}`)
	fileEmpty := writeFile(t, `{}`)
	fileNoCred := writeFile(t, `{"workspaces": {"x": {"region": "eu"}}}`)
	fileBadURL := writeFile(t, `{"workspaces": {"x": {"app_api_key": "k", "app_url": "ftp://x"}}}`)
	fileBadJSON := writeFile(t, `{"workspaces": `)

	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // substrings of the error; nil = success
		check   func(t *testing.T, c *Config)
	}{
		{name: "minimal track", env: base(nil), check: func(t *testing.T, c *Config) {
			w := c.Workspaces[DefaultWorkspace]
			if !w.HasTrack() || w.HasApp() || w.HasPipelines() {
				t.Errorf("apis = %v", w)
			}
			if o, ok := c.Redis.(asynq.RedisClientOpt); !ok || o.Addr != "127.0.0.1:6379" || o.DB != 3 {
				t.Errorf("redis = %#v", c.Redis)
			}
			if c.Concurrency != 0 || c.Queues != nil {
				t.Errorf("defaults: %d %v", c.Concurrency, c.Queues)
			}
		}},
		{name: "app only is fine", env: base(map[string]string{EnvSiteID: "-", EnvTrackAPIKey: "-", EnvAppAPIKey: secret}), check: func(t *testing.T, c *Config) {
			if w := c.Workspaces[""]; w.HasTrack() || !w.HasApp() {
				t.Errorf("apis = %v", w)
			}
		}},
		{name: "all settings", env: base(map[string]string{EnvAppAPIKey: "a", EnvPipelinesWriteKey: "p", EnvRegion: "eu",
			EnvTrackURL: "http://127.0.0.1:1/track", EnvAppURL: "http://127.0.0.1:1/app", EnvPipelinesURL: "https://x/cdp/v1",
			EnvConcurrency: "25", EnvQueues: "critical=6, default=3,bulk=1"}), check: func(t *testing.T, c *Config) {
			if c.Concurrency != 25 {
				t.Errorf("concurrency %d", c.Concurrency)
			}
			if !reflect.DeepEqual(c.Queues, map[string]int{"critical": 6, "default": 3, "bulk": 1}) {
				t.Errorf("queues %v", c.Queues)
			}
			w := c.Workspaces[""]
			if w.Region != "eu" || w.TrackURL != "http://127.0.0.1:1/track" || w.PipelinesURL != "https://x/cdp/v1" || w.PipelinesWriteKey != "p" {
				t.Errorf("workspace %+v", w)
			}
		}},
		{name: "workspaces file", env: base(map[string]string{EnvWorkspacesFile: fileOK, "EU_TRACK": "k2", "CDP_KEY": "c"}), check: func(t *testing.T, c *Config) {
			if len(c.Workspaces) != 3 {
				t.Fatalf("workspaces %v", c.Workspaces)
			}
			eu := c.Workspaces["eu-shop"]
			if eu.TrackAPIKey != "k2" || eu.AppAPIKey != secret || eu.Region != "eu" || !eu.HasTrack() {
				t.Errorf("eu-shop %v", eu)
			}
			if cdp := c.Workspaces["cdp-only"]; !cdp.HasPipelines() || cdp.HasTrack() || cdp.PipelinesWriteKey != "c" {
				t.Errorf("cdp-only %v", cdp)
			}
		}},
		{name: "file default workspace", env: map[string]string{EnvRedisURL: "redis://h:1", EnvWorkspacesFile: fileDefault}, check: func(t *testing.T, c *Config) {
			if !c.Workspaces[""].HasApp() {
				t.Errorf("default %v", c.Workspaces)
			}
		}},
		{name: "file default clashes with env", env: base(map[string]string{EnvWorkspacesFile: fileDefault}), wantErr: []string{EnvWorkspacesFile, "default"}},
		{name: "missing redis", env: base(map[string]string{EnvRedisURL: "-"}), wantErr: []string{EnvRedisURL}},
		{name: "bad redis", env: base(map[string]string{EnvRedisURL: "http://user:" + secret + "@h"}), wantErr: []string{EnvRedisURL}},
		// The worker takes every URL serve, enqueue and dlq take (redisconf.Parse).
		{name: "redis cluster", env: base(map[string]string{EnvRedisURL: "redis-cluster://:" + secret + "@10.0.0.1:7000,10.0.0.2:7001"}), check: func(t *testing.T, c *Config) {
			o, ok := c.Redis.(asynq.RedisClusterClientOpt)
			if !ok || !reflect.DeepEqual(o.Addrs, []string{"10.0.0.1:7000", "10.0.0.2:7001"}) || o.Password != secret {
				t.Errorf("redis = %T %v", c.Redis, ok)
			}
		}},
		{name: "redis cluster tls", env: base(map[string]string{EnvRedisURL: "rediss-cluster://h1:7000,h2"}), check: func(t *testing.T, c *Config) {
			if o, ok := c.Redis.(asynq.RedisClusterClientOpt); !ok || len(o.Addrs) != 2 || o.TLSConfig == nil {
				t.Errorf("redis = %T %v", c.Redis, ok)
			}
		}},
		{name: "redis sentinel", env: base(map[string]string{EnvRedisURL: "redis-sentinel://s1:26379,s2:26379/2?master=mymaster"}), check: func(t *testing.T, c *Config) {
			if o, ok := c.Redis.(asynq.RedisFailoverClientOpt); !ok || o.MasterName != "mymaster" || o.DB != 2 || len(o.SentinelAddrs) != 2 {
				t.Errorf("redis = %T %v", c.Redis, ok)
			}
		}},
		{name: "redis socket", env: base(map[string]string{EnvRedisURL: "redis-socket:///run/redis.sock?db=4"}), check: func(t *testing.T, c *Config) {
			if o, ok := c.Redis.(asynq.RedisClientOpt); !ok || o.Network != "unix" || o.Addr != "/run/redis.sock" || o.DB != 4 {
				t.Errorf("redis = %#v", c.Redis)
			}
		}},
		{name: "redis cluster with db", env: base(map[string]string{EnvRedisURL: "redis-cluster://:" + secret + "@h1:7000,h2:7001/3"}), wantErr: []string{EnvRedisURL, "database 0"}},
		{name: "redis bad scheme with password", env: base(map[string]string{EnvRedisURL: "mongodb://u:" + secret + "@h:1"}), wantErr: []string{EnvRedisURL, "unsupported scheme"}},
		{name: "no credentials", env: map[string]string{EnvRedisURL: "redis://h:1"}, wantErr: []string{EnvSiteID, EnvWorkspacesFile}},
		{name: "urls without credentials", env: map[string]string{EnvRedisURL: "redis://h:1", EnvRegion: "eu"}, wantErr: []string{"no Customer.io credential"}},
		{name: "site without key", env: base(map[string]string{EnvTrackAPIKey: "-", EnvAppAPIKey: "a"}), wantErr: []string{EnvTrackAPIKey}},
		{name: "key without site", env: base(map[string]string{EnvSiteID: "-"}), wantErr: []string{EnvSiteID}},
		{name: "bad region", env: base(map[string]string{EnvRegion: "apac"}), wantErr: []string{EnvRegion}},
		{name: "bad url", env: base(map[string]string{EnvAppURL: "not a url"}), wantErr: []string{EnvAppURL}},
		{name: "url with credentials", env: base(map[string]string{EnvTrackURL: "https://u:" + secret + "@h/"}), wantErr: []string{EnvTrackURL}},
		{name: "bad concurrency", env: base(map[string]string{EnvConcurrency: "many"}), wantErr: []string{EnvConcurrency}},
		{name: "zero concurrency", env: base(map[string]string{EnvConcurrency: "0"}), wantErr: []string{EnvConcurrency}},
		{name: "bad queues", env: base(map[string]string{EnvQueues: "critical=6,default"}), wantErr: []string{EnvQueues, "default"}},
		{name: "bad weight", env: base(map[string]string{EnvQueues: "critical=x"}), wantErr: []string{EnvQueues, "critical"}},
		{name: "duplicate queue", env: base(map[string]string{EnvQueues: "a=1,a=2"}), wantErr: []string{EnvQueues, "twice"}},
		{name: "file missing", env: base(map[string]string{EnvWorkspacesFile: "/nonexistent/ws.json"}), wantErr: []string{EnvWorkspacesFile, "/nonexistent/ws.json"}},
		{name: "file env var unset", env: base(map[string]string{EnvWorkspacesFile: fileMissingEnv}), wantErr: []string{"workspaces.x.app_api_key_env", "NOPE"}},
		{name: "file inline and env", env: base(map[string]string{EnvWorkspacesFile: fileBoth}), wantErr: []string{"workspaces.x.app_api_key"}},
		{name: "file bad region", env: base(map[string]string{EnvWorkspacesFile: fileBadRegion}), wantErr: []string{"workspaces.x.region"}},
		{name: "file half track", env: base(map[string]string{EnvWorkspacesFile: fileHalfTrack}), wantErr: []string{"workspaces.x.site_id"}},
		{name: "file unknown key", env: base(map[string]string{EnvWorkspacesFile: fileUnknown}), wantErr: []string{EnvWorkspacesFile, "app_key"}},
		{name: "file empty", env: base(map[string]string{EnvWorkspacesFile: fileEmpty}), wantErr: []string{"\"workspaces\""}},
		{name: "file no credential", env: base(map[string]string{EnvWorkspacesFile: fileNoCred}), wantErr: []string{"workspaces.x"}},
		{name: "file bad url", env: base(map[string]string{EnvWorkspacesFile: fileBadURL}), wantErr: []string{"workspaces.x.app_url"}},
		{name: "file bad json", env: base(map[string]string{EnvWorkspacesFile: fileBadJSON}), wantErr: []string{EnvWorkspacesFile, "invalid JSON"}},
		{name: "probe interval", env: base(map[string]string{EnvProbeInterval: "90s"}), check: func(t *testing.T, c *Config) {
			if c.ProbeInterval != 90*time.Second {
				t.Errorf("probe interval %v", c.ProbeInterval)
			}
		}},
		{name: "probe interval unset", env: base(nil), check: func(t *testing.T, c *Config) {
			if c.ProbeInterval != 0 {
				t.Errorf("probe interval %v", c.ProbeInterval)
			}
		}},
		{name: "probes off", env: base(map[string]string{EnvProbeInterval: "off"}), check: func(t *testing.T, c *Config) {
			if c.ProbeInterval >= 0 {
				t.Errorf("probe interval %v, want negative", c.ProbeInterval)
			}
		}},
		{name: "probe interval too short", env: base(map[string]string{EnvProbeInterval: "10ms"}), wantErr: []string{EnvProbeInterval, "at least 1s"}},
		{name: "probe interval malformed", env: base(map[string]string{EnvProbeInterval: "often"}), wantErr: []string{EnvProbeInterval}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error echoes a credential: %q", err)
			}
		})
	}
}

func TestWorkspaceStringHidesKeys(t *testing.T) {
	w := Workspace{SiteID: "site", TrackAPIKey: secret, AppAPIKey: secret, Region: "eu"}
	s := w.String()
	if strings.Contains(s, secret) || s != "region=eu apis=track,app" {
		t.Errorf("String() = %q", s)
	}
}

func TestServiceAccountWorkspaceID(t *testing.T) {
	cfg, err := Load(env(map[string]string{
		EnvRedisURL: "redis://127.0.0.1:6379/0", EnvAppAPIKey: "sa_live_x", EnvAppWorkspaceID: "7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Workspaces[DefaultWorkspace].AppWorkspaceID; got != "7" {
		t.Errorf("default workspace AppWorkspaceID = %q, want 7", got)
	}
	p := writeFile(t, `{"workspaces":{"eu":{"app_api_key":"sa_live_y","app_workspace_id":"12","region":"eu"}}}`)
	cfg, err = Load(env(map[string]string{EnvRedisURL: "redis://127.0.0.1:6379/0", EnvWorkspacesFile: p}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Workspaces["eu"].AppWorkspaceID; got != "12" {
		t.Errorf("eu AppWorkspaceID = %q, want 12", got)
	}
}

// WorkspaceNames reads only the names of the workspaces file: no credential
// or *_env variable needs to be set, and "default" is the default
// workspace.
func TestWorkspaceNames(t *testing.T) {
	file := writeFile(t, `{"workspaces": {
		"eu-shop": {"site_id": "s2", "track_api_key_env": "EU_TRACK_UNSET", "region": "eu"},
		"default": {"app_api_key": "`+secret+`"},
		"cdp-only": {"pipelines_write_key_env": "CDP_UNSET"}}}`)
	names, known, err := WorkspaceNames(env(map[string]string{EnvWorkspacesFile: file}))
	if err != nil || !known || !reflect.DeepEqual(names, []string{"", "cdp-only", "eu-shop"}) {
		t.Errorf("WorkspaceNames = %q, %v, %v", names, known, err)
	}
	if names, known, err := WorkspaceNames(env(nil)); err != nil || known || names != nil {
		t.Errorf("unset: %q, %v, %v", names, known, err)
	}
	for _, body := range []string{`{"workspaces": `, `{}`, `{"workspaces":{"x":{"app_key":"k"}}}`} {
		_, _, err := WorkspaceNames(env(map[string]string{EnvWorkspacesFile: writeFile(t, body)}))
		if err == nil || !strings.Contains(err.Error(), EnvWorkspacesFile) {
			t.Errorf("%s: %v", body, err)
		}
	}
	if _, _, err := WorkspaceNames(env(map[string]string{EnvWorkspacesFile: "/nonexistent/ws.json"})); err == nil || !strings.Contains(err.Error(), "/nonexistent/ws.json") {
		t.Errorf("missing file: %v", err)
	}
}
