package topology_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/internal/testredis/topology"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// TestClusterShardPlacement: the slot of every shard name is the one the
// cluster computes (CLUSTER KEYSLOT), and with 3 shards on the 3-master
// cluster each logical queue has one shard on every master; with 1 (the
// plain names) the three queues leave a master without any.
func TestClusterShardPlacement(t *testing.T) {
	c := cluster(t)
	cc := c.Client()
	defer cc.Close()
	ctx := context.Background()
	masterOf := func(q string) string {
		key := keys.AsynqPending(q)
		slot, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if int(slot) != shard.QueueSlot(q) {
			t.Errorf("%s: CLUSTER KEYSLOT %d, shard.QueueSlot %d", key, slot, shard.QueueSlot(q))
		}
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return m.Options().Addr
	}
	for _, q := range []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueBulk} {
		on := map[string]string{}
		for _, name := range shard.Names(q, 3) {
			on[masterOf(name)] = name
		}
		if len(on) != 3 {
			t.Errorf("the 3 shards of %s are on %d masters: %v", q, len(on), on)
		}
		t.Logf("%s: %v", q, on)
	}
	plain := map[string]bool{}
	for _, q := range []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueBulk} {
		plain[masterOf(q)] = true
	}
	t.Logf("unsharded, critical, default and bulk are on %d of 3 masters", len(plain))
	// Many names, to exercise the CRC16 beyond three.
	for i := 0; i < 200; i++ {
		masterOf("q" + strconv.Itoa(i) + "{x" + strconv.Itoa(i*7) + "}")
	}
}

// deliveredCounter is a worker observer counting delivered tasks.
type deliveredCounter struct {
	worker.NopObserver
	n atomic.Int64
}

func (d *deliveredCounter) Delivered(string, string, string, time.Duration) { d.n.Add(1) }

// enqueueEvents enqueues n track events of 50 people from conc goroutines
// (offset: the first event's number) and returns how long it took.
func enqueueEvents(tb testing.TB, p *producer.Client, n, conc, offset int) time.Duration {
	tb.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := p.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "p" + strconv.Itoa(i%50)},
					Event: customerio.Event{Name: "e", Data: map[string]any{"i": offset + i}}}); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// pendingPerMaster counts pending tasks of every queue on each master.
func pendingPerMaster(tb testing.TB, c *topology.Cluster) map[string]int64 {
	tb.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	cc := c.Client()
	defer cc.Close()
	qs, err := cc.SMembers(ctx, keys.AsynqQueues).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, q := range qs {
		m, err := cc.MasterForKey(ctx, keys.AsynqPending(q))
		if err != nil {
			tb.Fatal(err)
		}
		n, err := cc.LLen(ctx, keys.AsynqPending(q)).Result()
		if err != nil {
			tb.Fatal(err)
		}
		out[m.Options().Addr] += n
	}
	return out
}

// TestClusterShards: with CIOQ_QUEUE_SHARDS=3 on the 3-master cluster a
// queue's tasks are on every master, and a worker with the same count
// delivers them all, once each.
func TestClusterShards(t *testing.T) {
	c := cluster(t)
	sb := sandbox.NewTestServer(t)
	p, err := producer.New(c.URL(), producer.WithShards(3))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 300
	enqueueEvents(t, p, n, 4, 0)
	per := pendingPerMaster(t, c)
	if len(per) != 3 {
		t.Errorf("pending tasks per master: %v, want all 3", per)
	}
	for m, k := range per {
		if k == 0 {
			t.Errorf("master %s holds no task: %v", m, per)
		}
	}
	startWorker(t, c.URL(), sb, func(cfg *worker.Config) { cfg.Shards = 3 })
	waitEvents(t, sb, n)
}

