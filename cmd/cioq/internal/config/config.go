// Package config loads the cioq binary's configuration from the environment
// (and an optional workspaces file), validating everything at start-up.
//
// Every error names the offending variable (or file and key) and never
// contains a credential value.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/contracts"

	"github.com/cioq/cioq/internal/redisconf"
)

// Environment variable names read by [Load].
const (
	EnvRedisURL          = "REDIS_URL"
	EnvSiteID            = "CUSTOMERIO_SITE_ID"
	EnvTrackAPIKey       = "CUSTOMERIO_TRACK_API_KEY"
	EnvAppAPIKey         = "CUSTOMERIO_APP_API_KEY"
	EnvAppWorkspaceID    = "CUSTOMERIO_APP_WORKSPACE_ID"
	EnvPipelinesWriteKey = "CUSTOMERIO_PIPELINES_WRITE_KEY"
	EnvRegion            = "CUSTOMERIO_REGION"
	EnvTrackURL          = "CUSTOMERIO_TRACK_URL"
	EnvAppURL            = "CUSTOMERIO_APP_URL"
	EnvPipelinesURL      = "CUSTOMERIO_PIPELINES_URL"
	EnvConcurrency       = "CIOQ_CONCURRENCY"
	EnvQueues            = "CIOQ_QUEUES"
	EnvWorkspacesFile    = "CIOQ_WORKSPACES_FILE"
	EnvProbeInterval     = "CIOQ_PROBE_INTERVAL"
	EnvContractsFile     = "CIOQ_CONTRACTS_FILE"
)

// ErrNoCredentials is wrapped by Load's error when no workspace has any
// Customer.io credential.
var ErrNoCredentials = errors.New("no Customer.io credentials")

// DefaultWorkspace is the name of the workspace configured by the
// CUSTOMERIO_* variables; tasks that name no workspace use it. In a
// workspaces file the entry "default" configures it too.
const DefaultWorkspace = ""

// Config is the binary's configuration.
type Config struct {
	// RedisURL is REDIS_URL as given (it may contain a password: do not log it).
	RedisURL string
	// Redis is RedisURL parsed into asynq connection options by
	// redisconf.Parse: asynq.RedisClientOpt, RedisFailoverClientOpt
	// (sentinel) or RedisClusterClientOpt (cluster).
	Redis asynq.RedisConnOpt
	// Concurrency is CIOQ_CONCURRENCY; 0 when unset (the worker's default applies).
	Concurrency int
	// Queues is CIOQ_QUEUES parsed into queue name → weight; nil when unset
	// (the worker's default critical=6, default=3, bulk=1 applies).
	Queues map[string]int
	// Workspaces maps a workspace name to its Customer.io settings. The
	// default workspace has the name DefaultWorkspace ("").
	Workspaces map[string]Workspace
	// Throughput holds CIOQ_RATE_*, CIOQ_BATCH* and CIOQ_ORDER* settings.
	Throughput Throughput
	// ProbeInterval is CIOQ_PROBE_INTERVAL: how often the worker checks
	// each workspace's credentials; 0 when unset (the worker's default, 5
	// min), negative for "off".
	ProbeInterval time.Duration
	// Acks is CIOQ_REDIS_ACK_REPLICAS and CIOQ_REDIS_ACK_TIMEOUT.
	Acks Acks
	// Shards is CIOQ_QUEUE_SHARDS (1 when unset).
	Shards int
	// Status holds CIOQ_STATUS_TTL and CIOQ_STATUS_POLL_AFTER.
	Status Status
	// Contracts is the contracts file CIOQ_CONTRACTS_FILE names, compiled;
	// nil when unset.
	Contracts *contracts.Set
}

// Workspace holds one Customer.io workspace's credentials and endpoints.
// An API whose credentials are empty is simply not configured: tasks for it
// are kept in the queue (and the worker reports itself unhealthy), not dropped.
type Workspace struct {
	SiteID      string
	TrackAPIKey string
	AppAPIKey   string
	// AppWorkspaceID is the numeric workspace id a service-account App
	// token (sa_live_...) sends for (X-Workspace-Id); unused otherwise.
	AppWorkspaceID    string
	PipelinesWriteKey string
	// Region is "us", "eu" or "" (= us).
	Region string
	// TrackURL, AppURL and PipelinesURL override the region's base URLs.
	TrackURL, AppURL, PipelinesURL string
	// Ordered delivers each person's tasks in enqueue order (workspaces
	// file "ordered": true; CIOQ_ORDERED=1 for the default workspace).
	Ordered bool
}

// HasTrack, HasApp and HasPipelines report which APIs have credentials.
func (w Workspace) HasTrack() bool { return w.SiteID != "" && w.TrackAPIKey != "" }

