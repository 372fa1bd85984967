// Package doctor checks the Redis a cioq deployment runs on (and its
// Customer.io credentials) for what loses acknowledged work: persistence,
// the eviction policy, memory headroom, replicas and how writes are
// acknowledged, the Sentinel or Cluster topology (does every queue's slot
// have a replica), and asynq's archive cap. Each finding has a verdict and,
// when it is not ok, the fix. `cioq doctor` prints them; `cioq worker` and
// `cioq serve` log the ones that are not ok once at start.
//
// It reads INFO (replication, persistence, memory), CONFIG GET where Redis
// allows it (managed services often refuse CONFIG: the finding then says
// what it could not see), SENTINEL and CLUSTER state, and asynq's queue
// counts. It writes nothing.
package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	qshard "github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// Verdict is how bad a finding is.
type Verdict string

// Verdicts, from good to bad.
const (
	// OK: nothing to do.
	OK Verdict = "ok"
	// Warn: a trade-off to know about (a window that loses little, a
	// limit that will be reached), or something doctor could not see.
	Warn Verdict = "warn"
	// LosesData: as configured, a crash, a restart, a failover or a full
	// memory loses tasks, send records or dead letters that cioq
	// acknowledged.
	LosesData Verdict = "loses data"
	// Fails: cioq cannot work as configured (Redis unreachable, every
	// write refused, credentials refused).
	Fails Verdict = "fails"
)

// Finding is one check's result.
type Finding struct {
	// Check names what was checked ("persistence", "maxmemory-policy",
	// "replication", "sentinel", "cluster", "queue-slots", "memory",
	// "archive", "customerio:<workspace>:<api>"); on a cluster, node
	// checks name the node ("persistence 10.0.0.21:7000").
	Check   string  `json:"check"`
	Verdict Verdict `json:"verdict"`
	// Detail says what was found; Fix what to do (empty when ok).
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Bad reports whether any finding loses data or fails: `cioq doctor`
// then exits 1.
func Bad(fs []Finding) bool {
	for _, f := range fs {
		if f.Verdict == LosesData || f.Verdict == Fails {
			return true
		}
	}
	return false
}

// Options say what to check.
type Options struct {
	// Conn is REDIS_URL parsed (asynq.RedisClientOpt,
	// RedisFailoverClientOpt or RedisClusterClientOpt): the topology.
	Conn asynq.RedisConnOpt
	// Client is a client of Conn (the caller closes it).
	Client redis.UniversalClient
	// AckReplicas is CIOQ_REDIS_ACK_REPLICAS (0: off).
	AckReplicas int
	// Queues are queues to check besides asynq's list and cioq's three.
	Queues []string
	// Shards is CIOQ_QUEUE_SHARDS (0 or 1: none): the logical queues'
	// shards are checked too, and on a Cluster whether they cover every
	// master ("queue-shards").
	Shards int
}

// ArchiveCap is how many archived tasks asynq keeps per queue.
const ArchiveCap = 10000

// Redis runs every Redis check and returns the findings in a stable
// order. A Redis that does not answer is one finding, "redis", Fails.
func Redis(ctx context.Context, o Options) []Finding {
	rdb := o.Client
	if err := rdb.Ping(ctx).Err(); err != nil {
		return []Finding{{Check: "redis", Verdict: Fails, Detail: "Redis does not answer: " + redactErr(err),
			Fix: "check REDIS_URL and that Redis runs and is reachable from here"}}
	}
	var out []Finding
	automatic := ""
	switch c := o.Conn.(type) {
	case asynq.RedisFailoverClientOpt:
		automatic = "Sentinel"
		out = append(out, sentinelFindings(ctx, c)...)
	case asynq.RedisClusterClientOpt:
		automatic = "Cluster"
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		out = append(out, clusterFindings(ctx, cc, o)...)
		out = append(out, shardFindings(ctx, cc, o))
		var mu sync.Mutex
		var nodes []nodeFindings
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			nf := nodeFindings{addr: n.Options().Addr, fs: nodeChecks(ctx, n, o, automatic)}
			mu.Lock()
			nodes = append(nodes, nf)
			mu.Unlock()
			return nil
		})
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].addr < nodes[j].addr })
		for _, nf := range nodes {
			for _, f := range nf.fs {
				f.Check += " " + nf.addr
				out = append(out, f)
			}
		}
	} else if c, ok := rdb.(*redis.Client); ok {
		out = append(out, nodeChecks(ctx, c, o, automatic)...)
		if o.Shards > 1 {
			out = append(out, Finding{Check: "queue-shards", Verdict: Warn,
				Detail: fmt.Sprintf("CIOQ_QUEUE_SHARDS=%d on a single Redis server: one Redis thread serves every shard, so shards add dequeue work, not throughput", o.Shards),
				Fix:    "set CIOQ_QUEUE_SHARDS=1 (on producers and workers together) unless this Redis becomes a Cluster"})
		}
	}
	out = append(out, archiveFindings(ctx, rdb, o)...)
	return out
}

