package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/tasks"
)

// Prepared is a task validated and encoded exactly as Enqueue would
// enqueue it, without Redis: what a transactional outbox stores in the
// application's database and its relay hands to EnqueuePrepared later.
// Every field is plain data, so a Prepared survives a round trip through a
// table row.
type Prepared struct {
	// Type is the task type, e.g. tasks.TypeSendEmail.
	Type string
	// Envelope is the task's bytes (tasks.Encode): the payload with its ULID
	// id or messageId already set, the workspace, expiry, enqueue time and
	// idempotency key.
	Envelope []byte
	// Queue is the asynq queue.
	Queue string
	// Key is the idempotency key ("" without one). EnqueuePrepared derives
	// the task id from it under the deployment's secret, as Enqueue does.
	Key string
	// Workspace is the Customer.io workspace ("" = default), as in the
	// envelope.
	Workspace string
	// ProcessAt is when the task may first run; zero means at once.
	ProcessAt time.Time
	// MaxRetry is the retry budget and Timeout the per-attempt timeout.
	MaxRetry int
	Timeout  time.Duration

	// TaskID, used only when Key is "", is the asynq task id to enqueue
	// under ("" = a random one): a repeat of the same TaskID enqueues
	// nothing and returns a Duplicate receipt while the first task exists.
	TaskID string
	// Retention, with a TaskID, is how long the completed task is kept so
	// that a repeat stays a duplicate (0 = deleted on completion). A keyed
	// task is kept for the client's idempotency window instead.
	Retention time.Duration
}

// Preparer validates and encodes tasks as a Client does, without Redis. It
// is safe for concurrent use.
type Preparer struct {
	c *Client
}

// NewPreparer returns a Preparer applying the Client options that shape a
// task: WithDefaultWorkspace and Workspaces (it panics on an invalid
// default workspace, as New does). Options about Redis (WithKeySecret,
// WithIdempotencyWindow) change nothing here: EnqueuePrepared applies the
// enqueueing client's. WithOrdering is not supported: a prepared task
// carries no per-person sequence number, which only Redis can hand out.
func NewPreparer(opts ...Option) *Preparer {
	c := &Client{retention: DefaultIdempotencyWindow}
	for _, o := range opts {
		o(c)
	}
	if err := validWorkspace(c.workspace); err != nil {
		panic(fmt.Sprintf("producer: WithDefaultWorkspace: %v", err))
	}
	c.ordering = false
	return &Preparer{c: c}
}

// CheckWorkspace checks a workspace name as Prepare would (see
// Client.CheckWorkspace).
func (pr *Preparer) CheckWorkspace(name string) error { return pr.c.CheckWorkspace(name) }

// Prepare validates p and its options exactly as Enqueue does (the same
// *ValidationError naming the field, a ULID id or messageId added where
// Enqueue adds one) and returns the encoded task. Nothing touches Redis.
// The task carries no trace context: use PrepareContext.
func (pr *Preparer) Prepare(p tasks.Payload, opts ...EnqueueOption) (Prepared, error) {
	return pr.PrepareContext(context.Background(), p, opts...)
}

