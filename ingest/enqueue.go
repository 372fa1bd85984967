package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
}

// item is what one received message (event, batch item, custom object,
// generic task) becomes: its tasks, or the reason it makes none.
type item struct {
	jobs    []job
	skipped string // why the item makes no task ("" when it makes some)
}

// result is the outcome of enqueueing a request's items.
type result struct {
	receipts   []producer.Receipt
	accepted   []int // indices of the items whose every task Redis holds
	enqueued   int   // tasks newly enqueued
	duplicates int   // tasks refused as repeats of an idempotency key
	skipped    int   // items that make no task
	err        *reqError
}

// enqueueAll enqueues the tasks of items in order. It stops at the first
// failure: the result then lists exactly the items whose every task Redis
// holds (accepted), and err is 503 (Redis unreachable) or 400 (a task the
// producer refused despite the checks before).
func (s *Server) enqueueAll(r *http.Request, source string, items []item) result {
	ctx, cancel := s.enqueueContext(r)
	defer cancel()
	res := result{accepted: []int{}}
	for i, it := range items {
		if len(it.jobs) == 0 {
			res.skipped++
			res.accepted = append(res.accepted, i)
			continue
		}
		for _, j := range it.jobs {
			rc, err := s.enqueueJob(ctx, j)
			if err != nil {
				res.err = s.enqueueError(source, j.typ, err)
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
	}
	return res
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
	s.log.Error("ingest: enqueue failed; answering 503", "source", source, "type", typ, "error", scrubErr(err))
	return &reqError{status: http.StatusServiceUnavailable, code: "unavailable",
		msg: "the queue is unavailable; retry later (items listed as accepted are queued; messages with a messageId are not queued twice)"}
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
// okStatus with the counts, or the failure with the accepted items.
func (s *Server) finish(w http.ResponseWriter, source string, okStatus int, received int, res result, extra map[string]any) {
	body := map[string]any{}
	for k, v := range extra {
		body[k] = v
	}
	if res.err != nil {
		s.count(source, res.err.outcome())
		body["error"] = errorJSON{Code: res.err.code, Message: res.err.msg, Field: res.err.field}
		body["accepted"] = res.accepted
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
