package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker/ratelimit"
)

// Readiness has two kinds of evidence about Customer.io credentials:
//
//   - Kept tasks. A task refused for lack of valid credentials (a 401, no
//     key for its API, a workspace this worker does not know) is kept and
//     retried. Its workspace and API count as failing while such a task is
//     still in Redis: the worker remembers the ids of the tasks it kept and,
//     every KeptCheckInterval, looks them up (most recently seen first,
//     stopping at the first one still pending, scheduled, retrying or
//     active). A task that was deleted, delivered or dead-lettered stops
//     counting; a delivery or a dead letter by this worker stops it at once.
//     /readyz itself never touches Redis for this.
//   - Probes. At Start and every ProbeInterval the worker makes one cheap
//     authenticated read per configured workspace and API, through the
//     shared rate limiter. A refusal (401) fails that API's check until a
//     probe or a delivery succeeds; a transient failure changes nothing.

// Defaults of the readiness settings.
const (
	DefaultProbeInterval     = 5 * time.Minute
	DefaultKeptCheckInterval = 30 * time.Second
	// probeTimeout bounds one probe, its rate-limit wait included.
	probeTimeout = 30 * time.Second
	// maxKeptIDs bounds the task ids remembered per workspace and API.
	// Beyond it new ids are not remembered: the remembered ones keep the
	// check failing, and once they are gone the others are remembered
	// again at their next retry (within AuthRetryDelay).
	maxKeptIDs = 1000
)

// The probes, per API (checked against Customer.io's API reference; the
// sandbox answers them the same way, customerio/sandbox):
//
//   - Track: GET /api/v1/accounts/region (operation getRegion): Basic
//     site_id:api_key, answers {"url","region","environment_id"}, 401 for
//     bad credentials. Confirmed in the reference.
//   - App: GET /v1/transactional (operation listTransactional): Bearer App
//     key, answers {"messages":[...]}, limited to 10 requests per second
//     like other App reads. Confirmed. A service-account token (sa_live_)
//     is documented for sends only, so it is not probed (UNCONFIRMED
//     whether it may read the list).
//   - Pipelines: every route is a POST that records data, and without
//     X-Strict-Mode the API answers 200 even to a wrong key (contract §6.1);
//     no read exists for a write key, so Pipelines credentials cannot be
//     probed. Only deliveries show a refused write key.
const (
	probeTrackEndpoint = "GET /api/v1/accounts/region"
	probeAppEndpoint   = "GET /v1/transactional"
	noteAppService     = "not probed: a service-account token is documented for transactional sends only"
	notePipelines      = "not probed: the Pipelines API has no read a write key may make (its calls are writes, answered 200 even to a wrong key without strict mode); a refused key shows in kept_tasks"
)

// keptTask is a task kept for lack of valid credentials.
type keptTask struct {
	queue string
	seen  time.Time
}

// probeState is what the probes found for one workspace and API.
type probeState struct {
	// endpoint is the probed read; "" when the API is not probed (note says why).
	endpoint string
	note     string
	// at is when the last conclusive probe ended (zero: none yet).
	at time.Time
	// refused is the reason while the last conclusive probe was refused;
	// since is when the refusal began.
	refused string
	since   time.Time
	// lastErr and lastErrAt are the last inconclusive probe (a transient
	// failure), cleared by a conclusive one.
	lastErr   string
	lastErrAt time.Time
}

// probeTarget is one workspace and API the worker probes (or lists as not probeable).
type probeTarget struct {
	key      authKey
	client   *customerio.Client
	endpoint string
	note     string
}

var apiOrder = []customerio.API{customerio.APITrack, customerio.APIApp, customerio.APIPipelines}