type nodeFindings struct {
	addr string
	fs   []Finding
}

// info reads INFO sections of one node.
func info(ctx context.Context, c *redis.Client, sections ...string) (map[string]string, error) {
	s, err := c.Info(ctx, sections...).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// configGet reads one setting, ok false when Redis refuses CONFIG.
func configGet(ctx context.Context, c *redis.Client, name string) (string, bool) {
	m, err := c.ConfigGet(ctx, name).Result()
	if err != nil {
		return "", false
	}
	v, ok := m[name]
	return v, ok
}

// nodeChecks are the checks of one master: persistence, eviction, memory,
// replication.
func nodeChecks(ctx context.Context, c *redis.Client, o Options, automatic string) []Finding {
	m, err := info(ctx, c, "persistence", "memory", "replication")
	if err != nil {
		return []Finding{{Check: "info", Verdict: Warn, Detail: "INFO refused: " + redactErr(err) + "; persistence, memory and replicas not checked",
			Fix: "allow INFO for cioq's Redis user, or check them with your provider"}}
	}
	return []Finding{persistence(ctx, c, m), evictionPolicy(m), memory(m), replication(ctx, c, m, o, automatic)}
}

const fixAOF = "appendonly yes and appendfsync always (or everysec, which a machine crash costs about a second of): CONFIG SET appendonly yes, CONFIG SET appendfsync always, then CONFIG REWRITE (or set them in redis.conf, or your provider's parameter group)"

func persistence(ctx context.Context, c *redis.Client, m map[string]string) Finding {
	f := Finding{Check: "persistence"}
	if m["aof_enabled"] != "1" {
		f.Verdict, f.Fix = LosesData, fixAOF
		save, ok := configGet(ctx, c, "save")
		switch {
		case !ok:
			f.Detail = "appendonly no (snapshots unknown: CONFIG GET refused): a crash or restart loses at least the writes since the last snapshot"
		case strings.TrimSpace(save) == "":
			f.Detail = "appendonly no and no snapshots: a restart of Redis loses every task and dead letter"
		default:
			f.Detail = fmt.Sprintf("appendonly no, snapshots only (save %q): a crash loses the writes since the last snapshot", save)
		}
		return f
	}
	fsync, ok := configGet(ctx, c, "appendfsync")
	switch {
	case !ok:
		f.Verdict, f.Detail = Warn, "appendonly yes; appendfsync unknown (CONFIG GET refused)"
		f.Fix = "make sure appendfsync is always (or everysec, knowing a machine crash costs about a second of writes)"
	case fsync == "always":
		f.Verdict, f.Detail = OK, "appendonly yes, appendfsync always: an acknowledged write is on disk"
	case fsync == "everysec":
		f.Verdict, f.Detail = Warn, "appendonly yes, appendfsync everysec: a crash of the machine loses about the last second of acknowledged writes (a crash of Redis alone loses nothing)"
		f.Fix = "CONFIG SET appendfsync always (and CONFIG REWRITE) for the guarantee, at the cost of write throughput; or keep everysec with replicated acknowledgements (CIOQ_REDIS_ACK_REPLICAS)"
	default:
		f.Verdict, f.Detail = LosesData, fmt.Sprintf("appendonly yes, appendfsync %s: the operating system writes the file when it likes (about every 30 s), which a machine crash loses", fsync)
		f.Fix = fixAOF
	}
	return f
}

func evictionPolicy(m map[string]string) Finding {
	p := m["maxmemory_policy"]
	if p == "noeviction" {
		return Finding{Check: "maxmemory-policy", Verdict: OK, Detail: "noeviction: a full Redis refuses writes (enqueues fail) instead of dropping keys"}
	}
	if p == "" {
		return Finding{Check: "maxmemory-policy", Verdict: Warn, Detail: "unknown (not in INFO)", Fix: "make sure maxmemory-policy is noeviction"}
	}
	return Finding{Check: "maxmemory-policy", Verdict: LosesData,
		Detail: fmt.Sprintf("%s: when memory is full Redis evicts keys, and an evicted task, send record or dead letter is gone without a trace", p),
		Fix:    "CONFIG SET maxmemory-policy noeviction, then CONFIG REWRITE (or your provider's parameter group)"}
}

func memory(m map[string]string) Finding {
	used, _ := strconv.ParseInt(m["used_memory"], 10, 64)
	maxm, _ := strconv.ParseInt(m["maxmemory"], 10, 64)
	total, _ := strconv.ParseInt(m["total_system_memory"], 10, 64)
	f := Finding{Check: "memory"}
	if maxm == 0 {
		f.Verdict = Warn
		f.Detail = fmt.Sprintf("no maxmemory: %s used; Redis grows until the machine runs out, and the kernel may then kill it", mib(used))
		if total > 0 {
			f.Detail = fmt.Sprintf("no maxmemory: %s used of the machine's %s; Redis grows until the machine runs out, and the kernel may then kill it", mib(used), mib(total))
		}
		f.Fix = "set maxmemory below the machine's memory (with noeviction a full Redis refuses enqueues: they fail, nothing is lost)"
		return f
	}
	free := float64(maxm-used) / float64(maxm)
	f.Detail = fmt.Sprintf("%s used of maxmemory %s (%.0f%% free)", mib(used), mib(maxm), 100*free)
	switch {
	case free < 0.10:
		f.Verdict = Warn
		f.Fix = "raise maxmemory or drain the queues: at maxmemory every enqueue fails (noeviction) until tasks are delivered"
	default:
		f.Verdict = OK
	}
	return f
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// replication checks the master's replicas against how writes are
// acknowledged.
func replication(ctx context.Context, c *redis.Client, m map[string]string, o Options, automatic string) Finding {
	f := Finding{Check: "replication"}
	if m["role"] != "master" {
		f.Verdict, f.Detail = Fails, fmt.Sprintf("REDIS_URL reaches a %s, not a master: writes are refused", m["role"])
		f.Fix = "point REDIS_URL at the master (redis-sentinel:// finds it after a failover)"
		return f
	}
	n, _ := strconv.Atoi(m["connected_slaves"])
	var lagging []string
	for i := 0; i < n; i++ {
		fields := map[string]string{}
		for _, kv := range strings.Split(m["slave"+strconv.Itoa(i)], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				fields[k] = v
			}
		}
		if lag, _ := strconv.Atoi(fields["lag"]); fields["state"] != "online" || lag > 10 {
			lagging = append(lagging, fmt.Sprintf("%s:%s (%s, lag %ss)", fields["ip"], fields["port"], fields["state"], fields["lag"]))
		}
	}
	minRep := 0
	if v, ok := configGet(ctx, c, "min-replicas-to-write"); ok {
		minRep, _ = strconv.Atoi(v)
	}
	ack := o.AckReplicas
	desc := fmt.Sprintf("%d replica(s) connected; CIOQ_REDIS_ACK_REPLICAS=%d; min-replicas-to-write %d", n, ack, minRep)
	if len(lagging) > 0 {
		desc += "; not in sync: " + strings.Join(lagging, ", ")
	}
	f.Detail = desc
	switch {
	case ack > n:
		f.Verdict = Fails
		f.Detail += fmt.Sprintf(": every acknowledged write waits CIOQ_REDIS_ACK_TIMEOUT for %d replicas and fails (only %d connected)", ack, n)
		f.Fix = fmt.Sprintf("set CIOQ_REDIS_ACK_REPLICAS to at most %d, or bring the replicas back", n)
	case n == 0 && automatic != "":
		f.Verdict = Warn
		f.Detail += fmt.Sprintf(": no replica, so %s cannot fail over; the master's disk is all there is", automatic)
		f.Fix = "add a replica (and set CIOQ_REDIS_ACK_REPLICAS to the number of replicas)"
	case n == 0:
		f.Verdict = OK
		f.Detail += ": a single server; what its persistence keeps is all there is"
	case ack == 0 && minRep == 0 && automatic != "":
		f.Verdict = LosesData
		f.Detail += fmt.Sprintf(": Redis acknowledges a write before any replica has it, and a %s failover promotes a replica without the last writes (measured: 48 of 1,000 enqueues at 50/s, and up to 52 of 400 in the test suite, lost in one Sentinel failover, the producer seeing no error)", automatic)
		f.Fix = fmt.Sprintf("CIOQ_REDIS_ACK_REPLICAS=%d (every replica) on every cioq process; or min-replicas-to-write 1 on the master, which narrows the window without closing it", n)
	case ack == 0 && minRep == 0:
		f.Verdict = Warn
		f.Detail += ": Redis acknowledges a write before any replica has it; a manual failover to a replica loses the last writes"
		f.Fix = fmt.Sprintf("CIOQ_REDIS_ACK_REPLICAS=%d on every cioq process before relying on a replica", n)
	case ack == 0:
		f.Verdict = Warn
		f.Detail += ": the master refuses writes without a replica in sync (NOREPLICAS) but still acknowledges a write before a replica has it; a failover can lose the last ones (the replica that is not promoted may hold them and drop them)"
		f.Fix = fmt.Sprintf("CIOQ_REDIS_ACK_REPLICAS=%d (every replica) closes the window", n)
	case ack < n && automatic == "Sentinel":
		f.Verdict = Warn
		f.Detail += ": a write one replica confirmed can still be lost when the sentinels promote another one (the confirming replica drops it when it follows the new master; measured in the failover test)"
		f.Fix = fmt.Sprintf("CIOQ_REDIS_ACK_REPLICAS=%d (every replica), accepting that writes then fail while a replica is down", n)
	default:
		f.Verdict = OK
		f.Detail += ": every acknowledged write is on the replicas"
	}
	if f.Verdict == OK && len(lagging) > 0 {
		f.Verdict = Warn
		f.Fix = "check the lagging replicas (INFO replication on them)"
	}
	return f
}

// sentinelFindings asks each sentinel about the master.
func sentinelFindings(ctx context.Context, o asynq.RedisFailoverClientOpt) []Finding {
	f := Finding{Check: "sentinel"}
	reachable, masters := 0, map[string]bool{}
	var quorum string
	var quorumErr error
	for _, addr := range o.SentinelAddrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword,
			DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, TLSConfig: o.TLSConfig})
		a, err := sc.GetMasterAddrByName(ctx, o.MasterName).Result()
		if err == nil && len(a) == 2 {
			reachable++
			masters[a[0]+":"+a[1]] = true
			if quorum == "" {
				quorum, quorumErr = sc.CkQuorum(ctx, o.MasterName).Result()
			}
		}
		sc.Close()
	}
	f.Detail = fmt.Sprintf("%d of %d sentinels answer for %q", reachable, len(o.SentinelAddrs), o.MasterName)
	switch {
	case reachable == 0:
		f.Verdict = Fails
		f.Detail += ": no sentinel names the master"
		f.Fix = "check the sentinel addresses and ?master= in REDIS_URL"
	case len(masters) > 1:
		f.Verdict = Warn
		f.Detail += fmt.Sprintf(": they disagree on the master (%d addresses): a failover is running, or the group is split", len(masters))
		f.Fix = "run doctor again after the failover; if it persists, check the sentinels' configuration"
	case quorumErr != nil:
		f.Verdict = Warn
		f.Detail += ": " + redactErr(quorumErr)
		f.Fix = "run at least three sentinels, on separate machines, so that a majority can authorise a failover"
	case len(o.SentinelAddrs) < 3 || reachable < len(o.SentinelAddrs):
		f.Verdict = Warn
		f.Detail += "; " + quorum
		f.Fix = "list at least three sentinels in REDIS_URL, and keep them all reachable"
	default:
		f.Verdict = OK
		f.Detail += "; " + quorum
	}
	return []Finding{f}
}

