package worker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/testredis/topology"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestWorkerOnClusterBoundsBatchTasks: on a Redis Cluster (three masters,
// the queues' keys in different slots) the dequeue hook runs its script
// on the one queue asynq asks for. 60 cio:batch tasks at concurrency 50
// are held at most the bound at once (without the hook asynq had 50
// tasks active at once here, most of them cio:batch tasks waiting for a
// slot with their payloads), every operation is delivered once, and 40
// small tasks come several per round trip (some are answered from the
// kept ones).
func TestWorkerOnClusterBoundsBatchTasks(t *testing.T) {
	c := topology.StartCluster(t)
	ctx := context.Background()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sb, url := newSandbox(t)
	prod, err := producer.New(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const nTasks, perTask, nSmall = 60, 20, 40
	var pids []string // one event each
	for i := range nTasks {
		var ops []tasks.Payload
		for j := range perTask {
			pid := "cl-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
			ops = append(ops, ev(pid, j))
			pids = append(pids, pid)
		}
		rec, err := prod.EnqueueBatch(ctx, ops)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Tasks) != 1 {
			t.Fatalf("%d tasks for %d operations, want 1", len(rec.Tasks), perTask)
		}
	}
	for i := range nSmall {
		pid := "small-" + strconv.Itoa(i)
		if _, err := prod.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: pid}, Event: customerio.Event{Name: "e"}}); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}

	w, err := New(Config{
		Redis:         asynq.RedisClusterClientOpt{Addrs: c.Addrs()},
		Workspaces:    map[string]customerio.Config{"": sandboxConfig(url)},
		Concurrency:   50,
		Backoff:       BackoffConfig{Base: 100 * time.Millisecond, Cap: time.Second},
		Logger:        testLogger(),
		ProbeInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.dequeue == nil || !w.dequeue.oneQueue {
		t.Fatal("no one-queue dequeue hook on the Cluster client")
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)

	cc := c.Client()
	defer cc.Close()
	bound := multiTasksAtOnce(0) + multiExtra
	delivered := func() bool {
		for _, pid := range pids {
			if len(sb.Events(pid)) == 0 {
				return false
			}
		}
		return true
	}
	most := int64(0)
	eventually(t, 60*time.Second, "every operation delivered", func() bool {
		most = max(most, cc.LLen(ctx, keys.AsynqActive(tasks.QueueDefault)).Val())
		return delivered()
	})
	eventually(t, 10*time.Second, "nothing active", func() bool {
		return cc.LLen(ctx, keys.AsynqActive(tasks.QueueDefault)).Val() == 0
	})
	h := w.dequeue
	h.mu.Lock()
	peak, held, fromKept, runs := h.multiPeak, len(h.held), h.fromKept, h.runs
	h.mu.Unlock()
	t.Logf("hook: peak %d cio:batch tasks held (bound %d), %d dequeues answered from kept tasks, %d runs, most active %d", peak, bound, fromKept, runs, most)
	if peak > bound || peak < 1 {
		t.Errorf("the hook held at most %d cio:batch tasks at once, want 1..%d", peak, bound)
	}
	if most > int64(bound+nSmall) {
		t.Errorf("%d tasks active at once, want at most %d cio:batch tasks and the %d small ones", most, bound, nSmall)
	}
	if held != 0 {
		t.Errorf("%d cio:batch tasks still held once all are done", held)
	}
	if fromKept == 0 {
		t.Error("no dequeue answered from the prefetched tasks")
	}
	for _, pid := range pids {
		if evs := sb.Events(pid); len(evs) != 1 {
			t.Fatalf("%s: %d events, want 1", pid, len(evs))
		}
	}
}
