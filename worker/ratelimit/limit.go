package ratelimit

import (
	"fmt"
	"time"

	"github.com/cioq/cioq/internal/keys"
)

// Limit is a rate: Rate requests per Period, with up to Burst of them
// allowed back to back after a quiet period. A Limit with Rate <= 0 means
// "no limit". Burst < 1 counts as 1 (requests evenly spaced).
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// PerSecond returns n requests per second with a burst of n.
func PerSecond(n int) Limit { return Limit{Rate: n, Period: time.Second, Burst: n} }

// PerMinute returns n requests per minute with a burst of n.
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute, Burst: n} }

// IsZero reports whether l is the zero Limit, i.e. no limit at all.
func (l Limit) IsZero() bool { return l == Limit{} }

// String formats l as "100 req/1s (burst 10)".
func (l Limit) String() string {
	if l.Rate <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d req/%s (burst %d)", l.Rate, l.Period, l.burst())
}

// Validate reports a Limit that cannot be enforced: a positive Rate with a
// Period that is not positive.
func (l Limit) Validate() error {
	if l.Rate > 0 && l.Period <= 0 {
		return fmt.Errorf("ratelimit: limit %d per %s: period must be positive", l.Rate, l.Period)
	}
	return nil
}

func (l Limit) burst() int {
	if l.Burst < 1 {
		return 1
	}
	return l.Burst
}

// Defaults the worker uses: Customer.io's documented limits, as each one
// below says (the README's "Throughput" section lists them, and the sandbox
// enforces the same, customerio/sandbox Config). Treat them as constants.
var (
	// DefaultTrack is the Track API (v1 and v2) fair-use rate, 100 req/s,
	// kept with a 3 % margin (100 per 1.03 s) and no burst, so that no
	// one-second window at Customer.io sees more than 100 requests even
	// when network and scheduling jitter bunch a few together. (At exactly
	// 100/s a strict window sees a 101st now and then, and the 429 halves
	// the shared rate.) Customer.io's current docs allow up to TrackMax.
	DefaultTrack = Limit{Rate: 100, Period: 1030 * time.Millisecond, Burst: 1}
	// TrackMax is the most the Track API documents: 3000 requests per 3 s
	// (soft limit shared with Pipelines and transactional sends).
	TrackMax = Limit{Rate: 3000, Period: 3 * time.Second, Burst: 100}
	// DefaultApp is the App API's hard limit, 10 req/s, enforced with 429.
	// Burst 1 spaces requests evenly and the 3 % margin (10 per 1.03 s)
	// absorbs jitter, so no one-second window sees more than 10.
	DefaultApp = Limit{Rate: 10, Period: 1030 * time.Millisecond, Burst: 1}
	// DefaultTransactional is the rate for transactional sends, 100 req/s.
	DefaultTransactional = Limit{Rate: 100, Period: time.Second, Burst: 10}
	// DefaultBroadcastTrigger is one trigger per 10 s per broadcast; use it
	// with BroadcastKey.
	DefaultBroadcastTrigger = Limit{Rate: 1, Period: 10 * time.Second, Burst: 1}
)

// API names used in keys by the worker.
const (
	APITrack         = "track"
	APIApp           = "app"
	APITransactional = "transactional"
	APIPipelines     = "pipelines"
)

// Key returns the limiter key of one API in one workspace, such as
// Key("default", "track") == "default:track". Limits are per key: two
// workspaces (Customer.io accounts) never share a budget.
func Key(workspace, api string) string { return keys.RateLimitAPI(workspace, api) }

// BroadcastKey returns the key of one API-triggered broadcast in a workspace,
// for DefaultBroadcastTrigger.
func BroadcastKey(workspace string, broadcastID int) string {
	return keys.RateLimitBroadcast(workspace, broadcastID)
}