// clusterFindings checks the cluster's state and that the slot of every
// queue (and of the dead-letter store) has a replica.
func clusterFindings(ctx context.Context, cc *redis.ClusterClient, o Options) []Finding {
	st := Finding{Check: "cluster"}
	ci, err := cc.ClusterInfo(ctx).Result()
	if err != nil {
		st.Verdict, st.Detail, st.Fix = Fails, "CLUSTER INFO: "+redactErr(err), "check that REDIS_URL names cluster nodes"
		return []Finding{st}
	}
	state := ""
	for _, l := range strings.Split(ci, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "cluster_state:"); ok {
			state = v
		}
	}
	if state != "ok" {
		st.Verdict, st.Detail, st.Fix = Fails, "cluster_state:"+state+": some slots are not served", "fix the cluster (redis-cli --cluster check)"
	} else {
		st.Verdict, st.Detail = OK, "cluster_state:ok"
	}
	shards, err := clusterShards(ctx, cc)
	if err != nil {
		return []Finding{st, {Check: "queue-slots", Verdict: Warn, Detail: "CLUSTER NODES: " + redactErr(err), Fix: "allow CLUSTER NODES for cioq's Redis user"}}
	}
	queues := queueNames(ctx, cc, o)
	slotOf := func(key string) (int64, shard, error) {
		s, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			return 0, shard{}, err
		}
		for _, sh := range shards {
			for _, r := range sh.slots {
				if r[0] <= s && s <= r[1] {
					return s, sh, nil
				}
			}
		}
		return s, shard{}, errors.New("no master serves it")
	}
	var bare, lines []string
	byNode := map[string][]string{}
	check := func(label, key string) {
		s, sh, err := slotOf(key)
		if err != nil {
			bare = append(bare, fmt.Sprintf("%s (%v)", label, err))
			return
		}
		byNode[sh.addr] = append(byNode[sh.addr], label)
		if sh.replicas == 0 {
			bare = append(bare, fmt.Sprintf("%s (slot %d on %s)", label, s, sh.addr))
		}
	}
	for _, q := range queues {
		label := "queue " + q
		if l, i, ok := qshard.Parse(q); ok {
			label = fmt.Sprintf("queue %s shard %d", l, i)
		}
		check(label, keys.AsynqPending(q))
	}
	check("dead letters", keys.DeadLetterIndex)
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		lines = append(lines, n+": "+strings.Join(byNode[n], ", "))
	}
	qs := Finding{Check: "queue-slots", Detail: "each queue lives in one hash slot, so on one master (whose Redis thread is the queue's ceiling): " + strings.Join(lines, "; ")}
	if len(bare) > 0 {
		qs.Verdict = LosesData
		qs.Detail += "; without a replica: " + strings.Join(bare, ", ")
		qs.Fix = "give every master a replica (redis-cli --cluster add-node --cluster-slave), so a node's loss does not lose its queues"
	} else {
		qs.Verdict = OK
	}
	return []Finding{st, qs}
}

