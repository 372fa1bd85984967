package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Environment variables of rate limiting, batching and ordering.
const (
	EnvRateLimits        = "CIOQ_RATE_LIMITS"        // on (default) | off
	EnvRateTrack         = "CIOQ_RATE_TRACK"         // default 100/1030ms:1; e.g. 100/s, 3000/3s, 100/s:1 (burst 1)
	EnvRateApp           = "CIOQ_RATE_APP"           // default 10/1030ms:1
	EnvRateTransactional = "CIOQ_RATE_TRANSACTIONAL" // default 100/s:10
	EnvBatch             = "CIOQ_BATCH"              // on (default) | off
	EnvBatchTypes        = "CIOQ_BATCH_TYPES"        // comma-separated task types (default: all batchable)
	EnvBatchLinger       = "CIOQ_BATCH_LINGER"       // Go duration (default 5ms)
	EnvBatchMaxOps       = "CIOQ_BATCH_MAX_OPS"      // 1..1000 (default 500)
	EnvBatchInFlight     = "CIOQ_BATCH_IN_FLIGHT"    // 1..64 (default 4)
	EnvOrdered           = "CIOQ_ORDERED"            // 1: the default workspace is ordered
	EnvOrderingMaxWait   = "CIOQ_ORDERING_MAX_WAIT"  // Go duration (default 30s)
)

// Rate is a parsed rate setting: Rate requests per Period, Burst at once
// (0 = the worker's default burst for that API).
type Rate struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Throughput holds the rate-limit, batching and ordering settings; zero
// fields mean the worker's defaults.
type Throughput struct {
	RateLimitsOff             bool
	Track, App, Transactional *Rate
	BatchOff                  bool
	BatchTypes                []string
	BatchLinger               time.Duration
	BatchMaxOps               int
	BatchInFlight             int
	OrderingMaxWait           time.Duration
	OrderedDefaultWorkspace   bool
}

// ParseRate parses "N/s", "N/m", "N/<duration>" (e.g. "3000/3s") with an
// optional ":burst" suffix ("100/s:1").
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	var r Rate
	main, burst, hasBurst := strings.Cut(s, ":")
	n, per, ok := strings.Cut(main, "/")
	if !ok {
		return r, fmt.Errorf("%q: want N/s, N/m or N/<duration>, optionally :burst (e.g. 100/s, 3000/3s, 10/s:1)", s)
	}
	rate, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || rate < 1 || rate > 1_000_000 {
		return r, fmt.Errorf("%q: the rate must be an integer from 1 to 1000000", s)
	}
	per = strings.TrimSpace(per)
	switch per {
	case "s":
		r.Period = time.Second
	case "m":
		r.Period = time.Minute
	default:
		d, err := time.ParseDuration(per)
		if err != nil || d <= 0 {
			return r, fmt.Errorf("%q: the period must be s, m or a positive duration such as 3s", s)
		}
		r.Period = d
	}
	r.Rate = rate
	if hasBurst {
		b, err := strconv.Atoi(strings.TrimSpace(burst))
		if err != nil || b < 1 {
			return r, fmt.Errorf("%q: the burst must be a positive integer", s)
		}
		r.Burst = b
	}
	return r, nil
}

func parseOnOff(name, v string) (off bool, err error) {
	switch strings.ToLower(v) {
	case "", "on", "1", "true", "yes":
		return false, nil
	case "off", "0", "false", "no":
		return true, nil
	}
	return false, fmt.Errorf("config: %s=%q: want on or off", name, v)
}

func loadThroughput(get func(string) string) (Throughput, error) {
	var t Throughput
	var err error
	if t.RateLimitsOff, err = parseOnOff(EnvRateLimits, get(EnvRateLimits)); err != nil {
		return t, err
	}
	for _, x := range []struct {
		name string
		dst  **Rate
	}{{EnvRateTrack, &t.Track}, {EnvRateApp, &t.App}, {EnvRateTransactional, &t.Transactional}} {
		if v := get(x.name); v != "" {
			r, err := ParseRate(v)
			if err != nil {
				return t, fmt.Errorf("config: %s: %w", x.name, err)
			}
			*x.dst = &r
		}
	}
	if t.BatchOff, err = parseOnOff(EnvBatch, get(EnvBatch)); err != nil {
		return t, err
	}
	if v := get(EnvBatchTypes); v != "" {
		for _, typ := range strings.Split(v, ",") {
			if typ = strings.TrimSpace(typ); typ != "" {
				t.BatchTypes = append(t.BatchTypes, typ)
			}
		}
	}
	if v := get(EnvBatchLinger); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 10*time.Second {
			return t, fmt.Errorf("config: %s=%q: want a duration from 0 to 10s", EnvBatchLinger, v)
		}
		t.BatchLinger = d
		if d == 0 {
			t.BatchLinger = -1 // send as soon as a request slot is free
		}
	}
	if v := get(EnvBatchMaxOps); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return t, fmt.Errorf("config: %s=%q: want an integer from 1 to 1000", EnvBatchMaxOps, v)
		}
		t.BatchMaxOps = n
	}
	if v := get(EnvBatchInFlight); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return t, fmt.Errorf("config: %s=%q: want an integer from 1 to 64", EnvBatchInFlight, v)
		}
		t.BatchInFlight = n
	}
	switch v := strings.ToLower(get(EnvOrdered)); v {
	case "", "0", "false", "off", "no":
	case "1", "true", "on", "yes":
		t.OrderedDefaultWorkspace = true
	default:
		return t, fmt.Errorf("config: %s=%q: want 1 or 0", EnvOrdered, v)
	}
	if v := get(EnvOrderingMaxWait); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return t, fmt.Errorf("config: %s=%q: want a duration of at least 1s", EnvOrderingMaxWait, v)
		}
		t.OrderingMaxWait = d
	}
	return t, nil
}