// HasApp reports whether the App API key is set.
func (w Workspace) HasApp() bool { return w.AppAPIKey != "" }

// HasPipelines reports whether the Pipelines write key is set.
func (w Workspace) HasPipelines() bool { return w.PipelinesWriteKey != "" }

// String describes the workspace without any credential.
func (w Workspace) String() string {
	var apis []string
	if w.HasTrack() {
		apis = append(apis, "track")
	}
	if w.HasApp() {
		apis = append(apis, "app")
	}
	if w.HasPipelines() {
		apis = append(apis, "pipelines")
	}
	region := w.Region
	if region == "" {
		region = "us"
	}
	return fmt.Sprintf("region=%s apis=%s", region, strings.Join(apis, ","))
}

// Load reads the configuration through getenv (os.Getenv in the binary, a
// map lookup in tests). A missing or malformed setting is an error naming
// the variable, or the file and key, and never echoing a credential.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg := &Config{Workspaces: map[string]Workspace{}}

	cfg.RedisURL = get(EnvRedisURL)
	if cfg.RedisURL == "" {
		return nil, fmt.Errorf("config: %s is not set (e.g. redis://127.0.0.1:6379/0)", EnvRedisURL)
	}
	// The same parser as serve, enqueue and dlq: redis://, rediss://,
	// redis-socket://, redis-sentinel:// and redis-cluster:// URLs. Its
	// errors name REDIS_URL and never contain the password.
	opt, err := redisconf.Parse(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.Redis = opt

	if v := get(EnvConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("config: %s=%q: want an integer from 1 to 10000", EnvConcurrency, v)
		}
		cfg.Concurrency = n
	}
	if v := get(EnvQueues); v != "" {
		q, err := ParseQueues(v)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", EnvQueues, err)
		}
		cfg.Queues = q
	}

	if cfg.Workspaces, err = LoadWorkspaces(getenv); err != nil {
		return nil, err
	}

	if v := get(EnvProbeInterval); v != "" {
		if cfg.ProbeInterval, err = parseProbeInterval(v); err != nil {
			return nil, fmt.Errorf("config: %s=%q: %w", EnvProbeInterval, v, err)
		}
	}

	if cfg.Throughput, err = loadThroughput(get); err != nil {
		return nil, err
	}
	if cfg.Acks, err = LoadAcks(getenv); err != nil {
		return nil, err
	}
	if cfg.Shards, err = LoadShards(getenv); err != nil {
		return nil, err
	}
	if cfg.Status, err = LoadStatus(getenv); err != nil {
		return nil, err
	}
	if w, ok := cfg.Workspaces[DefaultWorkspace]; ok && cfg.Throughput.OrderedDefaultWorkspace {
		w.Ordered = true
		cfg.Workspaces[DefaultWorkspace] = w
	}

	if len(cfg.Workspaces) == 0 {
		return nil, fmt.Errorf("config: %w: set %s and %s, %s, %s, or %s", ErrNoCredentials,
			EnvSiteID, EnvTrackAPIKey, EnvAppAPIKey, EnvPipelinesWriteKey, EnvWorkspacesFile)
	}
	if cfg.Contracts, err = LoadContracts(getenv); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadWorkspaces reads the Customer.io workspaces of the configuration: the
// default one from the CUSTOMERIO_* variables and those of
// CIOQ_WORKSPACES_FILE, as Load does (what a command that needs
// credentials but no Redis reads, like `cioq contracts pull`).
func LoadWorkspaces(getenv func(string) string) (map[string]Workspace, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	out := map[string]Workspace{}
	env := Workspace{
		SiteID:            get(EnvSiteID),
		TrackAPIKey:       get(EnvTrackAPIKey),
		AppAPIKey:         get(EnvAppAPIKey),
		AppWorkspaceID:    get(EnvAppWorkspaceID),
		PipelinesWriteKey: get(EnvPipelinesWriteKey),
		Region:            get(EnvRegion),
		TrackURL:          get(EnvTrackURL),
		AppURL:            get(EnvAppURL),
		PipelinesURL:      get(EnvPipelinesURL),
	}
	names := workspaceNames{
		site: EnvSiteID, track: EnvTrackAPIKey, region: EnvRegion,
		trackURL: EnvTrackURL, appURL: EnvAppURL, pipelinesURL: EnvPipelinesURL,
	}
	envSet := env.anyCredential()
	if envSet {
		if err := env.validate(names); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		out[DefaultWorkspace] = env
	} else if env.Region != "" || env.TrackURL != "" || env.AppURL != "" || env.PipelinesURL != "" {
		// Endpoint settings without any credential are most likely a typo
		// in a credential variable's name.
		return nil, fmt.Errorf("config: %s, %s, %s or %s set but no Customer.io credential (%s+%s, %s, %s)",
			EnvRegion, EnvTrackURL, EnvAppURL, EnvPipelinesURL, EnvSiteID, EnvTrackAPIKey, EnvAppAPIKey, EnvPipelinesWriteKey)
	}

	if path := get(EnvWorkspacesFile); path != "" {
		ws, err := loadWorkspacesFile(path, getenv)
		if err != nil {
			return nil, err
		}
		for name, w := range ws {
			if name == "default" {
				name = DefaultWorkspace
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("config: %s %s: workspace \"default\" is already configured by the CUSTOMERIO_* variables", EnvWorkspacesFile, path)
			}
			out[name] = w
		}
	}
	return out, nil
}

