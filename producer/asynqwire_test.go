package producer

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/tasks"
)

// TestWireMatchesAsynq: a task the producer writes itself (asynqwire.go)
// is what asynq.Client writes for the same task: the same message bytes,
// the same hash fields and list entry, the queue in asynq's set, the same
// TaskInfo from asynq's Inspector, the same refusal of a taken id, and an
// asynq server hands its handler the same type, payload and headers.
func TestWireMatchesAsynq(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	c := NewFromRedis(db.Client)
	ac := asynq.NewClientFromRedisClient(db.Client)
	insp := asynq.NewInspectorFromRedisClient(db.Client)

	big := bytes.Repeat([]byte(`{"a":"é\u2028\"x"}`), 5000)
	cases := []wireTask{
		{typ: tasks.TypeTrack, payload: []byte(`{"v":1,"payload":{"name":"e"}}`), headers: budgetHeaders(25), queue: tasks.QueueDefault, retry: wireRetry, timeout: 30 * time.Second},
		{typ: tasks.TypeIdentify, payload: big, headers: budgetHeaders(3), queue: "critical", retry: wireRetry, timeout: 2 * time.Minute, retention: 24 * time.Hour},
		{typ: tasks.TypeTrack, payload: nil, queue: "low", retry: 0, timeout: time.Second},
		{typ: tasks.TypeTrack, payload: []byte("x"), headers: map[string]string{"a": "1", "b": "", "ç": "ü"}, queue: "q:with.dots-1", retry: 7, timeout: 10 * time.Minute, retention: time.Second},
	}
	for i, w := range cases {
		// asynq's twin: the same task under another id.
		twinID := "twin-" + string(rune('a'+i))
		opts := []asynq.Option{asynq.Queue(w.queue), asynq.MaxRetry(w.retry), asynq.Timeout(w.timeout), asynq.TaskID(twinID)}
		if w.retention > 0 {
			opts = append(opts, asynq.Retention(w.retention))
		}
		if _, err := ac.Enqueue(asynq.NewTaskWithHeaders(w.typ, w.payload, w.headers), opts...); err != nil {
			t.Fatal(err)
		}
		if err := c.wireEnqueue(ctx, &w); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(w.id) {
			t.Fatalf("case %d: task id %q is not a version 4 UUID", i, w.id)
		}

		// The message bytes: asynq's for the twin, with its id.
		theirs, err := db.Client.HGet(ctx, keys.AsynqTask(w.queue, twinID), "msg").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if len(w.headers) <= 1 { // more headers: map order differs, compared decoded below
			twin := w
			twin.id = twinID
			if ours := appendTaskMessage(nil, &twin); !bytes.Equal(ours, theirs) {
				t.Errorf("case %d: message\n ours   %x\n asynq's %x", i, ours, theirs)
			}
		}

		// The hash and the pending list.
		ourHash := db.Client.HGetAll(ctx, keys.AsynqTask(w.queue, w.id)).Val()
		theirHash := db.Client.HGetAll(ctx, keys.AsynqTask(w.queue, twinID)).Val()
		if !slices.Equal(slices.Sorted(maps.Keys(ourHash)), slices.Sorted(maps.Keys(theirHash))) || ourHash["state"] != theirHash["state"] {
			t.Errorf("case %d: hash %v, asynq's %v", i, ourHash, theirHash)
		}
		ps, ts := ourHash["pending_since"], theirHash["pending_since"]
		if len(ps) < 19 || len(ps) != len(ts) {
			t.Errorf("case %d: pending_since %q, asynq's %q (unix ns)", i, ps, ts)
		}
		if got := db.Client.LRange(ctx, keys.AsynqPending(w.queue), 0, -1).Val(); !slices.Equal(got, []string{w.id, twinID}) {
			t.Errorf("case %d: pending list %v, want ours pushed after asynq's to its head", i, got)
		}
		if !db.Client.SIsMember(ctx, asynqAllQueues, w.queue).Val() {
			t.Errorf("case %d: queue %q not in %s", i, w.queue, asynqAllQueues)
		}

		// asynq's Inspector decodes both the same.
		ours, err := insp.GetTaskInfo(w.queue, w.id)
		if err != nil {
			t.Fatal(err)
		}
		twin, err := insp.GetTaskInfo(w.queue, twinID)
		if err != nil {
			t.Fatal(err)
		}
		if ours.Type != twin.Type || !bytes.Equal(ours.Payload, twin.Payload) || !maps.Equal(ours.Headers, twin.Headers) ||
			ours.Queue != twin.Queue || ours.MaxRetry != twin.MaxRetry || ours.Timeout != twin.Timeout ||
			!ours.Deadline.Equal(twin.Deadline) || ours.Retention != twin.Retention || ours.State != twin.State ||
			ours.Retried != twin.Retried || ours.Group != twin.Group {
			t.Errorf("case %d: Inspector reads\n ours  %+v\n asynq's %+v", i, ours, twin)
		}
		if ours.Type != w.typ || !bytes.Equal(ours.Payload, w.payload) || ours.State != asynq.TaskStatePending || ours.MaxRetry != w.retry || ours.Timeout != w.timeout {
			t.Errorf("case %d: Inspector reads %+v, want what was enqueued", i, ours)
		}

		// A taken id is refused by both, and nothing is written.
		again := w
		if err := c.wireEnqueue(ctx, &again); !errors.Is(err, asynq.ErrTaskIDConflict) {
			t.Errorf("case %d: enqueue of a taken id: %v, want asynq.ErrTaskIDConflict", i, err)
		}
		if _, err := ac.Enqueue(asynq.NewTask(w.typ, w.payload), asynq.Queue(w.queue), asynq.TaskID(w.id)); !errors.Is(err, asynq.ErrTaskIDConflict) {
			t.Errorf("case %d: asynq's enqueue of our id: %v, want asynq.ErrTaskIDConflict", i, err)
		}
		if n := db.Client.LLen(ctx, keys.AsynqPending(w.queue)).Val(); n != 2 {
			t.Errorf("case %d: %d pending after the refusals, want 2", i, n)
		}
	}

	// An asynq server runs a task the producer wrote, with its headers,
	// and keeps it completed for its retention (in a database of its own).
	db = testredis.New(t)
	c = NewFromRedis(db.Client)
	insp = asynq.NewInspectorFromRedisClient(db.Client)
	r, err := c.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "u1"}, Event: customerio.Event{Name: "wire"}}, IdempotencyKey("wire-1"))
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		typ     string
		payload []byte
		headers map[string]string
	}
	got := make(chan seen, 1)
	srv := asynq.NewServerFromRedisClient(db.Client, asynq.Config{Queues: map[string]int{r.Queue: 1}, Concurrency: 1, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(_ context.Context, tk *asynq.Task) error {
		got <- seen{tk.Type(), tk.Payload(), tk.Headers()}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	s := <-got
	srv.Shutdown()
	if s.typ != tasks.TypeTrack || !strings.Contains(string(s.payload), `"name":"wire"`) || s.headers[tasks.HeaderRetryBudget] == "" {
		t.Errorf("asynq's server handed its handler %q %s %v", s.typ, s.payload, s.headers)
	}
	info, err := insp.GetTaskInfo(r.Queue, r.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateCompleted || info.Retention != c.retention {
		t.Errorf("after the handler: state %v retention %v, want completed, kept %v", info.State, info.Retention, c.retention)
	}
}

// TestNewUUIDDistinct: task ids never repeat, across the pool's refills.
func TestNewUUIDDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := newUUID()
		if seen[id] {
			t.Fatalf("task id %s handed out twice", id)
		}
		seen[id] = true
	}
}
