package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/oklog/ulid/v2"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/tasks"
)

func invalid(field, reason string) error {
	return &ValidationError{Field: field, Reason: reason}
}

func validWorkspace(w string) error { return tasks.ValidateWorkspace(w) }

// Enqueue validates p and enqueues it. Track events (tasks.Track,
// tasks.TrackAnonymous) without an id get a ULID id, and Pipelines messages
// without a messageId a ULID messageId, so Customer.io drops repeats of a
// retried delivery. An invalid payload or option returns a
// *ValidationError naming the field, and nothing reaches Redis; a nil
// payload, typed or not, is one naming "payload". So is a string anywhere
// in p (an identifier, an attribute, event data, a map key) that is not
// valid UTF-8, which json.Marshal would silently replace by U+FFFD: the
// error names it by its JSON path ("identifiers.id", "data.blob").
func (c *Client) Enqueue(ctx context.Context, p tasks.Payload, opts ...EnqueueOption) (Receipt, error) {
	if isNil(p) {
		return Receipt{}, nilPayload(p)
	}
	typ := p.TaskType()
	spec, ok := tasks.Lookup(typ)
	if !ok {
		return Receipt{}, invalid("type", "unknown task type")
	}
	p = withIDs(p)
	if err := p.Validate(); err != nil {
		return Receipt{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	ctx = c.acked(ctx)
	plan, err := c.plan(spec, opts)
	if err != nil {
		return Receipt{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	traceInto(ctx, &plan.meta)
	if p, _, err = c.contract(plan.meta.Workspace, p, true); err != nil {
		return Receipt{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	c.route(p, &plan) // WithShards: before the stamp, which records the queue
	var b []byte
	if c.ordering {
		// The stamp takes a sequence number from Redis: encode (and check)
		// the payload first, so a refused one takes none.
		var raw []byte
		if raw, err = tasks.MarshalPayload(p); err != nil {
			return Receipt{}, encodeError(typ, err)
		}
		if err := c.stamp(ctx, p, &plan); err != nil {
			return Receipt{}, err
		}
		b, err = tasks.EncodeRaw(raw, plan.meta)
	} else {
		b, err = tasks.Encode(p, plan.meta)
	}
	if err != nil {
		return Receipt{}, encodeError(typ, err)
	}
	return c.enqueue(ctx, typ, b, plan)
}

// encodeError wraps an error of tasks.Encode: a string that is not UTF-8 is
// a *ValidationError naming the field (the payload itself when the key at
// fault is at its top level); anything else cannot be encoded.
func encodeError(typ string, err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		if ve.Field == "" {
			ve = &ValidationError{Field: "payload", Reason: ve.Reason}
		}
		return fmt.Errorf("producer: %s: %w", typ, ve)
	}
	return fmt.Errorf("producer: %s: encode: %w", typ, err)
}

// isNil reports whether p is nil or a nil pointer, map or slice in the
// interface: calling its value-receiver methods would panic.
func isNil(p tasks.Payload) bool {
	if p == nil {
		return true
	}
	switch v := reflect.ValueOf(p); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		return v.IsNil()
	}
	return false
}

// nilPayload is the error for a nil payload: a *ValidationError naming
// "payload", and the Go type when the nil is typed.
func nilPayload(p tasks.Payload) error {
	if p == nil {
		return fmt.Errorf("producer: %w", invalid("payload", "is required (nil)"))
	}
	return fmt.Errorf("producer: %T: %w", p, invalid("payload", "is required (nil pointer)"))
}

// EnqueueRaw enqueues a task given as its type name and JSON payload (for
// the HTTP ingest and the CLI). The payload is decoded and validated exactly
// like Enqueue's and stored as given: fields this version does not know
// survive. The only change is the ULID id or messageId added where Enqueue
// would add one. An unknown type is a *ValidationError on "type"; a payload
// that does not decode is one naming the value at fault by its JSON path
// ("timestamp", "per_user_data[1].id": see tasks.Decode), or "payload" for
// malformed JSON; a string that is not valid UTF-8 is refused the same way.
//
// A full envelope ({"v":1,...,"payload":{...}}) is accepted too; its
// workspace and expires_at apply unless options override them.
func (c *Client) EnqueueRaw(ctx context.Context, typ string, payload json.RawMessage, opts ...EnqueueOption) (Receipt, error) {
	rt, err := c.checkRaw(typ, payload, opts, true)
	if err != nil {
		return Receipt{}, err
	}
	ctx = c.acked(ctx)
	c.route(rt.p, &rt.plan) // WithShards: before the stamp, which records the queue
	if err := c.stamp(ctx, rt.p, &rt.plan); err != nil {
		return Receipt{}, err
	}
	traceInto(ctx, &rt.plan.meta)
	b, err := tasks.EncodeRaw(rt.raw, rt.plan.meta)
	if err != nil {
		return Receipt{}, encodeError(typ, err)
	}
	return c.enqueue(ctx, typ, b, rt.plan)
}

// Check validates a task exactly as EnqueueRaw would (type, payload
// decoding and Validate, the envelope's workspace and expires_at, and every
// option: workspace, queue, idempotency key, expiry, process time, retries,
// timeout) without touching Redis. It returns the error EnqueueRaw would
// return before enqueueing (a *ValidationError for anything invalid), or
// nil when EnqueueRaw would go on to enqueue. Use it to check every task of
// a request before enqueueing any.
func (c *Client) Check(typ string, payload json.RawMessage, opts ...EnqueueOption) error {
	_, err := c.checkRaw(typ, payload, opts, false)
	return err
}

// CheckPayload validates a typed payload exactly as Enqueue would (Validate,
// every option, the contracts) without touching Redis: the error Enqueue
// would return before enqueueing, or nil.
func (c *Client) CheckPayload(p tasks.Payload, opts ...EnqueueOption) error {
	if isNil(p) {
		return nilPayload(p)
	}
	typ := p.TaskType()
	spec, ok := tasks.Lookup(typ)
	if !ok {
		return invalid("type", "unknown task type")
	}
	p = withIDs(p)
	if err := p.Validate(); err != nil {
		return fmt.Errorf("producer: %s: %w", typ, err)
	}
	plan, err := c.plan(spec, opts)
	if err != nil {
		return fmt.Errorf("producer: %s: %w", typ, err)
	}
	if _, _, err := c.contract(plan.meta.Workspace, p, false); err != nil {
		return fmt.Errorf("producer: %s: %w", typ, err)
	}
	return nil
}

// contract checks p against the workspace's contracts (WithContracts): it
// returns the payload to enqueue (coerced values in a copy, validated
// again) and the check's result, whose Patch writes the coercions into a
// raw payload. observe counts the coercions and refusals (the check of an
// enqueue, not the one before it).
func (c *Client) contract(workspace string, p tasks.Payload, observe bool) (tasks.Payload, contracts.Result, error) {
	if c.contracts == nil {
		return p, contracts.Result{Payload: p}, nil
	}
	check := c.contracts.CheckQuiet
	if observe {
		check = c.contracts.Check
	}
	res, err := check(workspace, p)
	if err != nil {
		return nil, res, err
	}
	if len(res.Coerced) > 0 {
		if err := res.Payload.Validate(); err != nil { // a coerced value is within the limits too
			return nil, res, err
		}
	}
	return res.Payload, res, nil
}

// rawTask is a raw task checked by checkRaw, ready to encode.
type rawTask struct {
	p    tasks.Payload   // the decoded payload, id set
	raw  json.RawMessage // the payload bytes to store, id added
	plan plan
}

// checkRaw is EnqueueRaw's validation: everything but the ordering stamp,
// the encoding and Redis.
func (c *Client) checkRaw(typ string, payload json.RawMessage, opts []EnqueueOption, observe bool) (rawTask, error) {
	spec, ok := tasks.Lookup(typ)
	if !ok {
		return rawTask{}, invalid("type", "unknown task type")
	}
	if c.contracts != nil {
		// A timestamp of the wrong JSON kind the contracts coerce
		// (an ISO-8601 Track timestamp, a numeric Pipelines one) is fixed
		// before decoding would refuse it.
		var err error
		if payload, err = c.contracts.PrepareRaw(typ, payload, c.workspaceResolver(opts), observe); err != nil {
			return rawTask{}, fmt.Errorf("producer: %s: %w", typ, err)
		}
	}
	env, p, err := tasks.DecodeStrict(typ, payload)
	if err != nil {
		var de *tasks.DecodeError
		if errors.As(err, &de) {
			field := de.Field
			if field == "" {
				field = "payload"
			}
			return rawTask{}, fmt.Errorf("producer: %s: %w", typ, invalid(field, de.Reason))
		}
		return rawTask{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	raw := env.Payload
	if b, ok := p.(*tasks.Batch); ok {
		if raw, err = checkBatchItems(typ, b, raw); err != nil {
			return rawTask{}, err
		}
	}
	if field, id := missingID(p); field != "" {
		if raw, err = setField(raw, field, id); err != nil {
			return rawTask{}, fmt.Errorf("producer: %s: %w", typ, invalid("payload", "must be a JSON object"))
		}
		p = p.(tasks.Deduplicated).WithEventID(id) // validate what is enqueued
	}
	if err := p.Validate(); err != nil {
		return rawTask{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	if env.Workspace != "" || env.ExpiresAt != 0 {
		pre := make([]EnqueueOption, 0, 2+len(opts))
		if env.Workspace != "" {
			pre = append(pre, Workspace(env.Workspace))
		}
		if env.ExpiresAt != 0 {
			pre = append(pre, ExpiresAt(time.Unix(env.ExpiresAt, 0)))
		}
		opts = append(pre, opts...)
	}
	plan, err := c.plan(spec, opts)
	if err != nil {
		return rawTask{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	p, res, err := c.contract(plan.meta.Workspace, p, observe)
	if err != nil {
		return rawTask{}, fmt.Errorf("producer: %s: %w", typ, err)
	}
	if len(res.Coerced) > 0 {
		if raw, err = res.Patch(raw); err != nil {
			return rawTask{}, fmt.Errorf("producer: %s: %w", typ, invalid("payload", "must be a JSON object"))
		}
	}
	return rawTask{p: p, raw: raw, plan: plan}, nil
}

// workspaceResolver returns the workspace a raw task will have, given its
// envelope's: the Workspace option's, else the envelope's, else the
// client's default (as plan resolves it).
func (c *Client) workspaceResolver(opts []EnqueueOption) func(string) string {
	return func(envelope string) string {
		cfg := enqueueConfig{}
		for _, o := range opts {
			if o != nil {
				o(&cfg)
			}
		}
		switch {
		case cfg.workspace != nil:
			return canonicalWorkspace(*cfg.workspace)
		case envelope != "":
			return canonicalWorkspace(envelope)
		}
		return canonicalWorkspace(c.workspace)
	}
}

// plan is what an enqueue call resolved from the type's defaults and the
// options.
type plan struct {
	meta  tasks.Meta
	queue string
	opts  []asynq.Option
	key   string
	id    string // the task id when decided before the enqueue (ordering); "" = the key's or asynq's
	// headers carry the retry budget (tasks.HeaderRetryBudget); shared
	// per budget, never written to.
	headers map[string]string

	// The resolved retry budget, timeout and process time (zero: now),
	// for Prepare, which hands them on instead of asynq options.
	maxRetry  int
	timeout   time.Duration
	processAt time.Time
}

func (c *Client) plan(spec tasks.Spec, opts []EnqueueOption) (plan, error) {
	cfg := enqueueConfig{maxRetry: -1}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	d := spec.Defaults
	now := time.Now()
	pl := plan{queue: d.Queue, key: cfg.key, meta: tasks.Meta{Workspace: c.workspace, EnqueuedAt: now, IdempotencyKey: cfg.key}}
	if cfg.workspace != nil {
		pl.meta.Workspace = *cfg.workspace
	}
	if err := c.CheckWorkspace(pl.meta.Workspace); err != nil {
		return plan{}, err
	}
	pl.meta.Workspace = canonicalWorkspace(pl.meta.Workspace)
	if cfg.queue != "" {
		if err := checkQueue(cfg.queue); err != nil {
			return plan{}, err
		}
		pl.queue = cfg.queue
	}
	maxRetry := d.MaxRetry
	if cfg.maxRetry >= 0 {
		maxRetry = cfg.maxRetry
	} else if cfg.maxRetry < -1 {
		return plan{}, invalid("max_retry", "must not be negative")
	}
	timeout := d.Timeout
	if cfg.timeout != 0 {
		if cfg.timeout < time.Second {
			return plan{}, invalid("timeout", "must be at least 1s")
		}
		timeout = cfg.timeout
	}
	processAt := cfg.processAt
	if cfg.processIn > 0 {
		processAt = now.Add(cfg.processIn)
	}
	switch {
	case !cfg.expiresAt.IsZero():
		pl.meta.ExpiresAt = cfg.expiresAt
	case cfg.expiresIn != 0:
		pl.meta.ExpiresAt = now.Add(cfg.expiresIn)
	case d.Expiry > 0:
		pl.meta.ExpiresAt = now.Add(d.Expiry)
	}
	if !pl.meta.ExpiresAt.IsZero() {
		if !pl.meta.ExpiresAt.After(now) {
			return plan{}, invalid("expires_at", "must be in the future")
		}
		if !processAt.IsZero() && processAt.After(pl.meta.ExpiresAt) {
			return plan{}, invalid("expires_at", "must not be before the process time")
		}
	}

	if pl.key != "" {
		if err := checkKey(pl.key); err != nil {
			return plan{}, err
		}
	}
	pl.headers = budgetHeaders(maxRetry)
	pl.maxRetry, pl.timeout, pl.processAt = maxRetry, timeout, processAt
	base := baseOptions(pl.queue, timeout)
	if pl.key == "" && processAt.IsZero() {
		pl.opts = base // shared: capacity clipped, never appended to in place
		return pl, nil
	}
	pl.opts = make([]asynq.Option, 0, len(base)+4) // room for enqueue's TaskID
	pl.opts = append(pl.opts, base...)
	if pl.key != "" {
		pl.opts = append(pl.opts, asynq.Retention(c.retention))
	}
	if !processAt.IsZero() {
		pl.opts = append(pl.opts, asynq.ProcessAt(processAt))
	}
	return pl, nil
}

// optKey names a set of base asynq options.
type optKey struct {
	queue   string
	timeout time.Duration
}

// baseOpts caches the queue, retry and timeout options per combination
// (a handful in practice), so an enqueue without idempotency key or delay
// allocates no options; budgets caches the header map of each retry budget.
var (
	baseOpts  sync.Map // optKey -> []asynq.Option
	baseOptsN atomic.Int32
	budgets   sync.Map // int -> map[string]string
	budgetsN  atomic.Int32
)

// baseOptions returns the asynq options for queue and timeout, with asynq's
// MaxRetry at tasks.AsynqMaxRetry: the retry budget travels in the task's
// headers (budgetHeaders), and asynq never archives a task by itself. The
// slice is shared and its capacity clipped: append copies it.
func baseOptions(queue string, timeout time.Duration) []asynq.Option {
	k := optKey{queue, timeout}
	if v, ok := baseOpts.Load(k); ok {
		return v.([]asynq.Option)
	}
	o := []asynq.Option{asynq.Queue(queue), asynq.MaxRetry(tasks.AsynqMaxRetry), asynq.Timeout(timeout)}
	o = o[:len(o):len(o)]
	if baseOptsN.Add(1) <= 64 { // bounded: per-call timeouts are not cached
		baseOpts.Store(k, o)
	}
	return o
}

// budgetHeaders returns the task headers of a retry budget
// (tasks.HeaderRetryBudget). The map is shared: it must not be written to.
func budgetHeaders(maxRetry int) map[string]string {
	if v, ok := budgets.Load(maxRetry); ok {
		return v.(map[string]string)
	}
	h := map[string]string{tasks.HeaderRetryBudget: strconv.Itoa(maxRetry)}
	if budgetsN.Add(1) <= 64 { // bounded: per-call budgets are not cached
		budgets.Store(maxRetry, h)
	}
	return h
}

func (c *Client) enqueue(ctx context.Context, typ string, b []byte, pl plan) (Receipt, error) {
	id := pl.id
	if id == "" && pl.key != "" {
		k, err := c.keyer(ctx)
		if err != nil {
			return Receipt{}, err
		}
		id = k.taskID(pl.key)
	}
	var err error
	if pl.processAt.IsZero() {
		// To be processed now: the producer writes asynq's task itself
		// (asynqwire.go).
		t := wireTask{typ: typ, payload: b, headers: pl.headers, id: id, queue: pl.queue, retry: wireRetry, timeout: pl.timeout}
		if pl.key != "" {
			t.retention = c.retention
		}
		if err = c.wireEnqueue(ctx, &t); err == nil {
			return Receipt{TaskID: t.id, Key: pl.key, Queue: pl.queue, Type: typ}, nil
		}
	} else {
		if id != "" {
			pl.opts = append(pl.opts, asynq.TaskID(id)) // plan made the room for a key's: no copy
		}
		var info *asynq.TaskInfo
		info, err = c.ac.EnqueueContext(ctx, asynq.NewTaskWithHeaders(typ, b, pl.headers), pl.opts...)
		if err == nil {
			return Receipt{TaskID: info.ID, Key: pl.key, Queue: info.Queue, Type: typ}, nil
		}
	}
	if pl.key != "" && errors.Is(err, asynq.ErrTaskIDConflict) {
		c.unstamp(ctx, pl)
		if err := c.confirmDuplicate(ctx, typ, pl.queue); err != nil {
			return Receipt{}, err
		}
		r := Receipt{TaskID: id, Key: pl.key, Queue: pl.queue, Type: typ, Duplicate: true}
		if first, ierr := c.insp.GetTaskInfo(pl.queue, id); ierr == nil {
			r.Queue, r.Type = first.Queue, first.Type
		}
		return r, nil
	}
	if nr := notReplicated(ctx, typ); nr != nil {
		return Receipt{}, nr
	}
	return Receipt{}, fmt.Errorf("producer: enqueue %s: %w", typ, err)
}

func checkQueue(q string) error {
	if len(q) > 64 {
		return invalid("queue", "must be at most 64 characters")
	}
	for i := 0; i < len(q); i++ {
		ch := q[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.' || ch == ':') {
			return invalid("queue", "must contain only letters, digits, '_', '-', '.' and ':'")
		}
	}
	return nil
}

func checkKey(k string) error {
	if len(k) > 200 {
		return invalid("idempotency_key", "must be at most 200 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f {
			return invalid("idempotency_key", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// newID returns a new ULID string.
func newID() string { return ulid.Make().String() }

// missingID returns the JSON field that Enqueue would fill with a ULID for
// p (a tasks.Deduplicated payload without its id: "id" or "messageId"),
// and the ULID; "" when p needs none.
func missingID(p tasks.Payload) (string, string) {
	if d, ok := p.(tasks.Deduplicated); ok && d.EventID() == "" {
		return d.EventIDField(), newID()
	}
	return "", ""
}

// withIDs returns p with a ULID id (track events) or messageId (Pipelines
// messages) when it is a tasks.Deduplicated payload without one. The
// caller's value is never modified: WithEventID returns a copy.
func withIDs(p tasks.Payload) tasks.Payload {
	if d, ok := p.(tasks.Deduplicated); ok && d.EventID() == "" {
		return d.WithEventID(newID())
	}
	return p
}

// setField returns the JSON object raw with field set to the string v
// (replacing an empty or null value). Other fields keep their bytes.
func setField(raw json.RawMessage, field, v string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	vb, _ := json.Marshal(v)
	m[field] = vb
	return json.Marshal(m)
}
