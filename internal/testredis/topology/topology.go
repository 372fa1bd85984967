// Package topology starts real Redis topologies for tests, from the same
// redis-server binary the rest of the test suite uses: a master with
// replicas (Replicated), a Sentinel group (master, two replicas, three
// sentinels, each sentinel being `redis-server <conf> --sentinel`, since
// distributions do not always ship the redis-sentinel link) and a Redis
// Cluster (three masters with one replica each, joined with CLUSTER MEET,
// CLUSTER ADDSLOTSRANGE and CLUSTER REPLICATE).
//
// Every process runs in the foreground as a child of the test binary, with
// its files in a temporary directory, and is stopped (SIGTERM, then SIGKILL)
// when the test, or Close, ends. Start-up waits on signals Redis gives
// (PING, INFO replication, SENTINEL replicas, CLUSTER INFO), each bounded.
// Without redis-server on the PATH the Start functions skip the test,
// saying so.
//
// Ports: by default free ports the system hands out (below 55536, so that
// a cluster node's bus port, port+10000, exists too). Set
// CIOQ_TEST_TOPOLOGY_PORTS=LOW-HIGH (e.g. 6482-6499) to keep every process
// within a range; cluster bus ports are then LOW+10000 to HIGH+10000.
package topology

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvPorts is the variable that restricts the ports the topologies use.
const EnvPorts = "CIOQ_TEST_TOPOLOGY_PORTS"

// startTimeout bounds each wait of start-up (a process answering, a
// replica in sync, the sentinels knowing each other, the cluster ok).
const startTimeout = 30 * time.Second

// ErrNoRedis is returned by the New functions when redis-server is not
// on the PATH.
var ErrNoRedis = errors.New("redis-server is not installed (apt-get install redis-server): topology tests need it")

// Node is one redis-server process (a data node or a sentinel).
type Node struct {
	// Addr is its host:port.
	Addr string
	// Port is its port.
	Port int

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Client returns a new go-redis client of the node (the caller closes it).
func (n *Node) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second, ReadTimeout: 3 * time.Second, MaxRetries: -1})
}

// Log returns the end of the node's log, for failure messages.
func (n *Node) Log() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// Stop stops the process: SIGTERM, SIGKILL after 5 s. It returns once the
// process is gone.
func (n *Node) Stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// Pause stops the process without ending it (SIGSTOP): a paused replica
// keeps its connection to the master but acknowledges nothing. Resume
// continues it; the test's end resumes it too, before stopping it.
func (n *Node) Pause() error { return n.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (n *Node) Resume() error { return n.cmd.Process.Signal(syscall.SIGCONT) }

// Stopped reports whether the process has exited.
func (n *Node) Stopped() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// ports hands out ports.
var ports struct {
	mu   sync.Mutex
	next int // within the range, when one is set
}

// free reports whether a port (and, for a cluster node, its bus port) can
// be listened on now.
func free(port int, bus bool) bool {
	for _, p := range []int{port, port + 10000} {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ln.Close()
		if !bus {
			break
		}
	}
	return true
}

// portRange reads CIOQ_TEST_TOPOLOGY_PORTS.
func portRange() (lo, hi int, set bool, err error) {
	v := strings.TrimSpace(os.Getenv(EnvPorts))
	if v == "" {
		return 0, 0, false, nil
	}
	a, b, ok := strings.Cut(v, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi < lo || hi > 55535 {
		return 0, 0, false, fmt.Errorf("%s=%q: want LOW-HIGH, e.g. 6482-6499 (at most 55535)", EnvPorts, v)
	}
	return lo, hi, true, nil
}

// allocPort returns a port that is free now (with its bus port, for
// cluster nodes).
func allocPort(bus bool) (int, error) {
	lo, hi, set, err := portRange()
	if err != nil {
		return 0, err
	}
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if set {
		if ports.next < lo || ports.next > hi {
			ports.next = lo
		}
		for i := 0; i <= hi-lo; i++ {
			p := ports.next
			ports.next++
			if ports.next > hi {
				ports.next = lo
			}
			if free(p, bus) {
				return p, nil
			}
		}
		return 0, fmt.Errorf("no free port left in %s=%d-%d", EnvPorts, lo, hi)
	}
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p <= 55535 && free(p, bus) {
			return p, nil
		}
	}
	return 0, errors.New("found no free port below 55536")
}

// startNode starts redis-server with a configuration file of conf's lines
// (plus port, bind, dir, logfile and no persistence) in its own directory
// under root, and waits until it answers PING.
func startNode(root string, conf []string, sentinel, bus bool) (*Node, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	port, err := allocPort(bus)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, strconv.Itoa(port))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lines := append([]string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"dir " + dir,
		"logfile " + filepath.Join(dir, "redis.log"),
		"daemonize no",
		"protected-mode no",
	}, conf...)
	if !sentinel {
		// No persistence; a replica's full sync starts at once (Redis
		// waits 5 s by default for more replicas to share it).
		lines = append(lines, `save ""`, "appendonly no", "repl-diskless-sync-delay 0")
	}
	path := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	args := []string{path}
	if sentinel {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	n := &Node{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, dir: dir, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(n.done) }()
	c := n.Client()
	defer c.Close()
	err = poll(startTimeout, func(ctx context.Context) (bool, error) {
		if n.Stopped() {
			return false, fmt.Errorf("redis-server on port %d exited:\n%s", port, n.Log())
		}
		return c.Ping(ctx).Err() == nil, nil
	})
	if err != nil {
		n.Stop()
		return nil, fmt.Errorf("redis-server on port %d: %w", port, err)
	}
	return n, nil
}