// LoadContracts reads the contracts file CIOQ_CONTRACTS_FILE names
// (strictly: see package contracts), nil when the variable is unset. Its
// errors name the variable, the file and the key at fault.
func LoadContracts(getenv func(string) string) (*contracts.Set, error) {
	path := strings.TrimSpace(getenv(EnvContractsFile))
	if path == "" {
		return nil, nil
	}
	set, err := contracts.Load(path)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", EnvContractsFile, err)
	}
	return set, nil
}

// parseProbeInterval reads CIOQ_PROBE_INTERVAL: "off", or a duration of
// at least a second.
func parseProbeInterval(v string) (time.Duration, error) {
	if strings.EqualFold(v, "off") {
		return -1, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, errors.New("want a duration of at least 1s (e.g. 5m) or off")
	}
	return d, nil
}

// WorkspaceNames returns the names of the workspaces a worker sharing this
// environment knows: the default workspace ("") and every workspace of the
// file CIOQ_WORKSPACES_FILE names ("default" there is the default
// workspace). known is false when the variable is unset: then the list is
// not known (the worker may have workspaces this process does not see).
// Only the names are read: neither credentials nor their *_env variables
// need to be there, so producers (cioq enqueue, cioq serve) can check the
// workspace of a task with the worker's file. Errors name the variable and
// the file, never a credential.
func WorkspaceNames(getenv func(string) string) (names []string, known bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	path := strings.TrimSpace(getenv(EnvWorkspacesFile))
	if path == "" {
		return nil, false, nil
	}
	prefix := fmt.Sprintf("config: %s %s", EnvWorkspacesFile, path)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", prefix, err)
	}
	var f workspacesFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, false, fmt.Errorf("%s: invalid JSON: %v", prefix, err)
	}
	if len(f.Workspaces) == 0 {
		return nil, false, fmt.Errorf("%s: key \"workspaces\" is missing or empty", prefix)
	}
	names = []string{DefaultWorkspace}
	for name := range f.Workspaces {
		if strings.TrimSpace(name) == "" {
			return nil, false, fmt.Errorf("%s: workspace names must not be empty", prefix)
		}
		if name != "default" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, true, nil
}

// ParseQueues parses "critical=6,default=3,bulk=1" into queue weights.
func ParseQueues(s string) (map[string]int, error) {
	q := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want name=weight", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("queue %q: weight %q must be a positive integer", name, strings.TrimSpace(w))
		}
		if _, dup := q[name]; dup {
			return nil, fmt.Errorf("queue %q listed twice", name)
		}
		q[name] = n
	}
	if len(q) == 0 {
		return nil, errors.New("no queues listed")
	}
	return q, nil
}

// workspaceNames are the names errors use for each setting of a workspace.
type workspaceNames struct {
	site, track, region, trackURL, appURL, pipelinesURL string
}

func (w Workspace) anyCredential() bool {
	return w.SiteID != "" || w.TrackAPIKey != "" || w.AppAPIKey != "" || w.PipelinesWriteKey != ""
}

func (w Workspace) validate(n workspaceNames) error {
	if w.SiteID != "" && w.TrackAPIKey == "" {
		return fmt.Errorf("%s is set but %s is not (the Track API needs both)", n.site, n.track)
	}
	if w.TrackAPIKey != "" && w.SiteID == "" {
		return fmt.Errorf("%s is set but %s is not (the Track API needs both)", n.track, n.site)
	}
	switch w.Region {
	case "", "us", "eu":
	default:
		return fmt.Errorf("%s=%q: want us or eu", n.region, w.Region)
	}
	for _, u := range []struct{ name, v string }{{n.trackURL, w.TrackURL}, {n.appURL, w.AppURL}, {n.pipelinesURL, w.PipelinesURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s: want an absolute http(s) URL", u.name)
		}
		if p.User != nil {
			return fmt.Errorf("%s: credentials in the URL are not allowed", u.name)
		}
	}
	return nil
}

