package worker

import (
	"context"
	"slices"
)

// The Redis keys of asynq's (v0.26, internal/base) that the worker reads or
// changes itself, for the stuck-task check and recovery pulls. Every key
// of a queue carries the {queue} hash tag, so a script may use them
// together (and with cioq's own keys tagged the same way) on Redis Cluster.
const asynqQueuesKey = "asynq:queues" // set of every queue's name

// asynqActiveKey is the list of a queue's task ids being processed.
func asynqActiveKey(q string) string { return "asynq:{" + q + "}:active" }

// asynqLeaseKey is the sorted set of active task ids by lease expiry (unix s).
func asynqLeaseKey(q string) string { return "asynq:{" + q + "}:lease" }

// asynqRetryKey is the sorted set of task ids waiting for a retry, by retry
// time (unix s).
func asynqRetryKey(q string) string { return "asynq:{" + q + "}:retry" }

// asynqPendingKey is the list of a queue's task ids ready to run.
func asynqPendingKey(q string) string { return "asynq:{" + q + "}:pending" }

// asynqTaskKey is a task's hash (msg = the encoded task message, state, ...).
func asynqTaskKey(q, id string) string { return "asynq:{" + q + "}:t:" + id }

// knownQueues returns the worker's queues and every other queue asynq
// knows of: tasks may wait in a queue that other worker processes serve.
func (w *Worker) knownQueues(ctx context.Context) []string {
	qs, err := w.rdb.SMembers(ctx, asynqQueuesKey).Result()
	if err != nil {
		return w.queues
	}
	qs = append(qs, w.queues...)
	slices.Sort(qs)
	return slices.Compact(qs)
}
