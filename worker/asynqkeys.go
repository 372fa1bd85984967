package worker

import (
	"context"
	"slices"

	"github.com/cioq/cioq/internal/keys"
)

// knownQueues returns the worker's queues and every other queue asynq
// knows of: tasks may wait in a queue that other worker processes serve.
func (w *Worker) knownQueues(ctx context.Context) []string {
	qs, err := w.rdb.SMembers(ctx, keys.AsynqQueues).Result()
	if err != nil {
		return w.queues
	}
	qs = append(qs, w.queues...)
	slices.Sort(qs)
	return slices.Compact(qs)
}

// asynqStateField is the field of asynq's task hash (keys.AsynqTask) that
// holds the task's state.
const asynqStateField = "state"

// asynqQueued reports whether state, the state field of asynq's task hash,
// is one in which asynq will still run the task: pending, active (with a
// lease, or one that expired until the recoverer retries it), scheduled,
// retry, or aggregating (a group). The others are completed and archived;
// a task that is not in Redis at all (deleted, or completed without
// retention) has no hash.
func asynqQueued(state string) bool {
	switch state {
	case "pending", "active", "scheduled", "retry", "aggregating":
		return true
	}
	return false
}
