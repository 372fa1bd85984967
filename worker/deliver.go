package worker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker/batch"
)

// apiOf returns the Customer.io API that delivers a task type, as its
// tasks.Spec says; "" for a type this worker does not know.
func apiOf(typ string) customerio.API {
	spec, _ := tasks.Lookup(typ)
	return spec.API
}

// errUnknownWorkspace marks the failure of a task whose workspace the
// worker has no configuration for (DeadLetterConfig once its window passed).
var errUnknownWorkspace = errors.New("the workspace is unknown to this worker")

// deliver is the innermost handler: it calls Customer.io through the task
// type's route (routes.go): in a Track v2 batch when the type is batched,
// else its one request (App API sends keep a send record), or for an
// object upsert or relationship one entity request per operation; a
// cio:batch task's operations go through deliverMulti (multi.go).
func (w *Worker) deliver(ctx context.Context, at *asynq.Task) error {
	t, ok := Decoded(ctx)
	if !ok {
		return errors.New("worker: task was not decoded (middleware must pass the context on)")
	}
	c := w.client(t.Envelope.Workspace)
	api := apiOf(t.Type)
	if c == nil {
		return &customerio.APIError{API: api, Operation: t.Type, Class: customerio.ClassAuth,
			Message: fmt.Sprintf("workspace %q is not configured", displayWS(t.Envelope.Workspace)),
			Err:     fmt.Errorf("%w (%w)", customerio.ErrMissingCredentials, errUnknownWorkspace)}
	}
	if isMulti(t.Type) {
		return w.deliverMulti(ctx, c, t, at)
	}
	if w.batchTypes[t.Type] && w.deliversAlone(ctx, t) {
		w.log.Debug("delivering on its own: an earlier batch failed without naming its operation", "type", t.Type, "task_id", t.ID, "queue", t.Queue)
	} else if w.batchTypes[t.Type] {
		ops, ok, err := appendBatchOperations(nil, t)
		if err != nil {
			return err
		}
		if ok {
			err := w.deliverBatched(ctx, t, ops)
			if !errors.Is(err, batch.ErrTooLarge) {
				return err
			}
			// Too large for a batch item, and not one of the operations that
			// are split: delivered on its own below, through Track v1, which
			// takes every payload enqueue accepts (event data up to 100,000
			// bytes, 300 attributes of 1,000 bytes).
			w.log.Debug("operation too large for a batch item; delivering it on its own", "type", t.Type, "task_id", t.ID, "queue", t.Queue)
		}
	}
	r, ok := routes[t.Type]
	if !ok {
		return errNoRoute(t)
	}
	var err error
	switch {
	case api == customerio.APIApp:
		err = w.deliverApp(ctx, c, t, r.send)
	case r.send == nil:
		sp, ok := t.Payload.(splitPayload)
		if !ok {
			return errNoRoute(t)
		}
		err = w.deliverEntities(ctx, c, t, sp)
	default:
		err = w.call(ctx, t, api, func() error { _, err := r.send(ctx, c, t); return err })
	}
	if errors.Is(err, errDeduped) {
		return nil
	}
	return err
}

// call makes one request to Customer.io for t: it waits for the task's
// rate-limit slots, reports the response and slows the limiter down on a
// 429.
func (w *Worker) call(ctx context.Context, t *Task, api customerio.API, f func() error) error {
	gates := w.gatesOf(t)
	if err := w.waitGates(ctx, t.Envelope.Workspace, gates); err != nil {
		return err
	}
	start := time.Now()
	err := f()
	w.obs.Response(string(api), statusClass(err), time.Since(start))
	if err != nil {
		w.throttled(t.Envelope.Workspace, gates, err)
	}
	return err
}

func statusClass(err error) string {
	if err == nil {
		return "2xx"
	}
	var ae *customerio.APIError
	if errors.As(err, &ae) && ae.StatusCode == 429 {
		return "429"
	}
	if errors.As(err, &ae) && ae.StatusCode != 0 {
		return fmt.Sprintf("%dxx", ae.StatusCode/100)
	}
	return "error"
}

// splitPayload is a payload delivered as one or more Track v2 operations:
// object upserts and relationships, which have no Track v1 endpoint, so one
// too large for a single operation is split by its attributes (see
// tasks.ObjectUpsert.Operations).
type splitPayload interface {
	Operations() ([]customerio.Operation, error)
}

