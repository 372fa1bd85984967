package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker/batch"
)

// Multi-operation tasks (cio:batch, tasks.Batch).
//
// A cio:batch task carries up to 1000 batchable operations of one
// workspace. The worker delivers them in Track v2 batch requests (the
// workspace's Batcher, shared with every other task, so one task's
// operations fill a request), each operation with its own fate, as if it
// were a task of its own:
//
//   - accepted: done (the Observer hears of it as a delivery of its type);
//   - refused for good (an item error of a 207, a permanent refusal of a
//     request of its own, an operation that does not decode or validate):
//     dead-lettered alone, as a task of its own type with its own payload
//     (ItemID names it; `cioq dlq retry` enqueues it alone), the others go
//     on;
//   - failed for a while (the request failed as a whole: a 5xx, a
//     timeout, a 429, a 401, a rate-limit wait): the task is retried, and
//     the retry sends only the operations not settled yet. The progress
//     record (keys.BatchProgress) lists the settled ones; it is written
//     before the task is retried, and read at the start of every attempt;
//   - in a batch that failed without naming the operation at fault
//     (batch.ErrUnattributed): retried, and sent alone from then on
//     (marked in the progress record), so that a refused one is refused
//     alone;
//   - too large for a batch item: sent alone at once, through Track v1 (or
//     split into several v2 operations, for objects and relationships), as
//     a task of its type would be.
//
// Once the task's retry budget and window are used up, the operations
// still to be sent are dead-lettered, each alone, as exhausted.
//
// Operations on the same person (or object) are delivered in their order
// in the task: the first of each goes in the first requests, the second
// only once the first was settled, and so on (except that a person's
// events that follow one another go together: an event's place in the
// person's timeline is its timestamp); one that is retried holds the
// later ones of the same person back to the retry. Track events carry
// their ULID id (the producer's, or one the worker derives from the task
// id and the operation's place: EventID(ItemID(...))), so a retry or a
// crash that re-sends an accepted event is dropped by Customer.io, and an
// operation's dead letter carries the same id.

// BatchProgressTTL is how long a cio:batch task's progress record
// outlives its last write.
const BatchProgressTTL = 7 * 24 * time.Hour

// aloneConcurrency is how many operations of one cio:batch task are sent
// alone at once.
const aloneConcurrency = 8

// multiTasksAtOnce is how many cio:batch tasks a worker delivers at once,
// for a batcher sending maxInFlight requests at a time: one per request
// keeps them full (a task fills one), and the decoded operations waiting
// for them stay a bounded amount of memory (the other tasks wait,
// undecoded).
func multiTasksAtOnce(maxInFlight int) int {
	if maxInFlight <= 0 {
		maxInFlight = 4 // batch.Config's default
	}
	return maxInFlight
}

// takeMultiSlot takes one of the worker's cio:batch slots for a cio:batch
// task t, before its payload is decoded, so the tasks waiting for one hold
// only their encoded payload (asynq's), not their decoded operations too.
// It returns the release. A task whose attempt ends while it waits goes
// on without one, and deliverMulti hands it back to be retried.
func (w *Worker) takeMultiSlot(ctx context.Context, t *Task) (release func()) {
	if !isMulti(t.Type) {
		return func() {}
	}
	select {
	case w.multiSem <- struct{}{}:
		t.multiSlot = true
		return func() { <-w.multiSem }
	case <-ctx.Done():
		return func() {}
	}
}

// ItemID returns the id of operation i (from 0) of the cio:batch task
// taskID: the id of its dead letter, and the task id its event id is
// derived from when it has none.
func ItemID(taskID string, i int) string { return taskID + "." + strconv.Itoa(i) }

// isMulti reports whether typ's tasks carry several operations.
func isMulti(typ string) bool {
	spec, _ := tasks.Lookup(typ)
	return spec.Multi
}

// multiItem is one operation of a cio:batch task in an attempt. It is
// kept small: a task's operations are all held while its requests are in
// flight.
type multiItem struct {
	// item is the operation in the task's payload.
	item *tasks.BatchItem
	// payload is the decoded operation: nil when it is invalid, or once
	// its batch operations are prepared (decoded decodes it again).
	payload tasks.Payload
	// err is the operation's fate once sent, or why it does not decode or
	// validate (flag invalid).
	err error
	// key names the person or object the operation acts on (with kind;
	// "" none); round is when it goes, after the earlier operations on
	// its key.
	key   string
	index int32
	round int32
	// plo and phi are where the operation's batch operations, encoded
	// ahead of its round (prepare), stand in the task's store of them
	// (prepared set); within the request's list once sendItems sent them
	// (batched set).
	plo, phi int32
	kind     keyKind
	flags    itemFlags
}