// probeTargets lists every configured workspace and API, sorted.
func (w *Worker) probeTargets() []probeTarget {
	w.mu.Lock()
	names := make([]string, 0, len(w.clients))
	for n := range w.clients {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []probeTarget
	for _, n := range names {
		c := w.clients[n]
		for _, api := range apiOrder {
			if !c.HasCredentials(api) {
				continue
			}
			t := probeTarget{key: authKey{n, api}, client: c}
			switch {
			case api == customerio.APITrack:
				t.endpoint = probeTrackEndpoint
			case api == customerio.APIApp && c.ServiceAccount():
				t.note = noteAppService
			case api == customerio.APIApp:
				t.endpoint = probeAppEndpoint
			default:
				t.note = notePipelines
			}
			out = append(out, t)
		}
	}
	w.mu.Unlock()
	return out
}

// initProbes records a state for every configured workspace and API, so
// that its check exists before the first probe.
func (w *Worker) initProbes() {
	for _, t := range w.probeTargets() {
		w.mu.Lock()
		if w.probes[t.key] == nil {
			w.probes[t.key] = &probeState{endpoint: t.endpoint, note: t.note}
		}
		w.mu.Unlock()
	}
}

// readinessLoop probes at start and every ProbeInterval, and checks the
// kept tasks every KeptCheckInterval.
func (w *Worker) readinessLoop() {
	defer w.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var probeC <-chan time.Time
	if w.cfg.ProbeInterval > 0 {
		w.probeAll(ctx)
		t := time.NewTicker(w.cfg.ProbeInterval)
		defer t.Stop()
		probeC = t.C
	}
	sweep := time.NewTicker(w.cfg.KeptCheckInterval)
	defer sweep.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-probeC:
			w.probeAll(ctx)
		case <-w.probeNow:
			if w.cfg.ProbeInterval > 0 {
				w.probeAll(ctx)
			}
		case <-sweep.C:
			w.sweepKept(ctx)
		}
	}
}

// probeAll probes every configured workspace and API once, one at a time.
func (w *Worker) probeAll(ctx context.Context) {
	for _, t := range w.probeTargets() {
		if ctx.Err() != nil {
			return
		}
		w.probe(ctx, t)
	}
}

// probe makes t's read (when it has one) within its API's rate limit and
// records the outcome.
func (w *Worker) probe(ctx context.Context, t probeTarget) {
	w.mu.Lock()
	if w.probes[t.key] == nil {
		w.probes[t.key] = &probeState{}
	}
	w.probes[t.key].endpoint, w.probes[t.key].note = t.endpoint, t.note
	w.mu.Unlock()
	if t.endpoint == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	g := w.probeGate(t.key)
	if g != nil {
		if err := w.waitProbeGate(ctx, *g); err != nil {
			if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				w.probeDone(t, fmt.Errorf("waiting for a rate-limit slot: %w", err))
			}
			return
		}
	}
	start := time.Now()
	var err error
	switch t.key.api {
	case customerio.APITrack:
		_, err = t.client.Region(ctx)
	case customerio.APIApp:
		_, err = t.client.ListTransactional(ctx)
	}
	w.obs.Response(string(t.key.api), statusClass(err), time.Since(start))
	if err != nil && g != nil {
		w.throttled(t.key.workspace, []gate{*g}, err)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return // shutting down: the outcome says nothing
	}
	w.probeDone(t, err)
}

// probeGate is the rate limit a probe of key must pass: the Track limit,
// or the App limit of requests other than transactional sends (App reads
// share Customer.io's 10 per second); nil without rate limiting.
func (w *Worker) probeGate(k authKey) *gate {
	if w.limiter == nil {
		return nil
	}
	l := w.cfg.RateLimits.limits(k.workspace)
	switch k.api {
	case customerio.APITrack:
		return &gate{ratelimit.APITrack, ratelimit.Key(k.workspace, ratelimit.APITrack), l.Track}
	case customerio.APIApp:
		return &gate{ratelimit.APIApp, ratelimit.Key(k.workspace, ratelimit.APIApp), l.App}
	}
	return nil
}

