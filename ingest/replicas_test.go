package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/testredis/topology"
	"github.com/cioq/cioq/producer"
)

// pauseHook pauses a replica when a command carrying marker is about to
// run (it is added before the producer's own hook, so it runs first).
type pauseHook struct {
	marker string
	node   *topology.Node
	done   atomic.Bool
}

func (h *pauseHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *pauseHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *pauseHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		for _, a := range cmd.Args() {
			var b []byte
			switch v := a.(type) {
			case string:
				b = []byte(v)
			case []byte:
				b = v
			}
			if !h.done.Load() && bytes.Contains(b, []byte(h.marker)) {
				h.done.Store(true)
				if err := h.node.Pause(); err != nil {
					return err
				}
			}
		}
		return next(ctx, cmd)
	}
}

// TestBatchNotReplicated: with replicated acknowledgements, the replica
// stops answering while the 4th message of a batch is enqueued. The answer
// is 503, the first three messages accepted (replicated), the 4th listed
// as unreplicated (its task on the master only), nothing of the rest
// queued; once the replica is back, a retry of the batch enqueues the rest
// and confirms the 4th as a duplicate.
func TestBatchNotReplicated(t *testing.T) {
	r := topology.StartReplicated(t, 1)
	rdb := redis.NewClient(&redis.Options{Addr: r.Master.Addr})
	t.Cleanup(func() { rdb.Close() })
	hook := &pauseHook{marker: "PAUSE-HERE", node: r.Replicas[0]}
	rdb.AddHook(hook)
	t.Cleanup(func() { r.Replicas[0].Resume() })
	e := &env{t: t, metrics: &countingMetrics{}}
	e.prod = producer.NewFromRedis(rdb, producer.WithReplicas(1, 200*time.Millisecond))
	srv, err := New(Config{Producer: e.prod, File: testConfig(), Metrics: e.metrics, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL

	var batch []map[string]any
	for i := 0; i < 6; i++ {
		batch = append(batch, map[string]any{"type": "track", "userId": fmt.Sprintf("u%d", i), "event": "e",
			"messageId": fmt.Sprintf("m-%d", i), "properties": map[string]any{"n": i}})
	}
	batch[3]["properties"] = map[string]any{"tag": "PAUSE-HERE"}
	got := e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if got.status != http.StatusServiceUnavailable || got.errCode() != "unavailable" {
		t.Fatalf("%d %s", got.status, got.raw)
	}
	// The six messages went in one cio:batch task (ingest batches a
	// request's batchable messages), whose write the paused replica did
	// not confirm: every item is unreplicated (it may exist), none partial.
	if !reflect.DeepEqual(got.body["accepted"], []any{}) {
		t.Errorf("accepted = %v, want none", got.body["accepted"])
	}
	if want := []any{0.0, 1.0, 2.0, 3.0, 4.0, 5.0}; !reflect.DeepEqual(got.body["unreplicated"], want) {
		t.Errorf("unreplicated = %v, want %v", got.body["unreplicated"], want)
	}
	if !reflect.DeepEqual(got.body["partial"], []any{}) {
		t.Errorf("partial = %v, want []", got.body["partial"])
	}
	if n := rdb.LLen(context.Background(), "asynq:{default}:pending").Val(); n != 1 {
		t.Errorf("the master holds %d tasks, want 1 (the batch, not confirmed)", n)
	}

	if err := r.Replicas[0].Resume(); err != nil {
		t.Fatal(err)
	}
	// The same request again: the batch task is a duplicate (its key is the
	// messages' ids), now confirmed by the replica.
	got = e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": batch}})
	if got.status != http.StatusOK || got.num("enqueued") != 0 || got.num("duplicates") != 6 {
		t.Fatalf("retry: %d %s", got.status, got.raw)
	}
}
