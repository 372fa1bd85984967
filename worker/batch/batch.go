package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"go.opentelemetry.io/otel/trace"

	"github.com/cioq/cioq/customerio"
)

// SendFunc sends one Track v2 batch; the worker passes
// (*customerio.Client).Batch. The error is non-nil only when the request
// failed as a whole; otherwise the BatchResult lists rejected items by
// batch_index.
type SendFunc func(ctx context.Context, ops []customerio.Operation) (customerio.BatchResult, error)

// EncodedSendFunc is SendFunc that also gets each operation's JSON, as the
// Batcher encoded it to measure it (encoded[i] is ops[i]), so that an
// operation is encoded once.
type EncodedSendFunc func(ctx context.Context, ops []customerio.Operation, encoded []json.RawMessage) (customerio.BatchResult, error)

// RawSendFunc sends the operations of one batch request as the Batcher
// encoded them (encoded[i] is the i-th operation's JSON): the worker
// passes (*customerio.Client).BatchEncoded.
type RawSendFunc func(ctx context.Context, encoded []json.RawMessage) (customerio.BatchResult, error)

// Config tunes a Batcher. The zero value of every field is its default.
type Config struct {
	// MaxOps is the most operations per request. Default 500.
	MaxOps int
	// MaxBytes is the largest encoded request body, {"batch":[...]}.
	// Default 450_000, a margin under Customer.io's 500 KB.
	MaxBytes int
	// MaxItemBytes: an operation must encode to fewer bytes than this.
	// Default customerio.MaxEntityBytes (32_000).
	MaxItemBytes int
	// Linger is how long a batch that is not full waits for more
	// operations before it is sent. Default 5ms; negative sends as soon as
	// a request slot is free.
	Linger time.Duration
	// MaxInFlight is the most concurrent batch requests. Default 4.
	MaxInFlight int
	// Timeout bounds one batch request. Default 30s.
	Timeout time.Duration
	// Validate checks each operation in Do before it joins a batch; an
	// error fails only that operation. Default
	// customerio.Operation.ValidateFields: with the encoded size the
	// Batcher checks itself (below MaxItemBytes), that is what
	// customerio.Operation.Validate, and (*customerio.Client).Batch for
	// every item, checks, without encoding the operation again. A weaker
	// check lets one bad operation fail its whole request.
	Validate func(customerio.Operation) error
	// Logger receives recovered SendFunc panics. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxOps <= 0 {
		c.MaxOps = 500
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 450_000
	}
	if c.MaxItemBytes <= 0 {
		c.MaxItemBytes = customerio.MaxEntityBytes
	}
	if c.Linger == 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Validate == nil {
		c.Validate = customerio.Operation.ValidateFields
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("batch: batcher closed")

// ErrSendPanicked is wrapped by the transient *customerio.APIError every
// operation of a request gets when SendFunc panicked.
var ErrSendPanicked = errors.New("batch: send panicked")

// ErrUnattributed is matched (errors.Is) by Do's error when the request
// failed in a way that names no operation: a permanent whole-request error
// (a 400 or 413 refusing the batch, an answer whose errors cannot be pinned
// on items: see customerio.Client.Batch), or item errors whose batch_index
// is outside the batch. Any operation of the request may be the one at
// fault, so none is blamed: every operation gets a transient
// *customerio.APIError wrapping ErrUnattributed (with the answer's status
// and message), and its caller should send it again on its own, not in a
// batch, so that a refused operation is refused alone.
var ErrUnattributed = errors.New("batch: the batch failed without naming the operation at fault; send it alone")

// ErrTooLarge is matched (errors.Is) by Do's error for an operation that
// cannot be an item of any batch: it encodes to Config.MaxItemBytes or
// more, or alone would exceed Config.MaxBytes. The same error is a
// *customerio.ValidationError. Nothing was sent; the caller may deliver the
// operation another way (the worker uses Track v1, or splits it).
var ErrTooLarge = errors.New("batch: operation too large for a batch item")

// tooLargeError is a *customerio.ValidationError that matches ErrTooLarge.
type tooLargeError struct{ ve *customerio.ValidationError }

func (e *tooLargeError) Error() string        { return e.ve.Error() }
func (e *tooLargeError) Unwrap() error        { return e.ve }
func (e *tooLargeError) Is(target error) bool { return target == ErrTooLarge }

// envelope is the encoded size of {"batch":[]}.
const envelope = len(`{"batch":[]}`)

// Batcher coalesces operations from concurrent Do calls into batch
// requests. It is safe for concurrent use. Close it to stop its goroutines.
type Batcher struct {
	send EncodedSendFunc
	cfg  Config
	// keepOps: send needs the operations, not only their JSON (New,
	// NewEncoded); a NewRaw Batcher holds only the JSON of the operations
	// waiting and in flight.
	keepOps bool

	in        chan []*item
	sendq     chan *pending
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}

	batches, ops, itemErrors, requestErrors, unattributed, panics, rejected, accepted atomic.Int64
}