// fileWorkspace is one entry of the workspaces file. Each credential is
// given inline or, with the _env suffix, as the name of an environment
// variable holding it.
type fileWorkspace struct {
	SiteID               string `json:"site_id"`
	SiteIDEnv            string `json:"site_id_env"`
	TrackAPIKey          string `json:"track_api_key"`
	TrackAPIKeyEnv       string `json:"track_api_key_env"`
	AppAPIKey            string `json:"app_api_key"`
	AppAPIKeyEnv         string `json:"app_api_key_env"`
	AppWorkspaceID       string `json:"app_workspace_id"`
	PipelinesWriteKey    string `json:"pipelines_write_key"`
	PipelinesWriteKeyEnv string `json:"pipelines_write_key_env"`
	Ordered              bool   `json:"ordered"`
	Region               string `json:"region"`
	TrackURL             string `json:"track_url"`
	AppURL               string `json:"app_url"`
	PipelinesURL         string `json:"pipelines_url"`
	// WebhookSigningKey(Env) is the signing key of the workspace's
	// reporting webhook (read by `cioq serve` only; see WebhookSigningKeys).
	WebhookSigningKey    string `json:"webhook_signing_key"`
	WebhookSigningKeyEnv string `json:"webhook_signing_key_env"`
}

// workspacesFile is the JSON document named by CIOQ_WORKSPACES_FILE:
//
//	{"workspaces": {"eu-shop": {"site_id": "…", "track_api_key_env": "EU_TRACK_KEY",
//	                            "app_api_key_env": "EU_APP_KEY", "region": "eu"}}}
type workspacesFile struct {
	Workspaces map[string]fileWorkspace `json:"workspaces"`
}

func loadWorkspacesFile(path string, getenv func(string) string) (map[string]Workspace, error) {
	prefix := fmt.Sprintf("config: %s %s", EnvWorkspacesFile, path)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	var f workspacesFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		// json errors quote field names and types, never string values.
		return nil, fmt.Errorf("%s: invalid JSON: %v", prefix, err)
	}
	if len(f.Workspaces) == 0 {
		return nil, fmt.Errorf("%s: key \"workspaces\" is missing or empty", prefix)
	}
	names := make([]string, 0, len(f.Workspaces))
	for name := range f.Workspaces {
		names = append(names, name)
	}
	sort.Strings(names)
	out := map[string]Workspace{}
	for _, name := range names {
		fw := f.Workspaces[name]
		key := func(k string) string { return fmt.Sprintf("%s: workspaces.%s.%s", prefix, name, k) }
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("%s: workspace names must not be empty", prefix)
		}
		pick := func(field, inline, envName string) (string, error) {
			if inline != "" && envName != "" {
				return "", fmt.Errorf("%s: set %s or %s_env, not both", key(field), field, field)
			}
			if envName == "" {
				return strings.TrimSpace(inline), nil
			}
			v := strings.TrimSpace(getenv(envName))
			if v == "" {
				return "", fmt.Errorf("%s_env: environment variable %s is not set", key(field), envName)
			}
			return v, nil
		}
		var w Workspace
		var err error
		if w.SiteID, err = pick("site_id", fw.SiteID, fw.SiteIDEnv); err != nil {
			return nil, err
		}
		if w.TrackAPIKey, err = pick("track_api_key", fw.TrackAPIKey, fw.TrackAPIKeyEnv); err != nil {
			return nil, err
		}
		if w.AppAPIKey, err = pick("app_api_key", fw.AppAPIKey, fw.AppAPIKeyEnv); err != nil {
			return nil, err
		}
		if w.PipelinesWriteKey, err = pick("pipelines_write_key", fw.PipelinesWriteKey, fw.PipelinesWriteKeyEnv); err != nil {
			return nil, err
		}
		w.AppWorkspaceID = strings.TrimSpace(fw.AppWorkspaceID)
		w.Region = strings.TrimSpace(fw.Region)
		w.Ordered = fw.Ordered
		w.TrackURL, w.AppURL, w.PipelinesURL = strings.TrimSpace(fw.TrackURL), strings.TrimSpace(fw.AppURL), strings.TrimSpace(fw.PipelinesURL)
		if !w.anyCredential() {
			return nil, fmt.Errorf("%s: no credential (site_id+track_api_key, app_api_key or pipelines_write_key)", key("*"))
		}
		short := func(k string) string { return fmt.Sprintf("workspaces.%s.%s", name, k) }
		n := workspaceNames{
			site: short("site_id"), track: short("track_api_key"), region: short("region"),
			trackURL: short("track_url"), appURL: short("app_url"), pipelinesURL: short("pipelines_url"),
		}
		if err := w.validate(n); err != nil {
			return nil, fmt.Errorf("%s: %w", prefix, err)
		}
		out[name] = w
	}
	return out, nil
}
