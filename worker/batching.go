package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker/batch"
)

// Batching configures how person, object and relationship operations are
// delivered: through Track v2's POST /api/v2/batch, coalescing the
// operations of concurrently processed tasks of one workspace into one
// request (see package batch), or one request per task. The zero value
// batches every batchable type with the batch package's defaults.
//
// Each task keeps its own fate: a 207 dead-letters only the tasks whose
// items Customer.io named; a request that fails as a whole (5xx, timeout,
// 429, 401) retries each of its tasks under the usual policy. A failure
// that names no item (a 400 or 413 refusing the whole batch, a 207 without
// a readable errors list, an item error without a batch_index or with one
// past the batch: batch.ErrUnattributed) blames no task and acknowledges
// none: each of its tasks is retried as after a transient failure, marked
// (in its attempt log) to be delivered alone from then on, as without
// batching, so that a task Customer.io refuses is refused, and
// dead-lettered, by itself. Track events carry ULID ids, so a batch re-sent
// after a crash or an unattributed failure is deduplicated by Customer.io;
// the other operations are idempotent.
//
// An operation too large for a batch item (32,000 bytes encoded) is not
// refused: an event, identify, merge, device or other person operation is
// sent alone through Track v1, which takes everything enqueue accepts (event
// data up to 100,000 bytes, 300 attributes of 1,000 bytes); an object upsert
// or relationship, which has no v1 endpoint, is split by attributes into
// several operations that each fit (tasks.ObjectUpsert.Operations), batched
// like any other, and its task is done when every part was accepted,
// dead-lettered when one is refused, retried whole on a transient failure.
// Anonymous events (cio:track_anonymous) are not batched: Track v2 names a
// person by id, email, phone or cio_id only, so they go one request each to
// /api/v1/events. A person named by phone has no Track v1 address: such a
// task is never sent through v1 (see phoneViaEntity), and enqueue refuses
// one larger than one operation.
type Batching struct {
	// Off sends one request per task, as without batching.
	Off bool
	// Types, when not nil, limits batching to these task types (a subset
	// of BatchableTypes).
	Types []string
	// Linger is how long a batch that is not full waits for more operations
	// (default 5 ms, see batch.Config).
	Linger time.Duration
	// MaxOps is the most operations per request (default 500).
	MaxOps int
	// MaxInFlight is the most concurrent batch requests per workspace and
	// process (default 4).
	MaxInFlight int
}

// BatchableTypes are the task types that have a Track v2 operation and can
// go out in a batch: those whose tasks.Spec is Batchable, in the order of
// the delivery table.
var BatchableTypes = func() []string {
	var out []string
	for _, r := range routeTable {
		if spec, ok := tasks.Lookup(r.typ); ok && spec.Batchable {
			out = append(out, r.typ)
		}
	}
	return out
}()

func (b Batching) enabled() map[string]bool {
	if b.Off {
		return nil
	}
	m := map[string]bool{}
	if b.Types == nil {
		for _, t := range BatchableTypes {
			m[t] = true
		}
		return m
	}
	for _, t := range b.Types {
		m[t] = true
	}
	return m
}

// Operation returns the Track v2 operation that delivers t, and false for
// a task type that has none (transactional sends, broadcasts, segments,
// anonymous events, Pipelines).
func Operation(t *Task) (customerio.Operation, bool) {
	r := routes[t.Type]
	if r.op == nil {
		return customerio.Operation{}, false
	}
	return r.op(t)
}

// batcher returns the workspace's Batcher, starting it on first use; nil
// after Shutdown began.
func (w *Worker) batcher(ws string) *batch.Batcher {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batchers == nil {
		return nil
	}
	if b := w.batchers[ws]; b != nil {
		return b
	}
	bc := w.cfg.Batching
	b := batch.NewRaw(func(ctx context.Context, encoded []json.RawMessage) (customerio.BatchResult, error) {
		return w.sendBatch(ctx, ws, encoded)
	}, batch.Config{Linger: bc.Linger, MaxOps: bc.MaxOps, MaxInFlight: bc.MaxInFlight, Logger: w.log})
	w.batchers[ws] = b
	return b
}

// sendBatch is the Batchers' send: one rate-limit slot of the workspace's
// Track API per request, then POST /api/v2/batch of the operations as the
// Batcher encoded (and validated) them.
func (w *Worker) sendBatch(ctx context.Context, ws string, encoded []json.RawMessage) (customerio.BatchResult, error) {
	if h := w.batchHook; h != nil {
		h(encoded)
	}
	c := w.client(ws)
	if c == nil {
		return customerio.BatchResult{}, &customerio.APIError{API: customerio.APITrack, Operation: "batch", Class: customerio.ClassAuth,
			Message: "workspace " + displayWS(ws) + " is not configured", Err: customerio.ErrMissingCredentials}
	}
	gates := w.gatesOf(&Task{Type: tasks.TypeIdentify, Envelope: &tasks.Envelope{Workspace: ws}})
	if err := w.waitGates(ctx, ws, gates); err != nil {
		return customerio.BatchResult{}, err
	}
	start := time.Now()
	res, err := c.BatchEncoded(ctx, encoded)
	w.obs.Response(string(customerio.APITrack), statusClass(err), time.Since(start))
	if err != nil {
		w.throttled(ws, gates, err)
	}
	return res, err
}