// poll calls cond every 50 ms until it reports true, returns an error, or
// timeout passes. Each call gets a context of at most a second.
func poll(timeout time.Duration, cond func(ctx context.Context) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok, err := cond(ctx)
		cancel()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Info returns the fields of INFO section of the node's client c.
func Info(ctx context.Context, c redis.UniversalClient, section string) (map[string]string, error) {
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok {
			m[k] = v
		}
	}
	return m, nil
}

// replicaInSync reports whether the node is a replica whose link to its
// master is up and whose initial sync is done.
func replicaInSync(ctx context.Context, c *redis.Client) (bool, error) {
	m, err := Info(ctx, c, "replication")
	if err != nil {
		return false, nil
	}
	return m["role"] == "slave" && m["master_link_status"] == "up" && m["master_sync_in_progress"] == "0", nil
}

// group is a set of processes stopped together.
type group struct {
	root  string
	nodes []*Node
}

func (g *group) add(n *Node) { g.nodes = append(g.nodes, n) }

// Close stops every process of the topology, in parallel.
func (g *group) Close() {
	var wg sync.WaitGroup
	for _, n := range g.nodes {
		wg.Add(1)
		go func(n *Node) { defer wg.Done(); n.Stop() }(n)
	}
	wg.Wait()
	if g.root != "" {
		_ = os.RemoveAll(g.root)
	}
}

// logs returns every node's log tail, for a failure message.
func (g *group) logs() string {
	var b strings.Builder
	for _, n := range g.nodes {
		fmt.Fprintf(&b, "--- %s ---\n%s\n", n.Addr, n.Log())
	}
	return b.String()
}

func newGroup(name string) (*group, error) {
	root, err := os.MkdirTemp("", "cioq-topology-"+name+"-")
	if err != nil {
		return nil, err
	}
	return &group{root: root}, nil
}

// tb runs a New function for a test: skips without redis-server, fails on
// another error, and closes the topology when the test ends.
func tb[T interface{ Close() }](t testing.TB, newFn func() (T, error)) T {
	t.Helper()
	v, err := newFn()
	if errors.Is(err, ErrNoRedis) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// Replicated is a master with replicas.
type Replicated struct {
	group
	// Master is the master; Replicas its replicas, in sync at start.
	Master   *Node
	Replicas []*Node
}

// NewReplicated starts a master and n replicas and waits until every
// replica is in sync.
func NewReplicated(n int) (*Replicated, error) {
	g, err := newGroup("replicated")
	if err != nil {
		return nil, err
	}
	r := &Replicated{group: *g}
	fail := func(err error) (*Replicated, error) { r.Close(); return nil, err }
	if r.Master, err = startNode(r.root, nil, false, false); err != nil {
		return fail(err)
	}
	r.add(r.Master)
	for i := 0; i < n; i++ {
		rep, err := startNode(r.root, []string{"replicaof 127.0.0.1 " + strconv.Itoa(r.Master.Port)}, false, false)
		if err != nil {
			return fail(err)
		}
		r.add(rep)
		r.Replicas = append(r.Replicas, rep)
	}
	for _, rep := range r.Replicas {
		c := rep.Client()
		err := poll(startTimeout, func(ctx context.Context) (bool, error) { return replicaInSync(ctx, c) })
		c.Close()
		if err != nil {
			return fail(fmt.Errorf("replica %s: %w\n%s", rep.Addr, err, r.logs()))
		}
	}
	// The replica reports itself in sync a moment before the master moves
	// it from wait_bgsave to online: wait for the master's view too.
	mc := r.Master.Client()
	err = poll(startTimeout, func(ctx context.Context) (bool, error) { return replicasOnline(ctx, mc, n) })
	mc.Close()
	if err != nil {
		return fail(fmt.Errorf("master %s: replicas not online: %w\n%s", r.Master.Addr, err, r.logs()))
	}
	return r, nil
}

// replicasOnline reports whether the master sees n replicas, each in state
// online.
func replicasOnline(ctx context.Context, c *redis.Client, n int) (bool, error) {
	return replicasOnlineProbe(ctx, c, n, "cioq-topology:ready")
}

// replicasOnlineProbe is replicasOnline writing probe (a key the master
// serves: on a Cluster, one in its slots).
func replicasOnlineProbe(ctx context.Context, c *redis.Client, n int, probe string) (bool, error) {
	m, err := Info(ctx, c, "replication")
	if err != nil {
		return false, nil
	}
	if m["connected_slaves"] != strconv.Itoa(n) {
		return false, nil
	}
	for i := 0; i < n; i++ {
		if !strings.Contains(m["slave"+strconv.Itoa(i)], "state=online") {
			return false, nil
		}
	}
	// After a diskless sync the master lists a replica online but streams
	// writes to it only once the replica first acknowledges (up to a
	// second later): a WAIT in that gap times out. Ready is when a write
	// (which leaves nothing behind) reaches every replica.
	conn := c.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, probe, "1", 0).Err(); err != nil {
		return false, nil
	}
	if err := conn.Del(ctx, probe).Err(); err != nil {
		return false, nil
	}
	got, err := conn.Do(ctx, "WAIT", n, 100).Int()
	return err == nil && got >= n, nil
}

// StartReplicated is NewReplicated for a test (see the package doc).
func StartReplicated(t testing.TB, n int) *Replicated {
	t.Helper()
	return tb(t, func() (*Replicated, error) { return NewReplicated(n) })
}

// URL returns a redis:// URL of the master, database 0.
func (r *Replicated) URL() string { return "redis://" + r.Master.Addr + "/0" }
