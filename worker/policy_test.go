package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/tasks"
)

func TestBackoff(t *testing.T) {
	b := BackoffConfig{}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {9, 512 * time.Second}, {10, 10 * time.Minute}, {296, 10 * time.Minute}} {
		if got := b.Nominal(tc.n); got != tc.want {
			t.Errorf("Nominal(%d) = %s, want %s", tc.n, got, tc.want)
		}
		for i := 0; i < 50; i++ {
			if d := b.Delay(tc.n); d < 0 || d > tc.want {
				t.Fatalf("Delay(%d) = %s outside [0, %s]", tc.n, d, tc.want)
			}
		}
	}
}

func TestRoundUpToSecond(t *testing.T) {
	now := time.Unix(100, 700_000_000)
	d := roundUpToSecond(now, 2*time.Second)
	if at := now.Add(d); at.Unix() != 103 || at.Nanosecond() != 0 {
		t.Errorf("retry at %v", at)
	}
	if d := roundUpToSecond(time.Unix(100, 0), 2*time.Second); d != 2*time.Second {
		t.Errorf("whole second: %s", d)
	}
}

func TestIsFailureAndDelay(t *testing.T) {
	delay := retryDelay(BackoffConfig{Base: time.Second, Cap: time.Second}, func() time.Time { return time.Unix(10, 0) })
	for _, tc := range []struct {
		name      string
		err       error
		isFailure bool
		delay     time.Duration
	}{
		{"throttled", &retryError{class: "throttled", delay: 3 * time.Second}, false, 3 * time.Second},
		{"transient", &retryError{class: "transient", spend: true}, true, -1},
		{"transient past a cioq budget: counted", &retryError{class: "transient", counted: true}, true, -1},
		{"snoozed", RetryLater(5*time.Second, nil), false, 5 * time.Second},
		{"wrapped", fmt.Errorf("x: %w", &retryError{spend: false, delay: time.Second}), false, time.Second},
		{"lease expired", asynq.ErrLeaseExpired, true, -1},
		{"deadline", context.DeadlineExceeded, true, -1},
	} {
		if got := isFailure(tc.err); got != tc.isFailure {
			t.Errorf("%s: isFailure = %v", tc.name, got)
		}
		d := delay(0, tc.err, nil)
		if tc.delay >= 0 && d != tc.delay {
			t.Errorf("%s: delay = %s, want %s", tc.name, d, tc.delay)
		}
		if tc.delay < 0 && (d < 0 || d > time.Second) {
			t.Errorf("%s: delay = %s, want backoff", tc.name, d)
		}
	}
	if !errors.Is(&deadLetterError{class: DeadLetterPermanent}, asynq.SkipRetry) {
		t.Error("deadLetterError does not wrap SkipRetry")
	}
}

func TestEventIDDeterministic(t *testing.T) {
	env := &tasks.Envelope{EnqueuedAt: 1767222000123}
	a, b := EventID("task-1", env), EventID("task-1", env)
	if a != b || len(a) != 26 || a == EventID("task-2", env) {
		t.Errorf("ids %s %s", a, b)
	}
}

