package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// job is one task to enqueue, already validated.
type job struct {
	typ     string
	payload tasks.Payload   // typed payload (Track mode), or
	raw     json.RawMessage // a raw payload (Pipelines mode, /v1/tasks)
	opts    []producer.EnqueueOption
	// prefix is what the message's fields are named with in errors ("",
	// "batch[3]."); checked: the producer already checked the task
	// (/v1/tasks: producer.Check).
	prefix  string
	checked bool
	// batch: a typed payload of a batchable type made of a message
	// (payloadJob), which may share a cio:batch task with the request's
	// other such jobs; ws is its workspace.
	batch bool
	ws    string
	// key is the job's idempotency key ("" = none).
	key string
}

// item is what one received message (event, batch item, custom object,
// generic task) becomes: its tasks, or the reason it makes none.
type item struct {
	jobs    []job
	skipped string // why the item makes no task ("" when it makes some)
	mid     string // the message's id, for its dedupe record ("" without one)
}

// partialItem is an item of which Redis holds some tasks but not all,
// when enqueueing stopped at a failure: its tasks are enqueued in order,
// so Redis holds the first ones (Queued, newly or as duplicates) and none
// of the rest (Missing). Both list task types in the item's order.
type partialItem struct {
	Index   int      `json:"index"`
	Queued  []string `json:"queued"`
	Missing []string `json:"missing"`
}

// result is the outcome of enqueueing a request's items.
type result struct {
	receipts []producer.Receipt
	accepted []int         // indices of the items whose every task Redis holds
	partial  []partialItem // items of which Redis holds only some tasks (at most one)
	// unreplicated: items whose task Redis's master took but fewer
	// replicas than required confirmed (producer.ErrNotReplicated; at most one)
	unreplicated []int
	enqueued     int // tasks newly enqueued
	duplicates   int // tasks refused as repeats of an idempotency key
	skipped      int // items that make no task
	err          *reqError
}

// enqueueAll enqueues the tasks of items in order. It stops at the first
// failure: the result then lists exactly the items whose every task Redis
// holds (accepted) and the item of which it holds only the first tasks
// (partial; none when the failure hit an item's first task). Every other
// item has no task in Redis. err is 503 (Redis unreachable) or 400 (a task
// the producer refused despite the checks before).
//
// An item whose message id the source sent within the dedupe window (its
// record exists) is a duplicate: none of its tasks is enqueued. The records
// of the items whose every task Redis now holds are written at the end,
// also after a failure.
func (s *Server) enqueueAll(r *http.Request, source string, items []item) result {
	ctx, cancel := s.enqueueContext(r)
	defer cancel()
	res := result{accepted: []int{}}
	if e := s.checkContracts(items); e != nil {
		// A task the contracts refuse refuses the request before anything
		// is enqueued, as any invalid message does.
		res.err = e
		return res
	}
	seen, err := s.seen(ctx, source, items)
	if err != nil {
		res.err = s.unavailable(source, "dedupe check", err)
		return res
	}
	var recs []string
	defer func() { s.remember(ctx, source, recs) }()
	// Runs of consecutive items whose every task is batchable go in
	// cio:batch tasks together (producer.EnqueueBatch): a request of many
	// messages costs a few Redis round trips instead of one per task.
	var run []int
	flush := func() bool {
		defer func() { run = run[:0] }()
		if len(run) == 0 {
			return true
		}
		var ops []tasks.Payload
		var owner []int
		for _, i := range run {
			for _, j := range items[i].jobs {
				ops = append(ops, j.payload)
				owner = append(owner, i)
			}
		}
		var opts []producer.EnqueueOption
		if ws := items[run[0]].jobs[0].ws; ws != "" {
			opts = append(opts, producer.Workspace(ws))
		}
		if k := runKey(items, run); k != "" {
			opts = append(opts, producer.IdempotencyKey(k))
		}
		rec, err := s.cfg.Producer.EnqueueBatch(ctx, ops, opts...)
		for _, rc := range rec.Tasks {
			res.receipts = append(res.receipts, rc)
			if rc.Duplicate {
				res.duplicates += rc.Operations
			} else {
				res.enqueued += rc.Operations
			}
		}
		unrepl := errors.Is(err, producer.ErrNotReplicated)
		queued := map[int]int{} // item -> its tasks in Redis
		for k, pl := range rec.Placed {
			if err == nil || (pl.Task >= 0 && !unrepl) {
				queued[owner[k]]++
			}
		}
		if unrepl {
			// The tasks not confirmed may exist: the items that are not
			// wholly accepted are named unreplicated (a retry under the same
			// message ids is safe), not partial.
			for _, i := range run {
				if queued[i] != len(items[i].jobs) {
					res.unreplicated = append(res.unreplicated, i)
					queued[i] = 0
				}
			}
		}
		for _, i := range run {
			switch q := queued[i]; {
			case q == len(items[i].jobs):
				res.accepted = append(res.accepted, i)
				if k := seenKey(source, items[i].mid); k != "" {
					recs = append(recs, k)
				}
			case q > 0:
				// Placed follows the item's order only within a task; name
				// the item's types as queued and missing by count.
				res.partial = append(res.partial, partialItem{Index: i,
					Queued: jobTypes(items[i].jobs[:q]), Missing: jobTypes(items[i].jobs[q:])})
			}
		}
		if err != nil {
			res.err = s.enqueueError(source, tasks.TypeBatch, err)
			return false
		}
		return true
	}
	for i, it := range items {
		if len(it.jobs) == 0 {
			res.skipped++
			res.accepted = append(res.accepted, i)
			continue
		}
		if seen[i] {
			res.duplicates += len(it.jobs)
			res.accepted = append(res.accepted, i)
			continue
		}
		if len(items) > 1 && batchable(it) && (len(run) == 0 || it.jobs[0].ws == items[run[0]].jobs[0].ws) {
			run = append(run, i)
			continue
		}
		if !flush() {
			return res
		}
		if len(items) > 1 && batchable(it) {
			run = append(run, i)
			continue
		}
		for n, j := range it.jobs {
			rc, err := s.enqueueJob(ctx, j)
			if err != nil {
				res.err = s.enqueueError(source, j.typ, err)
				if errors.Is(err, producer.ErrNotReplicated) {
					res.unreplicated = append(res.unreplicated, i)
					return res
				}
				if n > 0 {
					res.partial = append(res.partial, partialItem{Index: i,
						Queued: jobTypes(it.jobs[:n]), Missing: jobTypes(it.jobs[n:])})
				}
				return res
			}
			res.receipts = append(res.receipts, rc)
			if rc.Duplicate {
				res.duplicates++
			} else {
				res.enqueued++
			}
		}
		res.accepted = append(res.accepted, i)
		if k := seenKey(source, it.mid); k != "" {
			recs = append(recs, k)
		}
	}
	if !flush() {
		return res
	}
	slices.Sort(res.accepted)
	return res
}

