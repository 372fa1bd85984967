package topology

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters, each with one replica.
type Cluster struct {
	group
	// Masters hold the slots 0-5460, 5461-10922 and 10923-16383 at start;
	// Replicas[i] replicates Masters[i].
	Masters, Replicas []*Node
}

// slotRanges are the masters' slots.
var slotRanges = [3][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}

// NewCluster starts six cluster nodes, joins them (CLUSTER MEET), gives
// each master its slots and each replica its master, and waits until every
// node reports cluster_state:ok with all six nodes known and every replica
// is in sync.
func NewCluster() (*Cluster, error) {
	g, err := newGroup("cluster")
	if err != nil {
		return nil, err
	}
	c := &Cluster{group: *g}
	fail := func(err error) (*Cluster, error) { c.Close(); return nil, err }
	conf := []string{"cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000"}
	var nodes []*Node
	for i := 0; i < 6; i++ {
		n, err := startNode(c.root, conf, false, true)
		if err != nil {
			return fail(err)
		}
		c.add(n)
		nodes = append(nodes, n)
	}
	c.Masters, c.Replicas = nodes[:3], nodes[3:]
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	clients := make([]*redis.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = n.Client()
		defer clients[i].Close()
	}
	ids := make([]string, len(nodes))
	for i, cl := range clients {
		if ids[i], err = cl.ClusterMyID(ctx).Result(); err != nil {
			return fail(fmt.Errorf("CLUSTER MYID on %s: %w", nodes[i].Addr, err))
		}
		if i < 3 {
			// Distinct epochs from the start, as redis-cli --cluster create does.
			if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
				return fail(fmt.Errorf("CLUSTER SET-CONFIG-EPOCH on %s: %w", nodes[i].Addr, err))
			}
		}
	}
	for _, n := range nodes[1:] {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(n.Port)).Err(); err != nil {
			return fail(fmt.Errorf("CLUSTER MEET %s: %w", n.Addr, err))
		}
	}
	for i, r := range slotRanges {
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", r[0], r[1]).Err(); err != nil {
			return fail(fmt.Errorf("CLUSTER ADDSLOTSRANGE on %s: %w", nodes[i].Addr, err))
		}
	}
	// A replica can only be given a master it knows.
	for i, cl := range clients[3:] {
		master := ids[i]
		err := poll(startTimeout, func(ctx context.Context) (bool, error) {
			s, err := cl.ClusterNodes(ctx).Result()
			return err == nil && strings.Contains(s, master) && !strings.Contains(s, "handshake"), nil
		})
		if err != nil {
			return fail(fmt.Errorf("%s does not know its master: %w\n%s", nodes[3+i].Addr, err, c.logs()))
		}
		if err := cl.ClusterReplicate(ctx, master).Err(); err != nil {
			return fail(fmt.Errorf("CLUSTER REPLICATE on %s: %w", nodes[3+i].Addr, err))
		}
	}
	for i, cl := range clients {
		err := poll(startTimeout, func(ctx context.Context) (bool, error) {
			m, err := clusterInfo(ctx, cl)
			if err != nil || m["cluster_state"] != "ok" || m["cluster_known_nodes"] != "6" || m["cluster_slots_ok"] != "16384" {
				return false, nil
			}
			if i >= 3 {
				return replicaInSync(ctx, cl)
			}
			return true, nil
		})
		if err != nil {
			return fail(fmt.Errorf("cluster node %s not ready: %w\n%s", nodes[i].Addr, err, c.logs()))
		}
	}
	// Every node knows every master's replica (gossip spreads it a moment
	// after CLUSTER REPLICATE), and each master streams writes to it.
	for i, cl := range clients {
		err := poll(startTimeout, func(ctx context.Context) (bool, error) {
			s, err := cl.ClusterNodes(ctx).Result()
			if err != nil || strings.Contains(s, "handshake") || strings.Contains(s, "fail") {
				return false, nil
			}
			return strings.Count(s, "slave") == 3, nil
		})
		if err != nil {
			return fail(fmt.Errorf("cluster node %s does not see 3 replicas: %w\n%s", nodes[i].Addr, err, c.logs()))
		}
		if i >= 3 {
			continue
		}
		probe, err := keyInSlots(ctx, cl, slotRanges[i])
		if err != nil {
			return fail(err)
		}
		err = poll(startTimeout, func(ctx context.Context) (bool, error) { return replicasOnlineProbe(ctx, cl, 1, probe) })
		if err != nil {
			return fail(fmt.Errorf("master %s: replica not online: %w\n%s", nodes[i].Addr, err, c.logs()))
		}
	}
	return c, nil
}

