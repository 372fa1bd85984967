package producer_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// Prepare validates as Enqueue does, without Redis; EnqueuePrepared makes
// the task Enqueue would have made, under the key's hash or the given
// TaskID, and a second EnqueuePrepared of the same task is a duplicate.
func TestPrepareThenEnqueuePrepared(t *testing.T) {
	c, insp := setup(t)
	prep := producer.NewPreparer(producer.WithDefaultWorkspace("eu"), producer.Workspaces("eu", "us"))

	bad := sendOrder()
	bad.To = ""
	_, perr := prep.Prepare(bad)
	_, eerr := c.Enqueue(ctx, bad)
	var pv, ev *producer.ValidationError
	if !errors.As(perr, &pv) || !errors.As(eerr, &ev) || pv.Field != ev.Field || perr.Error() != eerr.Error() {
		t.Errorf("Prepare %v, Enqueue %v: want the same *ValidationError", perr, eerr)
	}
	var uw *producer.UnknownWorkspaceError
	if _, err := prep.Prepare(sendOrder(), producer.Workspace("apac")); !errors.As(err, &uw) {
		t.Errorf("unknown workspace: %v", err)
	}
	if _, err := prep.PrepareRaw(tasks.TypeIdentify, json.RawMessage(`{"identifiers":{"id":7}}`)); err == nil {
		t.Error("PrepareRaw accepted a number id")
	}

	// A keyed send: the id is the key's hash under c's secret.
	p, err := prep.Prepare(sendOrder(), producer.IdempotencyKey(personKey), producer.ExpiresIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != tasks.TypeSendEmail || p.Queue != tasks.QueueCritical || p.Key != personKey || p.Workspace != "eu" ||
		p.MaxRetry != tasks.DefaultMaxRetry || p.Timeout != tasks.DefaultTimeout || !p.ProcessAt.IsZero() {
		t.Errorf("prepared %+v", p)
	}
	want, err := c.TaskIDForKey(ctx, personKey)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := c.EnqueuePrepared(ctx, p)
	if err != nil || r1.TaskID != want || r1.Duplicate {
		t.Fatalf("first: %+v %v", r1, err)
	}
	if r2, err := c.EnqueuePrepared(ctx, p); err != nil || !r2.Duplicate || r2.TaskID != want {
		t.Errorf("second: %+v %v", r2, err)
	}
	ti, err := insp.GetTaskInfo(tasks.QueueCritical, want)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := tasks.Decode(ti.Type, ti.Payload)
	if err != nil || env.Workspace != "eu" || env.ExpiresAt == 0 || env.IdempotencyKey != personKey || string(ti.Payload) != string(p.Envelope) {
		t.Errorf("envelope %+v %v", env, err)
	}

	// Unkeyed with a TaskID and a retention, scheduled: a track event gets
	// its ULID at Prepare.
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	q, err := prep.Prepare(tasks.Track{Identifiers: customerio.Identifiers{ID: "u"}, Event: customerio.Event{Name: "paid"}}, producer.ProcessAt(at))
	if err != nil {
		t.Fatal(err)
	}
	q.TaskID, q.Retention = "o-test-1", time.Minute
	for i, dup := range []bool{false, true} {
		r, err := c.EnqueuePrepared(ctx, q)
		if err != nil || r.TaskID != "o-test-1" || r.Duplicate != dup {
			t.Errorf("round %d: %+v %v", i, r, err)
		}
	}
	ti, err = insp.GetTaskInfo(tasks.QueueDefault, "o-test-1")
	if err != nil || ti.State != asynq.TaskStateScheduled || !ti.NextProcessAt.Equal(at) || ti.Retention != time.Minute {
		t.Errorf("scheduled task %+v %v", ti, err)
	}
	_, pl, _ := tasks.Decode(ti.Type, ti.Payload)
	if pl.(*tasks.Track).ID == "" {
		t.Error("the event has no ULID id")
	}

	// What Prepare cannot have made is refused before Redis.
	for name, mod := range map[string]func(*producer.Prepared){
		"type":    func(p *producer.Prepared) { p.Type = "cio:nope" },
		"queue":   func(p *producer.Prepared) { p.Queue = "no spaces" },
		"key":     func(p *producer.Prepared) { p.Key = "has space" },
		"timeout": func(p *producer.Prepared) { p.Timeout = 0 },
		"retry":   func(p *producer.Prepared) { p.MaxRetry = -1 },
		"payload": func(p *producer.Prepared) { p.Envelope = nil },
	} {
		x := q
		x.TaskID = "o-bad-" + name
		mod(&x)
		var ve *producer.ValidationError
		if _, err := c.EnqueuePrepared(ctx, x); !errors.As(err, &ve) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
