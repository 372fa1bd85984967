package worker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis/topology"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// syncBuffer is a bytes.Buffer safe for the worker's concurrent log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pauseOnce is a middleware that pauses the replica before the first
// delivery it sees (after the worker confirmed the task is replicated).
func pauseOnce(t *testing.T, r *topology.Replicated) func(asynq.Handler) asynq.Handler {
	var once sync.Once
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, at *asynq.Task) error {
			once.Do(func() {
				if err := r.Replicas[0].Pause(); err != nil {
					t.Error(err)
				}
			})
			return next.ProcessTask(ctx, at)
		})
	}
}

// replicatedWorker starts a worker with Replicas: 1 on a master with one
// replica, delivering to a sandbox.
func replicatedWorker(t *testing.T, r *topology.Replicated, logs *syncBuffer, mw ...func(asynq.Handler) asynq.Handler) (*Worker, *sandbox.Server, *asynq.Inspector) {
	t.Helper()
	sb, url := newSandbox(t)
	w, err := New(Config{
		Middleware:     mw,
		Redis:          asynq.RedisClientOpt{Addr: r.Master.Addr},
		Workspaces:     map[string]customerio.Config{"": sandboxConfig(url)},
		Backoff:        BackoffConfig{Base: 50 * time.Millisecond, Cap: 100 * time.Millisecond},
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
		ProbeInterval:  -1,
		Replicas:       1,
		ReplicaTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w, sb, asynq.NewInspector(asynq.RedisClientOpt{Addr: r.Master.Addr})
}

// TestReplicasSendRecord: with Config.Replicas the send record waits for
// the replica; when the replica stops answering during the send, the send
// is recorded on the master, acknowledged, and the worker says the record
// is not confirmed.
func TestReplicasSendRecord(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	logs := &syncBuffer{}
	pause := func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, at *asynq.Task) error {
			if bytes.Contains(at.Payload(), []byte("paused@")) {
				if err := r.Replicas[0].Pause(); err != nil {
					t.Error(err)
				}
			}
			return next.ProcessTask(ctx, at)
		})
	}
	_, sb, _ := replicatedWorker(t, r, logs, pause)
	prod, err := producer.New(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	rep := r.Replicas[0].Client()
	defer rep.Close()
	mc := r.Master.Client()
	defer mc.Close()
	ctx := context.Background()
	send := func(to string) producer.Receipt {
		rc, err := prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{
			TransactionalMessageID: "welcome", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: to})
		if err != nil {
			t.Fatal(err)
		}
		waitSandbox(t, sb, 20*time.Second, "the send", func(s *sandbox.Server) bool {
			for _, d := range s.Deliveries() {
				if d.To == to {
					return true
				}
			}
			return false
		})
		return rc
	}
	sentKeyOf := func(rc producer.Receipt) string {
		keys, err := mc.Keys(ctx, "cioq:sent:"+rc.TaskID+"*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("send records of %s on the master: %v, %v", rc.TaskID, keys, err)
		}
		return keys[0]
	}

	rc := send("up@example.com")
	key := ""
	eventually(t, 10*time.Second, "the send record", func() bool {
		k, _ := mc.Keys(ctx, "cioq:sent:"+rc.TaskID+"*").Result()
		if len(k) == 1 {
			key = k[0]
		}
		return key != ""
	})
	if n, err := rep.Exists(ctx, key).Result(); err != nil || n != 1 {
		t.Fatalf("replica: send record exists = %d, %v", n, err)
	}

	// The middleware pauses the replica once the task passed the worker's
	// check that the replicas hold it: the send goes out, its record
	// cannot be confirmed.
	defer r.Replicas[0].Resume()
	rc = send("paused@example.com")
	eventually(t, 10*time.Second, "the warning about the unconfirmed send record", func() bool {
		return strings.Contains(logs.String(), "the record is not confirmed by the replicas")
	})
	_ = sentKeyOf(rc) // on the master all the same
}

// TestReplicasDeadLetter: a dead letter fewer replicas than Config.Replicas
// confirmed fails the attempt: the task is retried, not archived, until the
// replica answers again; then it is dead-lettered.
func TestReplicasDeadLetter(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	logs := &syncBuffer{}
	defer r.Replicas[0].Resume()
	_, sb, insp := replicatedWorker(t, r, logs, pauseOnce(t, r))
	sb.AddFault(sandbox.GroupApp, sandbox.Fault{Status: 400, Body: `{"meta":{"error":"bad template"}}`})
	prod, err := producer.New(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	rc, err := prod.SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{
		TransactionalMessageID: "welcome", Identifiers: &customerio.Identifiers{ID: "u1"}}, To: "dl@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// An attempt may also be retried before delivery, by the worker's
	// check that the replicas hold the task (a WAIT timing out on a
	// loaded machine): wait for the attempt whose dead letter was not
	// confirmed, then for its retry. The task must never be archived
	// meanwhile.
	var state asynq.TaskState
	eventually(t, 60*time.Second, "the unconfirmed dead letter's retry", func() bool {
		ti, err := insp.GetTaskInfo(rc.Queue, rc.TaskID)
		if err != nil {
			return false
		}
		state = ti.State
		return state == asynq.TaskStateArchived ||
			(state == asynq.TaskStateRetry && strings.Contains(logs.String(), "could not record dead letter"))
	})
	if state != asynq.TaskStateRetry {
		t.Fatalf("with the replica paused the task is %s, want retry (its dead letter is not confirmed)\n%s", state, logs.String())
	}
	if err := r.Replicas[0].Resume(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the dead letter", func() bool {
		ti, err := insp.GetTaskInfo(rc.Queue, rc.TaskID)
		return err == nil && ti.State == asynq.TaskStateArchived
	})
	rep := r.Replicas[0].Client()
	defer rep.Close()
	if d, err := NewDeadLetters(rep, nil).Get(ctx, rc.TaskID); err != nil || d.Class != DeadLetterPermanent {
		t.Fatalf("the replica's dead letter: %+v, %v", d, err)
	}
}

// TestReplicasFence: with Config.Replicas a task the replicas do not
// confirm (read from a master cut off from them) is not delivered but
// retried, without spending its budget; once the replica answers it is
// delivered.
func TestReplicasFence(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	logs := &syncBuffer{}
	prod, err := producer.New(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	rc, err := prod.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "fenced"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Replicas[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer r.Replicas[0].Resume()
	_, sb, insp := replicatedWorker(t, r, logs)
	var ti *asynq.TaskInfo
	eventually(t, 20*time.Second, "the first attempt", func() bool {
		ti, _ = insp.GetTaskInfo(rc.Queue, rc.TaskID)
		return ti != nil && ti.State == asynq.TaskStateRetry
	})
	if !strings.Contains(ti.LastErr, "replicas") || ti.Retried != 0 {
		t.Errorf("retried %d, last error %q; want a retry that spends nothing, for the replicas", ti.Retried, ti.LastErr)
	}
	if n := len(sb.Requests(sandbox.RequestFilter{})); n != 0 {
		t.Fatalf("the sandbox got %d requests for a task the replicas did not confirm", n)
	}
	if err := r.Replicas[0].Resume(); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, sb, 20*time.Second, "the identify", func(s *sandbox.Server) bool {
		_, ok := s.Person("fenced")
		return ok
	})
}