// keyInSlots returns a key whose hash slot is in r.
func keyInSlots(ctx context.Context, c *redis.Client, r [2]int) (string, error) {
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("cioq-topology:ready:%d", i)
		s, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			return "", fmt.Errorf("CLUSTER KEYSLOT: %w", err)
		}
		if int(s) >= r[0] && int(s) <= r[1] {
			return k, nil
		}
	}
	return "", fmt.Errorf("no key found in slots %d-%d", r[0], r[1])
}

// StartCluster is NewCluster for a test (see the package doc).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return tb(t, NewCluster)
}

func clusterInfo(ctx context.Context, c *redis.Client) (map[string]string, error) {
	s, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Addrs returns the masters' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Masters))
	for i, n := range c.Masters {
		out[i] = n.Addr
	}
	return out
}

// URL returns the redis-cluster:// URL of the cluster (its masters).
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs(), ",") }

// Client returns a new go-redis cluster client (the caller closes it).
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// Flush empties every master (FLUSHALL; the replicas follow), so tests
// sharing a cluster start from nothing.
func (c *Cluster) Flush(ctx context.Context) error {
	for _, n := range c.Masters {
		cl := n.Client()
		err := cl.FlushAll(ctx).Err()
		cl.Close()
		if err != nil {
			return fmt.Errorf("FLUSHALL on %s: %w", n.Addr, err)
		}
	}
	return nil
}

// Failover promotes the replica of the master that serves key's slot
// with CLUSTER FAILOVER FORCE (the replica takes over without waiting for
// the master to hand over: its last writes may not have reached the
// replica, as when a master dies) and returns the old and the new
// master's addresses once every node reports cluster_state:ok with the
// promoted node serving the slot. Masters and Replicas are updated.
func (c *Cluster) Failover(ctx context.Context, key string) (old, promoted string, err error) {
	cc := c.Client()
	defer cc.Close()
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", "", err
	}
	i := -1
	for j, m := range c.Masters {
		mc := m.Client()
		owns, err := ownsSlot(ctx, mc, slot)
		mc.Close()
		if err != nil {
			return "", "", err
		}
		if owns {
			i = j
		}
	}
	if i < 0 {
		return "", "", fmt.Errorf("no master serves slot %d", slot)
	}
	rep := c.Replicas[i]
	rc := rep.Client()
	defer rc.Close()
	if err := rc.Do(ctx, "CLUSTER", "FAILOVER", "FORCE").Err(); err != nil {
		return "", "", fmt.Errorf("CLUSTER FAILOVER FORCE on %s: %w", rep.Addr, err)
	}
	err = poll(startTimeout, func(ctx context.Context) (bool, error) {
		if ok, err := ownsSlot(ctx, rc, slot); err != nil || !ok {
			return false, nil
		}
		for _, n := range append(append([]*Node{}, c.Masters...), c.Replicas...) {
			nc := n.Client()
			m, err := clusterInfo(ctx, nc)
			nc.Close()
			if err != nil || m["cluster_state"] != "ok" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return "", "", fmt.Errorf("failover to %s did not complete: %w\n%s", rep.Addr, err, c.logs())
	}
	old = c.Masters[i].Addr
	c.Masters[i], c.Replicas[i] = c.Replicas[i], c.Masters[i]
	return old, rep.Addr, nil
}

// ownsSlot reports whether the node c answers for serves slot as master.
func ownsSlot(ctx context.Context, c *redis.Client, slot int64) (bool, error) {
	m, err := Info(ctx, c, "replication")
	if err != nil {
		return false, err
	}
	if m["role"] != "master" {
		return false, nil
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return false, err
	}
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr == c.Options().Addr, nil
		}
	}
	return false, nil
}
