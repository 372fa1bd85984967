package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// BatchSize sets how many operations EnqueueBatch puts in one cio:batch
// task: 1 to tasks.MaxBatchOperations (1000), default
// tasks.DefaultBatchOperations (500), which is what one Track v2 batch
// request of the worker holds. Other enqueue calls ignore it.
func BatchSize(n int) EnqueueOption {
	return func(c *enqueueConfig) { c.batchSize = n }
}

// OperationError is EnqueueBatch's error for one operation, refused before
// anything was enqueued: Index is its place in the call's slice, Err the
// error Enqueue would have returned for it (a *ValidationError naming the
// field, errors.As finds it through this one).
type OperationError struct {
	Index int
	Err   error
}

// Error names the operation by its index.
func (e *OperationError) Error() string {
	return "producer: operation " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *OperationError) Unwrap() error { return e.Err }

// BatchReceipt says where EnqueueBatch put the operations.
type BatchReceipt struct {
	// Tasks are the tasks enqueued, in order: cio:batch tasks
	// (Receipt.Operations operations each) and tasks of their own.
	Tasks []Receipt
	// Placed[i] is where operation i went.
	Placed []Placement
	// Duplicates counts the operations in tasks refused as duplicates of
	// their idempotency key (nothing enqueued for them: an earlier call
	// with the same key did).
	Duplicates int
}

// Placement is where EnqueueBatch put one operation: Tasks[Task] of its
// BatchReceipt, at Index among that cio:batch task's operations (-1 for a
// task of its own); Task is -1 for an operation not enqueued (the call
// failed before it). An operation of a cio:batch task that Customer.io
// refuses becomes a dead letter of its own, whose id is the task's id, a
// dot and Index (worker.ItemID).
type Placement struct {
	Task  int
	Index int
}