// checkContracts checks every task of items against the producer's
// contracts (producer.WithContracts) before any is enqueued: the first a
// contract refuses is a 400 naming its field (in the message's names).
func (s *Server) checkContracts(items []item) *reqError {
	if s.cfg.Producer.Contracts() == nil {
		return nil
	}
	for _, it := range items {
		for _, j := range it.jobs {
			if j.checked {
				continue
			}
			var err error
			if j.payload != nil {
				err = s.cfg.Producer.CheckPayload(j.payload, j.opts...)
			} else {
				err = s.cfg.Producer.Check(j.typ, j.raw, j.opts...)
			}
			if err != nil {
				return validation(j.prefix, j.typ, err)
			}
		}
	}
	return nil
}

// runKey is the idempotency key of a run of items enqueued together: a
// digest of its jobs' keys (each message's), so the same messages sent
// again while the first tasks are in Redis (a concurrent repeat) enqueue
// nothing; "" when a job has no key.
func runKey(items []item, run []int) string {
	h := sha256.New()
	for _, i := range run {
		for _, j := range items[i].jobs {
			if j.key == "" {
				return ""
			}
			h.Write([]byte(j.key))
			h.Write([]byte{0})
		}
	}
	return "ingest:run:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// batchable reports whether every task of it may go in a cio:batch task.
func batchable(it item) bool {
	for _, j := range it.jobs {
		if !j.batch || j.ws != it.jobs[0].ws {
			return false
		}
	}
	return true
}

func jobTypes(jobs []job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.typ
	}
	return out
}

func (s *Server) enqueueJob(ctx context.Context, j job) (producer.Receipt, error) {
	if j.payload != nil {
		return s.cfg.Producer.Enqueue(ctx, j.payload, j.opts...)
	}
	return s.cfg.Producer.EnqueueRaw(ctx, j.typ, j.raw, j.opts...)
}

func (s *Server) enqueueError(source, typ string, err error) *reqError {
	var ve *producer.ValidationError
	if errors.As(err, &ve) {
		// The checks before enqueueing should have caught it.
		return bad("invalid", ve.Field, "%s: %s", typ, ve.Reason)
	}
	return s.unavailable(source, typ, err)
}

// unavailable logs a Redis failure (what: the task type, or the step) and
// makes the 503.
func (s *Server) unavailable(source, what string, err error) *reqError {
	if errors.Is(err, producer.ErrNotReplicated) {
		s.log.Warn("ingest: a task is not confirmed by the replicas; answering 503", "source", source, "type", what, "error", scrubErr(err))
		return &reqError{status: http.StatusServiceUnavailable, code: "unavailable",
			msg: "the queue's replicas did not confirm a task in time; retry later (items listed as accepted are queued and replicated; the item listed as unreplicated is queued on the master only, or partly, and may be lost in a failover; items listed as partial only their queued tasks; other items nothing; messages with a messageId are not queued twice)"}
	}
	s.log.Error("ingest: enqueue failed; answering 503", "source", source, "type", what, "error", scrubErr(err))
	return &reqError{status: http.StatusServiceUnavailable, code: "unavailable",
		msg: "the queue is unavailable; retry later (items listed as accepted are queued, items listed as partial only their queued tasks, other items nothing; messages with a messageId are not queued twice)"}
}

// scrubErr returns an error's text for logs, which never carries payloads:
// producer and Redis errors name types and addresses only.
func scrubErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "@"); i >= 0 { // a URL with credentials
		return "redis error"
	}
	return s
}

// finish writes the response of a request whose items were enqueued:
// okStatus with the counts, or the failure with the accepted and partial
// items.
func (s *Server) finish(w http.ResponseWriter, source string, okStatus int, received int, res result, extra map[string]any) {
	body := map[string]any{}
	for k, v := range extra {
		body[k] = v
	}
	if res.err != nil {
		s.count(source, res.err.outcome())
		body["error"] = errorJSON{Code: res.err.code, Message: res.err.msg, Field: res.err.field}
		body["accepted"] = res.accepted
		if res.partial == nil {
			res.partial = []partialItem{}
		}
		body["partial"] = res.partial
		if res.unreplicated == nil {
			res.unreplicated = []int{}
		}
		body["unreplicated"] = res.unreplicated
		body["received"] = received
		writeJSON(w, res.err.status, body)
		return
	}
	s.count(source, "accepted")
	body["success"] = true
	body["received"] = received
	body["enqueued"] = res.enqueued
	body["duplicates"] = res.duplicates
	body["skipped"] = res.skipped
	writeJSON(w, okStatus, body)
}
