package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/oklog/ulid/v2"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

var ctx = context.Background()

func setup(t testing.TB, opts ...producer.Option) (*producer.Client, *asynq.Inspector) {
	t.Helper()
	db := testredis.New(t)
	c, err := producer.New(db.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	insp := asynq.NewInspector(db.ConnOpt())
	t.Cleanup(func() { insp.Close() })
	return c, insp
}

// stored returns the task of a receipt as Redis holds it, decoded.
func stored(t *testing.T, insp *asynq.Inspector, r producer.Receipt) (*asynq.TaskInfo, *tasks.Envelope, tasks.Payload) {
	t.Helper()
	info, err := insp.GetTaskInfo(r.Queue, r.TaskID)
	if err != nil {
		t.Fatalf("GetTaskInfo(%s, %s): %v", r.Queue, r.TaskID, err)
	}
	if info.Type != r.Type {
		t.Fatalf("stored type %q, receipt %q", info.Type, r.Type)
	}
	env, p, err := tasks.Decode(info.Type, info.Payload)
	if err != nil {
		t.Fatalf("Decode stored payload: %v", err)
	}
	return info, env, p
}

func total(t *testing.T, insp *asynq.Inspector) int {
	t.Helper()
	qs, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range qs {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size
	}
	return n
}

var person = customerio.Identifiers{ID: "user-123"}

func TestTypedMethods(t *testing.T) {
	c, insp := setup(t)
	pp := &person
	for _, tc := range []struct {
		typ, queue string
		call       func() (producer.Receipt, error)
	}{
		{tasks.TypeSendEmail, tasks.QueueCritical, func() (producer.Receipt, error) {
			return c.SendEmail(ctx, tasks.SendEmail{To: "a@example.com", SendOptions: customerio.SendOptions{TransactionalMessageID: "3"}})
		}},
		{tasks.TypeSendPush, tasks.QueueCritical, func() (producer.Receipt, error) {
			return c.SendPush(ctx, tasks.SendPush{SendOptions: customerio.SendOptions{TransactionalMessageID: "3", Identifiers: pp}})
		}},
		{tasks.TypeSendSMS, tasks.QueueCritical, func() (producer.Receipt, error) {
			return c.SendSMS(ctx, tasks.SendSMS{SendOptions: customerio.SendOptions{TransactionalMessageID: "3", Identifiers: pp}, To: "+15555550100"})
		}},
		{tasks.TypeSendInApp, tasks.QueueCritical, func() (producer.Receipt, error) {
			return c.SendInApp(ctx, tasks.SendInApp{SendOptions: customerio.SendOptions{TransactionalMessageID: "3", Identifiers: pp}})
		}},
		{tasks.TypeSendInbox, tasks.QueueCritical, func() (producer.Receipt, error) {
			return c.SendInbox(ctx, tasks.SendInbox{SendOptions: customerio.SendOptions{TransactionalMessageID: "3", Identifiers: pp}})
		}},
		{tasks.TypeSendWhatsApp, tasks.QueueCritical, func() (producer.Receipt, error) {
			return c.SendWhatsApp(ctx, tasks.SendWhatsApp{SendOptions: customerio.SendOptions{TransactionalMessageID: "3", Identifiers: pp}, To: "+15555550100"})
		}},
		{tasks.TypeIdentify, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.Identify(ctx, tasks.Identify{Identifiers: person, Attributes: map[string]any{"plan": "pro"}})
		}},
		{tasks.TypeTrack, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.Track(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "signup"}})
		}},
		{tasks.TypeTrack, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.TrackPage(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "/pricing"}})
		}},
		{tasks.TypeTrack, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.TrackScreen(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "Checkout"}})
		}},
		{tasks.TypeTrackAnonymous, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.TrackAnonymous(ctx, tasks.TrackAnonymous{AnonymousID: "anon-1", Name: "/", Type: customerio.EventTypePage})
		}},
		{tasks.TypeMergeAnonymous, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.MergeAnonymous(ctx, tasks.MergeAnonymous{Identifiers: person, AnonymousID: "anon-1"})
		}},
		{tasks.TypeMergePeople, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.MergePeople(ctx, tasks.MergePeople{Primary: person, Secondary: customerio.Identifiers{Email: "old@example.com"}})
		}},
		{tasks.TypeDelete, tasks.QueueDefault, func() (producer.Receipt, error) { return c.Delete(ctx, tasks.Delete{Identifiers: person}) }},
		{tasks.TypeSuppress, tasks.QueueDefault, func() (producer.Receipt, error) { return c.Suppress(ctx, tasks.Suppress{Identifiers: person}) }},
		{tasks.TypeUnsuppress, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.Unsuppress(ctx, tasks.Unsuppress{Identifiers: person})
		}},
		{tasks.TypeDeviceAdd, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.AddDevice(ctx, tasks.DeviceAdd{Identifiers: person, Device: customerio.Device{ID: "tok", Platform: "ios"}})
		}},
		{tasks.TypeDeviceDelete, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.DeleteDevice(ctx, tasks.DeviceDelete{Identifiers: person, Device: tasks.DeviceRef{ID: "tok"}})
		}},
		{tasks.TypeObjectUpsert, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: map[string]any{"name": "Acme"}})
		}},
		{tasks.TypeObjectDelete, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.DeleteObject(ctx, tasks.ObjectDelete{ObjectTypeID: "1", ObjectID: "acme"})
		}},
		{tasks.TypeRelate, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.Relate(ctx, tasks.Relate{Identifiers: person, ObjectTypeID: "1", ObjectID: "acme"})
		}},
		{tasks.TypeUnrelate, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.Unrelate(ctx, tasks.Unrelate{Identifiers: person, ObjectTypeID: "1", ObjectID: "acme"})
		}},
		{tasks.TypeBroadcastTrigger, tasks.QueueBulk, func() (producer.Receipt, error) {
			return c.TriggerBroadcast(ctx, tasks.BroadcastTrigger{BroadcastID: 42})
		}},
		{tasks.TypeSegmentAdd, tasks.QueueBulk, func() (producer.Receipt, error) {
			return c.AddToSegment(ctx, tasks.SegmentAdd{SegmentID: 7, IDs: []string{"a", "b"}})
		}},
		{tasks.TypeSegmentRemove, tasks.QueueBulk, func() (producer.Receipt, error) {
			return c.RemoveFromSegment(ctx, tasks.SegmentRemove{SegmentID: 7, IDs: []string{"a"}})
		}},
		{tasks.TypeCDPIdentify, tasks.QueueDefault, func() (producer.Receipt, error) { return c.CDPIdentify(ctx, tasks.CDPIdentify{UserID: "u"}) }},
		{tasks.TypeCDPTrack, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.CDPTrack(ctx, tasks.CDPTrack{UserID: "u", Event: "Signed Up"})
		}},
		{tasks.TypeCDPPage, tasks.QueueDefault, func() (producer.Receipt, error) { return c.CDPPage(ctx, tasks.CDPPage{AnonymousID: "a"}) }},
		{tasks.TypeCDPScreen, tasks.QueueDefault, func() (producer.Receipt, error) { return c.CDPScreen(ctx, tasks.CDPScreen{UserID: "u"}) }},
		{tasks.TypeCDPGroup, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.CDPGroup(ctx, tasks.CDPGroup{UserID: "u", GroupID: "acme"})
		}},
		{tasks.TypeCDPAlias, tasks.QueueDefault, func() (producer.Receipt, error) {
			return c.CDPAlias(ctx, tasks.CDPAlias{UserID: "u", PreviousID: "a"})
		}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			before := time.Now()
			r, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != tc.typ || r.Queue != tc.queue || r.TaskID == "" || r.Duplicate {
				t.Fatalf("receipt = %+v", r)
			}
			info, env, p := stored(t, insp, r)
			if err := p.Validate(); err != nil {
				t.Errorf("stored payload does not validate: %v", err)
			}
			// The budget travels in a header; asynq's own MaxRetry is out of
			// reach, so asynq never archives the task by itself.
			if info.Headers[tasks.HeaderRetryBudget] != strconv.Itoa(tasks.DefaultMaxRetry) || info.MaxRetry != tasks.AsynqMaxRetry ||
				info.Timeout != tasks.DefaultTimeout || info.Retention != 0 {
				t.Errorf("budget %q, MaxRetry %d, Timeout %v, Retention %v", info.Headers[tasks.HeaderRetryBudget], info.MaxRetry, info.Timeout, info.Retention)
			}
			if info.State != asynq.TaskStatePending {
				t.Errorf("state %v", info.State)
			}
			enq, ok := env.Enqueued()
			if env.V != 1 || !ok || enq.Before(before.Truncate(time.Millisecond)) || enq.After(time.Now()) || env.Workspace != "" || env.ExpiresAt != 0 {
				t.Errorf("envelope = %+v", env)
			}
		})
	}
	if n := total(t, insp); n != 31 {
		t.Errorf("%d tasks in Redis, want 31", n)
	}
}

