package worker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/worker/ratelimit"
)

// Recovery pulls retrying tasks forward when an API recovers from an
// outage, instead of letting each of them wait out its own backoff (which,
// after a minute of failures, can be several minutes).
//
// Every transient failure of a Customer.io call (5xx, 408, a network error,
// a timeout; not 429, not 401) records two things in Redis: that a run of
// failures is under way for the task's workspace and API, and the task's id
// in a small index of that workspace and API's retrying tasks (one per
// queue). The first success on that workspace and API, in any worker
// process (also one that did not see the failures), ends the run: that
// process alone, by deleting the run marker, re-schedules the indexed tasks
// still waiting in asynq's retry set to now, spread at the rate limiter's
// pace for that API, and asynq moves them to their queue as they come due.
// A task throttled by a 429, or kept for a credentials problem, leaves the
// index and keeps its own delay (Retry-After, AuthRetryDelay).
//
// The zero value is on, with at most one pull per workspace and API every
// 30 s.
type Recovery struct {
	// Off leaves every task to its own backoff.
	Off bool
	// MinInterval is the least time between two pulls of one workspace and
	// API (default 30 s): an API that flaps between failures and successes
	// gets one pull per MinInterval, not one per success, so backoff still
	// spaces the retries of a degraded API.
	MinInterval time.Duration
}

// DefaultRecoveryMinInterval is Recovery.MinInterval's default.
const DefaultRecoveryMinInterval = 30 * time.Second

const (
	// recoveryCheckEvery is how often a process that saw no failure itself
	// asks Redis, on a success, whether a run of failures is to be ended.
	recoveryCheckEvery = time.Second
	// recoveryRunTTL bounds how long a run marker outlives its last failure.
	recoveryRunTTL = 24 * time.Hour
	// retryingTTL bounds how long an index outlives its last write
	// (the retry window and a margin).
	retryingTTL = 25 * time.Hour
	// pullChunk is the most index entries one script call handles.
	pullChunk = 500
	// pullFollowUp is how long a pull keeps looking for tasks that were
	// still in flight when it started (and may land in the retry set).
	pullFollowUp = 30 * time.Second
)

// recState is a process's view of one workspace and API's recovery.
type recState struct {
	lastCheck  time.Time
	sawFailure bool
	checking   bool
}

// recovery is the Worker's part of Recovery.
type recovery struct {
	mu    sync.Mutex
	state map[authKey]*recState
}

// isOutageFailure reports whether err is a Customer.io call's transient
// failure that counts toward an outage: a 5xx, 408, network error or
// timeout. 429 (throttling) does not: pulling tasks forward after it would
// make the throttling worse.
func isOutageFailure(err error) bool {
	var ae *customerio.APIError
	return errors.As(err, &ae) && ae.Class == customerio.ClassTransient && ae.StatusCode != 429
}

// noteRetry keeps the recovery index in step with a retry decision: a
// transient failure of a Customer.io call records the run of failures and
// indexes the task; any other retry takes the task out of the index, so it
// keeps its own delay. It runs on the failure path only.
func (w *Worker) noteRetry(ctx context.Context, t *Task, api customerio.API, re *retryError, cause error) {
	if w.cfg.Recovery.Off || api == "" || t.Envelope == nil || t.ID == "" || t.Queue == "" {
		return
	}
	ws := t.Envelope.Workspace
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	idx := keys.Retrying(t.Queue, ws, string(api))
	if re.class == RetryTransient && isOutageFailure(cause) {
		w.rec.mu.Lock()
		if s := w.rec.state[authKey{ws, api}]; s != nil {
			s.sawFailure = true
		} else {
			w.rec.state[authKey{ws, api}] = &recState{sawFailure: true}
		}
		w.rec.mu.Unlock()
		now := time.Now().UnixMilli()
		_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, keys.RecoveryRun(ws, string(api)), now, recoveryRunTTL)
			p.ZAdd(ctx, idx, redis.Z{Score: float64(now), Member: t.ID})
			p.PExpire(ctx, idx, retryingTTL)
			return nil
		})
		if err != nil {
			w.log.Debug("recovery: could not record a transient failure", "task_id", t.ID, "error", err.Error())
		}
		return
	}
	// A 429 or a credentials problem keeps its own delay. Only a task that
	// failed before can be in the index, so a task's first snooze (the rate
	// limiter's routine wait) costs nothing here.
	switch {
	case re.class == RetryThrottled, re.class == RetryAuth, re.class == RetrySnoozed && t.Retried > 0:
	default:
		return
	}
	if err := w.rdb.ZRem(ctx, idx, t.ID).Err(); err != nil {
		w.log.Debug("recovery: could not update the retrying index", "task_id", t.ID, "error", err.Error())
	}
}

