package worker

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

const stuckQ = tasks.QueueDefault

// corruptBytes returns random bytes that asynq cannot decode as a task
// message.
func corruptBytes(t *testing.T) []byte {
	t.Helper()
	for {
		b := make([]byte, 64)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if decodeErr(string(b)) != nil && !salvage(b).ok {
			return b
		}
	}
}

// inActive reports whether id is in q's active list and its lease score
// (0 when it has none).
func inActive(t *testing.T, rdb redis.UniversalClient, id string) (bool, float64) {
	t.Helper()
	ctx := context.Background()
	_, err := rdb.LPos(ctx, keys.AsynqActive(stuckQ), id, redis.LPosArgs{}).Result()
	active := err == nil
	score, _ := rdb.ZScore(ctx, keys.AsynqLease(stuckQ), id).Result()
	return active, score
}

// backdateLease makes id's lease look expired for two lease periods, as if
// a minute had passed since asynq dequeued it.
func backdateLease(t *testing.T, rdb redis.UniversalClient, id string) {
	t.Helper()
	old := time.Now().Add(-2 * asynqLease).Unix()
	if n, err := rdb.ZAddXX(context.Background(), keys.AsynqLease(stuckQ), redis.Z{Score: float64(old), Member: id}).Result(); err != nil || n != 0 {
		// ZADD XX answers 0 (nothing added) when it updated a member.
		t.Fatalf("backdate lease of %s: %d %v", id, n, err)
	}
}

// startInFlight enqueues an identify whose request hangs in the sandbox,
// and waits until asynq holds it active, with a live lease.
func startInFlight(t *testing.T, h *harness) string {
	t.Helper()
	h.sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Hang: true, PathPrefix: "/api/v1/customers/in-flight"})
	rc, err := h.prod.Identify(context.Background(), identify("in-flight"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the in-flight task active", func() bool {
		a, s := inActive(t, h.db.Client, rc.TaskID)
		return a && s > float64(time.Now().Unix())
	})
	return rc.TaskID
}

// checkInFlight asserts the in-flight task is still active with a live
// lease and its task data.
func checkInFlight(t *testing.T, h *harness, id string) {
	t.Helper()
	a, s := inActive(t, h.db.Client, id)
	if !a || s < float64(time.Now().Unix()) {
		t.Errorf("in-flight task: active %v, lease %v (now %d)", a, s, time.Now().Unix())
	}
	if ti := h.taskInfo(id); ti == nil || ti.State != asynq.TaskStateActive {
		t.Errorf("in-flight task info %+v", ti)
	}
	if d, _ := h.w.DLQ().Get(context.Background(), id); d != nil {
		t.Errorf("in-flight task dead-lettered: %s", d.Error)
	}
}

// stuckHarness is a worker delivering one request per task, with requests
// that hang for the whole test and a stuck-task check every 50 ms.
func stuckHarness(t *testing.T) *harness {
	return newHarness(t, func(c *Config) {
		c.Batching.Off = true
		c.StuckCheckInterval = 50 * time.Millisecond
		c.ShutdownTimeout = 100 * time.Millisecond // the hanging request need not finish
		ws := c.Workspaces[""]
		ws.Timeout = 5 * time.Minute
		c.Workspaces[""] = ws
	}, true)
}

func TestStuckCorruptMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	h := stuckHarness(t)
	h.dumpOnFailure(t)
	ctx := context.Background()
	rc, err := h.prod.Identify(ctx, identify("corrupt"))
	if err != nil {
		t.Fatal(err)
	}
	id := rc.TaskID
	raw := corruptBytes(t)
	if err := h.db.Client.HSet(ctx, keys.AsynqTask(stuckQ, id), "msg", raw).Err(); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	// asynq's dequeue moves the id to active, then fails to decode it.
	eventually(t, 10*time.Second, "the corrupt task in active", func() bool {
		a, s := inActive(t, h.db.Client, id)
		return a && s > 0
	})
	inFlight := startInFlight(t, h)
	backdateLease(t, h.db.Client, id)

	var d *DeadLetter
	eventually(t, 10*time.Second, "a dead letter for the corrupt task", func() bool {
		d, _ = h.w.DLQ().Get(ctx, id)
		return d != nil
	})
	if d.Class != DeadLetterInvalid || d.Queue != stuckQ || !strings.Contains(d.Error, "does not decode") ||
		!strings.Contains(d.Error, "stuck in asynq's active state") {
		t.Errorf("dead letter %+v", d)
	}
	if !bytes.Equal(d.Payload, raw) {
		t.Errorf("payload %q, want the message's bytes %q", d.Payload, raw)
	}
	// The dead letter is written first, then the task's keys removed.
	eventually(t, 10*time.Second, "the corrupt task's keys removed after its dead letter", func() bool {
		a, s := inActive(t, h.db.Client, id)
		n, _ := h.db.Client.Exists(ctx, keys.AsynqTask(stuckQ, id), keys.StuckHold(stuckQ)).Result()
		return !a && s == 0 && n == 0
	})
	checkInFlight(t, h, inFlight)
}