// keyKind is what a multiItem's key names.
type keyKind uint8

const (
	keyNone keyKind = iota
	keyID
	keyEmail
	keyCioID
	keyObject
)

// itemFlags are a multiItem's states.
type itemFlags uint8

const (
	// alone: sent on its own (an earlier attempt's batch failed without
	// naming the operation at fault).
	flagAlone itemFlags = 1 << iota
	// event: a track event (events of a person that follow one another
	// go in the same round).
	flagEvent
	// prepared: plo:phi are its batch operations in the task's store.
	flagPrepared
	// batched: sendItems put it in the round's request list (plo:phi).
	flagBatched
	// invalid: it does not decode or validate (err says why).
	flagInvalid
	// sent: the attempt sent it (err is its fate).
	flagSent
)

func (mi *multiItem) is(f itemFlags) bool { return mi.flags&f != 0 }

// decodeValid decodes operation it of a cio:batch task and validates it.
func decodeValid(it tasks.BatchItem) (tasks.Payload, error) {
	p, err := tasks.DecodeItem(it)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid payload: %w", err)
	}
	return p, nil
}

// decoded returns the operation's decoded payload, decoding it again if
// prepare let it go.
func (mi *multiItem) decoded() (tasks.Payload, error) {
	if mi.payload != nil {
		return mi.payload, nil
	}
	p, err := decodeValid(*mi.item)
	if err != nil {
		return nil, err
	}
	mi.payload = p
	return p, nil
}

// task returns the operation with payload p as a task of its own type
// (id ItemID) of the cio:batch task t. It is made when it is needed (in
// prepare's scratch Task to build the operation's batch operations, to
// send it alone), not kept for each of the task's operations.
func (mi *multiItem) task(t *Task, p tasks.Payload) Task {
	return Task{ID: ItemID(t.ID, int(mi.index)), Queue: t.Queue, Retried: t.Retried, MaxRetry: t.MaxRetry,
		Type: mi.item.Type, Envelope: t.Envelope, Payload: p, budgeted: t.budgeted, asynqMaxRetry: t.asynqMaxRetry}
}

// prepScratch is the room prepare reuses from one operation to the next,
// so that preparing a task's operations allocates only what they keep.
type prepScratch struct {
	ops  []customerio.Operation
	task Task
}

// prepare builds the Track v2 operations of mi (appendBatchOperations,
// in sc's room) and has b encode and check them (batch.Prepare), appended
// to store; mi.plo:mi.phi is where they stand in it. The decoded payload
// is let go when b takes every operation (decoded decodes it again when it
// is needed), so that a task's operations do not hold their decoded values
// while they wait for their requests; it is kept when b refuses one (too
// large for a batch item, it goes alone). ok and err are
// appendBatchOperations's.
func (mi *multiItem) prepare(b *batch.Batcher, t *Task, sc *prepScratch, store *[]batch.Prepared) (ok bool, err error) {
	p, err := mi.decoded()
	if err != nil {
		return false, err
	}
	sc.task = mi.task(t, p)
	ops, ok, err := appendBatchOperations(sc.ops[:0], &sc.task)
	sc.ops, sc.task = ops, Task{}
	defer clear(ops)
	if err != nil || !ok {
		return ok, err
	}
	lo, taken := len(*store), true
	for i := range ops {
		pr := b.Prepare(&ops[i])
		taken = taken && pr.Err() == nil
		*store = append(*store, pr)
	}
	mi.plo, mi.phi = int32(lo), int32(len(*store))
	mi.flags |= flagPrepared
	if taken {
		mi.payload = nil
	}
	return true, nil
}

// errDeferred is the fate of an operation held back behind an earlier
// operation on the same person that is retried.
var errDeferred = errors.New("held back behind an earlier operation on the same person")

