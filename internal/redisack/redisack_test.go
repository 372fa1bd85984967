package redisack_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/redisack"
	"github.com/cioq/cioq/internal/testredis/topology"
)

// hooked returns a client of the master with the hook, closed at the end.
// Its pool hands out the connection idle longest (FIFO), so two commands
// in a row get different connections whenever several are idle: a WAIT
// that did not share its write's connection would show.
func hooked(t *testing.T, r *topology.Replicated) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Master.Addr, PoolFIFO: true})
	t.Cleanup(func() { c.Close() })
	if err := redisack.Install(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWaitFollowsTheWrite: every kind of write (a single command, a script,
// a pipeline, a MULTI/EXEC transaction, asynq's enqueue) made with the
// settings is confirmed by the replica before it returns, and fails with
// ErrNotReplicated while the replica is paused. A WAIT sent on another
// connection of the pool than the write's would succeed while the replica
// is paused (that connection's last write is long replicated), so the
// paused half proves WAIT shares the write's connection.
func TestWaitFollowsTheWrite(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	c := hooked(t, r)
	rep := r.Replicas[0].Client()
	defer rep.Close()
	bg := context.Background()
	// With the replica up, a generous timeout (a busy machine's replica may
	// take a while to acknowledge); paused, a short one.
	one := redisack.With(bg, redisack.Settings{Replicas: 1, Timeout: 2 * time.Second})
	script := redis.NewScript(`return redis.call("SET", KEYS[1], ARGV[1])`)
	ac := asynq.NewClientFromRedisClient(c)

	writes := []struct {
		name string
		do   func(ctx context.Context, key string) error
	}{
		{"SET", func(ctx context.Context, key string) error { return c.Set(ctx, key, "v", 0).Err() }},
		{"script", func(ctx context.Context, key string) error { return script.Run(ctx, c, []string{key}, "v").Err() }},
		{"pipeline", func(ctx context.Context, key string) error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, key) // nil: the key is new
				p.Set(ctx, key, "v", 0)
				return nil
			})
			if err == redis.Nil {
				return nil
			}
			return err
		}},
		{"MULTI/EXEC", func(ctx context.Context, key string) error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, "v", 0)
				p.Expire(ctx, key, time.Hour)
				return nil
			})
			return err
		}},
		{"asynq enqueue", func(ctx context.Context, key string) error {
			_, err := ac.EnqueueContext(ctx, asynq.NewTask("t", nil), asynq.TaskID(key))
			if err != nil {
				// asynq flattens its script's error into text: the hook
				// recorded what it found.
				if u := redisack.Unconfirmed(ctx); u != nil {
					return u
				}
			}
			return err
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			key := "ack-test:" + w.name
			// Warm the pool: four connections, their writes replicated.
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := c.Set(one, "warm", i, 0).Err(); err != nil {
						t.Errorf("warm-up write: %v", err)
					}
				}()
			}
			wg.Wait()
			if n := c.PoolStats().TotalConns; n < 2 {
				t.Fatalf("the pool has %d connections, want several", n)
			}
			if err := w.do(one, key); err != nil {
				t.Fatalf("with the replica up: %v", err)
			}
			if w.name != "asynq enqueue" {
				// Confirmed means the replica has it now, not eventually.
				if v, err := rep.Get(bg, key).Result(); err != nil || v != "v" {
					t.Fatalf("replica has %q, %v right after the confirmed write", v, err)
				}
			}
			if err := r.Replicas[0].Pause(); err != nil {
				t.Fatal(err)
			}
			defer r.Replicas[0].Resume()
			err := w.do(redisack.With(bg, redisack.Settings{Replicas: 1, Timeout: 300 * time.Millisecond}), key+":paused")
			var ae *redisack.Error
			if !errors.Is(err, redisack.ErrNotReplicated) || !errors.As(err, &ae) || ae.Replicas != 0 || ae.Want != 1 {
				t.Fatalf("with the replica paused: err = %v, want a *redisack.Error of 0 of 1 replicas", err)
			}
			// The master took the write all the same.
			if w.name != "asynq enqueue" {
				if n, err := c.Exists(bg, key+":paused").Result(); err != nil || n != 1 {
					t.Fatalf("master: exists = %d, %v", n, err)
				}
			}
			// Without the settings nothing waits.
			if err := w.do(bg, key+":plain"); err != nil {
				t.Fatalf("without the settings, replica paused: %v", err)
			}
			r.Replicas[0].Resume()
		})
	}
}

// TestReadsDoNotWait: reads made with the settings do not wait, even for
// replicas that do not exist.
func TestReadsDoNotWait(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	c := hooked(t, r)
	five := redisack.With(context.Background(), redisack.Settings{Replicas: 5, Timeout: 2 * time.Second})
	start := time.Now()
	if err := c.Get(five, "nothing").Err(); err != redis.Nil {
		t.Fatalf("GET: %v", err)
	}
	if _, err := c.Pipelined(five, func(p redis.Pipeliner) error {
		p.Exists(five, "a")
		p.HGetAll(five, "b")
		return nil
	}); err != nil {
		t.Fatalf("read pipeline: %v", err)
	}
	// A write waits the full timeout for five replicas and fails.
	if err := c.Set(five, "k", "v", 0).Err(); !errors.Is(err, redisack.ErrNotReplicated) {
		t.Fatalf("SET: %v, want ErrNotReplicated", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("the write returned after %s, before WAIT's timeout", d)
	}
}

// TestCheck: settings and the client's read timeout.
func TestCheck(t *testing.T) {
	for _, s := range []redisack.Settings{{Replicas: -1}, {Replicas: 1, Timeout: -time.Second}, {Replicas: 1, Timeout: time.Microsecond}} {
		if s.Check() == nil {
			t.Errorf("%+v: Check passed", s)
		}
	}
	if err := (redisack.Settings{Replicas: 1, Timeout: 2 * time.Second}).Check(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // go-redis's read timeout: 3 s
	defer c.Close()
	if err := (redisack.Settings{Replicas: 1, Timeout: 2 * time.Second}).CheckClient(c); err != nil {
		t.Errorf("2s: %v", err)
	}
	if err := (redisack.Settings{Replicas: 1, Timeout: 3 * time.Second}).CheckClient(c); err == nil {
		t.Error("3s with a 3s read timeout: CheckClient passed")
	}
	if got := (redisack.Settings{Replicas: 1}).ReadTimeout(); got != redisack.DefaultTimeout+500*time.Millisecond {
		t.Errorf("ReadTimeout = %s", got)
	}
}
