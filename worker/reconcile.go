package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

func (w *Worker) reconcileLoop() {
	defer w.reconcile.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-w.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		n, err := w.dlq.Reconcile(ctx, w.queues)
		if err == nil {
			w.warnUnserved(ctx) // shards of another CIOQ_QUEUE_SHARDS (shards.go)
		}
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			w.log.Warn("dead-letter reconcile failed", "error", err.Error())
		} else if n > 0 {
			w.log.Warn("copied tasks asynq archived by itself into the dead-letter store", "count", n)
		}
		t.Reset(w.cfg.ReconcileInterval)
	}
}

// Reconcile copies every task in asynq's archive of the given queues that
// the store does not hold into the store, with class DeadLetterExhausted
// and asynq's last error, and returns how many it copied. It is a safety
// net: the worker records a dead letter before asynq archives the task
// (Worker.deadLetter, or asynq's error handler), and asynq archives by
// itself only a task without a cioq budget (enqueued by an older producer,
// or directly with asynq); what reaches the archive unrecorded is such a
// task whose worker died on its last attempt (asynq's recoverer archives it
// without calling anything), or one whose record could not be written.
//
// Each queue's archive is read as one snapshot of its ids (asynq keeps at
// most 10,000), oldest first, so entries that asynq trims meanwhile (the
// oldest, once a queue holds 10,000: asynq deletes their data too) or that
// are removed do not shift the entries still to be read, as paging by
// offset would.
func (s *DeadLetters) Reconcile(ctx context.Context, queues []string) (int, error) {
	if s.inspector == nil {
		return 0, errors.New("worker: reconcile needs an inspector")
	}
	copied := 0
	const chunk = 500
	for _, q := range queues {
		ids, err := s.rdb.ZRange(ctx, keys.AsynqArchived(q), 0, -1).Result()
		if err != nil {
			return copied, err
		}
		for start := 0; start < len(ids); start += chunk {
			if err := ctx.Err(); err != nil {
				return copied, err
			}
			part := ids[start:min(start+chunk, len(ids))]
			have, err := s.has(ctx, part)
			if err != nil {
				return copied, err
			}
			for i, id := range part {
				if have[i] {
					continue
				}
				ti, err := s.inspector.GetTaskInfo(q, id)
				if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
					continue // trimmed or deleted since the snapshot
				}
				if err != nil {
					return copied, err
				}
				if ti.State != asynq.TaskStateArchived {
					continue // run again from the archive since the snapshot
				}
				if err := s.copyArchived(ctx, ti); err != nil {
					return copied, err
				}
				copied++
			}
			if s.reconcileHook != nil {
				s.reconcileHook(q, start+len(part))
			}
		}
	}
	return copied, nil
}

// copyArchived records the archived task ti as a dead letter.
func (s *DeadLetters) copyArchived(ctx context.Context, ti *asynq.TaskInfo) error {
	t := &Task{ID: ti.ID, Type: ti.Type, Queue: ti.Queue, Retried: ti.Retried, MaxRetry: ti.MaxRetry}
	t.readBudget(asynq.NewTaskWithHeaders(ti.Type, nil, ti.Headers))
	d := &DeadLetter{
		ID: ti.ID, Type: ti.Type, Queue: ti.Queue, Payload: ti.Payload,
		Attempts: ti.Retried + 1, MaxRetry: t.MaxRetry, allowed: t.attemptsAllowed(), Class: DeadLetterExhausted,
		Error: "archived by asynq: " + ti.LastErr, LastFailedAt: ti.LastFailedAt,
	}
	if t.budgeted {
		d.Attempts = min(d.Attempts, d.allowed)
	}
	if d.LastFailedAt.IsZero() {
		d.LastFailedAt = s.now()
	}
	carriedOver(d, ti.Headers)
	var enq int64
	if env, _, err := tasks.Decode(ti.Type, ti.Payload); err == nil {
		d.Workspace, enq = env.Workspace, env.EnqueuedAt
	}
	akey := attemptsKey(ti.ID, enq)
	if err := s.takeAttempts(ctx, akey, d); err != nil {
		return err
	}
	if err := s.Add(ctx, d); err != nil {
		return err
	}
	s.rdb.Del(ctx, akey)
	return nil
}
