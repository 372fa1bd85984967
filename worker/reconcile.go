package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

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
// the store does not hold (asynq's recoverer archives a task whose worker
// crashed on its last attempt without calling the handler) into the store,
// with class DeadLetterExhausted and asynq's last error. It returns how many it
// copied.
func (s *DeadLetters) Reconcile(ctx context.Context, queues []string) (int, error) {
	if s.inspector == nil {
		return 0, errors.New("worker: reconcile needs an inspector")
	}
	copied := 0
	const pageSize = 500
	for _, q := range queues {
		for page := 1; ; page++ {
			if err := ctx.Err(); err != nil {
				return copied, err
			}
			infos, err := s.inspector.ListArchivedTasks(q, asynq.PageSize(pageSize), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				return copied, err
			}
			if len(infos) == 0 {
				break
			}
			ids := make([]string, len(infos))
			for i, ti := range infos {
				ids[i] = ti.ID
			}
			have, err := s.has(ctx, ids)
			if err != nil {
				return copied, err
			}
			for i, ti := range infos {
				if have[i] {
					continue
				}
				d := &DeadLetter{
					ID: ti.ID, Type: ti.Type, Queue: ti.Queue, Payload: ti.Payload,
					Attempts: ti.Retried + 1, MaxRetry: ti.MaxRetry, Class: DeadLetterExhausted,
					Error: "archived by asynq: " + ti.LastErr, LastFailedAt: ti.LastFailedAt,
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
					return copied, err
				}
				if err := s.Add(ctx, d); err != nil {
					return copied, err
				}
				s.rdb.Del(ctx, akey)
				copied++
			}
			if len(infos) < pageSize {
				break
			}
		}
	}
	return copied, nil
}