// TestRetryWindow drives decide directly: a transient failure whose retry
// budget is used up keeps retrying without spending it while the window is
// open, and is dead-lettered once it has passed.
func TestRetryWindow(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{NoStart: true})
	now := time.Unix(1_800_000_000, 0)
	h.cfg.Now = func() time.Time { return now }
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	ctx := context.Background()
	b, _ := tasks.Encode(&tasks.Identify{Identifiers: customerio.Identifiers{ID: "x"}}, tasks.Meta{EnqueuedAt: now.Add(-time.Hour)})
	at := asynq.NewTask(tasks.TypeIdentify, b)
	env, p, _ := tasks.Decode(tasks.TypeIdentify, b)
	transient := &customerio.APIError{API: customerio.APITrack, StatusCode: 503, Class: customerio.ClassTransient}
	task := func(retried, max int) *Task {
		return &Task{ID: fmt.Sprintf("w-%d-%d", retried, max), Queue: "default", Type: tasks.TypeIdentify, Retried: retried, MaxRetry: max, Envelope: env, Payload: p}
	}
	// Budget left: spend it.
	var re *retryError
	if err := w.decide(ctx, task(0, 5), at, transient, customerio.APITrack); !errors.As(err, &re) || !re.spend {
		t.Errorf("fresh: %v", err)
	}
	// Last retry, window open: keep without spending.
	if err := w.decide(ctx, task(4, 5), at, transient, customerio.APITrack); !errors.As(err, &re) || re.spend {
		t.Errorf("window open: %v", err)
	}
	// 429 never spends.
	thr := &customerio.APIError{API: customerio.APITrack, StatusCode: 429, RetryAfter: 2 * time.Second, Class: customerio.ClassTransient}
	if err := w.decide(ctx, task(0, 5), at, thr, customerio.APITrack); !errors.As(err, &re) || re.spend || re.delay != 2*time.Second {
		t.Errorf("429: %v", err)
	}
	// Window passed: dead letter.
	now = now.Add(24 * time.Hour)
	err = w.decide(ctx, task(4, 5), at, transient, customerio.APITrack)
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("window passed: %v", err)
	}
	d, err := w.DLQ().Get(ctx, "w-4-5")
	if err != nil || d.Class != DeadLetterExhausted || d.Status != 503 {
		t.Errorf("dead letter %+v %v", d, err)
	}
}

// TestReconcileCopiesCrashArchived: a task asynq archived without calling
// the handler (here: MaxRetry 0 and a lease that expired) is copied into the
// store by the reconciler at start.
func TestReconcileCopiesArchived(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOptions{NoStart: true})
	ctx := context.Background()
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	defer ac.Close()
	info, err := ac.Enqueue(asynq.NewTask(tasks.TypeIdentify, []byte(`{"identifiers":{"id":"r"}}`)), asynq.Queue("default"), asynq.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.insp.ArchiveTask("default", info.ID); err != nil {
		t.Fatal(err)
	}
	// An earlier attempt was retried: the record lists it before the crash.
	akey := attemptsKey(info.ID, 0) // a bare payload has no enqueue time
	earlier := Failure{At: time.Now().Add(-time.Minute).UTC(), Class: string(RetryTransient), Status: 502, Attempt: 1}
	if err := NewDeadLetters(h.db.Client, nil).recordAttempt(ctx, akey, earlier); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	var d *DeadLetter
	eventually(t, 10*time.Second, "reconciled", func() bool { d, _ = h.w.DLQ().Get(ctx, info.ID); return d != nil })
	if d.Class != DeadLetterExhausted || d.Queue != "default" || string(d.Payload) != `{"identifiers":{"id":"r"}}` {
		t.Errorf("dead letter %+v", d)
	}
	if len(d.History) != 2 || d.History[0].Status != 502 || d.History[1].Class != string(DeadLetterExhausted) {
		t.Errorf("history %+v, want the retried attempt then the archive", d.History)
	}
	// The log is deleted right after the record is written (two commands):
	// wait for it rather than race the reconciler.
	eventually(t, 5*time.Second, "attempt log removed after the reconciler copied it", func() bool {
		n, _ := h.db.Client.Exists(ctx, akey).Result()
		return n == 0
	})
	// Retry from the store: delivered, the dead letter and the archive entry gone.
	if _, err := h.w.DLQ().Retry(ctx, info.ID, ac); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 10*time.Second, "person r", func(s *sandbox.Server) bool { _, ok := s.Person("r"); return ok })
	if _, err := h.insp.GetTaskInfo("default", info.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("archive entry: %v", err)
	}
}

