package producer_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

func track(pid string, i int) *tasks.Track {
	return &tasks.Track{Identifiers: customerio.Identifiers{ID: pid}, Event: customerio.Event{Name: "e", Data: map[string]any{"i": i}}}
}

// TestEnqueueBatchFillsTasks: 1,200 batchable operations become three
// cio:batch tasks (500, 500, 200) holding them in order, each event with a
// ULID id; a transactional send in the same call is a task of its own;
// Placed says where each operation went.
func TestEnqueueBatchFillsTasks(t *testing.T) {
	c, insp := setup(t)
	var ops []tasks.Payload
	for i := 0; i < 1200; i++ {
		ops = append(ops, track("p"+strconv.Itoa(i%7), i))
	}
	ops = append(ops[:600], append([]tasks.Payload{&tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "welcome",
		Identifiers: &customerio.Identifiers{ID: "p1"}}, To: "ada@example.com"}}, ops[600:]...)...)
	rec, err := c.EnqueueBatch(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Tasks) != 4 || len(rec.Placed) != len(ops) || rec.Duplicates != 0 {
		t.Fatalf("%d tasks, %d placements: %+v", len(rec.Tasks), len(rec.Placed), rec.Tasks)
	}
	if total(t, insp) != 4 {
		t.Errorf("%d tasks in Redis, want 4", total(t, insp))
	}
	sizes := map[string]int{}
	for _, r := range rec.Tasks {
		sizes[r.Type] += r.Operations
	}
	if sizes[tasks.TypeBatch] != 1200 || sizes[tasks.TypeSendEmail] != 1 {
		t.Errorf("operations per type %v", sizes)
	}
	send := rec.Placed[600]
	if send.Index != -1 || rec.Tasks[send.Task].Type != tasks.TypeSendEmail || rec.Tasks[send.Task].Queue != tasks.QueueCritical {
		t.Errorf("the send's placement %+v", send)
	}
	seen := 0
	for i, pl := range rec.Placed {
		if i == 600 {
			continue
		}
		r := rec.Tasks[pl.Task]
		_, _, p := stored(t, insp, r)
		b := p.(*tasks.Batch)
		if r.Operations != len(b.Operations) || r.Operations > 500 {
			t.Fatalf("task %s: receipt says %d operations, it holds %d", r.TaskID, r.Operations, len(b.Operations))
		}
		it := b.Operations[pl.Index]
		ip, err := tasks.DecodeItem(it)
		if err != nil {
			t.Fatal(err)
		}
		tr := ip.(*tasks.Track)
		want := i
		if i > 600 {
			want = i - 1
		}
		if tr.Data["i"] != float64(want) || tr.ID == "" {
			t.Fatalf("operation %d is %+v", i, tr)
		}
		seen++
		if seen > 20 { // the rest are like these; decoding 1200 tasks' worth is slow
			break
		}
	}
}

// TestEnqueueBatchRefusesAnInvalidOperation: one invalid operation refuses
// the call with an *OperationError naming its index and field, and
// nothing is enqueued.
func TestEnqueueBatchRefusesAnInvalidOperation(t *testing.T) {
	c, insp := setup(t)
	ops := []tasks.Payload{track("a", 1), &tasks.Track{Identifiers: customerio.Identifiers{ID: "b"}}, track("c", 3)}
	_, err := c.EnqueueBatch(ctx, ops)
	var oe *producer.OperationError
	var ve *producer.ValidationError
	if !errors.As(err, &oe) || oe.Index != 1 || !errors.As(err, &ve) || ve.Field != "name" {
		t.Fatalf("error %v, want operation 1's invalid name", err)
	}
	if n := total(t, insp); n != 0 {
		t.Errorf("%d tasks enqueued", n)
	}
	if _, err := c.EnqueueBatch(ctx, ops[:1], producer.BatchSize(1001)); err == nil {
		t.Error("BatchSize(1001) accepted")
	}
}

