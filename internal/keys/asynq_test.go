package keys_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/testredis"
)

// TestAsynqLayout checks the Asynq* names against the asynq this module
// builds with: a task is found under them while pending, while a server
// runs it (active, with a lease), after it failed (retry) and once archived
// (the archive, the task hash's state). An asynq
// upgrade that moves a key fails here.
func TestAsynqLayout(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	const q = "keys-layout"

	c := asynq.NewClient(db.ConnOpt())
	defer c.Close()
	info, err := c.Enqueue(asynq.NewTask("keys:layout", []byte(`{}`)), asynq.Queue(q), asynq.MaxRetry(1))
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	rdb := db.Client
	if ok, err := rdb.SIsMember(ctx, keys.AsynqQueues, q).Result(); err != nil || !ok {
		t.Fatalf("%s does not list queue %q (%v)", keys.AsynqQueues, q, err)
	}
	if _, err := rdb.LPos(ctx, keys.AsynqPending(q), id, lposArgs).Result(); err != nil {
		t.Fatalf("%s does not hold the pending task: %v", keys.AsynqPending(q), err)
	}
	if ok, err := rdb.HExists(ctx, keys.AsynqTask(q, id), "msg").Result(); err != nil || !ok {
		t.Fatalf("%s has no msg field (%v)", keys.AsynqTask(q, id), err)
	}

	later, err := c.Enqueue(asynq.NewTask("keys:layout", []byte(`{}`)), asynq.Queue(q), asynq.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.ZScore(ctx, keys.AsynqScheduled(q), later.ID).Result(); err != nil {
		t.Fatalf("%s does not hold the scheduled task: %v", keys.AsynqScheduled(q), err)
	}

	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := asynq.NewServer(db.ConnOpt(), asynq.Config{
		Concurrency: 1, Queues: map[string]int{q: 1}, LogLevel: asynq.FatalLevel,
		TaskCheckInterval: 20 * time.Millisecond,
		RetryDelayFunc:    func(int, error, *asynq.Task) time.Duration { return time.Hour },
	})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		once.Do(func() { close(started) })
		<-release
		return errors.New("fail once")
	})); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			close(release)
			srv.Shutdown()
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not start the task")
	}
	if _, err := rdb.LPos(ctx, keys.AsynqActive(q), id, lposArgs).Result(); err != nil {
		t.Errorf("%s does not hold the running task: %v", keys.AsynqActive(q), err)
	}
	if _, err := rdb.ZScore(ctx, keys.AsynqLease(q), id).Result(); err != nil {
		t.Errorf("%s has no lease of the running task: %v", keys.AsynqLease(q), err)
	}
	// Shutdown returns once the handler's failure has been written.
	close(release)
	srv.Shutdown()
	stopped = true
	if _, err := rdb.ZScore(ctx, keys.AsynqRetry(q), id).Result(); err != nil {
		t.Errorf("%s does not hold the failed task: %v", keys.AsynqRetry(q), err)
	}
	insp := asynq.NewInspector(db.ConnOpt())
	defer insp.Close()
	if err := insp.ArchiveTask(q, id); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.ZScore(ctx, keys.AsynqArchived(q), id).Result(); err != nil {
		t.Errorf("%s does not hold the archived task: %v", keys.AsynqArchived(q), err)
	}
	if state, err := rdb.HGet(ctx, keys.AsynqTask(q, id), "state").Result(); err != nil || state != "archived" {
		t.Errorf("%s state = %q (%v), want archived", keys.AsynqTask(q, id), state, err)
	}
}

var lposArgs = redis.LPosArgs{}
