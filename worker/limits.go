package worker

import (
	"context"
	"errors"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker/ratelimit"
)

// DefaultRateLimitMaxWait is how long a task may wait in the worker for a
// rate-limit slot before it is rescheduled instead (RateLimits.MaxWait).
const DefaultRateLimitMaxWait = 2 * time.Second

// Limits are the rate limits of one workspace. A zero field takes the
// ratelimit package's default (DefaultTrack, DefaultApp,
// DefaultTransactional, DefaultBroadcastTrigger); a Limit with a negative
// Rate means no limit for that API.
type Limits struct {
	// Track limits Track API requests (v1 calls and v2 batch or entity
	// requests alike: one batch request counts once).
	Track ratelimit.Limit
	// App limits App API requests other than transactional sends
	// (broadcast triggers).
	App ratelimit.Limit
	// Transactional limits transactional sends (cio:send_*).
	Transactional ratelimit.Limit
	// Broadcast limits the triggers of one broadcast (per broadcast id).
	Broadcast ratelimit.Limit
}

func (l Limits) or(d Limits) Limits {
	if l.Track.IsZero() {
		l.Track = d.Track
	}
	if l.App.IsZero() {
		l.App = d.App
	}
	if l.Transactional.IsZero() {
		l.Transactional = d.Transactional
	}
	if l.Broadcast.IsZero() {
		l.Broadcast = d.Broadcast
	}
	return l
}

var defaultLimits = Limits{
	Track: ratelimit.DefaultTrack, App: ratelimit.DefaultApp,
	Transactional: ratelimit.DefaultTransactional, Broadcast: ratelimit.DefaultBroadcastTrigger,
}

// RateLimits configures the rate limits every worker process sharing the
// Redis database enforces together, per workspace and API. The zero value
// enforces Customer.io's documented defaults.
type RateLimits struct {
	// Off disables rate limiting.
	Off bool
	// Default applies to every workspace (zero fields: the defaults).
	Default Limits
	// Workspaces overrides Default for some workspaces (zero fields fall
	// back to Default).
	Workspaces map[string]Limits
	// MaxWait is the longest a task waits in the worker for a slot (default
	// 2 s: a task rescheduled comes back up to about two seconds late, asynq
	// keeping retry times in whole seconds and moving due ones every
	// second, and must still find its slot ahead). A task facing a longer
	// wait is rescheduled for its turn among the tasks turned away (see
	// ratelimit.Result.ComeBack), without spending its retry budget and
	// without holding a worker slot.
	MaxWait time.Duration
	// Limiter tunes the shared limiter (key prefix, slow-down after 429).
	Limiter ratelimit.Config
}

func (r RateLimits) limits(ws string) Limits {
	d := r.Default.or(defaultLimits)
	if l, ok := r.Workspaces[ws]; ok {
		return l.or(d)
	}
	return d
}

// gate is one limit a request must pass.
type gate struct {
	api   string // metric label and key suffix
	key   string
	limit ratelimit.Limit
}

// gatesOf returns the limits a task's request must pass, outermost first.
func (w *Worker) gatesOf(t *Task) []gate {
	if w.limiter == nil {
		return nil
	}
	ws := t.Envelope.Workspace
	l := w.cfg.RateLimits.limits(ws)
	switch apiOf(t.Type) {
	case customerio.APITrack:
		return []gate{{ratelimit.APITrack, ratelimit.Key(ws, ratelimit.APITrack), l.Track}}
	case customerio.APIApp:
		if bt, ok := t.Payload.(*tasks.BroadcastTrigger); ok {
			return []gate{
				{"broadcast", ratelimit.BroadcastKey(ws, bt.BroadcastID), l.Broadcast},
				{ratelimit.APIApp, ratelimit.Key(ws, ratelimit.APIApp), l.App},
			}
		}
		return []gate{{ratelimit.APITransactional, ratelimit.Key(ws, ratelimit.APITransactional), l.Transactional}}
	}
	return nil
}

// waitGates waits for a slot of every gate, reporting each wait to the
// Observer. A wait longer than MaxWait (or the task's deadline) returns a
// RetryLater error for when the slot is expected.
func (w *Worker) waitGates(ctx context.Context, ws string, gates []gate) error {
	for _, g := range gates {
		if g.limit.Rate <= 0 {
			continue
		}
		start := time.Now()
		err := w.limiter.Wait(ctx, g.key, g.limit, w.cfg.RateLimits.MaxWait)
		var tl *ratelimit.WaitTooLongError
		switch {
		case err == nil:
			w.obs.RateLimitWait(g.api, ws, time.Since(start), false)
		case errors.As(err, &tl):
			w.obs.RateLimitWait(g.api, ws, tl.RetryAfter, true)
			// Back at its turn among the tasks turned away (spread at the
			// limit's pace), not all at once when the next slot is free.
			return RetryLater(max(tl.ComeBack, 10*time.Millisecond), err)
		case ctx.Err() != nil:
			return RetryLater(time.Second, err)
		default:
			// Redis trouble: the limiter cannot decide. Sending anyway could
			// exceed Customer.io's limits; retry shortly instead.
			return &retryError{err: err, class: RetryTransient, delay: time.Second, spend: false, reason: "rate limiter unavailable"}
		}
	}
	return nil
}

// throttled tells the limiter that Customer.io answered 429 for the gates:
// every process slows down and pauses for the Retry-After.
func (w *Worker) throttled(ws string, gates []gate, err error) {
	if w.limiter == nil || len(gates) == 0 {
		return
	}
	var ae *customerio.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 {
		return
	}
	g := gates[0] // the most specific gate (the broadcast's own, for triggers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if g.limit.Rate <= 0 {
		return
	}
	if err := w.limiter.Throttled(ctx, g.key); err != nil {
		w.log.Warn("rate limiter: could not record a 429", "workspace", displayWS(ws), "api", g.api, "error", err.Error())
	}
	pause := ae.RetryAfter
	if pause <= 0 {
		pause = time.Second
	}
	if err := w.limiter.Pause(ctx, g.key, g.limit, pause); err != nil {
		w.log.Warn("rate limiter: could not pause after a 429", "workspace", displayWS(ws), "api", g.api, "error", err.Error())
	}
}
