package config

import (
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker/ratelimit"
)

// TestWorkerConfig: the loaded environment becomes the worker's
// configuration: each workspace's client settings, concurrency, queues,
// probe interval, rates (a rate without a burst keeps the default's burst,
// at most the rate), batching and ordering.
func TestWorkerConfig(t *testing.T) {
	vars := map[string]string{
		EnvRedisURL: "redis://127.0.0.1:6379/0", EnvSiteID: "site", EnvTrackAPIKey: "track-key", EnvAppAPIKey: "app-key",
		EnvRegion: "eu", EnvConcurrency: "7", EnvQueues: "critical=2,bulk=1", EnvProbeInterval: "off",
		EnvRateTrack: "50/s", EnvRateApp: "20/s:4", EnvRateTransactional: "5/s", EnvBatchTypes: "cio:identify", EnvBatchLinger: "20ms", EnvBatchMaxOps: "200",
		EnvBatchInFlight: "12", EnvOrdered: "1", EnvOrderingMaxWait: "10s",
	}
	cfg, err := Load(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	wc := cfg.WorkerConfig()
	want := customerio.Config{SiteID: "site", TrackAPIKey: "track-key", AppAPIKey: "app-key", Region: customerio.RegionEU}
	if len(wc.Workspaces) != 1 || wc.Workspaces[DefaultWorkspace] != want {
		t.Errorf("workspaces %+v, want only the default %+v", wc.Workspaces, want)
	}
	if wc.Redis == nil || wc.Concurrency != 7 || len(wc.Queues) != 2 || wc.Queues["critical"] != 2 || wc.ProbeInterval != -1 {
		t.Errorf("redis %v concurrency %d queues %v probe %v", wc.Redis, wc.Concurrency, wc.Queues, wc.ProbeInterval)
	}
	rl := wc.RateLimits
	// Default bursts: Track 1, transactional 10 (above the configured rate of 5).
	if rl.Off || rl.Default.Track != (ratelimit.Limit{Rate: 50, Period: time.Second, Burst: 1}) ||
		rl.Default.App != (ratelimit.Limit{Rate: 20, Period: time.Second, Burst: 4}) ||
		rl.Default.Transactional != (ratelimit.Limit{Rate: 5, Period: time.Second, Burst: 5}) {
		t.Errorf("rate limits %+v", rl)
	}
	vars[EnvRateTransactional] = ""
	if cfg, err = Load(env(vars)); err != nil {
		t.Fatal(err)
	}
	if got := cfg.WorkerConfig().RateLimits.Default.Transactional; got != ratelimit.DefaultTransactional {
		t.Errorf("transactional unset: %+v, want the default %+v", got, ratelimit.DefaultTransactional)
	}
	b := wc.Batching
	if b.Off || len(b.Types) != 1 || b.Types[0] != "cio:identify" || b.Linger != 20*time.Millisecond || b.MaxOps != 200 || b.MaxInFlight != 12 {
		t.Errorf("batching %+v", b)
	}
	if !wc.Ordering.Workspaces[DefaultWorkspace] || len(wc.Ordering.Workspaces) != 1 || wc.Ordering.MaxWait != 10*time.Second {
		t.Errorf("ordering %+v", wc.Ordering)
	}

	vars[EnvRateLimits], vars[EnvBatch], vars[EnvOrdered] = "off", "off", "0"
	if cfg, err = Load(env(vars)); err != nil {
		t.Fatal(err)
	}
	if wc := cfg.WorkerConfig(); !wc.RateLimits.Off || !wc.Batching.Off || wc.Ordering.Workspaces != nil {
		t.Errorf("off: rate limits %+v batching %+v ordering %+v", wc.RateLimits, wc.Batching, wc.Ordering)
	}
}