func TestPageAndScreenType(t *testing.T) {
	c, insp := setup(t)
	r, err := c.TrackPage(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "/pricing"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, p := stored(t, insp, r); p.(*tasks.Track).Type != customerio.EventTypePage {
		t.Errorf("TrackPage stored type %q", p.(*tasks.Track).Type)
	}
	r, _ = c.TrackScreen(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "Home"}})
	if _, _, p := stored(t, insp, r); p.(*tasks.Track).Type != customerio.EventTypeScreen {
		t.Errorf("TrackScreen stored type %q", p.(*tasks.Track).Type)
	}
	_, err = c.TrackPage(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "x", Type: customerio.EventTypeScreen}})
	var ve *producer.ValidationError
	if !errors.As(err, &ve) || ve.Field != "type" {
		t.Errorf("TrackPage with type screen = %v", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	c, insp := setup(t, producer.WithIdempotencyWindow(2*time.Hour))
	email := tasks.SendEmail{To: "a@example.com", SendOptions: customerio.SendOptions{TransactionalMessageID: "order_confirmation"}}
	r1, err := c.SendEmail(ctx, email, producer.IdempotencyKey("order-12345:confirmation"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r1.TaskID, "k-") || strings.Contains(r1.TaskID, "12345") || r1.Key != "order-12345:confirmation" || r1.Duplicate {
		t.Fatalf("first receipt = %+v", r1)
	}
	r2, err := c.SendEmail(ctx, email, producer.IdempotencyKey("order-12345:confirmation"))
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Duplicate || r2.TaskID != r1.TaskID || r2.Key != r1.Key || r2.Queue != r1.Queue || r2.Type != r1.Type {
		t.Fatalf("second receipt = %+v, first %+v", r2, r1)
	}
	if n := total(t, insp); n != 1 {
		t.Fatalf("%d tasks enqueued, want 1", n)
	}
	info, _, _ := stored(t, insp, r1)
	if info.Retention != 2*time.Hour {
		t.Errorf("Retention = %v, want 2h", info.Retention)
	}
	// A duplicate reports the first task even when called with another type.
	r3, err := c.Identify(ctx, tasks.Identify{Identifiers: person}, producer.IdempotencyKey("order-12345:confirmation"), producer.Queue(tasks.QueueCritical))
	if err != nil || !r3.Duplicate || r3.Type != tasks.TypeSendEmail {
		t.Errorf("cross-type duplicate = %+v, %v", r3, err)
	}
	// Default window.
	c2, insp2 := setup(t)
	r, err := c2.Delete(ctx, tasks.Delete{Identifiers: person}, producer.IdempotencyKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if info, _, _ := stored(t, insp2, r); info.Retention != producer.DefaultIdempotencyWindow {
		t.Errorf("Retention = %v, want %v", info.Retention, producer.DefaultIdempotencyWindow)
	}
}

func TestIdempotencyKeyKeepsDedupingAfterCompletion(t *testing.T) {
	db := testredis.New(t)
	c, err := producer.New(db.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r1, err := c.Delete(ctx, tasks.Delete{Identifiers: person}, producer.IdempotencyKey("delete-user-123"))
	if err != nil {
		t.Fatal(err)
	}
	// Process it with a real asynq server.
	done := make(chan struct{}, 1)
	srv := asynq.NewServer(db.ConnOpt(), asynq.Config{Concurrency: 1, Queues: map[string]int{tasks.QueueDefault: 1}, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeDelete, func(context.Context, *asynq.Task) error { done <- struct{}{}; return nil })
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("task not processed")
	}
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := insp.GetTaskInfo(tasks.QueueDefault, r1.TaskID)
		if err == nil && info.State == asynq.TaskStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not completed: %v %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r2, err := c.Delete(ctx, tasks.Delete{Identifiers: person}, producer.IdempotencyKey("delete-user-123"))
	if err != nil || !r2.Duplicate || r2.TaskID != r1.TaskID {
		t.Fatalf("after completion: %+v, %v", r2, err)
	}
	select {
	case <-done:
		t.Fatal("duplicate delivered")
	case <-time.After(300 * time.Millisecond):
	}
}

func TestValidationErrorsNothingEnqueued(t *testing.T) {
	c, insp := setup(t)
	ok := tasks.Identify{Identifiers: person}
	for _, tc := range []struct {
		name  string
		call  func() (producer.Receipt, error)
		field string
	}{
		{"payload", func() (producer.Receipt, error) { return c.Identify(ctx, tasks.Identify{}) }, "identifiers"},
		{"event name", func() (producer.Receipt, error) { return c.Track(ctx, tasks.Track{Identifiers: person}) }, "name"},
		{"send to", func() (producer.Receipt, error) { return c.SendEmail(ctx, tasks.SendEmail{}) }, "to"},
		{"object type", func() (producer.Receipt, error) {
			return c.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "company", ObjectID: "acme"})
		}, "object_type_id"},
		{"workspace", func() (producer.Receipt, error) { return c.Identify(ctx, ok, producer.Workspace("Bad Name")) }, "workspace"},
		{"queue", func() (producer.Receipt, error) { return c.Identify(ctx, ok, producer.Queue("a b")) }, "queue"},
		{"key", func() (producer.Receipt, error) { return c.Identify(ctx, ok, producer.IdempotencyKey("has space")) }, "idempotency_key"},
		{"key long", func() (producer.Receipt, error) {
			return c.Identify(ctx, ok, producer.IdempotencyKey(strings.Repeat("k", 201)))
		}, "idempotency_key"},
		{"expired", func() (producer.Receipt, error) { return c.Identify(ctx, ok, producer.ExpiresIn(-time.Minute)) }, "expires_at"},
		{"expires before processing", func() (producer.Receipt, error) {
			return c.Identify(ctx, ok, producer.ExpiresIn(time.Minute), producer.ProcessIn(time.Hour))
		}, "expires_at"},
		{"max retry", func() (producer.Receipt, error) { return c.Identify(ctx, ok, producer.MaxRetry(-5)) }, "max_retry"},
		{"timeout", func() (producer.Receipt, error) { return c.Identify(ctx, ok, producer.Timeout(time.Millisecond)) }, "timeout"},
		{"raw unknown type", func() (producer.Receipt, error) { return c.EnqueueRaw(ctx, "cio:nope", json.RawMessage(`{}`)) }, "type"},
		{"raw malformed", func() (producer.Receipt, error) {
			return c.EnqueueRaw(ctx, tasks.TypeIdentify, json.RawMessage(`{"identifiers":`))
		}, "payload"},
		{"raw wrong field type", func() (producer.Receipt, error) {
			return c.EnqueueRaw(ctx, tasks.TypeIdentify, json.RawMessage(`{"identifiers":{"id":5}}`))
		}, "identifiers.id"},
		{"raw invalid", func() (producer.Receipt, error) {
			return c.EnqueueRaw(ctx, tasks.TypeTrack, json.RawMessage(`{"identifiers":{"id":"u"}}`))
		}, "name"},
		// Pipelines takes at most 32,000 bytes per message: the field that
		// takes the room is named.
		{"cdp message too large", func() (producer.Receipt, error) {
			return c.CDPTrack(ctx, tasks.CDPTrack{UserID: "u", Event: "Big", Properties: map[string]any{"blob": strings.Repeat("x", 40_000)}})
		}, "properties"},
		{"raw cdp message too large", func() (producer.Receipt, error) {
			return c.EnqueueRaw(ctx, tasks.TypeCDPIdentify, json.RawMessage(`{"userId":"u","traits":{"blob":"`+strings.Repeat("x", 40_000)+`"}}`))
		}, "traits"},
		// An object holds at most 100,000 bytes of attributes.
		{"object attributes over 100 KB", func() (producer.Receipt, error) {
			attrs := map[string]any{}
			for i := 0; i < 101; i++ {
				attrs[fmt.Sprint("a", i)] = strings.Repeat("v", 1000)
			}
			return c.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: "acme", Attributes: attrs})
		}, "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.call()
			var ve *producer.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v (receipt %+v), want *ValidationError", err, r)
			}
			if ve.Field != tc.field {
				t.Errorf("Field = %q, want %q (%v)", ve.Field, tc.field, err)
			}
		})
	}
	if n := total(t, insp); n != 0 {
		t.Fatalf("%d tasks reached Redis", n)
	}
}