// noteSuccess is called after a successful call of api in ws. When this
// process saw a failure of it, or has not asked for a second, it asks Redis
// (in the background) whether a run of failures ends here, and if this
// process is the one that ends it, pulls the retrying tasks forward.
func (w *Worker) noteSuccess(ws string, api customerio.API) {
	if w.cfg.Recovery.Off || api == "" {
		return
	}
	now := time.Now()
	k := authKey{ws, api}
	w.rec.mu.Lock()
	s := w.rec.state[k]
	if s == nil {
		s = &recState{}
		w.rec.state[k] = s
	}
	if s.checking || (!s.sawFailure && now.Sub(s.lastCheck) < recoveryCheckEvery) {
		w.rec.mu.Unlock()
		return
	}
	s.checking, s.sawFailure, s.lastCheck = true, false, now
	w.rec.mu.Unlock()
	started := w.background(func(ctx context.Context) {
		defer func() {
			w.rec.mu.Lock()
			s.checking = false
			w.rec.mu.Unlock()
		}()
		owner, err := w.endRun(ctx, ws, api)
		if err != nil {
			w.log.Debug("recovery: could not check for a run of failures", "workspace", displayWS(ws), "api", string(api), "error", err.Error())
			return
		}
		if owner {
			w.pullForward(ctx, ws, api)
		}
	})
	if !started {
		w.rec.mu.Lock()
		s.checking = false
		w.rec.mu.Unlock()
	}
}

// endRunScript ends a run of failures: when the run marker exists and no
// pull happened within MinInterval, it deletes the marker, marks the pull
// and returns 1 (the caller pulls); otherwise 0. KEYS: run, pulled. ARGV:
// MinInterval in ms.
var endRunScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
if not redis.call("SET", KEYS[2], "1", "NX", "PX", ARGV[1]) then return 0 end
redis.call("DEL", KEYS[1])
return 1
`)

// endRun reports whether this process ended a run of failures of ws's api
// and so owns the pull.
func (w *Worker) endRun(ctx context.Context, ws string, api customerio.API) (bool, error) {
	n, err := endRunScript.Run(ctx, w.rdb, []string{keys.RecoveryRun(ws, string(api)), keys.RecoveryPulled(ws, string(api))},
		w.cfg.Recovery.MinInterval.Milliseconds()).Int()
	return n == 1, err
}

// pullScript re-schedules one chunk of a retrying index. For each indexed
// id (oldest failure first, from rank ARGV[4]): a task in asynq's retry set
// due later than its slot is moved to its slot, base + i·interval (a task
// due earlier keeps its time; both take a slot), and leaves the index; a
// task still in flight (in the lease set) stays indexed for the follow-up
// pass; any other id (done, dead-lettered, running again) leaves the index.
//
// KEYS: index, asynq retry set, asynq lease set. ARGV: base (unix s),
// interval (s), first slot i, start rank, count.
// Returns {pulled, slots used, kept, entries read}.
var pullScript = redis.NewScript(`
local base = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local i = tonumber(ARGV[3])
local start = tonumber(ARGV[4])
local ids = redis.call("ZRANGE", KEYS[1], start, start + tonumber(ARGV[5]) - 1)
local pulled, slots, kept = 0, 0, 0
for _, id in ipairs(ids) do
  local s = redis.call("ZSCORE", KEYS[2], id)
  if s then
    local at = base + (i + slots) * interval
    if tonumber(s) > at then
      redis.call("ZADD", KEYS[2], "XX", string.format("%.3f", at), id)
      pulled = pulled + 1
    end
    slots = slots + 1
    redis.call("ZREM", KEYS[1], id)
  elseif redis.call("ZSCORE", KEYS[3], id) then
    kept = kept + 1
  else
    redis.call("ZREM", KEYS[1], id)
  end
