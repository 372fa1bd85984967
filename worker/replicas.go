package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/redisack"
	"github.com/cioq/cioq/internal/redisconf"
)

// replicaSettings checks Config.Replicas and ReplicaTimeout and returns
// them with the connection options to use: cfg.Redis with a read timeout
// long enough for WAIT.
func replicaSettings(cfg Config) (redisack.Settings, asynq.RedisConnOpt, error) {
	s := redisack.Settings{Replicas: cfg.Replicas, Timeout: cfg.ReplicaTimeout}
	if err := s.Check(); err != nil {
		return s, nil, fmt.Errorf("worker: Config.Replicas/ReplicaTimeout: %w", err)
	}
	if !s.On() {
		return s, cfg.Redis, nil
	}
	return s, redisconf.ReadTimeoutAtLeast(cfg.Redis, s.ReadTimeout()), nil
}

// installAcks adds the WAIT hook to the worker's own client (fresh: no
// command ran on it yet).
func installAcks(rdb redis.UniversalClient, s redisack.Settings) error {
	if !s.On() {
		return nil
	}
	if err := redisack.Install(rdb); err != nil {
		return fmt.Errorf("worker: Config.Replicas: %w", err)
	}
	return nil
}

// acked returns ctx with the worker's Replicas settings: writes made with
// it wait for their replicas.
func (w *Worker) acked(ctx context.Context) context.Context {
	return redisack.With(ctx, w.dlq.acks)
}

// replicatedFence confirms, with Config.Replicas, that the replicas hold
// the task before it is delivered: a write in the task's queue slot
// (keys.ReplicationProbe) whose WAIT covers everything that node wrote
// before, the task's enqueue and its dequeue included. A master cut off
// from its replicas (an old master during a failover) fails it, and the
// task is retried later without spending its budget instead of being
// delivered: the failover would drop it, the producer (told its enqueue
// was not confirmed) enqueues it again, and delivering both would deliver
// it twice.
//
// The write is a script that first checks that the task is on the node
// it runs on: with Redis Cluster the slot may have moved to a promoted
// replica since the dequeue, and the WAIT there would confirm the new
// master's state, which may lack the task (the producer then enqueues it
// again).
func (w *Worker) replicatedFence(ctx context.Context, t *Task) error {
	if !w.dlq.acks.On() {
		return nil
	}
	now := strconv.FormatInt(w.cfg.Now().UnixMilli(), 10)
	n, err := fenceScript.Run(w.acked(ctx), w.rdb, []string{keys.AsynqTask(t.Queue, t.ID), keys.ReplicationProbe(t.Queue)}, now).Int()
	if err == nil && n == 0 {
		err = errors.New("the task is not on its queue's master any more (a failover?)")
	}
	if err == nil {
		return nil
	}
	return &retryError{err: err, class: RetryTransient, delay: time.Second, spend: false, reason: "task not confirmed by the replicas"}
}

// fenceScript writes the replication probe if the task exists.
//
// KEYS[1] the task's asynq hash, KEYS[2] the queue's replication probe;
// ARGV[1] now (unix ms). Returns 1, or 0 when the task does not exist.
var fenceScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then
	return 0
end
redis.call("SET", KEYS[2], ARGV[1], "PX", 60000)
return 1`)

// unconfirmedSend handles a send record the master took but fewer replicas
// than Config.Replicas confirmed: writing it again would not confirm it
// sooner, and the send happened, so the task is acknowledged and the risk
// logged. It reports whether err was that.
func unconfirmedSend(w *Worker, t *Task, err error) bool {
	if !errors.Is(err, redisack.ErrNotReplicated) {
		return false
	}
	w.log.Warn("send delivered and recorded, but the record is not confirmed by the replicas: a failover now would lose it and a retry of this task would send it again",
		"type", t.Type, "task_id", t.ID, "queue", t.Queue, "error", err.Error())
	return true
}

// SetReplicas makes the store's writes (Add, Retry's enqueue and removal,
// Delete, Purge) wait until n replicas have them, at most timeout (1 s
// when 0); a write fewer confirmed fails with an error for which
// errors.Is(err, ErrNotReplicated) holds. It adds a hook to the store's
// Redis client that acts only on the store's own writes (for a cluster
// client, on each node, which may ask the cluster for its layout once,
// within ctx). The client's read timeout must exceed timeout by half a
// second (go-redis's default, 3 s, allows up to 2.5 s). n = 0 turns it off.
// Worker.DLQ's store follows Config.Replicas already.
func (s *DeadLetters) SetReplicas(ctx context.Context, n int, timeout time.Duration) error {
	acks := redisack.Settings{Replicas: n, Timeout: timeout}
	if err := acks.Check(); err != nil {
		return fmt.Errorf("worker: SetReplicas: %w", err)
	}
	if acks.On() {
		if err := acks.CheckClient(s.rdb); err != nil {
			return fmt.Errorf("worker: SetReplicas: %w", err)
		}
		if err := redisack.InstallUsed(ctx, s.rdb); err != nil {
			if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
				return fmt.Errorf("worker: SetReplicas: %w", err)
			}
		}
	}
	s.acks = acks
	return nil
}

// ErrNotReplicated is wrapped by the error of a dead-letter store write
// (SetReplicas, Config.Replicas) that Redis's master took but fewer
// replicas than required confirmed in time (errors.Is).
var ErrNotReplicated = redisack.ErrNotReplicated
