package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
)

// Config tunes a Limiter. The zero value is the documented defaults.
type Config struct {
	// Prefix starts every Redis key the limiter writes. Default
	// "cioq:ratelimit:".
	Prefix string
	// Decrease multiplies the effective rate on each 429 (Throttled).
	// Default 0.5.
	Decrease float64
	// Floor is the lowest effective rate, as a fraction of the Limit.
	// Default 0.1.
	Floor float64
	// Recovery is how long the effective rate takes to climb back linearly
	// to 100 % after the last decrease. Default 30s.
	Recovery time.Duration
	// Cooldown is the time after a decrease during which further 429s do
	// not decrease the rate again. Default 1s; negative means none.
	Cooldown time.Duration
	// Now, when set, is the clock of the adaptive slow-down (when a 429 was
	// recorded and how far recovery has got); tests inject time here. When
	// nil, Redis's clock is used, which every process shares. The GCRA
	// itself always uses Redis's clock.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = keys.RateLimitPrefix
	}
	if c.Decrease <= 0 || c.Decrease >= 1 {
		c.Decrease = 0.5
	}
	if c.Floor <= 0 || c.Floor > 1 {
		c.Floor = 0.1
	}
	if c.Recovery <= 0 {
		c.Recovery = 30 * time.Second
	}
	if c.Cooldown == 0 {
		c.Cooldown = time.Second
	} else if c.Cooldown < 0 {
		c.Cooldown = 0
	}
	return c
}

// Limiter enforces Limits shared through Redis by every process that uses
// the same Redis database and Prefix. It is safe for concurrent use.
type Limiter struct {
	rdb redis.UniversalClient
	cfg Config
}

// New returns a Limiter on rdb (a *redis.Client, *redis.ClusterClient or
// *redis.Ring).
func New(rdb redis.UniversalClient, cfg Config) *Limiter {
	return &Limiter{rdb: rdb, cfg: cfg.withDefaults()}
}

// Result is the outcome of Allow or Reserve.
type Result struct {
	// Allowed reports whether the caller got a slot.
	Allowed bool
	// RetryAfter, when not Allowed, is how long until a slot is expected to
	// be free. No slot was consumed.
	RetryAfter time.Duration
	// Delay, when Allowed by Reserve, is how long the caller must wait
	// before using its slot; 0 means now.
	Delay time.Duration
	// ComeBack, when not Allowed, is when the caller should try again:
	// the callers turned away are given one slot each after the next free
	// one, in turn, and ComeBack is when that slot enters the maxWait
	// horizon (at most ComeBackCap), so they return spread at the limit's
	// pace.
	ComeBack time.Duration
}

// ComeBackCap bounds Result.ComeBack: a caller turned away behind a long
// queue tries again after at most this long (the queue's slots are hints:
// its callers may be gone).
const ComeBackCap = 5 * time.Minute

func (l *Limiter) tatKey(key string) string      { return keys.RateLimitTAT(l.cfg.Prefix, key) }
func (l *Limiter) throttleKey(key string) string { return keys.RateLimitThrottle(l.cfg.Prefix, key) }
func (l *Limiter) wakeKey(key string) string     { return keys.RateLimitWake(l.cfg.Prefix, key) }

// tnow is the injected clock as script seconds, or "" for Redis time.
func (l *Limiter) tnow() string {
	if l.cfg.Now == nil {
		return ""
	}
	t := l.cfg.Now()
	return strconv.FormatFloat(float64(t.Unix()-epoch2017)+float64(t.Nanosecond())/1e9, 'f', 6, 64)
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 6, 64) }

// Allow takes a slot of limit under key if one is free now.
func (l *Limiter) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	return l.Reserve(ctx, key, limit, 0)
}