// deliverEntities sends sp's operations one /api/v2/entity request each, in
// order, each with its own rate-limit slot. The task is delivered when every
// part was accepted; the first failure stops it and is the task's outcome
// (a permanent one dead-letters the task, a transient one retries it and
// sends every part again, which is harmless: attributes merge).
func (w *Worker) deliverEntities(ctx context.Context, c *customerio.Client, t *Task, sp splitPayload) error {
	ops, err := sp.Operations()
	if err != nil {
		return err
	}
	for i, op := range ops {
		if err := w.call(ctx, t, customerio.APITrack, func() error { return c.Entity(ctx, op) }); err != nil {
			return partError(i, len(ops), err)
		}
	}
	return nil
}

// errDeduped means a send was skipped because an earlier attempt of the
// same task already succeeded.
var errDeduped = errors.New("already sent")

// sentKey is the Redis key recording that a task's send succeeded. It
// names the task by its id and its enqueue time: an idempotency key used
// again after its task left Redis makes a task with the same id but a new
// enqueue time, which is a new send, not a retry of the old one.
func sentKey(t *Task) string { return keys.Sent(t.ID, enqueuedAt(t)) }

// alreadySent reports whether an earlier attempt of t recorded its send.
// An error means the record could not be read.
func (w *Worker) alreadySent(ctx context.Context, t *Task) (bool, error) {
	n, err := w.rdb.Exists(ctx, sentKey(t)).Result()
	return n == 1, err
}

// deliverApp is the App API family: transactional sends and broadcast
// triggers. Neither is idempotent at Customer.io, so a success is recorded
// in Redis before the task is acknowledged and a retry that finds the
// record succeeds without sending again. Any 2xx is a success, even one
// whose body breaks off or is not JSON (customerio.ErrUnreadableResponse):
// Customer.io made the send; only its delivery or trigger id is lost, and
// the record says "sent" instead.
func (w *Worker) deliverApp(ctx context.Context, c *customerio.Client, t *Task, send sendFunc) error {
	key := sentKey(t)
	if sent, err := w.alreadySent(ctx, t); err == nil && sent {
		w.log.Info("send already delivered by an earlier attempt; not sending again", "type", t.Type, "task_id", t.ID, "queue", t.Queue, t.traceAttr())
		return errDeduped
	} else if err != nil {
		// Without the record we cannot tell; retry rather than risk a duplicate.
		return &retryError{err: err, class: RetryTransient, spend: false, reason: "send record unavailable"}
	}
	var ref string
	var unreadable error
	err := w.call(ctx, t, customerio.APIApp, func() error {
		var err error
		ref, err = send(ctx, c, t)
		if errors.Is(err, customerio.ErrUnreadableResponse) {
			// A 2xx: accepted, so sent. Retrying would send it again,
			// dead-lettering it would call it not sent.
			unreadable, err, ref = err, nil, ""
		}
		return err
	})
	if err != nil {
		return err
	}
	if ref == "" {
		ref = "sent"
	}
	if unreadable != nil {
		w.log.Warn("Customer.io accepted the send but its answer could not be read; recorded as sent without its id",
			"type", t.Type, "task_id", t.ID, "queue", t.Queue, "error", unreadable.Error())
	}
	w.recordSent(ctx, t, key, ref)
	w.statusAccepted(ctx, t, ref)
	return nil
}

// recordSent writes the send record, retrying briefly. If Redis stays
// unreachable the task is still reported delivered: asynq could not
// acknowledge it either, and a retry without the record would send again
// for certain, whereas if Redis comes back before the lease expires the
// acknowledgement goes through.
func (w *Worker) recordSent(ctx context.Context, t *Task, key, ref string) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	wctx = w.acked(wctx)
	var err error
	for i := 0; i < 3; i++ {
		if err = w.rdb.Set(wctx, key, ref, w.cfg.SendDedupeTTL).Err(); err == nil || errors.Is(err, redis.Nil) {
			return
		}
		if unconfirmedSend(w, t, err) {
			return
		}
		select {
		case <-wctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	w.log.Error("send delivered but its record could not be written: a retry of this task would send it again",
		"type", t.Type, "task_id", t.ID, "queue", t.Queue, "error", err.Error())
}

// EventID returns the id cioq gives an event (or Pipelines message) that
// has none: a ULID derived from the asynq task id, so every retry of the
// task sends the same id and Customer.io drops repeats. Its time part is
// the task's enqueued_at (zero when unknown), its entropy the first 80
// bits of SHA-256(task id).
func EventID(taskID string, env *tasks.Envelope) string {
	var id ulid.ULID
	sum := sha256.Sum256([]byte("cioq-event:" + taskID))
	var ms uint64
	if env != nil && env.EnqueuedAt > 0 {
		ms = uint64(env.EnqueuedAt)
	}
	_ = id.SetTime(ms)
	_ = id.SetEntropy(sum[:10])
	return id.String()
}