// shard is a master of a cluster, its slots and its healthy replicas.
type shard struct {
	id, addr string
	slots    [][2]int64
	replicas int
}

// clusterShards reads CLUSTER NODES (every Redis version has it; CLUSTER
// SLOTS leaves out replicas that have not reported an offset yet).
// Replicas flagged fail, fail?, handshake or noaddr, or disconnected, do
// not count.
func clusterShards(ctx context.Context, cc *redis.ClusterClient) ([]shard, error) {
	txt, err := cc.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	byID := map[string]*shard{}
	type rep struct{ master string }
	var reps []rep
	for _, line := range strings.Split(strings.TrimSpace(txt), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		id, addr, flags, masterID, link := f[0], f[1], f[2], f[3], f[7]
		if i := strings.IndexAny(addr, "@,"); i >= 0 {
			addr = addr[:i]
		}
		bad := link != "connected"
		for _, fl := range strings.Split(flags, ",") {
			switch fl {
			case "fail", "fail?", "handshake", "noaddr":
				bad = true
			}
		}
		switch {
		case strings.Contains(flags, "master"):
			sh := &shard{id: id, addr: addr}
			for _, r := range f[8:] {
				if strings.HasPrefix(r, "[") {
					continue // a slot being migrated
				}
				lo, hi, ok := strings.Cut(r, "-")
				if !ok {
					hi = lo
				}
				a, err1 := strconv.ParseInt(lo, 10, 64)
				b, err2 := strconv.ParseInt(hi, 10, 64)
				if err1 == nil && err2 == nil {
					sh.slots = append(sh.slots, [2]int64{a, b})
				}
			}
			byID[id] = sh
		case strings.Contains(flags, "slave") && !bad:
			reps = append(reps, rep{master: masterID})
		}
	}
	for _, r := range reps {
		if sh := byID[r.master]; sh != nil {
			sh.replicas++
		}
	}
	out := make([]shard, 0, len(byID))
	for _, sh := range byID {
		out = append(out, *sh)
	}
	return out, nil
}

