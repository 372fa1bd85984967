package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/tasks"
)

func TestDeadLettersAddGetHistory(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	ctx := context.Background()
	s := NewDeadLetters(db.Client, nil)
	t0 := time.UnixMilli(1_700_000_000_000)
	d := &DeadLetter{ID: "t1", Type: "cio:identify", Queue: "default", Workspace: "eu", Payload: []byte{0, 1, 2, 0xff},
		Attempts: 3, MaxRetry: 5, Class: DeadLetterPermanent, Status: 400, Message: "bad", Error: "e1", LastFailedAt: t0}
	if err := s.Add(ctx, d); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Hour)
	if err := s.Add(ctx, &DeadLetter{ID: "t1", Type: "cio:identify", Queue: "default", Payload: d.Payload,
		Attempts: 1, Class: DeadLetterExhausted, Status: 503, Error: "e2", LastFailedAt: t1}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.FirstFailedAt.Equal(t0) || !got.LastFailedAt.Equal(t1) || got.Class != DeadLetterExhausted || got.Status != 503 || string(got.Payload) != string(d.Payload) {
		t.Errorf("got %+v", got)
	}
	if len(got.History) != 2 || got.History[0].Error != "e1" || got.History[0].Status != 400 || got.History[1].Error != "e2" {
		t.Errorf("history %+v", got.History)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v", err)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("Count = %d", n)
	}
}