// deliverMulti delivers a cio:batch task: see above.
func (w *Worker) deliverMulti(ctx context.Context, c *customerio.Client, t *Task, at *asynq.Task) error {
	bp, ok := t.Payload.(*tasks.Batch)
	if !ok || bp == nil {
		return errNoRoute(t)
	}
	// A few tasks at a time fill the workspace's batch requests; more would
	// only hold their decoded operations in memory meanwhile: the slot is
	// taken before the payload is decoded (takeMultiSlot).
	if !t.multiSlot {
		return RetryLater(time.Second, ctx.Err())
	}
	n := len(bp.Operations)
	prog, err := w.readProgress(ctx, t, n)
	if err != nil {
		return &retryError{err: err, class: RetryTransient, delay: time.Second, reason: "batch progress unavailable"}
	}
	// One allocation for the operations (store[i] is operation i; those
	// settled by earlier attempts stay zero), one for their encodings.
	store := make([]multiItem, n)
	live := make([]*multiItem, 0, n)
	b := w.batcher(t.Envelope.Workspace)
	pstore := make([]batch.Prepared, 0, n)
	var sc prepScratch
	for i := range bp.Operations {
		if prog.settled.has(i) {
			continue
		}
		mi := &store[i]
		*mi = multiItem{index: int32(i), item: &bp.Operations[i]}
		if prog.alone.has(i) {
			mi.flags |= flagAlone
		}
		p, derr := decodeValid(*mi.item)
		if derr != nil {
			mi.err = derr
			mi.flags |= flagInvalid
			continue
		}
		mi.payload = p
		mi.kind, mi.key = itemKey(p)
		if _, ok := p.(*tasks.Track); ok {
			mi.flags |= flagEvent
		}
		if b != nil && !mi.is(flagAlone) && w.batchTypes[mi.item.Type] {
			// Encoded now, so that the decoded operations do not pile up
			// before the task's requests go (a refusal is sendItems's to
			// handle, as without it).
			mi.prepare(b, t, &sc, &pstore)
		}
		live = append(live, mi)
	}

	rounds := assignRounds(live)
	var blocked map[multiKey]bool
	for r := int32(0); r < max(rounds, 1); r++ {
		now := live
		if rounds > 1 {
			now = nil
			for _, mi := range live {
				switch {
				case mi.round != r:
				case mi.kind != keyNone && blocked[multiKey{mi.kind, mi.key}]:
					mi.err = errDeferred
				default:
					now = append(now, mi)
				}
			}
		}
		w.sendItems(ctx, c, t, now, &pstore)
		if rounds <= 1 {
			break
		}
		for _, mi := range now {
			if mi.kind != keyNone && mi.err != nil && !itemRefused(mi.err) {
				if blocked == nil {
					blocked = map[multiKey]bool{}
				}
				blocked[multiKey{mi.kind, mi.key}] = true
			}
		}
	}

	// Each operation's fate.
	now := w.cfg.Now()
	ws := workspaceOf(t)
	var pending []*multiItem
	var refused []itemDeadLetter
	for i := range store {
		mi := &store[i]
		switch {
		case mi.item == nil:
			// Settled by an earlier attempt.
		case mi.is(flagInvalid):
			refused = append(refused, itemDeadLetter{mi, DeadLetterInvalid, 0, "", mi.err.Error()})
		case mi.err == nil && mi.is(flagSent):
			prog.settled.set(int(mi.index))
			var lat time.Duration
			if enq, ok := t.Envelope.Enqueued(); ok {
				lat = now.Sub(enq)
			}
			w.obs.Delivered(mi.item.Type, t.Queue, ws, lat)
		case itemRefused(mi.err):
			var status int
			var msg string
			var ae *customerio.APIError
			if errors.As(mi.err, &ae) {
				status, msg = ae.StatusCode, ae.Message
			}
			refused = append(refused, itemDeadLetter{mi, DeadLetterPermanent, status, msg, mi.err.Error()})
		default:
			if errors.Is(mi.err, batch.ErrUnattributed) {
				prog.alone.set(int(mi.index))
			}
			pending = append(pending, mi)
		}
	}
	var terr error
	if len(pending) > 0 {
		terr = pendingError(pending)
		d := policy{authRetryDelay: w.cfg.AuthRetryDelay}.classify(t,
			outcome{kind: outcomeRan, err: terr, api: customerio.APITrack, windowStart: retryWindowStart(at)}, now)
		if d.kind == decideDeadLetter {
			// The task's retries are used up: what is left is
			// dead-lettered, each operation alone.
			for _, mi := range pending {
				refused = append(refused, itemDeadLetter{mi, d.class, d.status, d.message, d.text})
			}
			pending, terr = nil, nil
		}
	}
	if err := w.deadLetterItems(ctx, t, refused); err != nil {
		// Not recorded: retried (an operation refused for good is refused
		// again, and recorded then).
		w.log.Error("could not record the dead letters of a batch task's operations; the task will be retried",
			"type", t.Type, "task_id", t.ID, "queue", t.Queue, "operations", len(refused), "error", err.Error())
		return &retryError{err: err, class: RetryTransient, delay: time.Second, reason: "dead-letter store unavailable"}
	}
	for _, r := range refused {
		prog.settled.set(int(r.mi.index))
	}
	if len(pending) == 0 {
		if prog.found {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			w.rdb.Del(wctx, keys.BatchProgress(t.ID, enqueuedAt(t)))
			cancel()
		}
		return nil
	}
	if err := w.writeProgress(ctx, t, prog); err != nil {
		// The retry then sends the operations accepted now again:
		// harmless (events carry their ids, the rest is idempotent).
		w.log.Warn("could not record a batch task's progress; its retry sends again what was accepted", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
	return terr
}

// itemRefused reports whether an operation's fate is a refusal for good.
func itemRefused(err error) bool {
	if err == nil || errors.Is(err, errDeferred) {
		return false
	}
	var re *retryError
	if errors.As(err, &re) {
		return false
	}
	return errors.Is(err, asynq.SkipRetry) || customerio.ClassOf(err) == customerio.ClassPermanent
}

// pendingError is the error a cio:batch task is retried with: the failure
// of one of the operations it retries, the one that weighs most for the
// retry policy (a transient failure, which spends a retry, then a
// credentials problem, a 429, a wait). It never matches
// batch.ErrUnattributed: those operations are marked alone in the
// progress record, not the task.
func pendingError(pending []*multiItem) error {
	rank := func(err error) int {
		var re *retryError
		switch {
		case errors.Is(err, errDeferred):
			return 0
		case errors.As(err, &re) && re.class == RetrySnoozed:
			return 1
		case customerio.ClassOf(err) == customerio.ClassAuth:
			return 3
		}
		var ae *customerio.APIError
		if errors.As(err, &ae) && ae.StatusCode == 429 {
			return 2
		}
		return 4
	}
	var worst error
	best := -1
	for _, mi := range pending {
		if r := rank(mi.err); r > best {
			worst, best = mi.err, r
		}
	}
	if errors.Is(worst, batch.ErrUnattributed) {
		var ae *customerio.APIError
		errors.As(worst, &ae)
		worst = &customerio.APIError{API: ae.API, Operation: ae.Operation, StatusCode: ae.StatusCode, Class: ae.Class,
			Message: "a batch failed without naming the operation at fault; its operations are sent alone"}
	}
	return fmt.Errorf("%d of the task's operations not delivered yet: %w", len(pending), worst)
}

// sendItems sends one round of a cio:batch task's operations: those to
// batch through the workspace's Batcher, all at once, the others alone.
// store holds the task's prepared operations (prepare); those of items
// not prepared yet are appended to it.
func (w *Worker) sendItems(ctx context.Context, c *customerio.Client, t *Task, items []*multiItem, store *[]batch.Prepared) {
	b := w.batcher(t.Envelope.Workspace)
	var alone []*multiItem
	var sc prepScratch
	// The round's batch operations go as one list: the part of store they
	// fill when they follow one another there (as they do when the task's
	// operations go in one round), a copy otherwise.
	lo, hi, contiguous := int32(-1), int32(-1), true
	for _, mi := range items {
		mi.flags |= flagSent
		if mi.is(flagAlone) || !w.batchTypes[mi.item.Type] {
			alone = append(alone, mi)
			continue
		}
		if b == nil {
			mi.err = RetryLater(time.Second, batch.ErrClosed)
			continue
		}
		if !mi.is(flagPrepared) {
			// Not prepared with the task's other operations: now.
			if ok, err := mi.prepare(b, t, &sc, store); err != nil || !ok {
				if mi.err = err; err == nil {
					alone = append(alone, mi)
				}
				continue
			}
		}
		mi.flags |= flagBatched
		if lo < 0 {
			lo = mi.plo
		} else if mi.plo != hi {
			contiguous = false
		}
		hi = mi.phi
	}
	if lo >= 0 {
		list, base := (*store)[lo:hi], lo
		if !contiguous {
			list, base = nil, 0
			for _, mi := range items {
				if mi.is(flagBatched) {
					k := int32(len(list))
					list = append(list, (*store)[mi.plo:mi.phi]...)
					mi.plo, mi.phi = k, int32(len(list))
				}
			}
		}
		errs := b.DoPrepared(ctx, list)
		// Sent: their encodings are not needed any more.
		clear(list)
		for i, err := range errs {
			if errors.Is(err, batch.ErrClosed) {
				errs[i] = RetryLater(time.Second, err)
			}
		}
		for _, mi := range items {
			if !mi.is(flagBatched) {
				continue
			}
			mi.flags &^= flagBatched | flagPrepared
			var err error
			if fates := errs[mi.plo-base : mi.phi-base]; len(fates) == 1 {
				err = fates[0]
			} else {
				err = partsFate(fates)
			}
			if errors.Is(err, batch.ErrTooLarge) {
				// Too large for a batch item: alone, through Track v1.
				if _, perr := mi.decoded(); perr != nil {
					mi.err = perr
					continue
				}
				alone = append(alone, mi)
				continue
			}
			mi.err = err
		}
	}
	if len(alone) == 0 {
		return
	}
	sem := make(chan struct{}, aloneConcurrency)
	var wg sync.WaitGroup
	for _, mi := range alone {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p, err := mi.decoded()
			if err != nil {
				mi.err = err
				return
			}
			at := mi.task(t, p)
			mi.err = w.sendAlone(ctx, c, &at)
		})
	}
	wg.Wait()
}

