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
	h := newHarness(t, nil, true)
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
	h := newHarness(t, nil, true)
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
	if n, _ := h.db.Client.Exists(ctx, akey).Result(); n != 0 {
		t.Error("attempt log left after the reconciler copied it")
	}
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
