package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin is the cioq binary built once by TestMain; tests run it as a
// subprocess against real Redis and the sandbox.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cioq-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "cioq")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cioq:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// baseEnv is the environment every subprocess gets: nothing of the test
// process's cioq settings (the Makefile exports REDIS_URL) leaks in.
func baseEnv(kv map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	for k, v := range kv {
		env = append(env, k+"="+v)
	}
	return env
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary to completion (at most 60 s).
func cli(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = baseEnv(env)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cioq %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a long-running cioq subprocess (worker, serve).
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error
}

func start(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = baseEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start cioq %v: %v", args, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("cioq %v stderr:\n%s", args, p.stderr.String())
		}
	})
	return p
}

// waitStderr waits until the process's stderr contains s.
func (p *proc) waitStderr(s string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.stderr.String(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("process exited (%v) before logging %q; stderr:\n%s", p.err, s, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q on stderr within %s; stderr:\n%s", s, timeout, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code (failing after timeout).
func (p *proc) stop(timeout time.Duration) int {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(timeout)
}

func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("process did not exit within %s; stderr:\n%s", timeout, p.stderr.String())
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestHelpVersionAndUnknownCommand(t *testing.T) {
	t.Parallel()
	r := cli(t, nil, "", "help")
	if r.code != 0 {
		t.Fatalf("help: exit %d", r.code)
	}
	for _, c := range []string{"worker", "serve", "sandbox", "enqueue", "dlq", "demo", "version"} {
		if !strings.Contains(r.stdout, "  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, r.stdout)
		}
	}
	r = cli(t, nil, "", "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("unknown command: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = cli(t, nil, "")
	if r.code != 2 {
		t.Errorf("no command: exit %d", r.code)
	}
	for _, c := range []string{"worker", "serve", "sandbox", "enqueue", "demo", "version"} {
		r = cli(t, nil, "", c, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: cioq "+c) {
			t.Errorf("%s -h: exit %d, stdout:\n%s", c, r.code, r.stdout)
		}
	}
	r = cli(t, nil, "", "dlq", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "purge") {
		t.Errorf("dlq -h: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	// It printed "Usage: cioq dlq retry " and the dlq overview.
	r = cli(t, nil, "", "dlq", "retry", "-h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: cioq dlq retry ID|KEY...") || !strings.Contains(r.stdout, "--expires-in duration") {
		t.Errorf("dlq retry -h: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	r = cli(t, nil, "", "worker", "--bogus")
	if r.code != 2 {
		t.Errorf("bad flag: exit %d", r.code)
	}
	r = cli(t, nil, "", "version")
	if r.code != 0 || r.stdout != "cioq "+version()+"\n" {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
}

// Every missing or malformed setting stops start-up with exit 2 and a
// message naming it, never echoing a secret.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	const redis = "redis://127.0.0.1:1/0" // never dialled: config fails first
	creds := map[string]string{"REDIS_URL": redis, "CUSTOMERIO_SITE_ID": "site", "CUSTOMERIO_TRACK_API_KEY": "sekrit-track-key"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range creds {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"worker without REDIS_URL", with("REDIS_URL", ""), []string{"worker"}, "REDIS_URL"},
		{"worker with a bad REDIS_URL", with("REDIS_URL", "http://x"), []string{"worker"}, "REDIS_URL"},
		{"worker without credentials", map[string]string{"REDIS_URL": redis}, []string{"worker"}, "CUSTOMERIO_SITE_ID"},
		{"worker with site id only", with("CUSTOMERIO_TRACK_API_KEY", ""), []string{"worker"}, "CUSTOMERIO_TRACK_API_KEY"},
		{"bad region", with("CUSTOMERIO_REGION", "mars"), []string{"worker"}, "CUSTOMERIO_REGION"},
		{"bad track url", with("CUSTOMERIO_TRACK_URL", "ftp://x"), []string{"worker"}, "CUSTOMERIO_TRACK_URL"},
		{"bad concurrency", with("CIOQ_CONCURRENCY", "lots"), []string{"worker"}, "CIOQ_CONCURRENCY"},
		{"bad queues", with("CIOQ_QUEUES", "critical=x"), []string{"worker"}, "CIOQ_QUEUES"},
		{"missing workspaces file", with("CIOQ_WORKSPACES_FILE", "/nonexistent/ws.json"), []string{"worker"}, "CIOQ_WORKSPACES_FILE"},
		{"bad log level", with("CIOQ_LOG_LEVEL", "loud"), []string{"worker"}, "CIOQ_LOG_LEVEL"},
		{"bad log format", with("CIOQ_LOG_FORMAT", "xml"), []string{"worker"}, "CIOQ_LOG_FORMAT"},
		{"bad --queues", creds, []string{"worker", "--queues", "a=0"}, "--queues"},
		{"bad --concurrency", creds, []string{"worker", "--concurrency", "0"}, "--concurrency"},
		{"serve without dashboard credentials", map[string]string{"REDIS_URL": redis}, []string{"serve"}, "CIOQ_DASHBOARD_PASSWORD"},
		{"serve with half the dashboard credentials", map[string]string{"REDIS_URL": redis, "CIOQ_DASHBOARD_USER": "admin"}, []string{"serve"}, "CIOQ_DASHBOARD_PASSWORD"},
		{"serve without REDIS_URL", map[string]string{"CIOQ_DASHBOARD_USER": "a", "CIOQ_DASHBOARD_PASSWORD": "b"}, []string{"serve"}, "REDIS_URL"},
		{"serve with a trusted origin without a scheme", map[string]string{"REDIS_URL": redis, "CIOQ_DASHBOARD_USER": "a", "CIOQ_DASHBOARD_PASSWORD": "b",
			"CIOQ_DASHBOARD_TRUSTED_ORIGINS": "https://ok.example.com,cioq.example.com"}, []string{"serve"}, "CIOQ_DASHBOARD_TRUSTED_ORIGINS"},
		{"serve with an allowed host with a port", map[string]string{"REDIS_URL": redis, "CIOQ_DASHBOARD_USER": "a", "CIOQ_DASHBOARD_PASSWORD": "b",
			"CIOQ_DASHBOARD_ALLOWED_HOSTS": "cioq.example.com:443"}, []string{"serve"}, "CIOQ_DASHBOARD_ALLOWED_HOSTS"},
		{"serve with a bad --trusted-origins", map[string]string{"REDIS_URL": redis, "CIOQ_DASHBOARD_USER": "a", "CIOQ_DASHBOARD_PASSWORD": "b"},
			[]string{"serve", "--trusted-origins", "https://cioq.example.com/dashboard"}, "--trusted-origins"},
		{"dlq without REDIS_URL", nil, []string{"dlq", "list"}, "REDIS_URL"},
		{"enqueue without REDIS_URL", nil, []string{"enqueue", "cio:identify"}, "REDIS_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdin := ""
			if tc.args[0] == "enqueue" {
				stdin = `{"identifiers":{"id":"u1"}}`
			}
			r := cli(t, tc.env, stdin, tc.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not name %s:\n%s", tc.want, r.stderr)
			}
			if strings.Contains(r.stderr, "sekrit") {
				t.Errorf("stderr leaks a credential:\n%s", r.stderr)
			}
		})
	}
}