// sendAlone delivers one operation of a cio:batch task on its own, as a
// task of its type is delivered without batching.
func (w *Worker) sendAlone(ctx context.Context, c *customerio.Client, t *Task) error {
	r, ok := routes[t.Type]
	if !ok {
		return errNoRoute(t)
	}
	if r.send == nil {
		sp, ok := t.Payload.(splitPayload)
		if !ok {
			return errNoRoute(t)
		}
		return w.deliverEntities(ctx, c, t, sp)
	}
	return w.call(ctx, t, customerio.APITrack, func() error { _, err := r.send(ctx, c, t); return err })
}

// itemKey names the person (or object) an operation acts on, keyNone
// for none: operations with the same key are delivered in their order.
// Person keys are the payload's own strings (an email lowercased).
func itemKey(p tasks.Payload) (keyKind, string) {
	if ps, ok := p.(tasks.PersonScoped); ok {
		ids := ps.Person()
		switch {
		case ids.ID != "":
			return keyID, ids.ID
		case ids.Email != "":
			return keyEmail, strings.ToLower(ids.Email)
		case ids.CioID != "":
			return keyCioID, ids.CioID
		}
		return keyNone, ""
	}
	switch o := p.(type) {
	case *tasks.ObjectUpsert:
		return keyObject, o.ObjectTypeID + ":" + o.ObjectID
	case *tasks.ObjectDelete:
		return keyObject, o.ObjectTypeID + ":" + o.ObjectID
	}
	return keyNone, ""
}