// Item states.
const (
	queued int32 = iota
	sent
	abandoned
)

type item struct {
	op    *customerio.Operation // nil unless keepOps
	enc   json.RawMessage       // op's encoding
	state atomic.Int32
	err   error
	fin   atomic.Bool // err is set
	grp   *group
}

// group is the completion of the items of one Do or DoAll call: one
// channel for all of them, closed when the last is answered (a DoAll of
// 500 operations makes one channel, not 500).
type group struct {
	left atomic.Int64
	done chan struct{}
	// span is the caller's (Do's or DoAll's ctx), invalid without one.
	span trace.SpanContext
}

func newGroup(n int) *group {
	g := &group{done: make(chan struct{})}
	g.left.Store(int64(n))
	return g
}

// pending is a batch being assembled. Only the last pending batch of the
// queue is open; ready batches may be handed to a sender.
type pending struct {
	items []*item
	bytes int // encoded body size with all items
	full  bool
	ready bool
}

// New starts a Batcher that sends with send. Call Close when done.
func New(send SendFunc, cfg Config) *Batcher {
	return NewEncoded(func(ctx context.Context, ops []customerio.Operation, _ []json.RawMessage) (customerio.BatchResult, error) {
		return send(ctx, ops)
	}, cfg)
}

// NewEncoded is New with a send that also gets the operations' JSON.
func NewEncoded(send EncodedSendFunc, cfg Config) *Batcher {
	return start(send, cfg, true)
}

// NewRaw is New with a send that gets only the operations' JSON: the
// Batcher keeps nothing else of an operation once it is encoded, so the
// values it was made of (attribute maps, the payload it came from) are
// free while it waits for its request and its answer.
func NewRaw(send RawSendFunc, cfg Config) *Batcher {
	return start(func(ctx context.Context, _ []customerio.Operation, encoded []json.RawMessage) (customerio.BatchResult, error) {
		return send(ctx, encoded)
	}, cfg, false)
}

// start starts a Batcher.
func start(send EncodedSendFunc, cfg Config, keepOps bool) *Batcher {
	b := &Batcher{
		send:    send,
		keepOps: keepOps,
		cfg:     cfg.withDefaults(),
		in:      make(chan []*item),
		sendq:   make(chan *pending),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	var wg sync.WaitGroup
	for range b.cfg.MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range b.sendq {
				b.flush(p)
			}
		}()
	}
	go b.collect()
	go func() {
		wg.Wait()
		close(b.done)
	}()
	return b
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode returns op as the client encodes it: JSON without HTML escaping
// and without a trailing newline. github.com/goccy/go-json writes the same
// bytes as encoding/json about three times faster (FuzzEncode checks that
// they are the same bytes); encoding/json encodes what it refuses, so
// that the error is encoding/json's.
func encode(op *customerio.Operation) (json.RawMessage, error) {
	if b, ok := fastEncode(op); ok {
		return b, nil
	}
	return encodeStd(op)
}

// fastEncode is encode with go-json; a panic in it (none is known) counts
// as a refusal, so that encoding/json encodes op instead.
func fastEncode(op *customerio.Operation) (b []byte, ok bool) {
	defer func() {
		if recover() != nil {
			b, ok = nil, false
		}
	}()
	b, err := gojson.MarshalWithOption(op, gojson.DisableHTMLEscape())
	return b, err == nil
}

// encodeStd is encode with encoding/json.
func encodeStd(op *customerio.Operation) (json.RawMessage, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(op); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()[:buf.Len()-1]), nil
}

// Do submits op and waits for the answer to the request that carries it.
// See the package documentation for what the error means.
func (b *Batcher) Do(ctx context.Context, op customerio.Operation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it := new(item)
	if err := b.prepare(&op, it); err != nil {
		return err
	}
	it.grp = newGroup(1)
	it.grp.span = trace.SpanContextFromContext(ctx)
	if err := b.submit(ctx, []*item{it}); err != nil {
		return err
	}
	var errs [1]error
	b.await(ctx, []*item{it}, it.grp, errs[:], nil)
	return errs[0]
}

