package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// scriptCounter is a go-redis hook counting the script runs whose first
// key is a queue's pending list: asynq's dequeues, or the worker's
// combined one (an EVALSHA answered NOSCRIPT and the EVAL after it count
// once).
type scriptCounter struct{ dequeues atomic.Int64 }

func (s *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		a := cmd.Args()
		if name, _ := a[0].(string); (name == "evalsha" || name == "eval") && len(a) > 3 && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			// An EVALSHA that Redis answers NOSCRIPT (a Redis that has not
			// seen the script yet) is followed by the EVAL: one run.
			if k, _ := a[3].(string); strings.HasSuffix(k, ":pending") && strings.HasPrefix(k, "asynq:") {
				s.dequeues.Add(1)
			}
		}
		return err
	}
}

// TestDequeuePrefetch: with cioq's three weighted queues and the tasks in
// one of them, the worker fetches them in one Redis round trip per
// concurrency's worth of tasks (4 here; asynq alone makes about 1.9 round
// trips per task: it tries the empty queues first 7 times in 10), and
// every task is delivered once. The tasks are in Redis before the worker
// starts, so it never goes idle while any is pending, and the count is
// taken as the last one is delivered, before the poll after the
// all-empty run (at least a second later): it is exact.
func TestDequeuePrefetch(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.PollInterval = 2 * time.Second
		c.Batching.Off = true
		c.RateLimits.Off = true
		c.Concurrency = 4
	}, true)
	ctx := context.Background()
	const n = 120
	for i := 0; i < n; i++ {
		if _, err := h.prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "dq"}, Event: customerio.Event{Name: "e"}}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if w.dequeue == nil {
		t.Fatal("no dequeue hook on a single-node client with three queues")
	}
	var count scriptCounter
	w.rdb.(*redis.Client).AddHook(&count) // after the worker's: sees what reaches Redis
	var delivered, atLast atomic.Int64
	w.returned = func(_ *Task, err error) {
		if err == nil && delivered.Add(1) == n {
			atLast.Store(count.dequeues.Load())
		}
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	eventually(t, 30*time.Second, "every task delivered", func() bool { return delivered.Load() == n })
	// One round trip per 4 tasks, and at most one more: the run that
	// found every queue empty after the last task.
	if got := atLast.Load(); got < n/4 || got > n/4+1 {
		t.Errorf("%d dequeue round trips for %d tasks, want %d or %d", got, n, n/4, n/4+1)
	}
	w.dequeue.mu.Lock()
	taken, fromKept := w.dequeue.taken, w.dequeue.fromKept
	w.dequeue.mu.Unlock()
	if taken != n || fromKept != n-n/4 {
		t.Errorf("the runs took %d tasks, %d handed out from the kept ones; want %d and %d", taken, fromKept, n, n-n/4)
	}
	if got := len(h.sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupTrack})); got != n {
		t.Errorf("sandbox received %d events, want %d", got, n)
	}
}

