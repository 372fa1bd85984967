package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/tasks"
)

// The delivery invariants of the package documentation, each against a way
// Customer.io's answer can go wrong: a task leaves Redis only when
// Customer.io accepted it or it is in the dead-letter store; a dead letter
// means "not delivered"; a send is not made twice.

// fullObject fills object (1, id) in the sandbox with the most attributes
// an object may have, so that any new attribute is refused: a refusal the
// worker cannot see coming (each operation is valid on its own), only
// Customer.io's answer tells.
func fullObject(t *testing.T, h *harness, id string) {
	t.Helper()
	c, err := customerio.New(sandboxConfig(h.url))
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]any{}
	for i := range sandbox.MaxObjectAttributes {
		attrs[fmt.Sprintf("a%03d", i)] = i
	}
	op := customerio.Operation{Type: customerio.EntityObject, Action: customerio.ActionIdentify,
		Identifiers: &customerio.Identifiers{ObjectTypeID: "1", ObjectID: id}, Attributes: attrs}
	if err := c.Entity(context.Background(), op); err != nil {
		t.Fatal(err)
	}
}

// TestBatchFailureNamingNoItemFindsTheRefusedTaskAlone: four good object
// upserts and two that Customer.io refuses (their objects are full) go out
// in batches whose failure names no item: an error whose batch_index is
// past the batch or missing, a 207 without a readable errors list, or a
// 400 or 413 refusing the whole batch (every batch request, for as long as
// the test runs). No task is acknowledged on such an answer and none is
// blamed: each is retried on its own (an /api/v2/entity request), where
// the two refused tasks are refused, and dead-lettered, by themselves and
// the four good ones are delivered.
//
// On main the first two acknowledge refused tasks as delivered (an index
// past the batch was skipped; a missing one decoded as 0 and blamed item
// 0 instead), and the other three dead-letter all six.
func TestBatchFailureNamingNoItemFindsTheRefusedTaskAlone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault sandbox.Fault
	}{
		{"batch_index past the batch", sandbox.Fault{BatchIndex: sandbox.BatchIndexOutOfRange}},
		{"batch_index missing", sandbox.Fault{BatchIndex: sandbox.BatchIndexMissing}},
		{"207 without a readable errors list", sandbox.Fault{ResponseBody: "<html>multi-status</html>"}},
		{"whole batch 400", sandbox.Fault{Status: 400}},
		{"whole batch 413", sandbox.Fault{Status: 413}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Batching.Linger = 100 * time.Millisecond; c.Concurrency = 20 }, true)
			h.dumpOnFailure(t)
			ctx := context.Background()
			fullObject(t, h, "full-0")
			fullObject(t, h, "full-1")
			ids := map[string]string{} // object id -> task id
			for _, obj := range []string{"good-0", "good-1", "full-0", "good-2", "full-1", "good-3"} {
				attrs := map[string]any{"name": "n-" + obj}
				if strings.HasPrefix(obj, "full") {
					attrs = map[string]any{"one_too_many": "x"}
				}
				r, err := h.prod.UpsertObject(ctx, tasks.ObjectUpsert{ObjectTypeID: "1", ObjectID: obj, Attributes: attrs})
				if err != nil {
					t.Fatal(err)
				}
				ids[obj] = r.TaskID
			}
			f := tc.fault
			f.PathPrefix = "/api/v2/batch"
			h.sb.SetFault(sandbox.GroupTrack, f)
			h.start(t)

			eventually(t, 30*time.Second, "every task delivered or dead-lettered", func() bool {
				for _, id := range ids {
					if d, _ := h.w.DLQ().Get(ctx, id); d == nil && !h.done(id) {
						return false
					}
				}
				return true
			})
			for obj, id := range ids {
				d, _ := h.w.DLQ().Get(ctx, id)
				if strings.HasPrefix(obj, "full") {
					if d == nil || d.Class != DeadLetterPermanent || d.Status != 400 || !strings.Contains(d.Message, "300 attributes") {
						t.Errorf("%s: dead letter %s, want permanent 400 naming the attribute limit", obj, describeDL(d))
					}
					if o, _ := h.sb.Object("1", obj); o.Attributes["one_too_many"] != nil {
						t.Errorf("%s: the refused attribute was applied", obj)
					}
					continue
				}
				if d != nil {
					t.Errorf("%s dead-lettered (%s %d: %s); Customer.io accepts it", obj, d.Class, d.Status, d.Error)
				}
				if o, ok := h.sb.Object("1", obj); !ok || o.Attributes["name"] != "n-"+obj {
					t.Errorf("%s not delivered: %+v", obj, o)
				}
			}
			// Refused alone: each refused task's own /api/v2/entity request.
			refusedAlone := 0
			for _, r := range requestsTo(h.sb, sandbox.GroupTrack, "/api/v2/entity") {
				if r.Status == 400 {
					refusedAlone++
				}
			}
			if refusedAlone != 2 {
				t.Errorf("%d entity requests refused, want the 2 refused tasks each alone", refusedAlone)
			}
			if st := h.w.BatchStats(); st.Unattributed == 0 || st.ItemErrors != 0 {
				t.Errorf("batch stats %+v: want unattributed failures and no item blamed", st)
			}
		})
	}
}