func TestStuckDanglingPendingIDIsDeadLettered(t *testing.T) {
	t.Parallel()
	h := stuckHarness(t)
	h.dumpOnFailure(t)
	ctx := context.Background()
	// An id in the pending list with no task hash.
	const id = "dangling-id"
	if err := h.db.Client.LPush(ctx, keys.AsynqPending(stuckQ), id).Err(); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	// asynq's dequeue moves it to active, leases it, creates a hash holding
	// only its state and finds no message.
	eventually(t, 10*time.Second, "the dangling id in active", func() bool {
		a, s := inActive(t, h.db.Client, id)
		return a && s > 0
	})
	if st, _ := h.db.Client.HGetAll(ctx, keys.AsynqTask(stuckQ, id)).Result(); len(st) != 1 || st["state"] != "active" {
		t.Errorf("task hash asynq's dequeue left: %v, want only its state", st)
	}
	inFlight := startInFlight(t, h)
	backdateLease(t, h.db.Client, id)

	var d *DeadLetter
	eventually(t, 10*time.Second, "a dead letter for the dangling id", func() bool {
		d, _ = h.w.DLQ().Get(ctx, id)
		return d != nil
	})
	if d.Class != DeadLetterInvalid || d.Queue != stuckQ || !strings.Contains(d.Error, "no task data") || len(d.Payload) != 0 {
		t.Errorf("dead letter %+v", d)
	}
	// The dead letter is written first, then the id's keys removed.
	eventually(t, 10*time.Second, "the dangling id's keys removed after its dead letter", func() bool {
		a, s := inActive(t, h.db.Client, id)
		n, _ := h.db.Client.Exists(ctx, keys.AsynqTask(stuckQ, id), keys.StuckHold(stuckQ)).Result()
		return !a && s == 0 && n == 0
	})
	checkInFlight(t, h, inFlight)
}

