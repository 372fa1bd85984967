package tasks

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/cioq/cioq/customerio"
)

// Multi-operation tasks: one asynq task carrying many batchable operations
// of one workspace (cio:batch), so that a burst of operations costs a few
// tasks (a few Redis round trips to enqueue and to fetch) instead of one
// each, and goes out in a few Track v2 batch requests.

// Limits of a cio:batch task.
const (
	// MaxBatchOperations is the most operations one cio:batch task holds:
	// the most Customer.io takes in one v2 batch request.
	MaxBatchOperations = 1000
	// MaxBatchBytes is the most bytes the operations' payloads of one
	// cio:batch task may take together (the producer fills a task up to
	// DefaultBatchBytes, so that it goes out as one request).
	MaxBatchBytes = 4 << 20
	// DefaultBatchOperations and DefaultBatchBytes are what the producer
	// puts in one task unless told otherwise: one v2 batch request's worth
	// (the worker's batches hold 500 operations and 450,000 bytes).
	DefaultBatchOperations = 500
	DefaultBatchBytes      = 400_000
)

// BatchItem is one operation of a cio:batch task: a batchable task type
// and that type's payload, exactly as a task of its own would carry it.
type BatchItem struct {
	// Type is a task type whose Spec is Batchable (cio:identify,
	// cio:track, cio:object_upsert, ...).
	Type string `json:"type"`
	// Payload is the type's payload (a JSON object).
	Payload json.RawMessage `json:"payload"`
}

// Batch is the payload of a cio:batch task: up to MaxBatchOperations
// batchable operations of one workspace (the envelope's), delivered
// together in Track v2 batch requests, each with its own fate (see the
// worker's package documentation). Validate checks the task's shape only
// (count, types, JSON objects): each operation is validated on its own,
// by the producer when it is enqueued and by the worker, which
// dead-letters an invalid one alone.
type Batch struct {
	Operations []BatchItem `json:"operations"`
}

// TaskType returns TypeBatch.
func (Batch) TaskType() string { return TypeBatch }

// Validate checks that the task holds 1 to MaxBatchOperations operations
// of batchable types, each a JSON object, MaxBatchBytes at most in all.
func (p Batch) Validate() error {
	if len(p.Operations) == 0 {
		return invalid("operations", "must hold at least one operation")
	}
	if len(p.Operations) > MaxBatchOperations {
		return invalid("operations", "must hold at most "+strconv.Itoa(MaxBatchOperations)+" operations")
	}
	total := 0
	for i, it := range p.Operations {
		if err := checkBatchItemType("operations["+strconv.Itoa(i)+"].type", it.Type); err != nil {
			return err
		}
		pl := bytes.TrimSpace(it.Payload)
		if len(pl) < 2 || pl[0] != '{' {
			return invalid("operations["+strconv.Itoa(i)+"].payload", "must be a JSON object")
		}
		total += len(pl)
	}
	if total > MaxBatchBytes {
		return invalid("operations", "must take at most "+strconv.Itoa(MaxBatchBytes)+" bytes in all")
	}
	return nil
}

// checkBatchItemType checks that typ may be an operation of a cio:batch
// task: a registered type whose Spec is Batchable.
func checkBatchItemType(field, typ string) error {
	spec, ok := registry[typ]
	switch {
	case typ == "":
		return invalid(field, "is required")
	case !ok:
		return invalid(field, "unknown task type")
	case !spec.Batchable:
		return invalid(field, "is not a batchable task type (identify, track, merges, delete, suppress, devices, objects, relationships)")
	}
	return nil
}

// Batchable reports whether operations of task type typ can go in a
// cio:batch task.
func Batchable(typ string) bool {
	return checkBatchItemType("type", typ) == nil
}

// DecodeItem decodes one operation of a cio:batch task into its type's
// payload (a pointer), as Decode decodes a bare payload: an error is a
// *DecodeError naming the field in the operation's payload. It does not
// call Validate.
func DecodeItem(it BatchItem) (Payload, error) {
	if err := checkBatchItemType("type", it.Type); err != nil {
		return nil, &DecodeError{Type: it.Type, Reason: err.(*customerio.ValidationError).Reason, Err: ErrUnknownType}
	}
	p, err := unmarshalPayload(registry[it.Type], it.Payload)
	if err != nil {
		field, reason := DescribeJSONError(it.Payload, err, p)
		return nil, malformedField(it.Type, field, reason)
	}
	return p, nil
}

// EncodeBatch returns the bytes of a cio:batch task holding items (whose
// payloads are used as they are: the caller encoded them with
// MarshalPayload, which checks their strings), under meta.
func EncodeBatch(items []BatchItem, meta Meta) ([]byte, error) {
	if err := (Batch{Operations: items}).Validate(); err != nil {
		return nil, err
	}
	n := 32
	for _, it := range items {
		n += len(it.Type) + len(it.Payload) + 24
	}
	b := make([]byte, 0, n)
	b = append(b, `{"operations":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":`...)
		b = strconv.AppendQuote(b, it.Type)
		b = append(b, `,"payload":`...)
		b = append(b, bytes.TrimSpace(it.Payload)...)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	return encodeRaw(b, meta)
}

// scanBatch reads b, a cio:batch payload as EncodeBatch writes it, into p
// without copying: each operation's Payload is a slice of b (as
// Envelope.Payload is). It reports false for anything written otherwise
// (other spacing or key order, escapes in a type), which the JSON decoders
// then read. An operation's payload is checked for JSON syntax only as
// far as finding its end takes (jsonWalk): one that is not valid JSON
// fails to decode (DecodeItem), alone, as one that does not validate does.
func scanBatch(b []byte, p *Batch) bool {
	const head, typ, pl = `{"operations":[`, `{"type":"`, `","payload":`
	if !bytes.HasPrefix(b, []byte(head)) {
		return false
	}
	i := len(head)
	ops := make([]BatchItem, 0, bytes.Count(b, []byte(pl)))
	w := jsonWalk{b: b}
	for more := i < len(b) && b[i] != ']'; more; {
		if !bytes.HasPrefix(b[i:], []byte(typ)) {
			return false
		}
		i += len(typ)
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 || bytes.IndexByte(b[i:i+j], '\\') >= 0 {
			return false
		}
		name := b[i : i+j]
		i += j
		if !bytes.HasPrefix(b[i:], []byte(pl)) {
			return false
		}
		i += len(pl)
		if i >= len(b) || b[i] != '{' {
			return false
		}
		end, ok := w.skipValue(i)
		if !ok || end >= len(b) || b[end] != '}' {
			return false
		}
		it := BatchItem{Payload: json.RawMessage(b[i:end:end])}
		if spec, known := registry[string(name)]; known {
			it.Type = spec.Type // no copy of a type's name per operation
		} else {
			it.Type = string(name)
		}
		ops = append(ops, it)
		i = end + 1
		if more = i < len(b) && b[i] == ','; more {
			i++
		}
	}
	if len(b)-i != 2 || b[i] != ']' || b[i+1] != '}' {
		return false
	}
	p.Operations = ops
	return true
}