// failAfterSuccessOnce is a middleware that, once, turns a delivered
// attempt into a transient failure: as if the worker died between
// Customer.io's answer and asynq's acknowledgement, the task runs again.
func failAfterSuccessOnce() (func(asynq.Handler) asynq.Handler, *atomic.Int32) {
	var runs atomic.Int32
	var once sync.Once
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			runs.Add(1)
			err := next.ProcessTask(ctx, t)
			forced := false
			if err == nil {
				once.Do(func() { forced = true })
			}
			if forced {
				return errors.New("test: lost before the acknowledgement")
			}
			return err
		})
	}, &runs
}

// TestAcceptedSendWithUnreadableAnswerIsASend: Customer.io accepts a
// transactional send (the sandbox makes it) but its answer is not the
// documented JSON, or breaks off after the 200. The send is a send: the
// task is done, not dead-lettered, its send record says "sent", and a
// retry of the task (forced after the delivery) does not send again.
//
// On main the first two were dead-lettered ("status 200"), so `dlq retry`
// would send them again, and the cut body was a network error, retried
// into a second send.
func TestAcceptedSendWithUnreadableAnswerIsASend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault sandbox.Fault
	}{
		{"200 not JSON", sandbox.Fault{ResponseBody: "OK"}},
		{"200 JSON of another shape", sandbox.Fault{ResponseBody: `["queued"]`}},
		{"200 cut off", sandbox.Fault{Truncate: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mw, runs := failAfterSuccessOnce()
			h := newHarness(t, func(c *Config) { c.Middleware = append(c.Middleware, mw) })
			h.dumpOnFailure(t)
			ctx := context.Background()
			f := tc.fault
			f.PathPrefix, f.Times = "/v1/send/email", 1
			h.sb.SetFault(sandbox.GroupApp, f)
			send := tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "7", Identifiers: &customerio.Identifiers{ID: "u-unreadable"}}, To: "u-unreadable@example.com"}
			r, err := h.prod.SendEmail(ctx, send)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "the send done or dead-lettered", func() bool {
				d, _ := h.w.DLQ().Get(ctx, r.TaskID)
				return d != nil || (runs.Load() >= 2 && h.done(r.TaskID))
			})
			if d, _ := h.w.DLQ().Get(ctx, r.TaskID); d != nil {
				t.Fatalf("dead-lettered (%s %d: %s), but Customer.io made the send", d.Class, d.Status, d.Error)
			}
			if n := len(h.sb.Deliveries()); n != 1 {
				t.Errorf("%d deliveries, want 1", n)
			}
			if n := len(requestsTo(h.sb, sandbox.GroupApp, "/v1/send/email")); n != 1 {
				t.Errorf("%d send requests, want 1 (the retry finds the send record)", n)
			}
			keys, _ := h.db.Client.Keys(ctx, "cioq:sent:"+r.TaskID+":*").Result()
			if len(keys) != 1 {
				t.Fatalf("send records %v, want one", keys)
			}
			if v, _ := h.db.Client.Get(ctx, keys[0]).Result(); v != "sent" {
				t.Errorf("send record %q, want \"sent\" (no delivery id to read)", v)
			}
		})
	}
}

// describeDL is a dead letter in one line, for test failures (no payload).
func describeDL(d *DeadLetter) string {
	if d == nil {
		return "none"
	}
	return fmt.Sprintf("%s %s %d %q (%s)", d.ID, d.Class, d.Status, d.Message, d.Error)
}

// enqueuerFunc adapts a function to the Enqueuer interface.
type enqueuerFunc func(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)

func (f enqueuerFunc) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	return f(ctx, task, opts...)
}