// multiKey is a multiItem's key with its kind.
type multiKey struct {
	kind keyKind
	key  string
}

// assignRounds sets each operation's round (live in their order in the
// task) and returns how many there are: a person's operations in their
// order, each in a later round than the one before it, except that events
// following one another go in the same round (an event's place in the
// person's timeline is its timestamp; an identify, a merge or a delete
// changes what follows). It sorts the operations by key (stably, so each
// person's stay in order) rather than keeping a map of the task's keys.
func assignRounds(live []*multiItem) int32 {
	keyed := make([]*multiItem, 0, len(live))
	for _, mi := range live {
		if mi.kind != keyNone {
			keyed = append(keyed, mi)
		}
	}
	slices.SortStableFunc(keyed, func(a, b *multiItem) int {
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		return strings.Compare(a.key, b.key)
	})
	var rounds int32
	for i, mi := range keyed {
		if i > 0 {
			if prev := keyed[i-1]; prev.kind == mi.kind && prev.key == mi.key {
				mi.round = prev.round + 1
				if mi.is(flagEvent) && prev.is(flagEvent) {
					mi.round = prev.round
				}
			}
		}
		rounds = max(rounds, mi.round+1)
	}
	return rounds
}

// itemDeadLetter is an operation of a cio:batch task to dead-letter.
type itemDeadLetter struct {
	mi      *multiItem
	class   DeadLetterClass
	status  int
	message string
	reason  string
}