func TestDeadLettersListFilterPurgeRetry(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	ctx := context.Background()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	s := NewDeadLetters(db.Client, insp)
	base := time.UnixMilli(1_700_000_000_000)
	for i := 0; i < 250; i++ {
		c, q := DeadLetterPermanent, "default"
		if i%5 == 0 {
			c, q = DeadLetterExpired, "critical"
		}
		// Every 10 share a timestamp, to exercise ties in the cursor.
		if err := s.Add(ctx, &DeadLetter{ID: fmt.Sprintf("id-%03d", i), Type: "cio:track", Queue: q, Class: c,
			Payload: []byte(`{}`), MaxRetry: 7, LastFailedAt: base.Add(time.Duration(i/10) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(f Filter) []string {
		var ids []string
		for pages := 0; ; pages++ {
			p, err := s.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range p.Items {
				ids = append(ids, d.ID)
			}
			if p.Next == "" {
				return ids
			}
			f.Cursor = p.Next
			if pages > 1000 {
				t.Fatal("pagination does not end")
			}
		}
	}
	all := collect(Filter{Limit: 7})
	if len(all) != 250 {
		t.Fatalf("listed %d, want 250", len(all))
	}
	seen := map[string]bool{}
	for _, id := range all {
		if seen[id] {
			t.Fatalf("%s listed twice", id)
		}
		seen[id] = true
	}
	if got := collect(Filter{Class: DeadLetterExpired, Limit: 9}); len(got) != 50 {
		t.Errorf("expired: %d, want 50", len(got))
	}
	if got := collect(Filter{Queue: "critical"}); len(got) != 50 {
		t.Errorf("critical: %d, want 50", len(got))
	}
	if got := collect(Filter{Since: base.Add(10 * time.Second), Until: base.Add(12 * time.Second), Limit: 3}); len(got) != 20 || got[0] != "id-100" {
		t.Errorf("since/until: %d %v", len(got), got)
	}

	// Retry: a new task with the same type, queue and budget; the dead
	// letter is gone afterwards. id-000 expired: it needs a new expiry or none.
	ac := asynq.NewClientFromRedisClient(db.Client)
	var ee *ExpiredError
	if _, err := s.Retry(ctx, "id-000", ac); !errors.As(err, &ee) || ee.ID != "id-000" {
		t.Fatalf("Retry of an expired dead letter = %v, want an *ExpiredError", err)
	}
	info, err := s.Retry(ctx, "id-000", ac, RetryNoExpiry())
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == "id-000" || info.Queue != "critical" || info.MaxRetry != tasks.AsynqMaxRetry || info.Headers[tasks.HeaderRetryBudget] != "7" || info.Type != "cio:track" {
		t.Errorf("retried task %+v", info)
	}
	if _, err := s.Get(ctx, "id-000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("dead letter still there: %v", err)
	}

	n, err := s.Purge(ctx, Filter{Class: DeadLetterExpired})
	if err != nil || n != 49 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if c, _ := s.Count(ctx); c != 200 {
		t.Errorf("Count after purge = %d", c)
	}
	if err := s.Delete(ctx, "id-001"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Count(ctx); c != 199 {
		t.Errorf("Count after delete = %d", c)
	}
}

// TestDeadLettersEqualTimesPurgeAndPaging: records failing in the same
// millisecond share a score in the index. Purge must delete exactly the
// matching ones in one pass, and a List page whose last item is deleted
// before the next page is read must continue exactly after it.
func TestDeadLettersEqualTimesPurgeAndPaging(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	ctx := context.Background()
	s := NewDeadLetters(db.Client, nil)
	at := time.UnixMilli(1_700_000_000_000)
	const n = 2500
	for i := range n {
		typ := "cio:identify"
		if i%2 == 1 {
			typ = "cio:track"
		}
		if err := s.Add(ctx, &DeadLetter{ID: fmt.Sprintf("d%05d", i), Type: typ, Queue: "default", Class: DeadLetterPermanent, LastFailedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Purge(ctx, Filter{Type: "cio:track"})
	if err != nil || got != n/2 {
		t.Fatalf("Purge = %d, %v; want %d", got, err, n/2)
	}
	if c, _ := s.Count(ctx); c != n/2 {
		t.Fatalf("Count after purge = %d, want %d", c, n/2)
	}

	seen := map[string]int{}
	deleted := 0
	f := Filter{Limit: 100}
	for {
		page, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			if d.Type != "cio:identify" {
				t.Fatalf("purged record %s listed", d.ID)
			}
			seen[d.ID]++
		}
		if page.Next == "" {
			break
		}
		// Someone deletes the page's last record before the next page.
		if err := s.Delete(ctx, page.Items[len(page.Items)-1].ID); err != nil {
			t.Fatal(err)
		}
		deleted++
		f.Cursor = page.Next
	}
	if len(seen) != n/2 {
		t.Errorf("listed %d distinct records, want %d", len(seen), n/2)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s listed %d times", id, k)
		}
	}
	if c, _ := s.Count(ctx); c != int64(n/2-deleted) {
		t.Errorf("Count = %d, want %d", c, n/2-deleted)
	}
}

// Retry refuses a dead letter whose task has expired (class expired, or an
// expiry already past in any class), enqueueing nothing and keeping the
// record, unless it is given a new expiry from now or none; the expiry is
// the only thing that changes in the task's bytes.
func TestRetryExpiredNeedsNewExpiry(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	ctx := context.Background()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	s := NewDeadLetters(db.Client, insp)
	ac := asynq.NewClientFromRedisClient(db.Client)
	defer ac.Close()
	enq := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	send := &tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "reset", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "u1@example.com"}
	expiredBytes, err := tasks.Encode(send, tasks.Meta{ExpiresAt: past, EnqueuedAt: enq, Workspace: "eu"})
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	liveBytes, err := tasks.Encode(send, tasks.Meta{ExpiresAt: future, EnqueuedAt: enq})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*DeadLetter{
		{ID: "expired", Class: DeadLetterExpired, Payload: expiredBytes},
		{ID: "permanent-past-expiry", Class: DeadLetterPermanent, Status: 400, Payload: expiredBytes},
		{ID: "permanent-live", Class: DeadLetterPermanent, Status: 400, Payload: liveBytes},
		{ID: "garbage", Class: DeadLetterInvalid, Payload: []byte{0xde, 0xad}},
	} {
		d.Type, d.Queue, d.MaxRetry = tasks.TypeSendEmail, tasks.QueueCritical, 9
		if err := s.Add(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() []*asynq.TaskInfo {
		ts, _ := insp.ListPendingTasks(tasks.QueueCritical)
		return ts
	}
	envOf := func(ti *asynq.TaskInfo) *tasks.Envelope {
		env, p, err := tasks.Decode(ti.Type, ti.Payload)
		if err != nil || p.(*tasks.SendEmail).To != "u1@example.com" {
			t.Fatalf("retried payload %q: %v", ti.Payload, err)
		}
		return env
	}

	for _, id := range []string{"expired", "permanent-past-expiry"} {
		var ee *ExpiredError
		if _, err := s.Retry(ctx, id, ac); !errors.As(err, &ee) || !ee.ExpiresAt.Equal(past) || ee.ID != id {
			t.Errorf("Retry(%s) = %v, want an *ExpiredError at %v", id, err, past)
		}
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("refused dead letter %s gone: %v", id, err)
		}
	}
	if n := len(pending()); n != 0 {
		t.Fatalf("%d tasks enqueued by refused retries", n)
	}
	if _, err := s.Retry(ctx, "expired", ac, RetryExpiresIn(0)); err == nil {
		t.Error("RetryExpiresIn(0) accepted")
	}
	if _, err := s.Retry(ctx, "garbage", ac, RetryNoExpiry()); err == nil {
		t.Error("changed the expiry of bytes that do not decode")
	}

	// A new expiry from now.
	before := time.Now()
	info, err := s.Retry(ctx, "expired", ac, RetryExpiresIn(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ti, err := insp.GetTaskInfo(tasks.QueueCritical, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	env := envOf(ti)
	exp, ok := env.Expiry()
	if !ok || exp.Before(before.Add(30*time.Minute).Truncate(time.Second)) || exp.After(time.Now().Add(30*time.Minute)) {
		t.Errorf("new expiry %v (%v), want 30 min from the retry", exp, ok)
	}
	if env.EnqueuedAt != enq.UnixMilli() || env.Workspace != "eu" || ti.Headers[tasks.HeaderRetryBudget] != "9" {
		t.Errorf("retried envelope %+v, budget %q: only the expiry may change", env, ti.Headers[tasks.HeaderRetryBudget])
	}
	// No expiry.
	info, err = s.Retry(ctx, "permanent-past-expiry", ac, RetryNoExpiry())
	if err != nil {
		t.Fatal(err)
	}
	if ti, err = insp.GetTaskInfo(tasks.QueueCritical, info.ID); err != nil {
		t.Fatal(err)
	}
	if env := envOf(ti); env.ExpiresAt != 0 || env.EnqueuedAt != enq.UnixMilli() {
		t.Errorf("retried with no expiry: %+v", env)
	}
	// A letter whose expiry is still ahead is retried unchanged.
	info, err = s.Retry(ctx, "permanent-live", ac)
	if err != nil {
		t.Fatal(err)
	}
	if ti, err = insp.GetTaskInfo(tasks.QueueCritical, info.ID); err != nil || string(ti.Payload) != string(liveBytes) {
		t.Errorf("retried payload %q, %v; want the bytes unchanged", ti.Payload, err)
	}
}