// EnqueueBatch validates every operation, then enqueues them: the
// batchable ones (tasks.Batchable: identify, track, merges, delete,
// suppress, devices, objects, relationships) in cio:batch tasks of up to
// BatchSize operations and tasks.DefaultBatchBytes of payload each, the
// others (and one too large for a Track v2 batch item) as tasks of their
// own, with Enqueue's rules. A burst of operations so costs a few Redis
// round trips instead of one each, and the worker sends each cio:batch
// task as about one v2 batch request. The options apply to every task:
// one workspace, one queue.
//
// An invalid operation is an *OperationError naming its index, and nothing
// is enqueued. Once enqueueing began, an error returns the receipt of what
// was enqueued before it.
//
// Ordering and idempotency keep their meaning:
//   - With WithOrdering, each cio:batch task holds the operations of one
//     person only, in the call's order, and takes that person's next
//     sequence number like any task: the person's tasks, batched or not,
//     are delivered in enqueue order, and within the task the worker sends
//     them in order. (Operations on objects alone are not ordered.)
//   - An IdempotencyKey names the whole call: its tasks take the keys
//     key#0, key#1, ... in order, so the same call again (the same
//     operations, in the same order, with the same BatchSize) enqueues
//     nothing (BatchReceipt.Duplicates). Per-operation keys are not
//     supported in a batch: use Enqueue for those.
//   - Track events keep their ULID ids (one is given here to each event
//     without one): a retried or re-sent event is dropped by Customer.io.
func (c *Client) EnqueueBatch(ctx context.Context, ops []tasks.Payload, opts ...EnqueueOption) (BatchReceipt, error) {
	ctx = c.acked(ctx) // WithReplicas: every task's write waits for its replicas
	cfg := enqueueConfig{maxRetry: -1}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	size := cfg.batchSize
	if size == 0 {
		size = tasks.DefaultBatchOperations
	}
	if size < 1 || size > tasks.MaxBatchOperations {
		return BatchReceipt{}, fmt.Errorf("producer: %w", invalid("batch_size", "must be 1 to "+strconv.Itoa(tasks.MaxBatchOperations)))
	}
	type prepared struct {
		p     tasks.Payload
		raw   []byte
		batch bool
		group string // ordering group: the person's order key ("" = none)
	}
	prep := make([]prepared, len(ops))
	batchSpec, _ := tasks.Lookup(tasks.TypeBatch)
	bpl, err := c.plan(batchSpec, opts)
	if err != nil {
		return BatchReceipt{}, fmt.Errorf("producer: %s: %w", tasks.TypeBatch, err)
	}
	for i, p := range ops {
		if isNil(p) {
			return BatchReceipt{}, &OperationError{Index: i, Err: nilPayload(p)}
		}
		typ := p.TaskType()
		if _, ok := tasks.Lookup(typ); !ok || typ == tasks.TypeBatch {
			return BatchReceipt{}, &OperationError{Index: i, Err: invalid("type", "unknown task type")}
		}
		p = withIDs(p)
		if err := p.Validate(); err != nil {
			return BatchReceipt{}, &OperationError{Index: i, Err: fmt.Errorf("producer: %s: %w", typ, err)}
		}
		// The workspace's contracts, as for Enqueue: refused, or coerced
		// before the operation is encoded into the batch.
		if p, _, err = c.contract(bpl.meta.Workspace, p, true); err != nil {
			return BatchReceipt{}, &OperationError{Index: i, Err: fmt.Errorf("producer: %s: %w", typ, err)}
		}
		pr := prepared{p: p, batch: tasks.Batchable(typ)}
		if pr.batch {
			raw, err := tasks.MarshalPayload(p)
			if err != nil {
				return BatchReceipt{}, &OperationError{Index: i, Err: encodeError(typ, err)}
			}
			pr.raw = raw
			// An operation too large for a batch item goes alone (the
			// worker would send it alone anyway), except a split one
			// (objects and relationships), whose parts each fit.
			if _, split := p.(interface {
				Operations() ([]customerio.Operation, error)
			}); !split && len(raw) >= customerio.MaxEntityBytes-512 {
				pr.batch = false
			}
			if c.ordering {
				pr.group, _ = OrderKey(p)
			}
		}
		prep[i] = pr
	}

	rec := BatchReceipt{Placed: make([]Placement, len(ops))}
	for i := range rec.Placed {
		rec.Placed[i] = Placement{Task: -1, Index: -1} // not enqueued (yet)
	}
	n := 0 // tasks enqueued: the suffix of the next derived key
	keyed := func() []EnqueueOption {
		if cfg.key == "" {
			return opts
		}
		k := cfg.key + "#" + strconv.Itoa(n)
		return append(append(make([]EnqueueOption, 0, len(opts)+1), opts...), IdempotencyKey(k))
	}
	type chunk struct {
		idx   []int
		items []tasks.BatchItem
		bytes int
	}
	open := map[string]*chunk{}
	var order []string // groups in order of their first operation
	flush := func(group string) error {
		ch := open[group]
		if ch == nil || len(ch.idx) == 0 {
			return nil
		}
		delete(open, group)
		r, err := c.enqueueBatchTask(ctx, ch.items, prep[ch.idx[0]].p, group != "", keyed())
		if err != nil {
			return err
		}
		for k, i := range ch.idx {
			rec.Placed[i] = Placement{Task: len(rec.Tasks), Index: k}
		}
		rec.Tasks = append(rec.Tasks, r)
		if r.Duplicate {
			rec.Duplicates += r.Operations
		}
		n++
		return nil
	}
	for i, pr := range prep {
		if !pr.batch {
			if c.ordering {
				// The person's operations before it go first.
				if k, ok := OrderKey(pr.p); ok {
					if err := flush(k); err != nil {
						return rec, err
					}
				}
			}
			r, err := c.Enqueue(ctx, pr.p, keyed()...)
			if err != nil {
				return rec, err
			}
			r.Operations = 1
			rec.Placed[i] = Placement{Task: len(rec.Tasks), Index: -1}
			rec.Tasks = append(rec.Tasks, r)
			if r.Duplicate {
				rec.Duplicates++
			}
			n++
			continue
		}
		ch := open[pr.group]
		if ch != nil && (len(ch.idx) >= size || ch.bytes+len(pr.raw) > tasks.DefaultBatchBytes) {
			if err := flush(pr.group); err != nil {
				return rec, err
			}
			ch = nil
		}
		if ch == nil {
			ch = &chunk{}
			open[pr.group] = ch
			order = append(order, pr.group)
		}
		ch.idx = append(ch.idx, i)
		ch.items = append(ch.items, tasks.BatchItem{Type: pr.p.TaskType(), Payload: pr.raw})
		ch.bytes += len(pr.raw)
	}
	for _, g := range order {
		if err := flush(g); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// enqueueBatchTask enqueues one cio:batch task holding items. ordered: the
// items are one person's (first is one of them) and the task takes the
// person's next sequence number.
func (c *Client) enqueueBatchTask(ctx context.Context, items []tasks.BatchItem, first tasks.Payload, ordered bool, opts []EnqueueOption) (Receipt, error) {
	spec, _ := tasks.Lookup(tasks.TypeBatch)
	plan, err := c.plan(spec, opts)
	if err != nil {
		return Receipt{}, fmt.Errorf("producer: %s: %w", tasks.TypeBatch, err)
	}
	if ordered {
		c.route(first, &plan) // the person's shard, before the stamp records it
		if err := c.stamp(ctx, first, &plan); err != nil {
			return Receipt{}, err
		}
	}
	if !ordered {
		c.route(nil, &plan) // several people's: by key, else in turn
	}
	b, err := tasks.EncodeBatch(items, plan.meta)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return Receipt{}, fmt.Errorf("producer: %s: %w", tasks.TypeBatch, err)
		}
		return Receipt{}, fmt.Errorf("producer: %s: encode: %w", tasks.TypeBatch, err)
	}
	r, err := c.enqueue(ctx, tasks.TypeBatch, b, plan)
	r.Operations = len(items)
	return r, err
}