// TestDeadLettersBeyondAsynqArchive: 10,500 permanent failures in one
// queue are all in the store and listed (asynq's archive keeps 9,999).
func TestDeadLettersBeyondAsynqArchive(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("10,500 tasks")
	}
	start := time.Now()
	h := newHarness(t, func(c *Config) { c.Concurrency = 64 }, true)
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"refused"}}`})
	const n = 10_500
	ctx := context.Background()
	ac := asynq.NewClientFromRedisClient(h.db.Client)
	defer ac.Close()
	for i := 0; i < n; i++ {
		b, _ := tasks.Encode(&tasks.Identify{Identifiers: customerio.Identifiers{ID: fmt.Sprintf("p%d", i)}}, tasks.Meta{})
		if _, err := ac.Enqueue(asynq.NewTask(tasks.TypeIdentify, b), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("enqueued %d in %s", n, time.Since(start).Round(time.Millisecond))
	h.start(t)
	eventually(t, 5*time.Minute, "all dead-lettered", func() bool { c, _ := h.w.DLQ().Count(ctx); return c == n })
	t.Logf("dead-lettered %d in %s", n, time.Since(start).Round(time.Millisecond))
	eventually(t, 30*time.Second, "queue drained", func() bool {
		qi, err := h.insp.GetQueueInfo("default")
		return err == nil && qi.Active == 0 && qi.Pending == 0
	})
	qi, _ := h.insp.GetQueueInfo("default")
	t.Logf("asynq archive holds %d", qi.Archived)
	if qi.Archived >= n {
		t.Errorf("asynq archive holds %d; expected it to be capped", qi.Archived)
	}
	seen := map[string]bool{}
	f := Filter{Queue: "default", Class: DeadLetterPermanent, Limit: 1000}
	pages := 0
	for {
		p, err := h.w.DLQ().List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range p.Items {
			if seen[d.ID] {
				t.Fatalf("%s listed twice", d.ID)
			}
			seen[d.ID] = true
			if d.Status != 400 || d.Message != "refused" {
				t.Fatalf("dead letter %+v", d)
			}
		}
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	if len(seen) != n || pages != 11 {
		t.Errorf("listed %d in %d pages, want %d in 11", len(seen), pages, n)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestClassify is the retry policy as a table, without Redis: one row per
// rule of the package documentation's "Delivery semantics" (the row's name
// quotes it), plus one per way into the policy (a panic, the ordering gate,
// middleware, a batch's per-part fates, asynq's own exhaustion). Each row
// states the whole decision: kind, delay (0 = the backoff schedule),
// whether it spends the budget, the reason or class, status, Customer.io's
// message, the text logged and recorded, and a credentials problem to
// record.
func TestClassify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	pol := policy{authRetryDelay: 30 * time.Second}

	// task is an identify enqueued an hour ago (its retry window, 24 h, is
	// open) on its first attempt of 5, unless a row changes it.
	type taskOpt func(*Task)
	task := func(opts ...taskOpt) *Task {
		t := &Task{ID: "t1", Queue: "default", Type: tasks.TypeIdentify, Retried: 0, MaxRetry: 5,
			Envelope: &tasks.Envelope{V: 1, EnqueuedAt: now.Add(-time.Hour).UnixMilli()}}
		for _, o := range opts {
			o(t)
		}
		return t
	}
	retried := func(n, max int) taskOpt { return func(t *Task) { t.Retried, t.MaxRetry = n, max } }
	// budget: a task as the producer enqueues it, with a cioq budget of max
	// retries (tasks.HeaderRetryBudget) and asynq's MaxRetry out of reach;
	// without it a row's task is one enqueued without (asynq's MaxRetry is
	// its budget).
	budget := func(n, max int) taskOpt {
		return func(t *Task) { t.Retried, t.MaxRetry, t.budgeted, t.asynqMaxRetry = n, max, true, tasks.AsynqMaxRetry }
	}
	enqueued := func(ago time.Duration) taskOpt {
		return func(t *Task) { t.Envelope.EnqueuedAt = now.Add(-ago).UnixMilli() }
	}
	bare := func(t *Task) { t.Envelope.EnqueuedAt = 0 } // enqueued by something other than cioq
	undecoded := func(t *Task) { t.Envelope = nil }
	workspace := func(ws string) taskOpt { return func(t *Task) { t.Envelope.Workspace = ws } }
	send := func(t *Task) {
		t.Type, t.Queue = tasks.TypeSendEmail, tasks.QueueCritical
		t.Envelope.ExpiresAt = now.Add(-time.Minute).Unix()
	}

	apiErr := func(status int, class customerio.Class, msg string, retryAfter time.Duration) *customerio.APIError {
		return &customerio.APIError{API: customerio.APITrack, Operation: tasks.TypeIdentify, StatusCode: status,
			Class: class, Message: msg, RetryAfter: retryAfter}
	}
	e503 := apiErr(503, customerio.ClassTransient, "unavailable", 0)
	e503RA := apiErr(503, customerio.ClassTransient, "unavailable", 7*time.Second)
	e408 := apiErr(408, customerio.ClassTransient, "", 0)
	e429 := apiErr(429, customerio.ClassTransient, "slow down", 2*time.Second)
	e429NoRA := apiErr(429, customerio.ClassTransient, "slow down", 0)
	e401 := apiErr(401, customerio.ClassAuth, "unauthorized", 0)
	e400 := apiErr(400, customerio.ClassPermanent, "refused", 0)
	network := &customerio.APIError{API: customerio.APITrack, Class: customerio.ClassTransient, Err: context.DeadlineExceeded}
	noCreds := &customerio.APIError{API: customerio.APITrack, Class: customerio.ClassAuth, Err: customerio.ErrMissingCredentials}
	unknownWS := &customerio.APIError{API: customerio.APITrack, Operation: tasks.TypeIdentify, Class: customerio.ClassAuth,
		Message: `workspace "nope" is not configured`,
		Err:     fmt.Errorf("%w (%w)", customerio.ErrMissingCredentials, errUnknownWorkspace)}
	tooLong := &customerio.ValidationError{Field: "identifiers.id", Reason: "must be at most 150 bytes"}
	skip := fmt.Errorf("worker: %w: no track delivery for %s", asynq.SkipRetry, tasks.TypeIdentify)
	panicked := fmt.Errorf("worker: handler panic (%T)", "boom")
	waitEarlier := RetryLater(time.Second, errWaitingForPredecessor)
	gateDown := &retryError{err: errors.New("redis: connection refused"), class: RetryTransient, delay: time.Second, spend: false, reason: "ordering state unavailable"}
	rateLimited := RetryLater(300*time.Millisecond, errors.New("ratelimit: no slot"))
	limiterDown := &retryError{err: errors.New("redis: i/o timeout"), class: RetryTransient, delay: time.Second, spend: false, reason: "rate limiter unavailable"}
	sendRecordDown := &retryError{err: errors.New("redis: i/o timeout"), class: RetryTransient, spend: false, reason: "send record unavailable"}
	snoozedAPI := RetryLater(time.Second, e503)
	_, _, undecodable := tasks.Decode(tasks.TypeTrack, []byte{0xde, 0xad, 0xbe, 0xef})
	_, _, unknownType := tasks.Decode("cio:no_such_type", []byte(`{"v":1,"payload":{}}`))
	invalid := (&tasks.Identify{}).Validate()
	if undecodable == nil || unknownType == nil || invalid == nil {
		t.Fatal("no decode or validation error to classify")
	}
	part400 := partsFate([]error{nil, e400})
	part401 := partsFate([]error{e401, nil})
	part503 := partsFate([]error{e503, nil})

	retry := func(reason RetryReason, delay time.Duration, spend bool, status int, msg, text string) decision {
		return decision{kind: decideRetry, api: customerio.APITrack, reason: reason, delay: delay, spend: spend, status: status, message: msg, text: text}
	}
	dead := func(class DeadLetterClass, status int, msg, text string) decision {
		return decision{kind: decideDeadLetter, class: class, status: status, message: msg, text: text}
	}
	withAuth := func(d decision, problem string) decision { d.authFailure = problem; return d }
	counted := func(d decision) decision { d.counted = true; return d }
	withAPI := func(d decision, api customerio.API) decision { d.api = api; return d }
	const keptText = ": configuration problem, the task is kept"
	const windowOpen = "; retry budget used up but the retry window is still open: not spending it"
	ran := func(err error) outcome { return outcome{kind: outcomeRan, err: err, api: customerio.APITrack} }

	for _, row := range []struct {
		name string
		task *Task
		in   outcome
		want decision
	}{
		// Retried: 408, 5xx, network errors and timeouts.
		{"5xx: backoff, spends one retry", task(), ran(e503),
			retry(RetryTransient, 0, true, 503, "unavailable", "transient failure")},
		{"5xx with Retry-After: Retry-After wins", task(), ran(e503RA),
			retry(RetryTransient, 7*time.Second, true, 503, "unavailable", "transient failure; Retry-After 7s")},
		{"408: transient", task(), ran(e408),
			retry(RetryTransient, 0, true, 408, "", "transient failure")},
		{"network error or timeout: transient, status 0", task(), ran(network),
			retry(RetryTransient, 0, true, 0, "", "transient failure")},
		{"budget runs out before the retry window passed: keeps retrying without spending it", task(retried(4, 5)), ran(e503),
			retry(RetryTransient, 0, false, 503, "unavailable", "transient failure"+windowOpen)},
		{"budget out, window restarted by a dead-letter retry: not spending it", task(retried(4, 5), enqueued(48*time.Hour)),
			outcome{kind: outcomeRan, err: e503, api: customerio.APITrack, windowStart: now.Add(-time.Hour)},
			retry(RetryTransient, 0, false, 503, "unavailable", "transient failure"+windowOpen)},
		// A cioq budget (the producer's): n retries, asynq never archives.
		{"cioq budget: the n-th retry is spent like the others", task(budget(4, 5)), ran(e503),
			retry(RetryTransient, 0, true, 503, "unavailable", "transient failure")},
		{"cioq budget used up, window open: kept, not spending, counted by asynq so the backoff grows", task(budget(5, 5)), ran(e503),
			counted(retry(RetryTransient, 0, false, 503, "unavailable", "transient failure"+windowOpen))},
		{"cioq budget used up long ago, window open: the count goes on", task(budget(40, 5)), ran(e503),
			counted(retry(RetryTransient, 0, false, 503, "unavailable", "transient failure"+windowOpen))},
		{"cioq budget used up and window passed: exhausted after n+1 attempts", task(budget(5, 5), enqueued(25*time.Hour)), ran(e503),
			dead(DeadLetterExhausted, 503, "unavailable", "retries exhausted and retry window passed: "+e503.Error())},
		{"cioq budget 0, window passed: exhausted on the first attempt", task(budget(0, 0), enqueued(25*time.Hour)), ran(e503),
			dead(DeadLetterExhausted, 503, "unavailable", "retries exhausted and retry window passed: "+e503.Error())},
		{"cioq budget 0, window open: kept", task(budget(0, 0)), ran(e503),
			counted(retry(RetryTransient, 0, false, 503, "unavailable", "transient failure"+windowOpen))},
		{"cioq budget used up by crashes: a 429 is retried after its Retry-After, not exhausted", task(budget(7, 5), enqueued(25*time.Hour)), ran(e429),
			retry(RetryThrottled, 2*time.Second, false, 429, "slow down", "throttled (429): does not spend the retry budget; Retry-After 2s")},
		{"cioq budget used up by crashes: a 401 is kept", task(budget(7, 5), enqueued(25*time.Hour)), ran(e401),
			withAuth(retry(RetryAuth, 30*time.Second, false, 401, "unauthorized", "credentials refused (401)"+keptText), "credentials refused (401)")},
		// Retried: 429.
		{"429: after Retry-After, never spending the budget", task(), ran(e429),
			retry(RetryThrottled, 2*time.Second, false, 429, "slow down", "throttled (429): does not spend the retry budget; Retry-After 2s")},
		{"429 without Retry-After: the backoff, not spending", task(), ran(e429NoRA),
			retry(RetryThrottled, 0, false, 429, "slow down", "throttled (429): does not spend the retry budget")},
		{"429 on the budget's last retry: still not spending, not dead-lettered", task(retried(4, 5), enqueued(48*time.Hour)), ran(e429),
			retry(RetryThrottled, 2*time.Second, false, 429, "slow down", "throttled (429): does not spend the retry budget; Retry-After 2s")},
		// Retried: 401, no credentials, an unknown workspace.
		{"401: kept, AuthRetryDelay, not spending; the credentials problem recorded", task(), ran(e401),
			withAuth(retry(RetryAuth, 30*time.Second, false, 401, "unauthorized", "credentials refused (401)"+keptText), "credentials refused (401)")},
		{"no credentials for the API: kept", task(), ran(noCreds),
			withAuth(retry(RetryAuth, 30*time.Second, false, 0, "", "no credentials configured"+keptText), "no credentials configured")},
		{"unknown workspace, window open: kept", task(workspace("nope")), ran(unknownWS),
			withAuth(retry(RetryAuth, 30*time.Second, false, 0, `workspace "nope" is not configured`, "workspace not configured"+keptText), "workspace not configured")},
		{"credentials failure where no API was called: kept, nothing recorded", task(), outcome{err: e401},
			withAPI(retry(RetryAuth, 30*time.Second, false, 401, "unauthorized", "credentials refused (401)"+keptText), "")},
		// Retried: a handler panic.
		{"handler panic: transient", task(), outcome{err: panicked},
			withAPI(retry(RetryTransient, 0, true, 0, "", "transient failure"), "")},
		// Retried: middleware and the ordering gate decide for themselves.
		{"ordering gate: waiting for the person's earlier task (snoozed)", task(), outcome{err: waitEarlier},
			withAPI(retry(RetrySnoozed, time.Second, false, 0, "", "snoozed by middleware"), "")},
		{"ordering state unavailable: retried in 1 s, not spending", task(), outcome{err: gateDown},
			withAPI(retry(RetryTransient, time.Second, false, 0, "", "ordering state unavailable"), "")},
		{"rate limiter unavailable: retried in 1 s, not spending", task(), ran(limiterDown),
			retry(RetryTransient, time.Second, false, 0, "", "rate limiter unavailable")},
		{"send record unavailable: retried on the backoff, not spending (no risk of a duplicate)", task(send), ran(sendRecordDown),
			retry(RetryTransient, 0, false, 0, "", "send record unavailable")},
		{"middleware RetryLater (rate limit): snoozed", task(), ran(rateLimited),
			retry(RetrySnoozed, 300*time.Millisecond, false, 0, "", "snoozed by middleware")},
		{"RetryLater with a Customer.io cause: its decision, the cause's message", task(), ran(snoozedAPI),
			retry(RetrySnoozed, time.Second, false, 0, "unavailable", "snoozed by middleware")},
		// A batch's per-part fates (partsFate picks the worst part).
		{"batch: a part refused with 400 dead-letters the task, naming the part", task(), ran(part400),
			dead(DeadLetterPermanent, 400, "refused", part400.Error())},
		{"batch: a part refused for credentials keeps the task", task(), ran(part401),
			withAuth(retry(RetryAuth, 30*time.Second, false, 401, "unauthorized", "credentials refused (401)"+keptText), "credentials refused (401)")},
		{"batch: a transient part retries the task", task(), ran(part503),
			retry(RetryTransient, 0, true, 503, "unavailable", "transient failure")},
		// Dead-lettered: permanent.
		{"permanent: other 4xx, at once, with the status and Customer.io's message", task(), ran(e400),
			dead(DeadLetterPermanent, 400, "refused", e400.Error())},
		{"permanent: a payload Customer.io's rules refuse (validation error)", task(), ran(tooLong),
			dead(DeadLetterPermanent, 0, "", tooLong.Error())},
		{"permanent: the worker refuses the task (asynq.SkipRetry)", task(), ran(skip),
			dead(DeadLetterPermanent, 0, "", skip.Error())},
		// Dead-lettered: invalid.
		{"invalid: bytes that do not decode", task(undecoded), outcome{kind: outcomeUndecodable, err: undecodable},
			dead(DeadLetterInvalid, 0, "", undecodable.Error())},
		{"invalid: an unknown type", task(undecoded), outcome{kind: outcomeUndecodable, err: unknownType},
			dead(DeadLetterInvalid, 0, "", unknownType.Error())},
		{"invalid: a payload that does not validate", task(), outcome{kind: outcomeInvalid, err: invalid},
			dead(DeadLetterInvalid, 0, "", "invalid payload: "+invalid.Error())},
		// Dead-lettered: expired, unless it was sent.
		{"expired: a send past its expires_at; never sent", task(send), outcome{kind: outcomeExpired},
			dead(DeadLetterExpired, 0, "", "expired at "+now.Add(-time.Minute).UTC().Format(time.RFC3339)+" before it could be sent; not sent")},
		{"expired, but an earlier attempt sent it: success", task(send), outcome{kind: outcomeExpired, sent: true, api: customerio.APIApp},
			decision{kind: decideSuccess, api: customerio.APIApp, latency: time.Hour}},
		// Dead-lettered: exhausted.
		{"exhausted: past both the retry budget and the retry window", task(retried(4, 5), enqueued(25*time.Hour)), ran(e503),
			dead(DeadLetterExhausted, 503, "unavailable", "retries exhausted and retry window passed: "+e503.Error())},
		{"exhausted: a bare payload has only its budget", task(retried(4, 5), bare), ran(e503),
			dead(DeadLetterExhausted, 503, "unavailable", "retries exhausted and retry window passed: "+e503.Error())},
		{"exhausted, no cioq budget: asynq archives after this attempt (crashes spent the budget), even a 429", task(retried(5, 5)), ran(e429),
			dead(DeadLetterExhausted, 429, "slow down", "retries exhausted: "+e429.Error())},
		{"exhausted by asynq: a credentials failure is recorded first", task(retried(5, 5)), ran(e401),
			withAuth(dead(DeadLetterExhausted, 401, "unauthorized", "retries exhausted: "+e401.Error()), "credentials refused (401)")},
		{"exhausted by asynq: a snooze too", task(retried(5, 5)), ran(rateLimited),
			dead(DeadLetterExhausted, 0, "", "retries exhausted: "+rateLimited.Error())},
		{"exhausted: MaxRetry 0", task(retried(0, 0)), ran(e503),
			dead(DeadLetterExhausted, 503, "unavailable", "retries exhausted: "+e503.Error())},
		// Dead-lettered: config.
		{"config: unknown workspace once its retry window passed", task(workspace("nope"), enqueued(25*time.Hour)), ran(unknownWS),
			dead(DeadLetterConfig, 0, "", `workspace "nope" is not configured on this worker, and the task's retry window passed while it was kept`)},
		{"config: the default workspace is named so", task(enqueued(25 * time.Hour)), ran(unknownWS),
			dead(DeadLetterConfig, 0, "", `workspace "default" is not configured on this worker, and the task's retry window passed while it was kept`)},
		// Delivered.
		{"delivered: success, latency since enqueued_at, the API's state updated", task(), ran(nil),
			decision{kind: decideSuccess, api: customerio.APITrack, latency: time.Hour}},
		{"delivered, enqueue time unknown: latency 0", task(bare), ran(nil),
			decision{kind: decideSuccess, api: customerio.APITrack}},
	} {
		t.Run(row.name, func(t *testing.T) {
			want := row.want
			if want.kind == decideRetry {
				want.cause = row.in.err // the error asynq gets wraps the failure
			}
			got := pol.classify(row.task, row.in, now)
			if got != want {
				t.Errorf("classify =\n %s\nwant\n %s", describe(got), describe(want))
			}
		})
	}
}

// describe prints a decision field by field for a failing row.
func describe(d decision) string {
	cause := "<nil>"
	if d.cause != nil {
		cause = d.cause.Error()
	}
	return fmt.Sprintf("%s api=%q reason=%q delay=%s spend=%v counted=%v class=%q status=%d message=%q text=%q auth=%q latency=%s cause=%q",
		d.kind, d.api, d.reason, d.delay, d.spend, d.counted, d.class, d.status, d.message, d.text, d.authFailure, d.latency, cause)
}