// logicalQueues are cioq's three queues and Options.Queues' logical
// queues, sorted.
func logicalQueues(o Options) []string {
	set := map[string]bool{tasks.QueueCritical: true, tasks.QueueDefault: true, tasks.QueueBulk: true}
	for _, q := range o.Queues {
		set[qshard.Logical(q)] = true
	}
	out := make([]string, 0, len(set))
	for q := range set {
		out = append(out, q)
	}
	sort.Strings(out)
	return out
}

// queueNames are the queues to check: cioq's three and Options.Queues
// (their shards, with Options.Shards), and asynq's list of the queues
// that ever had a task, sorted.
func queueNames(ctx context.Context, rdb redis.UniversalClient, o Options) []string {
	set := map[string]bool{}
	for _, q := range logicalQueues(o) {
		for _, name := range qshard.Names(q, o.Shards) {
			set[name] = true
		}
	}
	if qs, err := rdb.SMembers(ctx, keys.AsynqQueues).Result(); err == nil {
		for _, q := range qs {
			set[q] = true
		}
	}
	for _, q := range o.Queues {
		set[q] = true
	}
	out := make([]string, 0, len(set))
	for q := range set {
		out = append(out, q)
	}
	sort.Strings(out)
	return out
}

// archiveFindings compares each queue's archive with asynq's cap.
func archiveFindings(ctx context.Context, rdb redis.UniversalClient, o Options) []Finding {
	insp := asynq.NewInspectorFromRedisClient(rdb)
	f := Finding{Check: "archive", Verdict: OK}
	var parts, full, order []string
	byLogical := map[string]int{}
	for _, q := range queueNames(ctx, rdb, o) {
		qi, err := insp.GetQueueInfo(q)
		if err != nil {
			continue // a queue that never had a task
		}
		l := qshard.Logical(q) // a logical queue's shards are summed
		if _, seen := byLogical[l]; !seen {
			order = append(order, l)
		}
		byLogical[l] += qi.Archived
		if qi.Archived >= ArchiveCap*9/10 {
			full = append(full, q)
		}
	}
	sort.Strings(order)
	for _, l := range order {
		parts = append(parts, fmt.Sprintf("%s %d", l, byLogical[l]))
	}
	if len(parts) == 0 {
		parts = append(parts, "no queue has tasks yet")
	}
	f.Detail = fmt.Sprintf("archived tasks per queue: %s (asynq keeps about %s per asynq queue, each shard's own, for 90 days at most; cioq's dead-letter store keeps every dead letter)", strings.Join(parts, ", "), "10,000")
	if len(full) > 0 {
		f.Verdict = Warn
		f.Detail += "; near the cap: " + strings.Join(full, ", ") + ": the dashboard's archive drops the oldest, `cioq dlq list` still has them all"
		f.Fix = "work through the dead letters: cioq dlq stats, then retry, delete or purge them"
	}
	return []Finding{f}
}

