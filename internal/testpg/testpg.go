// Package testpg gives each test its own empty database on a PostgreSQL
// server reserved for tests, and tests that stop and restart PostgreSQL a
// private server of their own.
//
// The server address comes from CIOQ_TEST_PG (host:port, default
// 127.0.0.1:6533; `make test` starts a throwaway server there with
// scripts/postgres.sh and removes it afterwards). When nothing answers, the
// first test starts one with the same script (which installs PostgreSQL
// with apt-get when initdb is missing). Every call to New creates a
// database of its own, dropped when the test ends.
package testpg

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultAddr is where tests look for their PostgreSQL server when
// CIOQ_TEST_PG is unset.
const DefaultAddr = "127.0.0.1:6533"

// DB is one test's private database.
type DB struct {
	// Name is the database's name.
	Name string
	// URL is a connection string for it (user cioq, trust authentication).
	URL string
}

// URL returns the connection string of database name on the server at addr.
func URL(addr, name string) string {
	return fmt.Sprintf("postgres://cioq@%s/%s?sslmode=disable", addr, name)
}

// Addr returns the test server's address, starting a server when none
// answers.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("CIOQ_TEST_PG")
	if addr == "" {
		addr = DefaultAddr
	}
	startOnce.Do(func() { startErr = ensure(addr) })
	if startErr != nil {
		t.Fatalf("testpg: %v", startErr)
	}
	return addr
}

var (
	startOnce sync.Once
	startErr  error
	seq       atomic.Int64
)

// New creates a fresh database for the test and drops it when the test
// ends (closing whatever connections the test left open).
func New(t testing.TB) *DB {
	t.Helper()
	addr := Addr(t)
	name := fmt.Sprintf("cioq_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, seq.Add(1))
	if err := exec1(addr, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testpg: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := exec1(addr, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testpg: drop database %s: %v", name, err)
		}
	})
	return &DB{Name: name, URL: URL(addr, name)}
}

// exec1 runs one statement on the server's postgres database.
func exec1(addr, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL(addr, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func answers(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL(addr, "postgres"))
	if err != nil {
		return false
	}
	conn.Close(context.Background())
	return true
}

// ensure starts a server at addr with scripts/postgres.sh when nothing
// answers there.
func ensure(addr string) error {
	if answers(addr) {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("CIOQ_TEST_PG=%q: %v", addr, err)
	}
	if err := script("start", host, port, ""); err != nil {
		return fmt.Errorf("no PostgreSQL answers at %s and starting one failed (run `make test`, which installs and starts one): %v", addr, err)
	}
	if !answers(addr) {
		return fmt.Errorf("PostgreSQL at %s did not answer after start", addr)
	}
	return nil
}

// script runs scripts/postgres.sh of the module with the given command;
// dir, when not empty, is the data directory (CIOQ_PG_DIR).
func script(cmd, host, port, dir string) error {
	path, err := scriptPath()
	if err != nil {
		return err
	}
	c := exec.Command(path, cmd, host, port)
	c.Env = os.Environ()
	if dir != "" {
		c.Env = append(c.Env, "CIOQ_PG_DIR="+dir)
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", filepath.Base(path), cmd, err, out)
	}
	return nil
}

// scriptPath finds scripts/postgres.sh in the module root above the
// working directory (tests run in their package's directory).
func scriptPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "postgres.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/postgres.sh not found above the working directory")
		}
		dir = parent
	}
}

// Server is a PostgreSQL server of one test's own, which it may stop and
// start again (the data directory survives a Stop; Cleanup removes it).
type Server struct {
	// Addr is its host:port.
	Addr string
	host string
	port string
	dir  string
}

// NewServer starts a private server on a free port of 127.0.0.1, stopped
// and removed when the test ends. It takes a second or two (initdb).
func NewServer(t testing.TB) *Server {
	t.Helper()
	Addr(t) // PostgreSQL is installed
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s := &Server{Addr: "127.0.0.1:" + port, host: "127.0.0.1", port: port,
		dir: filepath.Join(os.TempDir(), "cioq-pg-private-"+port)}
	t.Cleanup(func() {
		if err := script("stop", s.host, s.port, s.dir); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	if err := s.Start(); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	return s
}

// URL returns the connection string of the server's postgres database.
func (s *Server) URL() string { return URL(s.Addr, "postgres") }

// Start starts the server (initdb the first time); it returns once the
// server accepts connections.
func (s *Server) Start() error { return script("start", s.host, s.port, s.dir) }

// Stop stops the server (fast shutdown: open connections are closed),
// keeping its data.
func (s *Server) Stop() error { return script("halt", s.host, s.port, s.dir) }