// deadLetterItems records the dead letters of operations of t, each as a
// task of its own type (id ItemID, its own payload in an envelope like
// t's), with t's attempt history.
func (w *Worker) deadLetterItems(ctx context.Context, t *Task, items []itemDeadLetter) error {
	if len(items) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var hist []Failure
	omitted := 0
	if t.Retried > 0 {
		h, o, err := w.dlq.attempts(wctx, attemptsKey(t.ID, enqueuedAt(t)))
		if err == nil {
			hist, omitted = h, o
		}
	}
	env := t.Envelope
	for _, it := range items {
		mi := it.mi
		payload, err := itemPayload(t, mi)
		if err != nil {
			return err
		}
		meta := tasks.Meta{Workspace: env.Workspace, OrderKey: env.OrderKey, Seq: env.Seq}
		if enq, ok := env.Enqueued(); ok {
			meta.EnqueuedAt = enq
		}
		b, err := tasks.EncodeRaw(payload, meta)
		if err != nil {
			// The operation's bytes are not valid UTF-8 (an invalid one):
			// keep them as they are, in a bare payload.
			b = payload
		}
		id := ItemID(t.ID, int(mi.index))
		d := &DeadLetter{
			ID: id, Type: mi.item.Type, Queue: t.Queue, Workspace: env.Workspace, Payload: b,
			Attempts: min(t.Retried+1, t.attemptsAllowed()), MaxRetry: t.MaxRetry, allowed: t.attemptsAllowed(),
			Class: it.class, Status: it.status, Message: it.message,
			Error:   fmt.Sprintf("operation %d of %s task %s: %s", mi.index, t.Type, t.ID, it.reason),
			History: append([]Failure(nil), hist...), HistoryOmitted: omitted,
		}
		if !t.budgeted {
			d.Attempts = t.Retried + 1
		}
		if err := w.dlq.Add(wctx, d); err != nil {
			return err
		}
		w.obs.DeadLettered(mi.item.Type, it.class)
		w.log.Warn("operation of a batch task dead-lettered", "type", mi.item.Type, "task_id", id, "batch_task_id", t.ID,
			"queue", t.Queue, "class", string(it.class), "status", it.status, "attempt", t.Retried+1, "reason", d.Error)
	}
	return nil
}

// itemPayload is the payload an operation's dead letter keeps: the
// operation's own bytes, with the event id the worker sent it with when
// it had none (so a retry from the store sends the same id).
func itemPayload(t *Task, mi *multiItem) (json.RawMessage, error) {
	raw := mi.item.Payload
	if mi.is(flagInvalid) {
		return raw, nil
	}
	p, err := mi.decoded()
	if err != nil {
		return raw, nil
	}
	d, ok := p.(tasks.Deduplicated)
	if !ok || d.EventID() != "" {
		return raw, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return raw, nil
	}
	id, _ := json.Marshal(EventID(ItemID(t.ID, int(mi.index)), t.Envelope))
	m[d.EventIDField()] = id
	return json.Marshal(m)
}

// progress is what earlier attempts of a cio:batch task settled.
type progress struct {
	settled, alone bitmap
	found          bool
}

// bitmap is one bit per operation, from the high bit of byte 0.
type bitmap []byte

func newBitmap(n int) bitmap { return make(bitmap, (n+7)/8) }

func (b bitmap) has(i int) bool { return i/8 < len(b) && b[i/8]&(0x80>>(i%8)) != 0 }

func (b bitmap) set(i int) {
	if i/8 < len(b) {
		b[i/8] |= 0x80 >> (i % 8)
	}
}

// readProgress reads t's progress record (n operations).
func (w *Worker) readProgress(ctx context.Context, t *Task, n int) (progress, error) {
	p := progress{settled: newBitmap(n), alone: newBitmap(n)}
	vals, err := w.rdb.HMGet(ctx, keys.BatchProgress(t.ID, enqueuedAt(t)), "s", "a").Result()
	if err != nil {
		return p, err
	}
	for i, dst := range []bitmap{p.settled, p.alone} {
		if s, ok := vals[i].(string); ok {
			p.found = true
			copy(dst, s)
		}
	}
	return p, nil
}

// writeProgress writes t's progress record.
func (w *Worker) writeProgress(ctx context.Context, t *Task, p progress) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	key := keys.BatchProgress(t.ID, enqueuedAt(t))
	_, err := w.rdb.TxPipelined(wctx, func(pl redis.Pipeliner) error {
		pl.HSet(wctx, key, "s", []byte(p.settled), "a", []byte(p.alone))
		pl.PExpire(wctx, key, BatchProgressTTL)
		return nil
	})
	return err
}
