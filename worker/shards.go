package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/shard"
)

// Queue shards (Config.Shards).
//
// With Shards = n > 1, each logical queue of Config.Queues (critical,
// default, bulk) is served as its n asynq queues (internal/shard names
// them: q.s<i>.<salt>, each in a hash slot of its own part of the slot
// range), each with the logical queue's weight, so the logical queues keep
// their weights' ratios. The producer must be given the same n
// (producer.WithShards).
//
// Changing n loses nothing. At New the worker also reads asynq's list of
// queues (asynq:queues) and serves, with its logical queue's weight, every
// other shard of a configured logical queue (its plain name included) that
// still holds tasks (pending, running, scheduled or retrying): the names of
// an earlier n, until this process stops. The dead-letter reconciler then
// warns, every ReconcileInterval, about such a queue that holds tasks and
// that no running worker serves (tasks enqueued under the old n after this
// worker started): restart a worker to serve it. Nothing is moved between
// queues: a task stays where it was enqueued until a worker takes it.

// planShards is the asynq queues and weights serving the logical queues
// weights with n shards each (weights itself when n <= 1).
func planShards(weights map[string]int, n int) map[string]int {
	out := make(map[string]int, len(weights)*max(n, 1))
	for q, w := range weights {
		for _, name := range shard.Names(q, n) {
			out[name] = w
		}
	}
	return out
}

// queueHolds counts the tasks of asynq queue q a worker must still serve:
// pending, active, scheduled and retrying.
func queueHolds(ctx context.Context, rdb redis.UniversalClient, q string) (int64, error) {
	var cmds [4]*redis.IntCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds[0] = p.LLen(ctx, keys.AsynqPending(q))
		cmds[1] = p.LLen(ctx, keys.AsynqActive(q))
		cmds[2] = p.ZCard(ctx, keys.AsynqScheduled(q))
		cmds[3] = p.ZCard(ctx, keys.AsynqRetry(q))
		return nil
	})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// strayShards returns the asynq queues, other than those of planned, that
// belong to a logical queue of weights (a shard of another count, or the
// plain name) and hold tasks, with how many.
func strayShards(ctx context.Context, rdb redis.UniversalClient, weights, planned map[string]int) (map[string]int64, error) {
	all, err := rdb.SMembers(ctx, keys.AsynqQueues).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(all)
	out := map[string]int64{}
	for _, q := range all {
		if _, ok := planned[q]; ok {
			continue
		}
		if _, ok := weights[shard.Logical(q)]; !ok {
			continue
		}
		n, err := queueHolds(ctx, rdb, q)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out[q] = n
		}
	}
	return out, nil
}

// shardQueues is the asynq queues the worker serves for the logical
// queues weights with n shards: planShards', plus the strays that hold
// tasks (see above). A Redis that cannot be read within 5 s is logged and
// leaves the strays out: the reconciler warns about them later.
func shardQueues(rdb redis.UniversalClient, weights map[string]int, n int, log *slog.Logger) map[string]int {
	planned := planShards(weights, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	strays, err := strayShards(ctx, rdb, weights, planned)
	if err != nil {
		log.Warn("could not look for queue shards of an earlier CIOQ_QUEUE_SHARDS", "error", err.Error())
		return planned
	}
	for q, held := range strays {
		planned[q] = weights[shard.Logical(q)]
		log.Info("serving a queue of an earlier shard count until this process stops", "queue", q, "logical_queue", shard.Logical(q), "tasks", held)
	}
	return planned
}

// checkShards validates Config.Shards.
func checkShards(n int) error {
	if n < 0 || n > shard.Max {
		return fmt.Errorf("worker: Config.Shards must be 1 to %d, not %d", shard.Max, n)
	}
	return nil
}

// Unserved returns the asynq queues of the worker's logical queues (a
// shard of another count, or the plain name) that hold tasks and that no
// running worker process serves (asynq's server list), with how many
// tasks each holds. Such tasks wait, and are not lost, until a worker
// that serves the queue starts: every worker started after them does
// (see Config.Shards).
func (w *Worker) Unserved(ctx context.Context) (map[string]int64, error) {
	strays, err := strayShards(ctx, w.rdb, w.logical, w.cfg.Queues)
	if err != nil || len(strays) == 0 {
		return nil, err
	}
	servers, err := w.inspector.Servers()
	if err != nil {
		return nil, err
	}
	for _, s := range servers {
		if s.Status != "active" { // "stopped": asynq's Stop, no new tasks
			continue
		}
		for q := range s.Queues {
			delete(strays, q)
		}
	}
	return strays, nil
}

// warnUnserved logs each queue Unserved finds (the reconciler's loop).
func (w *Worker) warnUnserved(ctx context.Context) {
	un, err := w.Unserved(ctx)
	if err != nil {
		return
	}
	qs := make([]string, 0, len(un))
	for q := range un {
		qs = append(qs, q)
	}
	slices.Sort(qs)
	for _, q := range qs {
		w.log.Warn("a queue shard holds tasks no running worker serves (CIOQ_QUEUE_SHARDS changed after this worker started): restart a worker to serve it",
			"queue", q, "logical_queue", shard.Logical(q), "tasks", un[q])
	}
}

// SetShards makes Retry re-enqueue a dead letter into its logical queue's
// shard under n shards (Config.Shards; the worker sets it), whatever queue
// or shard count the task was in: shard Index of the retried task's id, so
// a repeated retry lands on the same shard and is recognised. n <= 1: the
// plain logical queue.
func (s *DeadLetters) SetShards(n int) { s.shards = n }

// retryQueue is the queue Retry enqueues d's retried task (id taskID)
// into: d.Queue's logical queue, in the shard SetShards picks; "" (asynq's
// default queue) stays "".
func (s *DeadLetters) retryQueue(d *DeadLetter, taskID string) string {
	if d.Queue == "" {
		return ""
	}
	q := shard.Logical(d.Queue)
	return shard.Name(q, shard.Index(taskID, s.shards), max(s.shards, 1))
}

// queueMatches reports whether the asynq queue q passes f's Queue: the
// same name, or a shard of the logical queue f names.
func (f Filter) queueMatches(q string) bool {
	return f.Queue == "" || q == f.Queue || shard.Logical(q) == f.Queue
}

// LogicalQueue is the logical queue of an asynq queue name: the queue a
// shard belongs to (CIOQ_QUEUE_SHARDS), or the name itself.
func LogicalQueue(name string) string { return shard.Logical(name) }

// StrayQueues returns the asynq queues of the logical queues (a shard of
// another count than shards, or the plain name when shards > 1) that hold
// tasks, with how many: the queues of an earlier CIOQ_QUEUE_SHARDS that a
// worker started now serves until they are empty (see Config.Shards).
func StrayQueues(ctx context.Context, rdb redis.UniversalClient, logical []string, shards int) (map[string]int64, error) {
	weights := make(map[string]int, len(logical))
	for _, q := range logical {
		weights[q] = 1
	}
	return strayShards(ctx, rdb, weights, planShards(weights, shards))
}