// checkBatchItems checks each operation of a cio:batch payload as
// EnqueueRaw checks a task of the operation's type (strict decoding,
// Validate, UTF-8), naming a field by its path in the payload
// ("operations[3].payload.name"), and gives each event without an id a
// ULID. It returns the payload to store (raw, or re-encoded with the ids).
func checkBatchItems(typ string, b *tasks.Batch, raw json.RawMessage) (json.RawMessage, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("producer: %s: %w", typ, err)
	}
	changed := false
	for i := range b.Operations {
		it := &b.Operations[i]
		path := "operations[" + strconv.Itoa(i) + "].payload"
		_, ip, err := tasks.DecodeStrict(it.Type, it.Payload)
		if err != nil {
			var de *tasks.DecodeError
			if errors.As(err, &de) {
				return nil, fmt.Errorf("producer: %s: %w", typ, invalid(joinField(path, de.Field), de.Reason))
			}
			return nil, fmt.Errorf("producer: %s: %w", typ, err)
		}
		if field, id := missingID(ip); field != "" {
			if it.Payload, err = setField(it.Payload, field, id); err != nil {
				return nil, fmt.Errorf("producer: %s: %w", typ, invalid(path, "must be a JSON object"))
			}
			ip = ip.(tasks.Deduplicated).WithEventID(id)
			changed = true
		}
		if err := ip.Validate(); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				return nil, fmt.Errorf("producer: %s: %w", typ, invalid(joinField(path, ve.Field), ve.Reason))
			}
			return nil, fmt.Errorf("producer: %s: %w", typ, err)
		}
	}
	if !changed {
		return raw, nil
	}
	ops, err := json.Marshal(b.Operations)
	if err == nil {
		// The payload's other fields keep their bytes.
		var m map[string]json.RawMessage
		if err = json.Unmarshal(raw, &m); err == nil {
			m["operations"] = ops
			raw, err = json.Marshal(m)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("producer: %s: %w", typ, invalid("payload", "cannot be encoded"))
	}
	return raw, nil
}

// joinField is path.field ("" field: path).
func joinField(path, field string) string {
	if field == "" {
		return path
	}
	return path + "." + field
}