// DoAll submits ops together (they join the open batch, and the batches
// after it, in their order, in one step) and waits for the answers to the
// requests that carry them. errs[i] is the fate of ops[i], as Do would
// return it: an operation refused before sending fails alone.
func (b *Batcher) DoAll(ctx context.Context, ops []customerio.Operation) []error {
	if err := ctx.Err(); err != nil {
		return fill(make([]error, len(ops)), err)
	}
	ps := make([]Prepared, len(ops))
	for i := range ops {
		ps[i] = b.Prepare(&ops[i])
	}
	return b.DoPrepared(ctx, ps)
}

// Prepared is an operation that Prepare encoded and checked ahead of its
// submission (DoPrepared). It keeps only the operation's JSON (and, for a
// Batcher of New or NewEncoded, a copy of the operation), so the values it
// was made of are free while it waits for its turn.
type Prepared struct {
	enc json.RawMessage
	op  *customerio.Operation
	err error
}

// Err is the operation's refusal before sending, as Do would return it
// (ErrTooLarge, a validation error), nil when it can be sent.
func (p Prepared) Err() error { return p.err }

// errNotPrepared is DoPrepared's answer for a zero Prepared.
var errNotPrepared = errors.New("batch: operation not made by Prepare")

// Prepare encodes and checks op as Do does before submitting it. It does
// not keep op (a Batcher of New or NewEncoded keeps a copy of it): op may
// be reused once it returns.
func (b *Batcher) Prepare(op *customerio.Operation) Prepared {
	var it item
	if err := b.prepare(op, &it); err != nil {
		return Prepared{err: err}
	}
	return Prepared{enc: it.enc, op: it.op}
}

// DoPrepared is DoAll for operations made by Prepare: errs[i] is the fate
// of ops[i] (its Err when it has one).
func (b *Batcher) DoPrepared(ctx context.Context, ops []Prepared) []error {
	errs := make([]error, len(ops))
	if err := ctx.Err(); err != nil {
		return fill(errs, err)
	}
	// One allocation for the items, one channel for their answers; index
	// maps items to ops only when some of ops are refused already.
	all := make([]item, len(ops))
	items := make([]*item, 0, len(ops))
	var index []int
	for i, p := range ops {
		if p.err == nil && p.enc != nil {
			if index != nil {
				index = append(index, i)
			}
			it := &all[i]
			it.enc, it.op = p.enc, p.op
			items = append(items, it)
			continue
		}
		if index == nil {
			index = make([]int, len(items), len(ops))
			for k := range index {
				index[k] = k
			}
		}
		errs[i] = p.err
		if p.err == nil {
			errs[i] = errNotPrepared
		}
	}
	if len(items) == 0 {
		return errs
	}
	grp := newGroup(len(items))
	grp.span = trace.SpanContextFromContext(ctx)
	for _, it := range items {
		it.grp = grp
	}
	if err := b.submit(ctx, items); err != nil {
		for k := range items {
			errs[position(index, k)] = err
		}
		return errs
	}
	b.await(ctx, items, grp, errs, index)
	return errs
}

// prepare checks op (encoding, size, Validate) and makes it into item it.
func (b *Batcher) prepare(op *customerio.Operation, it *item) error {
	enc, err := encode(op)
	size := len(enc)
	if err != nil {
		b.rejected.Add(1)
		return &customerio.ValidationError{Field: "operation", Reason: "cannot be encoded as JSON"}
	}
	if size >= b.cfg.MaxItemBytes {
		b.rejected.Add(1)
		return &tooLargeError{&customerio.ValidationError{Field: "operation",
			Reason: "must be less than " + strconv.Itoa(b.cfg.MaxItemBytes) + " bytes encoded"}}
	}
	if envelope+size > b.cfg.MaxBytes {
		b.rejected.Add(1)
		return &tooLargeError{&customerio.ValidationError{Field: "operation",
			Reason: "does not fit a batch of " + strconv.Itoa(b.cfg.MaxBytes) + " bytes"}}
	}
	if err := b.cfg.Validate(*op); err != nil {
		b.rejected.Add(1)
		return err
	}
	it.enc = enc
	if b.keepOps {
		c := *op
		it.op = &c
	}
	return nil
}

// position is where the fate of item k goes in DoPrepared's errs: index[k],
// or k without an index (every operation sendable).
func position(index []int, k int) int {
	if index != nil {
		return index[k]
	}
	return k
}

