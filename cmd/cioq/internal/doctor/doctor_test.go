package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/internal/testredis/topology"
)

// run parses url, connects and runs the Redis checks.
func run(t *testing.T, url string, ack int) map[string]Finding {
	t.Helper()
	return runWith(t, url, Options{AckReplicas: ack})
}

// runWith is run with more options (Conn and Client are filled in).
func runWith(t *testing.T, url string, o Options) map[string]Finding {
	t.Helper()
	conn, err := redisconf.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := redisconf.UniversalClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := map[string]Finding{}
	o.Conn, o.Client = conn, rdb
	for _, f := range Redis(ctx, o) {
		out[f.Check] = f
	}
	return out
}

// want checks a finding's verdict, and that every finding that is not ok
// says how to fix it.
func want(t *testing.T, fs map[string]Finding, check string, v Verdict, detail ...string) {
	t.Helper()
	f, ok := fs[check]
	if !ok {
		t.Errorf("no %q finding in %v", check, fs)
		return
	}
	if f.Verdict != v {
		t.Errorf("%s: %s (%s), want %s", check, f.Verdict, f.Detail, v)
	}
	if v != OK && f.Fix == "" {
		t.Errorf("%s: %s without a fix", check, f.Verdict)
	}
	for _, d := range detail {
		if !strings.Contains(f.Detail, d) {
			t.Errorf("%s: detail %q lacks %q", check, f.Detail, d)
		}
	}
}

func config(t *testing.T, n *topology.Node, kv ...string) {
	t.Helper()
	c := n.Client()
	defer c.Close()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := c.ConfigSet(context.Background(), kv[i], kv[i+1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSingleServer: persistence, eviction and memory on one server.
func TestSingleServer(t *testing.T) {
	r := topology.StartReplicated(t, 0)
	config(t, r.Master, "maxmemory-policy", "allkeys-lru")
	fs := run(t, r.URL(), 0)
	want(t, fs, "persistence", LosesData, "appendonly no")
	want(t, fs, "maxmemory-policy", LosesData, "allkeys-lru")
	want(t, fs, "replication", OK, "a single server")
	want(t, fs, "archive", OK)
	if !Bad(mapSlice(fs)) {
		t.Error("Bad = false with data-losing findings")
	}

	config(t, r.Master, "appendonly", "yes", "appendfsync", "everysec", "maxmemory-policy", "noeviction", "maxmemory", "1000000000")
	fs = run(t, r.URL(), 0)
	want(t, fs, "persistence", Warn, "everysec")
	want(t, fs, "maxmemory-policy", OK)
	want(t, fs, "memory", OK, "free")
	config(t, r.Master, "appendfsync", "always")
	fs = run(t, r.URL(), 0)
	want(t, fs, "persistence", OK, "always")
	if Bad(mapSlice(fs)) {
		t.Errorf("Bad = true: %v", fs)
	}
	// A replication setting no replica can meet fails every write.
	want(t, run(t, r.URL(), 1), "replication", Fails, "only 0 connected")
}

// TestReplicas: a plain URL to a master with a replica.
func TestReplicas(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	want(t, run(t, r.URL(), 0), "replication", Warn, "1 replica(s) connected")
	want(t, run(t, r.URL(), 1), "replication", OK, "every acknowledged write")
	config(t, r.Master, "min-replicas-to-write", "1")
	want(t, run(t, r.URL(), 0), "replication", Warn, "min-replicas-to-write 1", "NOREPLICAS")
	// A URL that reaches the replica: writes are refused.
	want(t, run(t, "redis://"+r.Replicas[0].Addr+"/0", 0), "replication", Fails, "not a master")
}

// TestSentinel: a Sentinel group fails over by itself, so acknowledging
// before the replicas have a write loses data; acknowledging after one of
// two is a warning; after both is ok.
func TestSentinel(t *testing.T) {
	s := topology.StartSentinel(t)
	fs := run(t, s.URL(), 0)
	want(t, fs, "sentinel", OK, "3 of 3 sentinels")
	want(t, fs, "replication", LosesData, "2 replica(s)", "Sentinel failover")
	want(t, run(t, s.URL(), 1), "replication", Warn, "promote another")
	want(t, run(t, s.URL(), 2), "replication", OK)
	want(t, run(t, s.URL(), 3), "replication", Fails)
}

// TestCluster: every queue's slot (and the dead-letter store's) has a
// replica, and the finding names the master of each; once a replica is
// gone, its master's queues have none: loses data.
func TestCluster(t *testing.T) {
	c := topology.StartCluster(t)
	// A queue of its own besides cioq's three.
	ac := asynq.NewClient(asynq.RedisClusterClientOpt{Addrs: c.Addrs()})
	if _, err := ac.Enqueue(asynq.NewTask("t", nil), asynq.Queue("extra")); err != nil {
		t.Fatal(err)
	}
	ac.Close()
	fs := run(t, c.URL(), 1)
	want(t, fs, "cluster", OK)
	want(t, fs, "queue-slots", OK, "queue critical", "queue default", "queue bulk", "queue extra", "dead letters")
	for _, m := range c.Masters {
		want(t, fs, "replication "+m.Addr, OK, "1 replica(s) connected")
		want(t, fs, "persistence "+m.Addr, LosesData)
	}
	want(t, run(t, c.URL(), 0), "replication "+c.Masters[0].Addr, LosesData, "Cluster failover")

	// Queue shards: one is a warning (a queue on one master); three put
	// each logical queue on every master, each shard's slot is checked,
	// and the plain queue still holding a task is named.
	want(t, fs, "queue-shards", Warn, "CIOQ_QUEUE_SHARDS=1", "default: 1 of 3 masters")
	ac = asynq.NewClient(asynq.RedisClusterClientOpt{Addrs: c.Addrs()})
	if _, err := ac.Enqueue(asynq.NewTask("t", nil), asynq.Queue("default")); err != nil {
		t.Fatal(err)
	}
	ac.Close()
	sh := runWith(t, c.URL(), Options{AckReplicas: 1, Shards: 3})
	want(t, sh, "queue-shards", OK, "CIOQ_QUEUE_SHARDS=3", "critical: 3 of 3 masters", "default: 3 of 3 masters", "bulk: 3 of 3 masters",
		"another shard count still holding tasks", "default 1")
	for _, label := range []string{"queue default shard 0", "queue default shard 2", "queue bulk shard 1"} {
		if d := sh["queue-slots"].Detail; !strings.Contains(d, label) {
			t.Errorf("queue-slots %q does not name %q", d, label)
		}
	}
	single := runWith(t, topology.StartReplicated(t, 0).URL(), Options{Shards: 3})
	want(t, single, "queue-shards", Warn, "single Redis server")

	// Stop the replica of the master that holds queue default.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	master, err := cc.MasterForKey(context.Background(), "asynq:{default}:pending")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range c.Masters {
		if m.Addr == master.Options().Addr {
			c.Replicas[i].Stop()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fs = run(t, c.URL(), 0)
		if fs["queue-slots"].Verdict == LosesData || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	want(t, fs, "queue-slots", LosesData, "without a replica", "queue default")
}

func mapSlice(m map[string]Finding) []Finding {
	out := make([]Finding, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	return out
}
