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
