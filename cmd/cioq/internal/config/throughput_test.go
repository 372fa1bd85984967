package config

import (
	"strings"
	"testing"
	"time"
)

func TestThroughputSettings(t *testing.T) {
	env := map[string]string{
		EnvRedisURL: "redis://127.0.0.1:6379/0", EnvSiteID: "s", EnvTrackAPIKey: "k",
		EnvRateTrack: "3000/3s:100", EnvRateApp: "10/s", EnvRateLimits: "on",
		EnvBatch: "on", EnvBatchTypes: "cio:identify, cio:track", EnvBatchLinger: "20ms", EnvBatchMaxOps: "200",
		EnvBatchInFlight: "8", EnvOrdered: "1", EnvOrderingMaxWait: "10s",
	}
	cfg, err := Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	tp := cfg.Throughput
	if *tp.Track != (Rate{3000, 3 * time.Second, 100}) || *tp.App != (Rate{10, time.Second, 0}) || tp.Transactional != nil {
		t.Errorf("rates %+v %+v %+v", tp.Track, tp.App, tp.Transactional)
	}
	if tp.BatchOff || len(tp.BatchTypes) != 2 || tp.BatchTypes[1] != "cio:track" || tp.BatchLinger != 20*time.Millisecond || tp.BatchMaxOps != 200 || tp.BatchInFlight != 8 {
		t.Errorf("batch %+v", tp)
	}
	if !cfg.Workspaces[DefaultWorkspace].Ordered || tp.OrderingMaxWait != 10*time.Second {
		t.Errorf("ordering %+v %+v", cfg.Workspaces[DefaultWorkspace], tp)
	}
	for k, v := range map[string]string{EnvRateTrack: "100", EnvRateApp: "0/s", EnvRateTransactional: "5/x", EnvRateLimits: "maybe", EnvBatch: "sometimes", EnvBatchMaxOps: "5000", EnvBatchInFlight: "0", EnvOrdered: "2"} {
		bad := map[string]string{}
		for kk, vv := range env {
			bad[kk] = vv
		}
		bad[k] = v
		if _, err := Load(func(k string) string { return bad[k] }); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: error %v, want one naming the variable", k, v, err)
		}
	}
}