// waitEvents waits until the sandbox holds n events of people p0..p49
// with distinct "i", and fails on a duplicate.
func waitEvents(t *testing.T, sb *sandbox.Running, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	count := func(s *sandbox.Server) int {
		k := 0
		for i := 0; i < 50; i++ {
			k += len(s.Events("p" + strconv.Itoa(i)))
		}
		return k
	}
	if err := sb.WaitFor(ctx, func(s *sandbox.Server) bool { return count(s) >= n }); err != nil {
		t.Fatalf("%d of %d events delivered: %v", count(sb.Server), n, err)
	}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		for _, e := range sb.Events("p" + strconv.Itoa(i)) {
			k := fmt.Sprint(e.Data["i"])
			if seen[k] {
				t.Errorf("event %s delivered twice", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events, want %d", len(seen), n)
	}
}

// TestClusterShardsChange: on the cluster, tasks enqueued with 3 shards
// and with 1 are all delivered by a worker started with 1, and then by one
// started with 3 (the worker serves the other count's queues that hold
// tasks).
func TestClusterShardsChange(t *testing.T) {
	c := cluster(t)
	sb := sandbox.NewTestServer(t)
	three, err := producer.New(c.URL(), producer.WithShards(3))
	if err != nil {
		t.Fatal(err)
	}
	defer three.Close()
	one, err := producer.New(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	enqueueEvents(t, three, 100, 2, 0)
	enqueueEvents(t, one, 50, 2, 100)
	w := startWorker(t, c.URL(), sb, func(cfg *worker.Config) { cfg.Shards = 1 })
	waitEvents(t, sb, 150)
	w.Shutdown()

	enqueueEvents(t, one, 50, 2, 150)
	enqueueEvents(t, three, 50, 2, 200)
	startWorker(t, c.URL(), sb, func(cfg *worker.Config) { cfg.Shards = 3 })
	waitEvents(t, sb, 250)
}

// cpuMillis is the Redis CPU (used_cpu_sys + used_cpu_user, ms) of each
// master.
func cpuMillis(tb testing.TB, c *topology.Cluster) map[string]float64 {
	tb.Helper()
	out := map[string]float64{}
	for _, m := range c.Masters {
		mc := m.Client()
		info, err := topology.Info(context.Background(), mc, "cpu")
		mc.Close()
		if err != nil {
			tb.Fatal(err)
		}
		sys, _ := strconv.ParseFloat(info["used_cpu_sys"], 64)
		user, _ := strconv.ParseFloat(info["used_cpu_user"], 64)
		out[m.Addr] = (sys + user) * 1000
	}
	return out
}

// BenchmarkClusterShards measures, on the 3-master cluster, enqueue/s (16
// goroutines of one producer), delivered/s (one worker, 100 at once, rate
// limits off, delivering to the in-process sandbox over HTTP) and each
// master's Redis CPU for the whole run, with 1 shard and with 3. Run it
// once per count (-benchtime=1x): each iteration enqueues and delivers
// 20,000 track events (queue default). queues=all: the worker listens on
// critical, default and bulk (the default weights), as deployed, so each
// dequeue also tries empty queues (asynq tries them in a weighted random
// order, one round trip each on a Cluster); queues=default: only default,
// which isolates what the shards spread.
//
//	CIOQ_TEST_TOPOLOGY_PORTS=6720-6759 go test ./internal/testredis/topology/ -run '^$' -bench ClusterShards -benchtime=1x
func BenchmarkClusterShards(b *testing.B) {
	for _, bc := range []struct {
		n      int
		queues string
	}{{1, "all"}, {3, "all"}, {1, "default"}, {3, "default"}} {
		n := bc.n
		b.Run(fmt.Sprintf("shards=%d/queues=%s", n, bc.queues), func(b *testing.B) {
			c := benchCluster(b)
			sb := sandbox.NewTestServer(b)
			const total = 20000
			for it := 0; it < b.N; it++ {
				b.StopTimer()
				if err := c.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
				sb.Reset()
				p, err := producer.New(c.URL(), producer.WithShards(n))
				if err != nil {
					b.Fatal(err)
				}
				before := cpuMillis(b, c)
				b.StartTimer()
				enq := enqueueEvents(b, p, total, 16, 0)
				mid := cpuMillis(b, c)
				obs := &deliveredCounter{}
				cfg := worker.Config{
					Redis:         redisOpt(b, c.URL()),
					Workspaces:    map[string]customerio.Config{"": sandboxWorkspace(sb)},
					Concurrency:   100,
					Logger:        testLogger(),
					ProbeInterval: -1,
					Shards:        n,
					Observer:      obs,
				}
				cfg.RateLimits.Off = true
				if bc.queues == "default" {
					cfg.Queues = map[string]int{tasks.QueueDefault: 1}
				}
				w, err := worker.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := w.Start(); err != nil {
					b.Fatal(err)
				}
				for obs.n.Load() < total {
					time.Sleep(10 * time.Millisecond)
				}
				del := time.Since(start)
				b.StopTimer()
				after := cpuMillis(b, c)
				w.Shutdown()
				p.Close()
				b.ReportMetric(float64(total)/enq.Seconds(), "enqueue/s")
				b.ReportMetric(float64(total)/del.Seconds(), "delivered/s")
				var sumEnq, sumDel float64
				for i, m := range c.Masters {
					e, d := mid[m.Addr]-before[m.Addr], after[m.Addr]-mid[m.Addr]
					sumEnq += e
					sumDel += d
					b.ReportMetric(e, "cpu-ms-enq-m"+strconv.Itoa(i))
					b.ReportMetric(d, "cpu-ms-del-m"+strconv.Itoa(i))
				}
				b.ReportMetric(sumDel*1000/total, "redis-µs/delivered")
				b.ReportMetric(sumEnq*1000/total, "redis-µs/enqueued")
			}
		})
	}
}

// benchCluster is the shared cluster for a benchmark.
func benchCluster(b *testing.B) *topology.Cluster {
	b.Helper()
	shared.once.Do(func() { shared.c, shared.err = topology.NewCluster() })
	if shared.err != nil {
		b.Skip(shared.err.Error())
	}
	return shared.c
}