// redactErr is an error's text without anything that looks like a URL's
// credentials.
func redactErr(err error) string {
	s := err.Error()
	if strings.Contains(s, "@") {
		return "(error text withheld: it may contain credentials)"
	}
	return s
}

// Credentials turns the worker's credential probes (worker.Worker.
// ProbeCredentials) into findings: refused credentials fail; an
// inconclusive probe (a 5xx, a timeout) or one not made yet is a warning;
// an API that cannot be probed (Pipelines, a service-account App token) is
// ok with the reason.
func Credentials(checks []worker.Check) []Finding {
	var out []Finding
	for _, c := range checks {
		detail, err := c.Run()
		f := Finding{Check: c.Name, Verdict: OK, Detail: detail}
		switch {
		case err != nil:
			f.Verdict, f.Detail = Fails, err.Error()
			f.Fix = "fix the key (or region, or base URL) of that workspace and API: its tasks are kept, not delivered, until then"
		case strings.Contains(detail, "inconclusive") || strings.HasPrefix(detail, "not probed yet"):
			f.Verdict = Warn
			f.Fix = "run doctor again: Customer.io did not answer the probe conclusively"
		}
		out = append(out, f)
	}
	return out
}

// shardFindings checks, on a Cluster, where each logical queue's shards
// (Options.Shards) land: whether they cover every master (each master's
// Redis thread then serves a part of every queue), and which queues of
// another shard count still hold tasks.
func shardFindings(ctx context.Context, cc *redis.ClusterClient, o Options) Finding {
	f := Finding{Check: "queue-shards"}
	masters, err := clusterShards(ctx, cc)
	if err != nil {
		f.Verdict, f.Detail, f.Fix = Warn, "CLUSTER NODES: "+redactErr(err), "allow CLUSTER NODES for cioq's Redis user"
		return f
	}
	serving := 0
	for _, m := range masters {
		if len(m.slots) > 0 {
			serving++
		}
	}
	masterOf := func(slot int) string {
		for _, m := range masters {
			for _, r := range m.slots {
				if r[0] <= int64(slot) && int64(slot) <= r[1] {
					return m.addr
				}
			}
		}
		return "no master"
	}
	n := max(o.Shards, 1)
	want := min(n, serving)
	var lines, short []string
	for _, q := range logicalQueues(o) {
		on := map[string]bool{}
		var where []string
		for _, name := range qshard.Names(q, n) {
			m := masterOf(qshard.QueueSlot(name))
			on[m] = true
			where = append(where, fmt.Sprintf("%s slot %d on %s", name, qshard.QueueSlot(name), m))
		}
		lines = append(lines, fmt.Sprintf("%s: %d of %d masters (%s)", q, len(on), serving, strings.Join(where, ", ")))
		if len(on) < want {
			short = append(short, q)
		}
	}
	f.Detail = fmt.Sprintf("CIOQ_QUEUE_SHARDS=%d: ", n) + strings.Join(lines, "; ")
	if strays, err := worker.StrayQueues(ctx, cc, logicalQueues(o), n); err == nil && len(strays) > 0 {
		var s []string
		for q, held := range strays {
			s = append(s, fmt.Sprintf("%s %d", q, held))
		}
		sort.Strings(s)
		f.Detail += "; queues of another shard count still holding tasks (workers started now serve them until empty): " + strings.Join(s, ", ")
	}
	switch {
	case len(short) > 0:
		f.Verdict = Warn
		f.Fix = "the masters' slot ranges are not the even split the shard names are chosen for: rebalance the slots (redis-cli --cluster rebalance), or use a shard count that is a multiple of the masters"
	case n < serving:
		f.Verdict = Warn
		f.Fix = fmt.Sprintf("set CIOQ_QUEUE_SHARDS=%d on every producer and worker, so each master's Redis thread serves a part of every queue (see the README's Running on Sentinel or Cluster)", serving)
	default:
		f.Verdict = OK
	}
	return f
}