// TestDequeueHookKeepsAsynqSemantics runs asynq's own dequeue script
// through the hook: a paused queue is skipped, a task is taken from the
// first queue that has one (marked active, with its lease), and an empty
// answer for every queue is given once from Redis, then for the other
// queues without it.
func TestDequeueHookKeepsAsynqSemantics(t *testing.T) {
	h := newHarness(t, nil, true)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: h.db.Client.Options().Addr, DB: h.db.Client.Options().DB})
	defer rdb.Close()
	weights := map[string]int{"qa": 1, "qb": 1, "qc": 1}
	hook := installDequeueHook(rdb, weights, 10, 0)
	var count scriptCounter
	rdb.AddHook(&count)
	dequeue := func(q string) (string, error) {
		lease := time.Now().Add(30 * time.Second).Unix()
		return asynqDequeueScript(t).Run(ctx, rdb,
			[]string{keys.AsynqPending(q), keys.AsynqPaused(q), keys.AsynqActive(q), keys.AsynqLease(q)},
			lease, keys.AsynqTaskPrefix(q)).Text()
	}

	// All empty: one round trip answers all three.
	for _, q := range []string{"qb", "qa", "qc"} {
		if _, err := dequeue(q); err != redis.Nil {
			t.Fatalf("empty queue %s: %v, want redis.Nil", q, err)
		}
	}
	if got := count.dequeues.Load(); got != 1 || hook.answered != 2 {
		t.Errorf("all empty: %d round trips, %d answered by the hook; want 1 and 2", got, hook.answered)
	}

	ac := asynq.NewClientFromRedisClient(h.db.Client)
	for _, q := range []string{"qb", "qc"} {
		if _, err := ac.Enqueue(asynq.NewTask("t:"+q, []byte(`{}`)), asynq.Queue(q), asynq.TaskID("id-"+q)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.insp.PauseQueue("qc"); err != nil {
		t.Fatal(err)
	}
	// Asked for qa (empty): the task comes from qb; qc is paused.
	count.dequeues.Store(0)
	msg, err := dequeue("qa")
	if err != nil || !strings.Contains(msg, "id-qb") {
		t.Fatalf("dequeue from qa: %q, %v; want qb's task", msg, err)
	}
	if st, _ := h.db.Client.HGet(ctx, keys.AsynqTask("qb", "id-qb"), "state").Result(); st != "active" {
		t.Errorf("qb's task state %q, want active", st)
	}
	if _, err := h.db.Client.ZScore(ctx, keys.AsynqLease("qb"), "id-qb").Result(); err != nil {
		t.Errorf("qb's task has no lease: %v", err)
	}
	if _, err := dequeue("qa"); err != redis.Nil {
		t.Errorf("qc is paused, the others empty: %v, want redis.Nil", err)
	}
	if got := count.dequeues.Load(); got != 2 {
		t.Errorf("%d round trips for two dequeues, want 2", got)
	}
	if n, _ := h.db.Client.LLen(ctx, keys.AsynqPending("qc")).Result(); n != 1 {
		t.Errorf("paused queue qc holds %d pending tasks, want 1", n)
	}
}

// TestDequeueOrderWeighted: after asynq's pick, the other queues are tried
// in a weighted random order.
func TestDequeueOrderWeighted(t *testing.T) {
	h := newDequeueHook(map[string]int{"critical": 6, "default": 3, "bulk": 1}, 10, 0)
	second := map[string]int{}
	for i := 0; i < 4000; i++ {
		o := h.order("bulk")
		if len(o) != 3 || o[0] != "bulk" {
			t.Fatalf("order %v: want bulk first and three queues", o)
		}
		second[o[1]]++
	}
	// critical should come second about twice as often as default.
	if r := float64(second["critical"]) / float64(second["default"]); r < 1.6 || r > 2.5 {
		t.Errorf("critical second %d times, default %d: ratio %.2f, want about 2", second["critical"], second["default"], r)
	}
}

// asynqScript is asynq's dequeue script, read once from asynq's module
// source (cioq's code keeps only its SHA-1).
var asynqScript struct {
	once sync.Once
	src  string
	err  error
}

// asynqDequeueScript returns asynq's dequeue script as asynq's RDB runs it,
// read from the source of the asynq module this build uses, and checks that
// its SHA-1 is the one the hook recognizes (asynqDequeueSHA).
func asynqDequeueScript(t testing.TB) *redis.Script {
	t.Helper()
	asynqScript.once.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/hibiken/asynq").Output()
		if err != nil {
			asynqScript.err = fmt.Errorf("go list asynq: %w", err)
			return
		}
		b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "rdb", "rdb.go"))
		if err != nil {
			asynqScript.err = err
			return
		}
		const start = "var dequeueCmd = redis.NewScript(`"
		src := string(b)
		i := strings.Index(src, start)
		if i < 0 {
			asynqScript.err = errors.New("asynq's rdb.go has no dequeueCmd")
			return
		}
		src = src[i+len(start):]
		j := strings.Index(src, "`")
		if j < 0 {
			asynqScript.err = errors.New("asynq's dequeueCmd has no end")
			return
		}
		asynqScript.src = src[:j]
	})
	if asynqScript.err != nil {
		t.Fatalf("asynq's dequeue script: %v", asynqScript.err)
	}
	sc := redis.NewScript(asynqScript.src)
	if sc.Hash() != asynqDequeueSHA {
		t.Fatalf("asynq's dequeue script has SHA-1 %s, the hook recognizes %s: asynq changed it", sc.Hash(), asynqDequeueSHA)
	}
	return sc
}