func isULID(s string) bool {
	_, err := ulid.ParseStrict(s)
	return err == nil
}

func TestULIDAssigned(t *testing.T) {
	c, insp := setup(t)

	r, err := c.Track(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "signup"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, p := stored(t, insp, r)
	id1 := p.(*tasks.Track).ID
	if !isULID(id1) {
		t.Errorf("track id %q is not a ULID", id1)
	}
	r, _ = c.Track(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "signup"}})
	if _, _, p := stored(t, insp, r); p.(*tasks.Track).ID == id1 {
		t.Error("two events got the same id")
	}

	const given = "01HZY8V4Q6W5M3K2J1N0P9R8S7"
	r, _ = c.Track(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "signup", ID: given}})
	if _, _, p := stored(t, insp, r); p.(*tasks.Track).ID != given {
		t.Errorf("given id replaced: %q", p.(*tasks.Track).ID)
	}

	// A pointer payload is not modified.
	ev := &tasks.TrackAnonymous{AnonymousID: "anon-1", Name: "/"}
	r, err = c.Enqueue(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "" {
		t.Error("Enqueue modified the caller's payload")
	}
	if _, _, p := stored(t, insp, r); !isULID(p.(*tasks.TrackAnonymous).ID) {
		t.Errorf("anonymous id %q", p.(*tasks.TrackAnonymous).ID)
	}

	r, _ = c.CDPTrack(ctx, tasks.CDPTrack{UserID: "u", Event: "Signed Up"})
	if _, _, p := stored(t, insp, r); !isULID(p.(*tasks.CDPTrack).MessageID) {
		t.Errorf("messageId %q", p.(*tasks.CDPTrack).MessageID)
	}
	r, _ = c.Enqueue(ctx, &tasks.CDPIdentify{UserID: "u", MessageID: "my-own-id"})
	if _, _, p := stored(t, insp, r); p.(*tasks.CDPIdentify).MessageID != "my-own-id" {
		t.Errorf("messageId %q", p.(*tasks.CDPIdentify).MessageID)
	}

	// Other types get no id.
	r, _ = c.Identify(ctx, tasks.Identify{Identifiers: person})
	if _, env, _ := stored(t, insp, r); strings.Contains(string(env.Payload), `"id":"0`) {
		t.Errorf("identify payload got an id: %s", env.Payload)
	}
}