// TestStuckCheckLeavesRecoverableAndLiveTasks: an expired lease whose
// message decodes is asynq's recoverer's to retry, and a live lease is
// never touched, even with a corrupt message.
func TestStuckCheckLeavesRecoverableAndLiveTasks(t *testing.T) {
	t.Parallel()
	h := stuckHarness(t)
	ctx := context.Background()
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown) // never started: only its check runs
	mk := func(pid string, lease time.Time, corrupt bool) string {
		rc, err := h.prod.Identify(ctx, identify(pid))
		if err != nil {
			t.Fatal(err)
		}
		id := rc.TaskID
		_, err = h.db.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.LRem(ctx, keys.AsynqPending(stuckQ), 0, id)
			p.LPush(ctx, keys.AsynqActive(stuckQ), id)
			p.ZAdd(ctx, keys.AsynqLease(stuckQ), redis.Z{Score: float64(lease.Unix()), Member: id})
			p.HSet(ctx, keys.AsynqTask(stuckQ, id), "state", "active")
			if corrupt {
				p.HSet(ctx, keys.AsynqTask(stuckQ, id), "msg", corruptBytes(t))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	crashed := mk("crashed", time.Now().Add(-2*asynqLease), false)
	live := mk("live", time.Now().Add(asynqLease), true)
	justExpired := mk("just-expired", time.Now().Add(-asynqLease/2), true)
	stuck := mk("stuck", time.Now().Add(-2*asynqLease), true)

	n, err := w.checkStuck(ctx)
	if err != nil || n != 1 {
		t.Fatalf("checkStuck moved %d (%v), want 1", n, err)
	}
	for _, id := range []string{crashed, live, justExpired} {
		if a, s := inActive(t, h.db.Client, id); !a || s == 0 {
			t.Errorf("%s: active %v, lease %v; want untouched", id, a, s)
		}
		if d, _ := w.DLQ().Get(ctx, id); d != nil {
			t.Errorf("%s dead-lettered", id)
		}
	}
	if a, _ := inActive(t, h.db.Client, stuck); a {
		t.Error("the stuck task is still active")
	}
	if d, _ := w.DLQ().Get(ctx, stuck); d == nil || d.Class != DeadLetterInvalid {
		t.Errorf("dead letter %+v", d)
	}
}

// TestStuckTruncatedMessageKeepsTypeAndPayload: when the start of a corrupt
// message parses, the dead letter keeps the task's type and payload, so
// `dlq retry` can re-enqueue it.
func TestStuckTruncatedMessageKeepsTypeAndPayload(t *testing.T) {
	t.Parallel()
	h := stuckHarness(t)
	ctx := context.Background()
	rc, err := h.prod.Identify(ctx, identify("truncated"))
	if err != nil {
		t.Fatal(err)
	}
	key := keys.AsynqTask(stuckQ, rc.TaskID)
	msg, err := h.db.Client.HGet(ctx, key, "msg").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeErr(msg); err != nil {
		t.Fatalf("asynq's own message does not decode: %v", err)
	}
	s := salvage([]byte(msg))
	if !s.ok || s.typ != tasks.TypeIdentify || len(s.payload) == 0 {
		t.Fatalf("salvage of a whole message: %+v", s)
	}
	// Cut the message inside its last field.
	cut := msg[:len(msg)-1]
	if decodeErr(cut) == nil {
		t.Skip("the message's last field is one byte long")
	}
	d, reason := stuckDeadLetter(stuckQ, rc.TaskID, "m"+cut)
	if reason != stuckUndecodable || d.Type != tasks.TypeIdentify || !bytes.Equal(d.Payload, s.payload) ||
		!strings.Contains(d.Error, "type and payload were read") {
		t.Errorf("dead letter %+v (%s)", d, reason)
	}
	if _, _, err := tasks.Decode(d.Type, d.Payload); err != nil {
		t.Errorf("salvaged payload does not decode: %v", err)
	}
}

// TestStuckLeaselessActiveIDGetsExpiredLease: an id in active without any
// lease, seen so for a lease period, gets an expired lease so that the
// recoverer (or the stuck check) takes it.
func TestStuckLeaselessActiveIDGetsExpiredLease(t *testing.T) {
	t.Parallel()
	h := stuckHarness(t)
	ctx := context.Background()
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	const id = "leaseless"
	if err := h.db.Client.LPush(ctx, keys.AsynqActive(stuckQ), id).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.expireLeaseless(ctx, stuckQ); err != nil {
		t.Fatal(err)
	}
	if _, s := inActive(t, h.db.Client, id); s != 0 {
		t.Fatal("given a lease on first sight")
	}
	// As if the first sighting were a lease period ago.
	w.stuck.mu.Lock()
	w.stuck.noLease[stuckQ+"\n"+id] = time.Now().Add(-asynqLease)
	w.stuck.mu.Unlock()
	if err := w.expireLeaseless(ctx, stuckQ); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Client.ZScore(ctx, keys.AsynqLease(stuckQ), id).Result(); err != nil {
		t.Fatalf("no expired lease given: %v", err)
	}
	if n, err := w.checkStuck(ctx); err != nil || n != 1 {
		t.Fatalf("checkStuck moved %d (%v), want 1", n, err)
	}
	if d, _ := w.DLQ().Get(ctx, id); d == nil || !strings.Contains(d.Error, "no task data") {
		t.Errorf("dead letter %+v", d)
	}
}

// TestAsynqRecovererBlockedByCorruptMessage documents asynq's own
// behaviour, which the stuck check exists for: with a corrupt message among
// a queue's expired leases, asynq's recoverer fails to list the queue, so a
// crashed worker's healthy task in it stays active too. Once the check has
// moved the corrupt entry out, the recoverer recovers the healthy task.
func TestAsynqRecovererBlockedByCorruptMessage(t *testing.T) {
	t.Parallel()
	h := stuckHarness(t)
	ctx := context.Background()
	mk := func(pid string, corrupt bool) string {
		rc, err := h.prod.Identify(ctx, identify(pid))
		if err != nil {
			t.Fatal(err)
		}
		id := rc.TaskID
		_, err = h.db.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.LRem(ctx, keys.AsynqPending(stuckQ), 0, id)
			p.LPush(ctx, keys.AsynqActive(stuckQ), id)
			p.ZAdd(ctx, keys.AsynqLease(stuckQ), redis.Z{Score: float64(time.Now().Add(-2 * asynqLease).Unix()), Member: id})
			p.HSet(ctx, keys.AsynqTask(stuckQ, id), "state", "active")
			if corrupt {
				p.HSet(ctx, keys.AsynqTask(stuckQ, id), "msg", corruptBytes(t))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	crashed := mk("crashed", false)
	mk("corrupt", true)
	logs := &logWatch{want: "could not list lease expired tasks", seen: make(chan struct{})}
	srv := asynq.NewServerFromRedisClient(h.db.Client, asynq.Config{
		Queues: map[string]int{stuckQ: 1}, Logger: NewAsynqLogger(slog.New(logs)), LogLevel: asynq.WarnLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-logs.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("asynq's recoverer did not report the corrupt message")
	}
	if a, _ := inActive(t, h.db.Client, crashed); !a {
		t.Fatal("the crashed worker's task was recovered despite the corrupt message")
	}
	srv.Shutdown()

	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown) // never started: only its check runs
	if n, err := w.checkStuck(ctx); err != nil || n != 1 {
		t.Fatalf("checkStuck moved %d (%v), want 1", n, err)
	}
	// A new server's recoverer runs at start.
	srv2 := asynq.NewServerFromRedisClient(h.db.Client, asynq.Config{
		Queues: map[string]int{stuckQ: 1}, Logger: NewAsynqLogger(testLogger()), LogLevel: asynq.WarnLevel,
	})
	if err := srv2.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	defer srv2.Shutdown()
	eventually(t, 30*time.Second, "asynq's recoverer to recover the crashed worker's task", func() bool {
		a, _ := inActive(t, h.db.Client, crashed)
		return !a
	})
}

// logWatch is a slog.Handler that closes seen at the first record whose
// message contains want.
type logWatch struct {
	want string
	once sync.Once
	seen chan struct{}
}

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, l.want) {
		l.once.Do(func() { close(l.seen) })
	}
	return nil
}
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logWatch) WithGroup(string) slog.Handler      { return l }