// PrepareContext is Prepare that also puts the trace context of ctx's span
// (its traceparent and tracestate) into the envelope, exactly as Enqueue
// does, so the worker's spans continue the trace of the code that
// prepared the task, however much later the task is enqueued. Without a
// span in ctx it is Prepare. ctx is read for nothing else.
func (pr *Preparer) PrepareContext(ctx context.Context, p tasks.Payload, opts ...EnqueueOption) (Prepared, error) {
	if isNil(p) {
		return Prepared{}, nilPayload(p)
	}
	typ := p.TaskType()
	spec, ok := tasks.Lookup(typ)
	if !ok {
		return Prepared{}, invalid("type", "unknown task type")
	}
	p = withIDs(p)
	if err := p.Validate(); err != nil {
		return Prepared{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	pl, err := pr.c.plan(spec, opts)
	if err != nil {
		return Prepared{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	traceInto(ctx, &pl.meta)
	if p, _, err = pr.c.contract(pl.meta.Workspace, p, true); err != nil {
		return Prepared{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	b, err := tasks.Encode(p, pl.meta)
	if err != nil {
		return Prepared{}, encodeError(typ, err)
	}
	return prepared(typ, b, pl), nil
}

// PrepareRaw is Prepare for a task given as its type name and JSON payload:
// it validates exactly as EnqueueRaw does and keeps fields it does not
// know. The task carries no trace context: use PrepareRawContext.
func (pr *Preparer) PrepareRaw(typ string, payload json.RawMessage, opts ...EnqueueOption) (Prepared, error) {
	return pr.PrepareRawContext(context.Background(), typ, payload, opts...)
}

// PrepareRawContext is PrepareRaw with the trace context of ctx's span in
// the envelope, as PrepareContext.
func (pr *Preparer) PrepareRawContext(ctx context.Context, typ string, payload json.RawMessage, opts ...EnqueueOption) (Prepared, error) {
	rt, err := pr.c.checkRaw(typ, payload, opts, true)
	if err != nil {
		return Prepared{}, err
	}
	traceInto(ctx, &rt.plan.meta)
	b, err := tasks.EncodeRaw(rt.raw, rt.plan.meta)
	if err != nil {
		return Prepared{}, encodeError(typ, err)
	}
	return prepared(typ, b, rt.plan), nil
}

func prepared(typ string, b []byte, pl plan) Prepared {
	return Prepared{Type: typ, Envelope: b, Queue: pl.queue, Key: pl.key, Workspace: pl.meta.Workspace,
		ProcessAt: pl.processAt, MaxRetry: pl.maxRetry, Timeout: pl.timeout}
}

// EnqueuePrepared enqueues a task made by Prepare or PrepareRaw, possibly
// by another process and some time ago. Its task id is the idempotency
// key's keyed hash (this client's secret, as Enqueue), else p.TaskID, else
// random; when that id is taken, nothing is enqueued and the receipt
// describes the first task with Duplicate set, so enqueueing the same
// Prepared twice makes one task. Fields that cannot have come from Prepare
// (an unknown type, a bad queue or key, a negative budget, no envelope) are
// a *ValidationError and nothing reaches Redis; any other error is Redis's.
func (c *Client) EnqueuePrepared(ctx context.Context, p Prepared) (Receipt, error) {
	if _, ok := tasks.Lookup(p.Type); !ok {
		return Receipt{}, invalid("type", "unknown task type")
	}
	if len(p.Envelope) == 0 {
		return Receipt{}, fmt.Errorf("producer: %s: %w", p.Type, invalid("payload", "is required (empty envelope)"))
	}
	if err := checkQueue(p.Queue); err != nil || p.Queue == "" {
		if err == nil {
			err = invalid("queue", "is required")
		}
		return Receipt{}, fmt.Errorf("producer: %s: %w", p.Type, err)
	}
	if p.MaxRetry < 0 {
		return Receipt{}, fmt.Errorf("producer: %s: %w", p.Type, invalid("max_retry", "must not be negative"))
	}
	if p.Timeout < time.Second {
		return Receipt{}, fmt.Errorf("producer: %s: %w", p.Type, invalid("timeout", "must be at least 1s"))
	}
	p.Queue = c.prepareShard(p) // WithShards
	opts := make([]asynq.Option, 0, 6)
	opts = append(opts, baseOptions(p.Queue, p.Timeout)...) // asynq never archives: the budget travels in a header
	if !p.ProcessAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(p.ProcessAt))
	}
	id := p.TaskID
	switch {
	case p.Key != "":
		if err := checkKey(p.Key); err != nil {
			return Receipt{}, fmt.Errorf("producer: %s: %w", p.Type, err)
		}
		k, err := c.keyer(ctx)
		if err != nil {
			return Receipt{}, err
		}
		id = k.taskID(p.Key)
		opts = append(opts, asynq.Retention(c.retention))
	case id != "":
		if p.Retention > 0 {
			opts = append(opts, asynq.Retention(p.Retention))
		}
	}
	if id != "" {
		opts = append(opts, asynq.TaskID(id))
	}
	ctx = c.acked(ctx) // WithReplicas: the relay's writes wait for their replicas too
	info, err := c.ac.EnqueueContext(ctx, asynq.NewTaskWithHeaders(p.Type, p.Envelope, budgetHeaders(p.MaxRetry)), opts...)
	if err == nil {
		return Receipt{TaskID: info.ID, Key: p.Key, Queue: info.Queue, Type: p.Type}, nil
	}
	if id != "" && errors.Is(err, asynq.ErrTaskIDConflict) {
		if err := c.confirmDuplicate(ctx, p.Type, p.Queue); err != nil {
			return Receipt{}, err
		}
		r := Receipt{TaskID: id, Key: p.Key, Queue: p.Queue, Type: p.Type, Duplicate: true}
		if first, ierr := c.insp.GetTaskInfo(p.Queue, id); ierr == nil {
			r.Queue, r.Type = first.Queue, first.Type
		}
		return r, nil
	}
	if nr := notReplicated(ctx, p.Type); nr != nil {
		return Receipt{}, nr
	}
	return Receipt{}, fmt.Errorf("producer: enqueue %s: %w", p.Type, err)
}