end
return {pulled, slots, kept, #ids}
`)

// pace is the interval between two pulled tasks of ws's api: the rate
// limiter's pace for it (Track for Track and Pipelines, which share
// Customer.io's ingress limit; transactional sends for the App API),
// slowed down as the limiter is after a 429. 0 means no limit.
func (w *Worker) pace(ctx context.Context, ws string, api customerio.API) time.Duration {
	l := w.cfg.RateLimits.limits(ws)
	lim, key := l.Track, ratelimit.Key(ws, ratelimit.APITrack)
	if api == customerio.APIApp {
		lim, key = l.Transactional, ratelimit.Key(ws, ratelimit.APITransactional)
	}
	if lim.Rate <= 0 || lim.Period <= 0 {
		return 0
	}
	iv := lim.Period / time.Duration(lim.Rate)
	if w.limiter != nil {
		if f, err := w.limiter.EffectiveRate(ctx, key); err == nil && f > 0 && f < 1 {
			iv = time.Duration(float64(iv) / f)
		}
	}
	return iv
}

// pullForward re-schedules ws's api's retrying tasks in every queue,
// paced, then looks again every second (for up to pullFollowUp) for
// tasks that were in flight and failed after all. It returns how many tasks
// it moved.
func (w *Worker) pullForward(ctx context.Context, ws string, api customerio.API) (pulled int) {
	defer func() { w.obs.RecoveryPulled(string(api), ws, pulled) }()
	iv := w.pace(ctx, ws, api)
	base := time.Now()
	slots := 0
	deadline := base.Add(pullFollowUp)
	for pass := 0; ; pass++ {
		kept := 0
		for _, q := range w.knownQueues(ctx) {
			var start int64
			for {
				v, err := pullScript.Run(ctx, w.rdb, []string{keys.Retrying(q, ws, string(api)), keys.AsynqRetry(q), keys.AsynqLease(q)},
					unixSeconds(base), strconv.FormatFloat(iv.Seconds(), 'f', 6, 64), slots, start, pullChunk).Int64Slice()
				if err != nil || len(v) != 4 {
					if ctx.Err() == nil {
						w.log.Warn("recovery: could not pull retrying tasks forward", "workspace", displayWS(ws), "api", string(api), "queue", q, "error", errString(err))
					}
					return pulled
				}
				pulled += int(v[0])
				slots += int(v[1])
				kept += int(v[2])
				start += v[2]
				if v[3] < pullChunk {
					break
				}
			}
		}
		if pass == 0 {
			w.log.Info("customer.io API recovered: retrying tasks pulled forward",
				"workspace", displayWS(ws), "api", string(api), "tasks", pulled,
				"spread_over", (time.Duration(slots) * iv).Round(time.Millisecond))
		}
		if kept == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return pulled
		case <-time.After(time.Second):
		}
		// Later tasks take the slots after the ones already given out.
		if end := base.Add(time.Duration(slots) * iv); end.After(time.Now()) {
			base, slots = end, 0
		} else {
			base, slots = time.Now(), 0
		}
	}
	return pulled
}

func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

func errString(err error) string {
	if err == nil {
		return "unexpected script reply"
	}
	return err.Error()
}