// appendBatchOperations appends to dst the Track v2 operations that
// deliver t in batches: for an object upsert or a relationship its
// Operations (one, or several when its attributes are too large for one
// batch item), for the other batchable types its one Operation. ok is
// false for a type with no v2 operation; err is the payload's refusal to
// be split (which Validate would have refused at enqueue). dst is returned
// as it was unless ok.
func appendBatchOperations(dst []customerio.Operation, t *Task) (ops []customerio.Operation, ok bool, err error) {
	if sp, is := t.Payload.(splitPayload); is {
		its, err := sp.Operations()
		if err != nil {
			return dst, false, err
		}
		return append(dst, its...), true, nil
	}
	op, ok := Operation(t)
	if !ok {
		return dst, false, nil
	}
	return append(dst, op), true, nil
}

// deliverBatched hands t's operations to its workspace's Batcher and waits
// for the answers to the requests that carried them. Several operations (the
// parts of a split upsert) are submitted at once, so they can share a
// request, and t's fate is theirs together (partsFate). An operation too
// large for a batch item comes back as an error matching batch.ErrTooLarge,
// without anything sent.
func (w *Worker) deliverBatched(ctx context.Context, t *Task, ops []customerio.Operation) error {
	b := w.batcher(t.Envelope.Workspace)
	if b == nil {
		return RetryLater(time.Second, batch.ErrClosed)
	}
	do := func(op customerio.Operation) error {
		err := b.Do(ctx, op)
		if errors.Is(err, batch.ErrClosed) {
			return RetryLater(time.Second, err)
		}
		return err
	}
	if len(ops) == 1 {
		return do(ops[0])
	}
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i := range ops {
		wg.Go(func() { errs[i] = do(ops[i]) })
	}
	wg.Wait()
	return partsFate(errs)
}

// partsFate is the outcome of a task delivered as several operations (a
// split upsert), given each part's: nil when Customer.io accepted every
// part; otherwise the failure that decides the task, naming its part. A
// permanent refusal wins (the task is dead-lettered with that reason:
// retrying cannot help), then a configuration failure (401, no
// credentials), then a transient one (the task is retried and sends every
// part again; attributes merge, so the parts already accepted are harmless
// to resend).
func partsFate(errs []error) error {
	worst, rank := -1, 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		r := 1
		switch {
		case errors.Is(err, asynq.SkipRetry), customerio.ClassOf(err) == customerio.ClassPermanent:
			r = 3
		case customerio.ClassOf(err) == customerio.ClassAuth:
			r = 2
		}
		if r > rank {
			worst, rank = i, r
		}
	}
	if worst < 0 {
		return nil
	}
	return partError(worst, len(errs), errs[worst])
}

// partError names part i of n in err when there are several parts.
func partError(i, n int, err error) error {
	if n < 2 {
		return err
	}
	return fmt.Errorf("part %d of %d: %w", i+1, n, err)
}

// deliversAlone reports whether t is marked to be delivered on its own,
// not batched: an earlier attempt failed in a batch whose failure named no
// operation (see aloneField). Only a task that failed before can be
// marked; such a failure spends a retry, so a task that has spent none is
// not looked up (except with a budget of one retry, which such a failure
// may leave unspent). A mark that cannot be read counts as none.
func (w *Worker) deliversAlone(ctx context.Context, t *Task) bool {
	if t.Retried == 0 && t.MaxRetry > 1 {
		return false
	}
	alone, err := w.rdb.HExists(ctx, attemptsKey(t.ID, enqueuedAt(t)), aloneField).Result()
	return err == nil && alone
}

// closeBatchers sends what the Batchers hold and stops them.
func (w *Worker) closeBatchers() {
	w.mu.Lock()
	bs := w.batchers
	w.batchers = nil
	w.mu.Unlock()
	for _, b := range bs {
		b.Close()
		st := b.Stats()
		w.mu.Lock()
		addStats(&w.batchClosed, st)
		w.mu.Unlock()
	}
}

func addStats(s *batch.Stats, st batch.Stats) {
	s.Batches += st.Batches
	s.Ops += st.Ops
	s.ItemErrors += st.ItemErrors
	s.RequestErrors += st.RequestErrors
	s.Unattributed += st.Unattributed
	s.Panics += st.Panics
	s.Rejected += st.Rejected
}

// BatchStats returns the Batchers' counters summed over workspaces.
func (w *Worker) BatchStats() batch.Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.batchClosed
	for _, b := range w.batchers {
		addStats(&s, b.Stats())
	}
	return s
}