// fill sets every error of errs to err and returns errs.
func fill(errs []error, err error) []error {
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// submit hands items to the collector.
func (b *Batcher) submit(ctx context.Context, items []*item) error {
	select {
	case b.in <- items:
		b.accepted.Add(int64(len(items)))
		return nil
	case <-b.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// await waits for the answers of items (all of group grp) and sets
// errs[index[k]] (errs[k] without an index) to the fate of items[k].
func (b *Batcher) await(ctx context.Context, items []*item, grp *group, errs []error, index []int) {
	select {
	case <-grp.done:
	case <-ctx.Done():
	}
	for k, it := range items {
		i := position(index, k)
		if it.fin.Load() {
			errs[i] = it.err
			continue
		}
		// Withdrawn if its request has not started; otherwise it may have
		// been (or be about to be) accepted. Either way the task retries.
		it.state.CompareAndSwap(queued, abandoned)
		errs[i] = ctx.Err()
	}
}

// collect assembles batches from b.in and hands ready ones to the senders.
func (b *Batcher) collect() {
	defer close(b.sendq)
	var queue []*pending
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	in, closing := b.in, b.closing
	for {
		if closing == nil && len(queue) == 0 {
			return
		}
		var out chan *pending
		var head *pending
		if len(queue) > 0 && queue[0].ready {
			out, head = b.sendq, queue[0]
		}
		select {
		case items := <-in:
			for _, it := range items {
				var last *pending
				if n := len(queue); n > 0 {
					last = queue[n-1]
				}
				if last == nil || !b.fits(last, it) {
					if last != nil {
						last.full, last.ready = true, true
					}
					last = &pending{items: make([]*item, 0, min(b.cfg.MaxOps, max(64, len(items)))), bytes: envelope - 1}
					queue = append(queue, last)
					if b.cfg.Linger < 0 {
						last.ready = true
					} else {
						timer.Reset(b.cfg.Linger)
					}
				}
				last.items = append(last.items, it)
				last.bytes += len(it.enc) + 1 // the comma before it (or, for the first, the -1 above)
				if len(last.items) >= b.cfg.MaxOps || last.bytes >= b.cfg.MaxBytes {
					last.full, last.ready = true, true
				}
			}
		case out <- head:
			queue[0] = nil
			queue = queue[1:]
		case <-timer.C:
			if n := len(queue); n > 0 {
				queue[n-1].ready = true
			}
		case <-closing:
			in, closing = nil, nil
			for _, p := range queue {
				p.ready = true
			}
		}
	}
}

func (b *Batcher) fits(p *pending, it *item) bool {
	return !p.full && len(p.items) < b.cfg.MaxOps && p.bytes+1+len(it.enc) <= b.cfg.MaxBytes
}

// flush sends one batch and delivers each item's fate.
func (b *Batcher) flush(p *pending) {
	live := p.items[:0]
	var ops []customerio.Operation
	if b.keepOps {
		ops = make([]customerio.Operation, 0, len(p.items))
	}
	encs := make([]json.RawMessage, 0, len(p.items))
	for _, it := range p.items {
		if it.state.CompareAndSwap(queued, sent) {
			live = append(live, it)
			if b.keepOps {
				ops = append(ops, *it.op)
			}
			encs = append(encs, it.enc)
		}
	}
	if len(encs) == 0 {
		return
	}
	b.batches.Add(1)
	b.ops.Add(int64(len(encs)))
	ctx, cancel := context.WithTimeout(withSpans(context.Background(), live), b.cfg.Timeout)
	res, err := b.call(ctx, ops, encs)
	cancel()
	if err != nil {
		b.requestErrors.Add(1)
		if customerio.ClassOf(err) == customerio.ClassPermanent {
			// A refusal of the whole request does not say which
			// operation made it: retrying each alone finds out.
			err = unattributed(err)
			b.unattributed.Add(1)
		}
		for _, it := range live {
			it.finish(err)
		}
		return
	}
	var failed map[int]*customerio.BatchItemError
	for i := range res.Errors {
		e := &res.Errors[i]
		if e.BatchIndex < 0 || e.BatchIndex >= len(live) {
			// An error that names no operation: acknowledging the others
			// could acknowledge the refused one.
			b.unattributed.Add(1)
			uerr := unattributed(&customerio.APIError{API: customerio.APITrack, Operation: "batch",
				Class: customerio.ClassPermanent, Message: "an item error names no item of the batch (batch_index " + strconv.Itoa(e.BatchIndex) + ")"})
			for _, it := range live {
				it.finish(uerr)
			}
			return
		}
		if failed == nil {
			failed = make(map[int]*customerio.BatchItemError, len(res.Errors))
		}
		if _, dup := failed[e.BatchIndex]; !dup {
			failed[e.BatchIndex] = e
		}
	}
	b.itemErrors.Add(int64(len(failed)))
	for i, it := range live {
		if e := failed[i]; e != nil {
			it.finish(itemError(e))
		} else {
			it.finish(nil)
		}
	}
}

// unattributed is the transient error every operation of a request gets
// when the request failed with err without naming the operation at fault.
func unattributed(err error) error {
	out := &customerio.APIError{API: customerio.APITrack, Operation: "batch", Class: customerio.ClassTransient, Err: ErrUnattributed}
	var ae *customerio.APIError
	if errors.As(err, &ae) {
		out.StatusCode, out.Message = ae.StatusCode, ae.Message
	} else {
		out.Message = err.Error()
	}
	return out
}

// itemError is the permanent error of an item Customer.io rejected: its
// field and message (or reason), never the item's values.
func itemError(e *customerio.BatchItemError) error {
	msg := e.Message
	if msg == "" {
		msg = e.Reason
	}
	if e.Field != "" {
		if msg == "" {
			msg = e.Field
		} else {
			msg = e.Field + ": " + msg
		}
	}
	return &customerio.APIError{API: customerio.APITrack, Operation: "batch", StatusCode: 400,
		Class: customerio.ClassPermanent, Message: msg}
}

// call runs send, turning a panic into a transient error.
func (b *Batcher) call(ctx context.Context, ops []customerio.Operation, encs []json.RawMessage) (res customerio.BatchResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			b.panics.Add(1)
			b.cfg.Logger.Error("batch: send panicked; failing its operations as transient",
				"ops", len(encs), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res = customerio.BatchResult{}
			err = &customerio.APIError{API: customerio.APITrack, Operation: "batch",
				Class: customerio.ClassTransient, Err: ErrSendPanicked}
		}
	}()
	return b.send(ctx, ops, encs)
}

// spansKey is the context key of the callers' span contexts (Spans).
type spansKey struct{}

// withSpans gives the context of a send the callers' spans: the first
// caller's span as its span (so a span the send starts is that caller's
// child), and all of them for Spans. Without any caller span it is ctx.
func withSpans(ctx context.Context, live []*item) context.Context {
	var first trace.SpanContext
	for _, it := range live {
		if it.grp.span.IsValid() {
			first = it.grp.span
			break
		}
	}
	if !first.IsValid() {
		return ctx
	}
	spans := make([]trace.SpanContext, len(live))
	for i, it := range live {
		spans[i] = it.grp.span
	}
	return context.WithValue(trace.ContextWithSpanContext(ctx, first), spansKey{}, spans)
}

// Spans returns, in a send's context, the span contexts of the callers
// whose operations the batch carries, one per operation in its order (an
// invalid one for a caller whose context had no span); nil when none had
// one. The send's context has the first caller's span as its own: a
// tracer starting the request's span there makes it that caller's child,
// and can link it to the others (the worker does: see its Config.TracerProvider).
func Spans(ctx context.Context) []trace.SpanContext {
	s, _ := ctx.Value(spansKey{}).([]trace.SpanContext)
	return s
}

func (it *item) finish(err error) {
	it.err = err
	it.fin.Store(true)
	if it.grp.left.Add(-1) == 0 {
		close(it.grp.done)
	}
}

// Close stops accepting operations (Do returns ErrClosed), sends every
// operation already accepted without waiting for Linger, and returns once
// their requests are answered. It is safe to call more than once; it
// always returns nil.
func (b *Batcher) Close() error {
	b.closeOnce.Do(func() { close(b.closing) })
	<-b.done
	return nil
}

// Stats are counters since New.
type Stats struct {
	Batches       int64 // requests sent (including failed ones)
	Ops           int64 // operations sent
	ItemErrors    int64 // operations Customer.io rejected individually
	RequestErrors int64 // requests that failed as a whole (including panics)
	Unattributed  int64 // requests whose failure named no operation (see ErrUnattributed)
	Panics        int64 // recovered SendFunc panics
	Rejected      int64 // operations refused in Do without sending
	Accepted      int64 // operations Do handed to the batcher (queued for a request)
}

// OpsPerBatch is the mean number of operations per request.
func (s Stats) OpsPerBatch() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Ops) / float64(s.Batches)
}

// Stats returns the counters so far.
func (b *Batcher) Stats() Stats {
	return Stats{
		Batches:       b.batches.Load(),
		Ops:           b.ops.Load(),
		ItemErrors:    b.itemErrors.Load(),
		RequestErrors: b.requestErrors.Load(),
		Unattributed:  b.unattributed.Load(),
		Panics:        b.panics.Load(),
		Rejected:      b.rejected.Load(),
		Accepted:      b.accepted.Load(),
	}
}