// TestEnqueueRawKeepsPayloadBytes: EnqueueRaw stores the payload as given
// (free-form objects such as data untouched), adding only the event id it
// lacks; a field the type does not have is refused, naming it, anywhere in
// the payload, so a typo never vanishes.
func TestEnqueueRawKeepsPayloadBytes(t *testing.T) {
	c, insp := setup(t)
	for in, field := range map[string]string{
		`{"identifiers":{"id":"u1"},"name":"order_completed","future_field":{"nested":[1,"two"]}}`: "future_field",
		`{"identifiers":{"id":"u1","idd":"x"},"name":"order_completed"}`:                           "identifiers.idd",
	} {
		_, err := c.EnqueueRaw(ctx, tasks.TypeTrack, json.RawMessage(in))
		var ve *customerio.ValidationError
		if !errors.As(err, &ve) || ve.Field != field || ve.Reason != "not a field of cio:track" {
			t.Errorf("%s: err = %v, want %s refused", in, err, field)
		}
	}
	in := json.RawMessage(`{"identifiers":{"id":"u1"},"name":"order_completed","data":{"total":59.98,"future_field":{"nested":[1,"two"]}}}`)
	r, err := c.EnqueueRaw(ctx, tasks.TypeTrack, in, producer.Workspace("eu"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != tasks.TypeTrack || r.Queue != tasks.QueueDefault {
		t.Errorf("receipt = %+v", r)
	}
	_, env, p := stored(t, insp, r)
	if env.Workspace != "eu" {
		t.Errorf("workspace = %q", env.Workspace)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["data"]) != `{"total":59.98,"future_field":{"nested":[1,"two"]}}` {
		t.Errorf("data changed: %s", m["data"])
	}
	if tr := p.(*tasks.Track); !isULID(tr.ID) || tr.Name != "order_completed" {
		t.Errorf("stored track = %+v", tr)
	}

	// With an id, the bytes are stored exactly as given.
	in2 := json.RawMessage(`{"identifiers":{"id":"u1"},"name":"x","id":"01HZY8V4Q6W5M3K2J1N0P9R8S7","data":{"zzz":true}}`)
	r, err = c.EnqueueRaw(ctx, tasks.TypeTrack, in2)
	if err != nil {
		t.Fatal(err)
	}
	if _, env, _ := stored(t, insp, r); string(env.Payload) != string(in2) {
		t.Errorf("payload rewritten:\n got  %s\n want %s", env.Payload, in2)
	}

	// An envelope is accepted; its workspace and expiry apply.
	exp := time.Now().Add(time.Hour).Unix()
	envIn := `{"v":1,"workspace":"us2","expires_at":` + itoa(exp) + `,"payload":{"to":"a@example.com","transactional_message_id":"3"}}`
	r, err = c.EnqueueRaw(ctx, tasks.TypeSendEmail, json.RawMessage(envIn))
	if err != nil {
		t.Fatal(err)
	}
	if _, env, _ := stored(t, insp, r); env.Workspace != "us2" || env.ExpiresAt != exp || r.Queue != tasks.QueueCritical {
		t.Errorf("envelope = %+v, receipt %+v", env, r)
	}

	// Explicit null id is replaced.
	r, err = c.EnqueueRaw(ctx, tasks.TypeCDPTrack, json.RawMessage(`{"userId":"u","event":"E","messageId":null,"sentAt":"2026-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, env, p := stored(t, insp, r); !isULID(p.(*tasks.CDPTrack).MessageID) || !strings.Contains(string(env.Payload), `"sentAt":"2026-01-01T00:00:00Z"`) {
		t.Errorf("payload = %s", env.Payload)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestOptions(t *testing.T) {
	c, insp := setup(t, producer.WithDefaultWorkspace("main"))
	email := tasks.SendEmail{To: "a@example.com", SendOptions: customerio.SendOptions{TransactionalMessageID: "password_reset"}}

	before := time.Now()
	r, err := c.SendEmail(ctx, email, producer.ExpiresIn(time.Hour), producer.MaxRetry(5), producer.Timeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	info, env, _ := stored(t, insp, r)
	if exp, ok := env.Expiry(); !ok || exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("expiry = %v", exp)
	}
	if env.Workspace != "main" || info.Headers[tasks.HeaderRetryBudget] != "5" || info.MaxRetry != tasks.AsynqMaxRetry || info.Timeout != time.Minute {
		t.Errorf("workspace %q, budget %q, MaxRetry %d, Timeout %v", env.Workspace, info.Headers[tasks.HeaderRetryBudget], info.MaxRetry, info.Timeout)
	}

	at := time.Now().Add(time.Hour).Truncate(time.Second)
	r, err = c.SendEmail(ctx, email, producer.ProcessAt(at), producer.ExpiresAt(at.Add(time.Hour)), producer.Workspace(""))
	if err != nil {
		t.Fatal(err)
	}
	info, env, _ = stored(t, insp, r)
	if info.State != asynq.TaskStateScheduled || !info.NextProcessAt.Equal(at) {
		t.Errorf("state %v at %v, want scheduled at %v", info.State, info.NextProcessAt, at)
	}
	if env.Workspace != "" || env.ExpiresAt != at.Add(time.Hour).Unix() {
		t.Errorf("envelope = %+v", env)
	}

	r, err = c.Identify(ctx, tasks.Identify{Identifiers: person}, producer.ProcessIn(10*time.Minute), producer.Queue(tasks.QueueBulk))
	if err != nil {
		t.Fatal(err)
	}
	info, _, _ = stored(t, insp, r)
	if r.Queue != tasks.QueueBulk || info.State != asynq.TaskStateScheduled || info.NextProcessAt.Before(time.Now().Add(9*time.Minute)) {
		t.Errorf("receipt %+v, state %v, at %v", r, info.State, info.NextProcessAt)
	}
}

func TestNewErrors(t *testing.T) {
	_, err := producer.New("redis://:hunter2@host:notaport/0")
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New(bad URL) = %v", err)
	}
}

func TestNewFromRedisLeavesClientOpen(t *testing.T) {
	db := testredis.New(t)
	c := producer.NewFromRedis(db.Client)
	if _, err := c.Delete(ctx, tasks.Delete{Identifiers: person}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Client.Ping(ctx).Err(); err != nil {
		t.Fatalf("caller's client closed: %v", err)
	}
}

// TestEnqueueNilPayload: a nil payload, typed or not, is a *ValidationError
// naming payload, not a panic, and nothing reaches Redis.
func TestEnqueueNilPayload(t *testing.T) {
	c, insp := setup(t)
	for _, p := range []tasks.Payload{nil, (*tasks.SendEmail)(nil), (*tasks.Track)(nil), (*tasks.CDPTrack)(nil), (*tasks.Identify)(nil)} {
		r, err := c.Enqueue(ctx, p)
		var ve *producer.ValidationError
		if !errors.As(err, &ve) || ve.Field != "payload" {
			t.Errorf("Enqueue(%T(nil)) = %+v, %v; want a *ValidationError on payload", p, r, err)
		}
	}
	if n := total(t, insp); n != 0 {
		t.Fatalf("%d tasks reached Redis", n)
	}
}

// With Workspaces, a task naming another workspace is refused with an
// *UnknownWorkspaceError naming it (also a *ValidationError of field
// "workspace"), through every entry, and nothing reaches Redis.
func TestWorkspacesRefusesUnknown(t *testing.T) {
	c, insp := setup(t, producer.Workspaces("eu-shop", "default"))
	ident := tasks.Identify{Identifiers: person}
	calls := map[string]func() error{
		"Enqueue": func() error { _, err := c.Identify(ctx, ident, producer.Workspace("nope")); return err },
		"EnqueueRaw": func() error {
			_, err := c.EnqueueRaw(ctx, tasks.TypeIdentify, json.RawMessage(`{"identifiers":{"id":"x"}}`), producer.Workspace("nope"))
			return err
		},
		"EnqueueRaw envelope": func() error {
			_, err := c.EnqueueRaw(ctx, tasks.TypeIdentify, json.RawMessage(`{"v":1,"workspace":"nope","payload":{"identifiers":{"id":"x"}}}`))
			return err
		},
		"Check": func() error {
			return c.Check(tasks.TypeIdentify, json.RawMessage(`{"identifiers":{"id":"x"}}`), producer.Workspace("nope"))
		},
		"CheckWorkspace": func() error { return c.CheckWorkspace("nope") },
	}
	for name, call := range calls {
		err := call()
		var uw *producer.UnknownWorkspaceError
		var ve *producer.ValidationError
		if !errors.As(err, &uw) || uw.Workspace != "nope" || strings.Join(uw.Known, ",") != "default,eu-shop" {
			t.Errorf("%s: %v, want an *UnknownWorkspaceError", name, err)
			continue
		}
		if !errors.As(err, &ve) || ve.Field != "workspace" || !strings.Contains(err.Error(), `"nope" is not a configured workspace (configured: default, eu-shop)`) {
			t.Errorf("%s: %v, want a validation error of field workspace naming it", name, err)
		}
	}
	if n := total(t, insp); n != 0 {
		t.Fatalf("%d tasks in Redis", n)
	}

	// Known ones go through; "default" is the default workspace ("" in the envelope).
	for _, ws := range []string{"eu-shop", "", "default"} {
		r, err := c.Identify(ctx, ident, producer.Workspace(ws))
		if err != nil {
			t.Fatalf("workspace %q: %v", ws, err)
		}
		_, env, _ := stored(t, insp, r)
		if want := map[string]string{"eu-shop": "eu-shop", "": "", "default": ""}[ws]; env.Workspace != want {
			t.Errorf("workspace %q stored as %q, want %q", ws, env.Workspace, want)
		}
	}
	if _, err := c.Identify(ctx, ident); err != nil {
		t.Errorf("no workspace: %v", err)
	}
	// A malformed name stays a plain validation error.
	var uw *producer.UnknownWorkspaceError
	if err := c.CheckWorkspace("Bad Name"); err == nil || errors.As(err, &uw) {
		t.Errorf("malformed name: %v", err)
	}
}

// Without Workspaces any well-formed name is accepted, as before.
func TestWithoutWorkspacesAnyName(t *testing.T) {
	c, _ := setup(t)
	if _, err := c.Identify(ctx, tasks.Identify{Identifiers: person}, producer.Workspace("anything")); err != nil {
		t.Fatal(err)
	}
}