// waitProbeGate waits for a slot of g, however long the limiter asks (a
// probe is never urgent), until ctx ends.
func (w *Worker) waitProbeGate(ctx context.Context, g gate) error {
	if g.limit.Rate <= 0 {
		return nil
	}
	for {
		err := w.limiter.Wait(ctx, g.key, g.limit, w.cfg.RateLimits.MaxWait)
		var tl *ratelimit.WaitTooLongError
		if !errors.As(err, &tl) {
			return err
		}
		t := time.NewTimer(max(tl.RetryAfter, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// probeDone records a probe's outcome: a success clears a refusal, an auth
// failure (401, a refused redirect) sets one, anything else (5xx, 429,
// timeouts, another 4xx such as a scoped key's 403) is inconclusive and
// changes nothing but the detail.
func (w *Worker) probeDone(t probeTarget, err error) {
	now := w.cfg.Now()
	k := t.key
	var ae *customerio.APIError
	auth := err != nil && errors.As(err, &ae) && ae.Class == customerio.ClassAuth
	w.mu.Lock()
	s := w.probes[k]
	if s == nil {
		s = &probeState{endpoint: t.endpoint}
		w.probes[k] = s
	}
	was := s.refused
	switch {
	case err == nil:
		s.at, s.refused, s.since, s.lastErr, s.lastErrAt = now, "", time.Time{}, "", time.Time{}
	case auth:
		reason := "credentials refused"
		if ae.StatusCode != 0 {
			reason = fmt.Sprintf("credentials refused (%d)", ae.StatusCode)
		}
		if s.refused == "" {
			s.since = now
		}
		s.at, s.refused, s.lastErr, s.lastErrAt = now, reason, "", time.Time{}
	default:
		s.lastErr, s.lastErrAt = err.Error(), now
	}
	refused := s.refused
	w.mu.Unlock()
	switch {
	case auth:
		w.obs.AuthFailure(string(k.api), k.workspace)
		if was == "" {
			w.log.Warn("customer.io credentials refused by the readiness probe: /readyz fails until they work",
				"workspace", displayWS(k.workspace), "api", string(k.api), "probe", t.endpoint, "reason", refused)
		}
	case err == nil && was != "":
		w.log.Info("customer.io credentials accepted again by the readiness probe", "workspace", displayWS(k.workspace), "api", string(k.api))
	case err != nil && !auth:
		w.log.Info("readiness probe inconclusive; readiness unchanged", "workspace", displayWS(k.workspace), "api", string(k.api),
			"probe", t.endpoint, "error", err.Error())
	}
}

// keep remembers that task id (in queue) of workspace ws was kept for lack
// of valid credentials of api. Caller holds w.mu.
func (s *authState) keep(id, queue string, now time.Time) {
	if s.kept == nil {
		s.kept = map[string]keptTask{}
	}
	if _, ok := s.kept[id]; !ok && len(s.kept) >= maxKeptIDs {
		return
	}
	s.kept[id] = keptTask{queue: queue, seen: now}
}

// keptDone forgets a kept task that left the queue (dead-lettered); the
// workspace and API stop failing when it was the last.
func (w *Worker) keptDone(ws string, api customerio.API, id string) {
	if api == "" || id == "" {
		return
	}
	k := authKey{ws, api}
	w.mu.Lock()
	s := w.authFail[k]
	cleared := false
	if s != nil {
		delete(s.kept, id)
		if len(s.kept) == 0 {
			delete(w.authFail, k)
			cleared = true
		}
	}
	w.mu.Unlock()
	if cleared {
		w.log.Info("no task is kept for these credentials any more", "workspace", displayWS(ws), "api", string(api))
	}
}

// sweepKept looks up the remembered kept tasks and forgets those no longer
// waiting in Redis (deleted, completed, archived).
func (w *Worker) sweepKept(ctx context.Context) {
	type entry struct {
		k     authKey
		id    string
		queue string
		seen  time.Time
	}
	w.mu.Lock()
	byKey := make(map[authKey][]entry, len(w.authFail))
	for k, s := range w.authFail {
		for id, kt := range s.kept {
			byKey[k] = append(byKey[k], entry{k, id, kt.queue, kt.seen})
		}
	}
	w.mu.Unlock()
	var gone []entry
	for _, es := range byKey {
		// The most recently seen is the most likely to be still there.
		sort.Slice(es, func(i, j int) bool { return es[i].seen.After(es[j].seen) })
		for _, e := range es {
			if ctx.Err() != nil {
				return
			}
			live, err := w.taskWaiting(e.queue, e.id)
			if err != nil {
				w.log.Debug("kept tasks check: lookup failed; unchanged", "error", err.Error())
				break
			}
			if live {
				break
			}
			gone = append(gone, e)
		}
	}
	var cleared []authKey
	w.mu.Lock()
	for _, e := range gone {
		s := w.authFail[e.k]
		if s == nil {
			continue
		}
		if kt, ok := s.kept[e.id]; ok && !kt.seen.After(e.seen) {
			delete(s.kept, e.id)
		}
		if len(s.kept) == 0 {
			delete(w.authFail, e.k)
			cleared = append(cleared, e.k)
		}
	}
	w.mu.Unlock()
	for _, k := range cleared {
		w.log.Info("no task is kept for these credentials any more (deleted, delivered or dead-lettered)",
			"workspace", displayWS(k.workspace), "api", string(k.api))
	}
}

// taskWaiting reports whether the task is still waiting for delivery
// (pending, scheduled, retrying, active or aggregating).
func (w *Worker) taskWaiting(queue, id string) (bool, error) {
	ti, err := w.inspector.GetTaskInfo(queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch ti.State {
	case asynq.TaskStateArchived, asynq.TaskStateCompleted:
		return false, nil
	}
	return true, nil
}

// Check is one of the worker's readiness checks (see Checks).
type Check struct {
	// Name identifies the check: "kept_tasks", or
	// "customerio:<workspace>:<api>" for each configured workspace and API.
	Name string
	// Run reports what the check found: a detail while it passes, an error
	// while it fails. Neither contains a key or a person's data.
	Run func() (detail string, err error)
}

// Checks returns the worker's readiness checks besides Redis, one per
// configured workspace and API (what its probe found) and "kept_tasks"
// (tasks kept for lack of valid credentials, for any workspace and API).
// They read the worker's memory only: calling them does not touch Redis
// or Customer.io.
func (w *Worker) Checks() []Check {
	var out []Check
	for _, t := range w.probeTargets() {
		k := t.key
		out = append(out, Check{
			Name: "customerio:" + displayWS(k.workspace) + ":" + string(k.api),
			Run:  func() (string, error) { return w.probeResult(k) },
		})
	}
	return append(out, Check{Name: "kept_tasks", Run: w.keptResult})
}

// probeResult is the check of one configured workspace and API.
func (w *Worker) probeResult(k authKey) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.probes[k]
	if s == nil {
		return "not probed yet", nil
	}
	if s.refused != "" {
		return "", fmt.Errorf("workspace %q %s API: %s by %s at %s (since %s)", displayWS(k.workspace), k.api, s.refused, s.endpoint,
			s.at.UTC().Format(time.RFC3339), s.since.UTC().Format(time.RFC3339))
	}
	if s.endpoint == "" {
		return s.note, nil
	}
	if w.cfg.ProbeInterval < 0 {
		return "not probed: probes are off", nil
	}
	var b strings.Builder
	if s.at.IsZero() {
		b.WriteString("not probed yet (" + s.endpoint + ")")
	} else {
		fmt.Fprintf(&b, "%s accepted the credentials at %s", s.endpoint, s.at.UTC().Format(time.RFC3339))
	}
	if s.lastErr != "" {
		fmt.Fprintf(&b, "; the last probe at %s was inconclusive (%s), readiness unchanged", s.lastErrAt.UTC().Format(time.RFC3339), s.lastErr)
	}
	return b.String(), nil
}

// keptResult is the kept_tasks check.
func (w *Worker) keptResult() (string, error) {
	problems := w.keptProblems()
	if len(problems) == 0 {
		return "no task is kept for lack of valid credentials", nil
	}
	return "", errors.New(strings.Join(problems, "; "))
}

// keptProblems describes each workspace and API with kept tasks, sorted.
func (w *Worker) keptProblems() []string {
	var problems []string
	w.mu.Lock()
	for k, s := range w.authFail {
		n := fmt.Sprintf("%d", len(s.kept))
		if len(s.kept) >= maxKeptIDs {
			n = "at least " + n
		}
		problems = append(problems, fmt.Sprintf("workspace %q %s API: %s since %s (%s kept tasks still waiting)",
			displayWS(k.workspace), k.api, s.reason, s.since.UTC().Format(time.RFC3339), n))
	}
	w.mu.Unlock()
	sort.Strings(problems)
	return problems
}
