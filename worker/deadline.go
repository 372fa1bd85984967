package worker

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/tasks"
)

// Who decides a task's fate.
//
// asynq does not wait for a handler past the task's deadline (its
// processor selects on the handler's result, the task context's end and
// the lease's): at the deadline it retries the task, or archives it once
// its retried count has reached asynq's MaxRetry, while the handler goes
// on. So the worker's handler decides within a deadline of its own, a
// margin ahead of asynq's (attemptContext), and returns its decision while
// asynq still waits for it. When asynq acts first anyway (a decision that
// took longer than the margin, a worker that lost its lease), the two
// sides meet under the task's lock (taskLock):
//
//   - the handler writes no dead letter once asynq's context of the attempt
//     is done (Worker.deadLetter);
//   - asynq's error handler (handleError), which runs before asynq retries
//     or archives a task whose failure the handler did not decide, removes
//     a record this attempt wrote if asynq retries the task, and writes one
//     if asynq archives it (a task without a cioq budget, on its last
//     attempt): the record is written where the failure happens, not
//     copied from asynq's archive later;
//   - a delivery that succeeded after asynq gave up on the attempt removes
//     a record of the task and its archive entry (deliveredLate).
//
// The reconciler (reconcile.go) stays as a safety net for what none of
// these sees: asynq's recoverer archiving a task without a cioq budget
// whose worker died on its last attempt.

// Margin of an attempt's own deadline ahead of asynq's: a fifth of the
// time asynq gives the attempt, at most attemptMarginMax. It is the time
// the decision has to record itself (the attempt log, a dead letter) and
// reach asynq.
const (
	attemptMarginMax      = 2 * time.Second
	attemptMarginFraction = 5
)

// attemptContext returns the context the attempt's work runs under: ctx
// (asynq's, ending at the task's deadline) with a deadline a margin ahead
// of ctx's.
func attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(max(time.Until(dl)/attemptMarginFraction, 0), attemptMarginMax)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

// taskLocks serialize, per task id, the dead-letter decisions of the
// handler with asynq's error handler (see above); striped, so they need no
// cleanup.
type taskLocks [64]sync.Mutex

// taskLock returns the lock of task id.
func (w *Worker) taskLock(id string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return &w.locks[h.Sum32()%uint32(len(w.locks))]
}

// decided reports whether err is the handler's own decision (a retry or a
// dead letter), which asynq carries out as told.
func decided(err error) bool {
	var re *retryError
	var dl *deadLetterError
	return errors.As(err, &re) || errors.As(err, &dl)
}

// handleError is asynq's ErrorHandler. asynq calls it for every failed
// attempt, before it retries or archives the task, with the task's
// context. A failure the handler decided needs nothing. Any other (asynq's
// deadline reached before the handler returned, a lost lease) means asynq
// acts on its own: it archives the task if its retried count has reached
// asynq's MaxRetry (only a task without a cioq budget), and retries it
// otherwise.
func (w *Worker) handleError(ctx context.Context, at *asynq.Task, err error) {
	if decided(err) {
		return
	}
	t := &Task{Type: at.Type()}
	t.ID, _ = asynq.GetTaskID(ctx)
	t.Queue, _ = asynq.GetQueueName(ctx)
	t.Retried, _ = asynq.GetRetryCount(ctx)
	t.MaxRetry, _ = asynq.GetMaxRetry(ctx)
	archives := t.Retried >= t.MaxRetry
	t.readBudget(at)
	if env, _, derr := tasks.Decode(at.Type(), at.Payload()); derr == nil {
		t.Envelope = env
	}

	mu := w.taskLock(t.ID)
	mu.Lock()
	defer mu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if !archives {
		// asynq retries the task: a dead letter this attempt wrote (its
		// decision reached asynq too late) would describe a task in Redis.
		removed, rerr := w.dlq.removeSame(wctx, t.ID, at.Payload())
		if rerr != nil {
			w.log.Error("asynq retries a task on its own, and its dead-letter record could not be checked", "type", t.Type, "task_id", t.ID, "queue", t.Queue, "error", rerr.Error())
		} else if removed {
			w.log.Warn("asynq retries a task on its own: removed the dead letter its late decision wrote", "type", t.Type, "task_id", t.ID, "queue", t.Queue, "error", err.Error())
			w.statusDeadLetterRemoved(wctx, t, "asynq retries the task: its deadline passed before the dead letter decision reached asynq")
		}
		return
	}
	// asynq archives the task now: record it first, unless this attempt did.
	if same, serr := w.dlq.hasSame(wctx, t.ID, at.Payload()); serr == nil && same {
		return
	}
	reason := "archived by asynq on its last attempt: " + err.Error()
	if werr := w.writeDeadLetter(wctx, t, at, DeadLetterExhausted, 0, "", reason); werr != nil {
		// The reconciler copies it from asynq's archive later.
		w.log.Error("asynq archives a task on its own, and its dead letter could not be recorded; the reconciler will copy it", "type", t.Type, "task_id", t.ID, "queue", t.Queue, "error", werr.Error())
		return
	}
	if w.ordered(t) {
		// Dead-lettered: the person's next task need not wait for it.
		w.orderDone(wctx, t)
	}
}

// deliveredLate handles a delivery that succeeded after asynq gave up on
// the attempt (ctx, asynq's context of it, is done): asynq has retried the
// task (it will be delivered again, which the event ids and the send
// record make harmless), put it back in its queue (shutdown), or archived
// it (a task without a cioq budget on its last attempt), in which case the
// error handler recorded it as exhausted. A delivered task is no dead
// letter: the record and the archive entry go.
func (w *Worker) deliveredLate(ctx context.Context, t *Task, at *asynq.Task) {
	mu := w.taskLock(t.ID)
	mu.Lock()
	defer mu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	removed, err := w.dlq.removeSame(wctx, t.ID, at.Payload())
	if err == nil {
		_, err = w.dlq.deleteArchivedTask(wctx, t.Queue, t.ID)
	}
	if err != nil {
		w.log.Error("task delivered after asynq gave up on the attempt; its dead-letter state could not be cleared", "type", t.Type, "task_id", t.ID, "queue", t.Queue, "error", err.Error())
		return
	}
	w.log.Warn("task delivered after asynq gave up on the attempt", "type", t.Type, "task_id", t.ID, "queue", t.Queue, "dead_letter_removed", removed)
	if removed {
		w.statusDeadLetterRemoved(wctx, t, "delivered after asynq gave up on the attempt")
	}
}