// Reserve takes the next slot of limit under key if it begins within
// maxWait; the Result's Delay says how long to wait before using it. When
// the next slot is further away, nothing is consumed and RetryAfter says
// when to come back. A Limit with Rate <= 0 always allows without touching
// Redis.
func (l *Limiter) Reserve(ctx context.Context, key string, limit Limit, maxWait time.Duration) (Result, error) {
	if limit.Rate <= 0 {
		return Result{Allowed: true}, nil
	}
	if err := limit.Validate(); err != nil {
		return Result{}, err
	}
	if maxWait < 0 {
		maxWait = 0
	}
	v, err := reserveScript.Run(ctx, l.rdb, []string{l.tatKey(key), l.throttleKey(key), l.wakeKey(key)},
		limit.Rate, seconds(limit.Period), limit.burst(), seconds(maxWait), l.tnow(), seconds(l.cfg.Recovery), seconds(ComeBackCap),
	).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %s: %w", key, err)
	}
	if len(v) != 4 {
		return Result{}, fmt.Errorf("ratelimit: %s: unexpected script reply %v", key, v)
	}
	allowed, _ := v[0].(int64)
	s, _ := v[1].(string)
	wait, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %s: unexpected script reply %v", key, v)
	}
	d := time.Duration(wait * float64(time.Second))
	if allowed == 1 {
		return Result{Allowed: true, Delay: d}, nil
	}
	cs, _ := v[3].(string)
	cb, err := strconv.ParseFloat(cs, 64)
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %s: unexpected script reply %v", key, v)
	}
	return Result{RetryAfter: d, ComeBack: time.Duration(cb * float64(time.Second))}, nil
}

// Wait blocks until the caller may make one request under key, when that is
// within maxWait (and before ctx's deadline). Otherwise it returns a
// *WaitTooLongError at once without consuming a slot. It returns ctx's error
// when ctx ends during the wait; the reserved slot is then lost, which only
// makes the limiter more conservative.
func (l *Limiter) Wait(ctx context.Context, key string, limit Limit, maxWait time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < maxWait {
			maxWait = left
		}
	}
	r, err := l.Reserve(ctx, key, limit, maxWait)
	if err != nil {
		return err
	}
	if !r.Allowed {
		return &WaitTooLongError{Key: key, RetryAfter: r.RetryAfter, ComeBack: r.ComeBack}
	}
	if r.Delay <= 0 {
		return nil
	}
	t := time.NewTimer(r.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Throttled records that Customer.io answered 429 for key: every process's
// effective rate for key drops by Decrease (unless the last decrease was
// within Cooldown), never below Floor, and then recovers over Recovery.
func (l *Limiter) Throttled(ctx context.Context, key string) error {
	err := throttleScript.Run(ctx, l.rdb, []string{l.throttleKey(key)},
		l.tnow(), strconv.FormatFloat(l.cfg.Decrease, 'f', -1, 64), strconv.FormatFloat(l.cfg.Floor, 'f', -1, 64),
		seconds(l.cfg.Recovery), seconds(l.cfg.Cooldown),
	).Err()
	if err != nil {
		return fmt.Errorf("ratelimit: %s: %w", key, err)
	}
	return nil
}

// Pause holds every process's requests of limit under key for d (for
// example a 429's Retry-After): after the pause the Limit's pace resumes one
// request at a time, without a burst. A pause never shortens an earlier,
// longer one.
func (l *Limiter) Pause(ctx context.Context, key string, limit Limit, d time.Duration) error {
	if d <= 0 || limit.Rate <= 0 {
		return nil
	}
	if err := limit.Validate(); err != nil {
		return err
	}
	tolerance := time.Duration(limit.burst()-1) * limit.Period / time.Duration(limit.Rate)
	if err := pauseScript.Run(ctx, l.rdb, []string{l.tatKey(key)}, seconds(d), seconds(tolerance)).Err(); err != nil {
		return fmt.Errorf("ratelimit: %s: %w", key, err)
	}
	return nil
}

// EffectiveRate returns the fraction of the configured Limit in effect for
// key now: 1 normally, less after a Throttled, recovering back to 1.
func (l *Limiter) EffectiveRate(ctx context.Context, key string) (float64, error) {
	s, err := factorScript.Run(ctx, l.rdb, []string{l.throttleKey(key)}, l.tnow(), seconds(l.cfg.Recovery)).Text()
	if err != nil {
		return 0, fmt.Errorf("ratelimit: %s: %w", key, err)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("ratelimit: %s: unexpected script reply %q", key, s)
	}
	return f, nil
}

// Reset forgets key's state: its GCRA position and any slow-down.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.rdb.Del(ctx, l.tatKey(key), l.throttleKey(key), l.wakeKey(key)).Err(); err != nil {
		return fmt.Errorf("ratelimit: %s: %w", key, err)
	}
	return nil
}