// TestEnqueueBatchIdempotencyKeyNamesTheCall: the same call with the same
// key enqueues nothing the second time; every task is a duplicate.
func TestEnqueueBatchIdempotencyKeyNamesTheCall(t *testing.T) {
	c, insp := setup(t)
	var ops []tasks.Payload
	for i := 0; i < 25; i++ {
		ops = append(ops, track("k", i))
	}
	first, err := c.EnqueueBatch(ctx, ops, producer.IdempotencyKey("import:f1"), producer.BatchSize(10))
	if err != nil || len(first.Tasks) != 3 || first.Duplicates != 0 {
		t.Fatalf("%+v %v", first, err)
	}
	again, err := c.EnqueueBatch(ctx, ops, producer.IdempotencyKey("import:f1"), producer.BatchSize(10))
	if err != nil || again.Duplicates != 25 || len(again.Tasks) != 3 {
		t.Fatalf("again: %+v %v", again, err)
	}
	for i := range first.Tasks {
		if first.Tasks[i].TaskID != again.Tasks[i].TaskID || !again.Tasks[i].Duplicate {
			t.Errorf("task %d: %s then %s (duplicate %v)", i, first.Tasks[i].TaskID, again.Tasks[i].TaskID, again.Tasks[i].Duplicate)
		}
	}
	if n := total(t, insp); n != 3 {
		t.Errorf("%d tasks in Redis, want 3", n)
	}
}

// TestEnqueueBatchOrderedGroupsByPerson: with WithOrdering, each cio:batch
// task holds one person's operations, in order, stamped with that
// person's next number.
func TestEnqueueBatchOrderedGroupsByPerson(t *testing.T) {
	c, insp := setup(t, producer.WithOrdering())
	if _, err := c.Track(ctx, *track("x", -1)); err != nil { // x's number 1
		t.Fatal(err)
	}
	ops := []tasks.Payload{track("x", 0), track("y", 0), track("x", 1), track("y", 1), track("x", 2)}
	rec, err := c.EnqueueBatch(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Tasks) != 2 {
		t.Fatalf("%d tasks, want one per person", len(rec.Tasks))
	}
	for _, r := range rec.Tasks {
		_, env, p := stored(t, insp, r)
		b := p.(*tasks.Batch)
		var who []string
		for _, it := range b.Operations {
			ip, _ := tasks.DecodeItem(it)
			tr := ip.(*tasks.Track)
			who = append(who, tr.Identifiers.ID+":"+strconv.Itoa(int(tr.Data["i"].(float64))))
		}
		key, _ := producer.OrderKey(track(strings.SplitN(who[0], ":", 2)[0], 0))
		wantSeq := int64(1)
		if strings.HasPrefix(who[0], "x") {
			wantSeq = 2
		}
		if env.OrderKey != key || env.Seq != wantSeq {
			t.Errorf("%v: order key %q seq %d, want %q %d", who, env.OrderKey, env.Seq, key, wantSeq)
		}
		if got := strings.Join(who, ","); got != "x:0,x:1,x:2" && got != "y:0,y:1" {
			t.Errorf("task holds %s", got)
		}
	}
}

// TestEnqueueRawBatchChecksEachOperation: a cio:batch payload given as
// JSON is checked operation by operation, a field named by its path, and
// its events get ids.
func TestEnqueueRawBatchChecksEachOperation(t *testing.T) {
	c, insp := setup(t)
	bad := `{"operations":[{"type":"cio:track","payload":{"identifiers":{"id":"a"},"name":"e"}},{"type":"cio:track","payload":{"identifiers":{"id":"b"},"name":""}}]}`
	_, err := c.EnqueueRaw(ctx, tasks.TypeBatch, json.RawMessage(bad))
	var ve *producer.ValidationError
	if !errors.As(err, &ve) || ve.Field != "operations[1].payload.name" {
		t.Fatalf("error %v, want operations[1].payload.name", err)
	}
	typo := `{"operations":[{"type":"cio:track","payload":{"identifiers":{"id":"a"},"name":"e","dta":{}}}]}`
	if _, err := c.EnqueueRaw(ctx, tasks.TypeBatch, json.RawMessage(typo)); !errors.As(err, &ve) || ve.Field != "operations[0].payload.dta" {
		t.Fatalf("error %v, want operations[0].payload.dta", err)
	}
	if _, err := c.EnqueueRaw(ctx, tasks.TypeBatch, json.RawMessage(`{"operations":[{"type":"cio:send_email","payload":{}}]}`)); !errors.As(err, &ve) || ve.Field != "operations[0].type" {
		t.Fatalf("error %v, want operations[0].type", err)
	}
	good := `{"operations":[{"type":"cio:track","payload":{"identifiers":{"id":"a"},"name":"e"}}]}`
	r, err := c.EnqueueRaw(ctx, tasks.TypeBatch, json.RawMessage(good))
	if err != nil {
		t.Fatal(err)
	}
	info, _, p := stored(t, insp, r)
	ip, _ := tasks.DecodeItem(p.(*tasks.Batch).Operations[0])
	if ip.(*tasks.Track).ID == "" {
		t.Errorf("stored %s", info.Payload)
	}
}
