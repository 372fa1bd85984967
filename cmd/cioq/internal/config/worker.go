package config

import (
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker"
	"github.com/cioq/cioq/worker/ratelimit"
)

// ClientConfig is the Customer.io client configuration of the workspace.
func (w Workspace) ClientConfig() customerio.Config {
	return customerio.Config{
		SiteID: w.SiteID, TrackAPIKey: w.TrackAPIKey, AppAPIKey: w.AppAPIKey, AppWorkspaceID: w.AppWorkspaceID,
		PipelinesWriteKey: w.PipelinesWriteKey, Region: customerio.Region(w.Region),
		TrackURL: w.TrackURL, AppURL: w.AppURL, PipelinesURL: w.PipelinesURL,
	}
}

// WorkerConfig converts the configuration into a worker Config; the
// caller may adjust the result before worker.New.
func (c *Config) WorkerConfig() worker.Config {
	ws := make(map[string]customerio.Config, len(c.Workspaces))
	for name, w := range c.Workspaces {
		ws[name] = w.ClientConfig()
	}
	wc := worker.Config{Redis: c.Redis, Workspaces: ws, Concurrency: c.Concurrency, Queues: c.Queues, ProbeInterval: c.ProbeInterval,
		Replicas: c.Acks.Replicas, ReplicaTimeout: c.Acks.Timeout, Contracts: c.Contracts, Shards: c.Shards}
	t := c.Throughput
	wc.RateLimits.Off = t.RateLimitsOff
	wc.RateLimits.Default = worker.Limits{
		Track:         limitOf(t.Track, ratelimit.DefaultTrack),
		App:           limitOf(t.App, ratelimit.DefaultApp),
		Transactional: limitOf(t.Transactional, ratelimit.DefaultTransactional),
	}
	wc.Batching = worker.Batching{Off: t.BatchOff, Types: t.BatchTypes, Linger: t.BatchLinger, MaxOps: t.BatchMaxOps, MaxInFlight: t.BatchInFlight}
	wc.Ordering.MaxWait = t.OrderingMaxWait
	wc.Status = worker.StatusConfig{Off: c.Status.Off, TTL: c.Status.TTL, PollAfter: c.Status.PollAfter}
	for name, w := range c.Workspaces {
		if w.Ordered {
			if wc.Ordering.Workspaces == nil {
				wc.Ordering.Workspaces = map[string]bool{}
			}
			wc.Ordering.Workspaces[name] = true
		}
	}
	return wc
}

// limitOf converts a configured rate; without a burst it keeps the
// default's burst (at most the rate).
func limitOf(r *Rate, def ratelimit.Limit) ratelimit.Limit {
	if r == nil {
		return def
	}
	l := ratelimit.Limit{Rate: r.Rate, Period: r.Period, Burst: r.Burst}
	if l.Burst == 0 {
		l.Burst = min(def.Burst, r.Rate)
	}
	return l
}