// TestDeadLetterRetriedTwiceSendsOnce: a dead-lettered transactional send
// is retried twice: once after a retry that enqueued its task and was then
// interrupted before it removed the dead letter (Ctrl-C during `dlq retry
// --all`: the context ends right after the enqueue), and by two retries at
// the same moment (both have read the dead letter before either
// enqueues). Each time exactly one new task is enqueued and the message is
// sent once; the retry that finds the task enqueued already reports it as
// already retried, and removes the dead letter the first one left.
//
// On main the new task got a random id, so the second retry enqueued a
// second task: two sends.
func TestDeadLetterRetriedTwiceSendsOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []string{"after an interrupted retry", "two at once"} {
		t.Run(tc, func(t *testing.T) {
			h := newHarness(t, nil)
			h.dumpOnFailure(t)
			ctx := context.Background()
			h.sb.SetFault(sandbox.GroupApp, sandbox.Fault{Status: 422, PathPrefix: "/v1/send/email", Times: 1})
			send := tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "7", Identifiers: &customerio.Identifiers{ID: "u-twice"}}, To: "u-twice@example.com"}
			r, err := h.prod.SendEmail(ctx, send)
			if err != nil {
				t.Fatal(err)
			}
			store := h.w.DLQ()
			eventually(t, 10*time.Second, "the send dead-lettered", func() bool { d, _ := store.Get(ctx, r.TaskID); return d != nil })
			client := asynq.NewClientFromRedisClient(h.db.Client)
			var enqueued []*asynq.TaskInfo
			var already []*AlreadyRetriedError

			switch tc {
			case "after an interrupted retry":
				rctx, interrupt := context.WithCancel(ctx)
				interrupted := enqueuerFunc(func(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
					info, err := client.EnqueueContext(ctx, task, opts...)
					interrupt()
					return info, err
				})
				info, err := store.Retry(rctx, r.TaskID, interrupted)
				if info == nil || err == nil {
					t.Fatalf("interrupted retry: %v, %v; want the task enqueued and the removal failed", info, err)
				}
				if d, _ := store.Get(ctx, r.TaskID); d == nil {
					t.Fatal("the interrupted retry removed the dead letter; the test needs it left behind")
				}
				enqueued = append(enqueued, info)
				info, err = store.Retry(ctx, r.TaskID, client)
				var ar *AlreadyRetriedError
				switch {
				case errors.As(err, &ar):
					already = append(already, ar)
				case err == nil:
					enqueued = append(enqueued, info)
				default:
					t.Fatalf("second retry: %v", err)
				}
			case "two at once":
				var ready sync.WaitGroup
				ready.Add(2)
				together := enqueuerFunc(func(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
					ready.Done()
					ready.Wait() // both retries have read the dead letter
					return client.EnqueueContext(ctx, task, opts...)
				})
				var mu sync.Mutex
				var wg sync.WaitGroup
				for range 2 {
					wg.Go(func() {
						info, err := store.Retry(ctx, r.TaskID, together)
						mu.Lock()
						defer mu.Unlock()
						var ar *AlreadyRetriedError
						switch {
						case errors.As(err, &ar):
							already = append(already, ar)
						case err == nil:
							enqueued = append(enqueued, info)
						default:
							t.Errorf("retry: %v", err)
						}
					})
				}
				wg.Wait()
			}

			if len(enqueued) != 1 || len(already) != 1 {
				t.Errorf("%d retries enqueued a task, %d found it enqueued already; want 1 and 1", len(enqueued), len(already))
			}
			if len(enqueued) == 0 {
				t.FailNow()
			}
			for _, ar := range already {
				if ar.TaskID != enqueued[0].ID || ar.ID != r.TaskID || ar.Err != nil {
					t.Errorf("already retried: %+v, want task %s and the dead letter removed", ar, enqueued[0].ID)
				}
			}
			if d, err := store.Get(ctx, r.TaskID); !errors.Is(err, ErrNotFound) {
				t.Errorf("dead letter left: %s", describeDL(d))
			}
			eventually(t, 20*time.Second, "the retried tasks done", func() bool {
				for _, info := range enqueued {
					if !h.done(info.ID) {
						return false
					}
				}
				return len(h.sb.Deliveries()) >= 1
			})
			for q := range DefaultQueues() {
				if qi, err := h.insp.GetQueueInfo(q); err == nil && qi.Pending+qi.Active+qi.Scheduled+qi.Retry > 0 {
					t.Errorf("queue %s still holds tasks: %+v", q, qi)
				}
			}
			if n := len(h.sb.Deliveries()); n != 1 {
				t.Errorf("%d deliveries, want 1", n)
			}
		})
	}
}
