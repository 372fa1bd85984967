package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/tasks"
)

// attemptKeys returns the attempt logs in the test's database.
func attemptKeys(t *testing.T, db *testredis.DB) []string {
	t.Helper()
	keys, err := db.Client.Keys(context.Background(), "cioq:attempts:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// failNextAttempt makes the task's next attempt get fault, then runs the
// task now. The task waits in the retry set for a Retry-After of 30 s
// meanwhile, so the fault is in place before the attempt whatever the load.
func (h *harness) failNextAttempt(t *testing.T, id string, retried int, fault sandbox.Fault) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("task waiting for its retry, %d spent", retried), func() bool {
		ti := h.taskInfo(id)
		return ti != nil && ti.State == asynq.TaskStateRetry && ti.Retried == retried
	})
	h.sb.SetFault(sandbox.GroupTrack, fault)
	if err := h.insp.RunTask(h.taskInfo(id).Queue, id); err != nil {
		t.Fatal(err)
	}
}

// A task that fails 503, 503, then 400 is dead-lettered with all three
// attempts in its history, in order, with their status, class and attempt
// number; its attempt log is gone once the record holds it.
func TestDeadLetterHistoryListsEveryAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched)
	h.dumpOnFailure(t)
	ctx := context.Background()
	unavailable := sandbox.Fault{Status: 503, RetryAfter: "30", Times: 1}
	h.sb.SetFault(sandbox.GroupTrack, unavailable)
	before := time.Now()
	rc, err := h.prod.Identify(ctx, identify("u-hist"))
	if err != nil {
		t.Fatal(err)
	}
	h.failNextAttempt(t, rc.TaskID, 1, unavailable)
	h.failNextAttempt(t, rc.TaskID, 2, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"attribute is invalid"}}`, Times: 1})
	// The handler writes the record, then deletes the log, then returns;
	// asynq archives the task after that: wait for both.
	var d *DeadLetter
	eventually(t, 10*time.Second, "dead letter, task archived", func() bool {
		d, _ = h.w.DLQ().Get(ctx, rc.TaskID)
		ti := h.taskInfo(rc.TaskID)
		return d != nil && ti != nil && ti.State == asynq.TaskStateArchived
	})

	if d.Attempts != 3 || d.AttemptsAllowed() != tasks.DefaultMaxRetry+1 || d.Class != DeadLetterPermanent || d.HistoryOmitted != 0 {
		t.Errorf("dead letter: attempts %d/%d class %s omitted %d", d.Attempts, d.AttemptsAllowed(), d.Class, d.HistoryOmitted)
	}
	want := []struct {
		class   string
		status  int
		attempt int
	}{{string(RetryTransient), 503, 1}, {string(RetryTransient), 503, 2}, {string(DeadLetterPermanent), 400, 3}}
	if len(d.History) != len(want) {
		t.Fatalf("history has %d entries, want %d: %+v", len(d.History), len(want), d.History)
	}
	prev := before
	for i, w := range want {
		f := d.History[i]
		if f.Class != w.class || f.Status != w.status || f.Attempt != w.attempt || f.At.Before(prev) {
			t.Errorf("history[%d] = %+v, want %s %d attempt %d after %v", i, f, w.class, w.status, w.attempt, prev)
		}
		prev = f.At
	}
	if !strings.Contains(d.History[2].Message, "attribute is invalid") || !strings.Contains(d.History[0].Error, "503") {
		t.Errorf("history reasons: %+v", d.History)
	}
	if keys := attemptKeys(t, h.db); len(keys) != 0 {
		t.Errorf("attempt logs left after the dead letter: %v", keys)
	}
}

// Throttled and credential failures do not count as attempts, but they are
// in the history; a task that then succeeds leaves its log to expire.
func TestAttemptLogOfTaskThatSucceedsExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched)
	ctx := context.Background()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 429, RetryAfter: "1", Times: 1})
	rc, err := h.prod.Identify(ctx, identify("u-later"))
	if err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, h.sb, 15*time.Second, "a 200 for u-later", func(s *sandbox.Server) bool { return lastStatus(s, "/customers/u-later") == 200 })
	eventually(t, 5*time.Second, "task done", func() bool { return h.done(rc.TaskID) })
	keys := attemptKeys(t, h.db)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "cioq:attempts:"+rc.TaskID+":") {
		t.Fatalf("attempt logs %v, want the task's", keys)
	}
	ttl, err := h.db.Client.PTTL(ctx, keys[0]).Result()
	if err != nil || ttl <= 0 || ttl > AttemptHistoryTTL {
		t.Errorf("log expiry %v (%v), want within %v", ttl, err, AttemptHistoryTTL)
	}
	run, omitted, err := h.w.DLQ().attempts(ctx, keys[0])
	if err != nil || omitted != 0 || len(run) != 1 || run[0].Class != string(RetryThrottled) || run[0].Status != 429 || run[0].Attempt != 1 {
		t.Errorf("log %+v, omitted %d, %v", run, omitted, err)
	}
}

// A successful first attempt writes nothing: no attempt log, so the
// success path costs no Redis command for it.
func TestSuccessWritesNoAttemptLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t, unbatched)
	ctx := context.Background()
	for i := range 20 {
		if _, err := h.prod.Identify(ctx, identify(fmt.Sprintf("u-ok-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitSandbox(t, h.sb, 15*time.Second, "20 people", func(s *sandbox.Server) bool { return s.Stats().Total >= 20 })
	eventually(t, 5*time.Second, "tasks done", func() bool {
		n, _ := h.insp.GetQueueInfo("default")
		return n != nil && n.Pending == 0 && n.Active == 0
	})
	if keys := attemptKeys(t, h.db); len(keys) != 0 {
		t.Errorf("attempt logs after successes: %v", keys)
	}
}

// The log keeps the newest AttemptHistoryCap attempts and counts the rest;
// the dead letter keeps the newest DeadLetterHistoryCap entries and counts
// the rest too.
func TestAttemptLogAndHistoryCaps(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	ctx := context.Background()
	s := NewDeadLetters(db.Client, nil)
	t0 := time.UnixMilli(1_700_000_000_000)
	key := attemptsKey("capped", t0.UnixMilli())
	const n = AttemptHistoryCap + 7
	for i := 1; i <= n; i++ {
		if err := s.recordAttempt(ctx, key, Failure{At: t0.Add(time.Duration(i) * time.Second), Class: string(RetryTransient), Status: 503, Attempt: i}); err != nil {
			t.Fatal(err)
		}
	}
	run, omitted, err := s.attempts(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(run) != AttemptHistoryCap || omitted != 7 || run[0].Attempt != 8 || run[len(run)-1].Attempt != n {
		t.Fatalf("log: %d entries (attempts %d..%d), %d omitted", len(run), run[0].Attempt, run[len(run)-1].Attempt, omitted)
	}

	d := &DeadLetter{ID: "capped", Type: tasks.TypeIdentify, Queue: "default", Attempts: n + 1, MaxRetry: 50,
		Class: DeadLetterPermanent, Status: 400, LastFailedAt: t0.Add(time.Hour)}
	if err := s.takeAttempts(ctx, key, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "capped")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.History) != AttemptHistoryCap+1 || got.HistoryOmitted != 7 || got.History[0].Attempt != 8 || got.History[AttemptHistoryCap].Class != string(DeadLetterPermanent) {
		t.Errorf("record: %d entries, %d omitted, first %+v", len(got.History), got.HistoryOmitted, got.History[0])
	}

	// A long history (many retries from the store) keeps the newest entries.
	long := &DeadLetter{ID: "long", Type: tasks.TypeIdentify, Queue: "default", Attempts: 1, Class: DeadLetterPermanent,
		HistoryOmitted: 3, LastFailedAt: t0.Add(time.Hour)}
	for i := range DeadLetterHistoryCap + 10 {
		long.History = append(long.History, Failure{At: t0.Add(time.Duration(i) * time.Second), Class: string(RetryTransient), Attempt: i + 1})
	}
	if err := s.Add(ctx, long); err != nil {
		t.Fatal(err)
	}
	// Dead-lettered again under the same id: only what is new is appended.
	again := *long
	again.LastFailedAt = t0.Add(2 * time.Hour)
	again.History = append(again.History, Failure{At: t0.Add(90 * time.Minute), Class: string(RetryThrottled), Status: 429})
	if err := s.Add(ctx, &again); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	// 110 + 1, then + 2: 113 entries, the newest 100 kept, 13 + 3 counted.
	if len(got.History) != DeadLetterHistoryCap || got.HistoryOmitted != 16 ||
		got.History[DeadLetterHistoryCap-2].Class != string(RetryThrottled) || !got.History[DeadLetterHistoryCap-1].At.Equal(again.LastFailedAt) {
		t.Errorf("long record: %d entries, %d omitted, last two %+v", len(got.History), got.HistoryOmitted, got.History[len(got.History)-2:])
	}
}

// The retry policy's own numbers: with a cioq budget of M retries (the
// producer's), a transient failure is dead-lettered as exhausted on attempt
// M+1, and the record says M+1 of M+1; without one (asynq's MaxRetry M), on
// attempt M (at least 1), and the record says M of M.
func TestExhaustedAttemptsMatchAllowed(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOptions{NoStart: true})
	now := time.Unix(1_800_000_000, 0)
	h.cfg.Now = func() time.Time { return now }
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	ctx := context.Background()
	b, _ := tasks.Encode(&tasks.Identify{Identifiers: customerio.Identifiers{ID: "x"}}, tasks.Meta{EnqueuedAt: now.Add(-48 * time.Hour)})
	at := asynq.NewTask(tasks.TypeIdentify, b)
	env, p, _ := tasks.Decode(tasks.TypeIdentify, b)
	transient := &customerio.APIError{API: customerio.APITrack, StatusCode: 503, Class: customerio.ClassTransient}
	for _, budgeted := range []bool{true, false} {
		for _, m := range []int{0, 1, 2, 5} {
			var last error
			attempts := 0
			id := fmt.Sprintf("ex-%d-%v", m, budgeted)
			for retried := 0; retried <= m+1; retried++ {
				attempts++
				task := &Task{ID: id, Queue: "default", Type: tasks.TypeIdentify, Retried: retried, MaxRetry: m, Envelope: env, Payload: p,
					budgeted: budgeted, asynqMaxRetry: m}
				if budgeted {
					task.asynqMaxRetry = tasks.AsynqMaxRetry
				}
				last = w.decide(ctx, task, at, transient, customerio.APITrack)
				if errors.Is(last, asynq.SkipRetry) {
					break
				}
			}
			d, err := w.DLQ().Get(ctx, id)
			if err != nil {
				t.Fatalf("max %d: %v (last %v)", m, err, last)
			}
			want := max(m, 1)
			if budgeted {
				want = m + 1
			}
			if d.Attempts != want || d.Attempts != d.AttemptsAllowed() || len(d.History) != attempts || attempts != want {
				t.Errorf("MaxRetry %d (cioq budget %v): dead-lettered on attempt %d as %d/%d with %d history entries, want attempt %d",
					m, budgeted, attempts, d.Attempts, d.AttemptsAllowed(), len(d.History), want)
			}
		}
	}
}
