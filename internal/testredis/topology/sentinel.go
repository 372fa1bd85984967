package topology

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels know the group's master by.
const MasterName = "cioq"

// Sentinel is a Sentinel group: a master, two replicas and three
// sentinels with a quorum of two.
type Sentinel struct {
	group
	// Data are the master (first, at start) and its replicas.
	Data []*Node
	// Sentinels are the three sentinels.
	Sentinels []*Node
}

// NewSentinel starts the group and waits until the replicas are in sync
// and every sentinel knows both replicas and the two other sentinels (a
// failover needs both).
func NewSentinel() (*Sentinel, error) {
	g, err := newGroup("sentinel")
	if err != nil {
		return nil, err
	}
	s := &Sentinel{group: *g}
	fail := func(err error) (*Sentinel, error) { s.Close(); return nil, err }
	master, err := startNode(s.root, nil, false, false)
	if err != nil {
		return fail(err)
	}
	s.add(master)
	s.Data = append(s.Data, master)
	for i := 0; i < 2; i++ {
		rep, err := startNode(s.root, []string{"replicaof 127.0.0.1 " + strconv.Itoa(master.Port)}, false, false)
		if err != nil {
			return fail(err)
		}
		s.add(rep)
		s.Data = append(s.Data, rep)
	}
	for _, rep := range s.Data[1:] {
		c := rep.Client()
		err := poll(startTimeout, func(ctx context.Context) (bool, error) { return replicaInSync(ctx, c) })
		c.Close()
		if err != nil {
			return fail(fmt.Errorf("replica %s: %w\n%s", rep.Addr, err, s.logs()))
		}
	}
	mc := master.Client()
	err = poll(startTimeout, func(ctx context.Context) (bool, error) { return replicasOnline(ctx, mc, len(s.Data)-1) })
	mc.Close()
	if err != nil {
		return fail(fmt.Errorf("master %s: replicas not online: %w\n%s", master.Addr, err, s.logs()))
	}
	conf := []string{
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", MasterName, master.Port),
		"sentinel down-after-milliseconds " + MasterName + " 2000",
		"sentinel failover-timeout " + MasterName + " 20000",
		"sentinel parallel-syncs " + MasterName + " 2",
	}
	for i := 0; i < 3; i++ {
		n, err := startNode(s.root, conf, true, false)
		if err != nil {
			return fail(err)
		}
		s.add(n)
		s.Sentinels = append(s.Sentinels, n)
	}
	for _, n := range s.Sentinels {
		c := n.Client()
		err := poll(startTimeout, func(ctx context.Context) (bool, error) {
			reps, err := c.Do(ctx, "SENTINEL", "REPLICAS", MasterName).Slice()
			if err != nil || len(reps) < 2 {
				return false, nil
			}
			for _, r := range reps {
				if f := field(r, "flags"); f != "slave" {
					return false, nil
				}
			}
			sens, err := c.Do(ctx, "SENTINEL", "SENTINELS", MasterName).Slice()
			return err == nil && len(sens) >= 2, nil
		})
		c.Close()
		if err != nil {
			return fail(fmt.Errorf("sentinel %s does not know the group: %w\n%s", n.Addr, err, s.logs()))
		}
	}
	return s, nil
}

// StartSentinel is NewSentinel for a test (see the package doc).
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	return tb(t, NewSentinel)
}

// field returns a field of a SENTINEL REPLICAS entry (a flat list of
// names and values, or a map in RESP3).
func field(entry any, name string) string {
	switch e := entry.(type) {
	case []any:
		for i := 0; i+1 < len(e); i += 2 {
			if k, _ := e[i].(string); k == name {
				v, _ := e[i+1].(string)
				return v
			}
		}
	case map[any]any:
		v, _ := e[name].(string)
		return v
	case map[string]any:
		v, _ := e[name].(string)
		return v
	}
	return ""
}

// URL returns the redis-sentinel:// URL of the group, database 0.
func (s *Sentinel) URL() string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "/0?master=" + MasterName
}

// MasterAddr asks the first sentinel that answers for the master's address.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, n := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second})
		a, err := c.GetMasterAddrByName(ctx, MasterName).Result()
		c.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names the master: %v", last)
}

// Node returns the data node at addr (nil if none).
func (s *Sentinel) Node(addr string) *Node {
	for _, n := range s.Data {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Failover runs SENTINEL FAILOVER and returns the old and the new
// master's addresses once every sentinel names the new master and it
// answers as master. It does not wait for the old master to become a
// replica (WaitReplicas does).
func (s *Sentinel) Failover(ctx context.Context) (old, promoted string, err error) {
	if old, err = s.MasterAddr(ctx); err != nil {
		return "", "", err
	}
	c := s.Sentinels[0].Client()
	defer c.Close()
	err = poll(startTimeout, func(ctx context.Context) (bool, error) {
		err := c.Do(ctx, "SENTINEL", "FAILOVER", MasterName).Err()
		if err == nil {
			return true, nil
		}
		if strings.Contains(err.Error(), "INPROG") || strings.Contains(err.Error(), "NOGOODSLAVE") {
			return false, nil // a failover is running, or the replicas are not ready yet
		}
		return false, err
	})
	if err != nil {
		return "", "", fmt.Errorf("SENTINEL FAILOVER: %w", err)
	}
	err = poll(startTimeout, func(ctx context.Context) (bool, error) {
		var addr string
		for _, n := range s.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second})
			a, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
			sc.Close()
			if err != nil || len(a) != 2 {
				return false, nil
			}
			got := net.JoinHostPort(a[0], a[1])
			if got == old || (addr != "" && got != addr) {
				return false, nil
			}
			addr = got
		}
		n := s.Node(addr)
		if n == nil {
			return false, fmt.Errorf("sentinels name an unknown master %s", addr)
		}
		nc := n.Client()
		defer nc.Close()
		m, err := Info(ctx, nc, "replication")
		if err != nil || m["role"] != "master" {
			return false, nil
		}
		promoted = addr
		return true, nil
	})
	if err != nil {
		return "", "", fmt.Errorf("failover did not complete: %w\n%s", err, s.logs())
	}
	return old, promoted, nil
}

// WaitReplicas waits until every data node but the master at addr is its
// replica, in sync.
func (s *Sentinel) WaitReplicas(addr string) error {
	for _, n := range s.Data {
		if n.Addr == addr {
			continue
		}
		c := n.Client()
		err := poll(startTimeout, func(ctx context.Context) (bool, error) {
			m, err := Info(ctx, c, "replication")
			if err != nil {
				return false, nil
			}
			host, port, _ := net.SplitHostPort(addr)
			return m["role"] == "slave" && m["master_host"] == host && m["master_port"] == port &&
				m["master_link_status"] == "up" && m["master_sync_in_progress"] == "0", nil
		})
		c.Close()
		if err != nil {
			return fmt.Errorf("%s is not a replica of %s in sync: %w\n%s", n.Addr, addr, err, s.logs())
		}
	}
	mc := redis.NewClient(&redis.Options{Addr: addr})
	defer mc.Close()
	if err := poll(startTimeout, func(ctx context.Context) (bool, error) { return replicasOnline(ctx, mc, len(s.Data)-1) }); err != nil {
		return fmt.Errorf("master %s: replicas not online: %w\n%s", addr, err, s.logs())
	}
	return nil
}
