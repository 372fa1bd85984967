package producer

import (
	"fmt"
	"sync/atomic"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/tasks"
)

// MaxShards is the largest shard count WithShards accepts.
const MaxShards = shard.Max

// WithShards splits every logical queue (critical, default, bulk, or one
// named with Queue) into n asynq queues, so that on a Redis Cluster the
// queue's tasks spread over n hash slots chosen to fall on different
// masters (package internal/shard: with n = the number of masters of a
// cluster whose masters own equal slot ranges, each shard is on its own
// master). A task goes to the shard its person picks (tasks.PersonScoped:
// the ordering key, so a person's tasks stay on one shard and node), else
// its idempotency key's (so a repeat lands where the first went), else
// the next shard in turn. Workers must be given the same count
// (worker.Config.Shards, CIOQ_QUEUE_SHARDS).
//
// n = 1 (the default) is the plain queue names. New and NewFromRedis
// panic on n outside 1 to MaxShards; check configuration with CheckShards.
// Receipt.Queue names the shard (the asynq queue); shard.Logical gives
// back the logical queue.
//
// Changing n gives the shards new names. Workers keep serving the old
// names while they hold tasks (see worker.Config.Shards). An idempotency
// key keeps deduplicating across the change only while its first task is
// still waiting or running in a queue that is the same shard under both
// counts; a repeat arriving after the change may otherwise enqueue once
// more.
func WithShards(n int) Option {
	return func(c *Client) { c.shards = n }
}

// CheckShards reports what WithShards would refuse: n outside 1 to
// MaxShards.
func CheckShards(n int) error {
	if !shard.Check(n) {
		return fmt.Errorf("shards must be 1 to %d, not %d", shard.Max, n)
	}
	return nil
}

// shardState is the round-robin position of tasks with neither person nor
// key.
type shardState struct {
	next atomic.Uint32
}

// shardIndex picks the shard of a task: by person, else by key, else in
// turn.
func (c *Client) shardIndex(p tasks.Payload, key string) int {
	if p != nil {
		if k, ok := OrderKey(p); ok {
			return shard.Index(k, c.shards)
		}
	}
	if key != "" {
		return shard.Index(key, c.shards)
	}
	return int((c.rr.next.Add(1) - 1) % uint32(c.shards))
}

// route puts pl's task in its shard of pl.queue (a no-op without
// WithShards): the queue the ordering stamp records, the enqueue writes to
// and a duplicate is looked up in. p may be nil (no person known).
func (c *Client) route(p tasks.Payload, pl *plan) {
	if c.shards <= 1 {
		return
	}
	q := shard.Name(shard.Logical(pl.queue), c.shardIndex(p, pl.key), c.shards)
	pl.queue = q
	if pl.key == "" && pl.processAt.IsZero() {
		pl.opts = baseOptions(q, pl.timeout) // the shared base of the shard
		return
	}
	// A later Queue option wins (asynq applies them in order); append
	// copies a shared slice.
	pl.opts = append(pl.opts, asynq.Queue(q))
}

// prepareShard is the shard of a prepared task's logical queue: by its
// idempotency key or task id, else in turn (the envelope is not decoded
// for its person: prepared tasks carry no ordering number).
func (c *Client) prepareShard(p Prepared) string {
	if c.shards <= 1 {
		return p.Queue
	}
	key := p.Key
	if key == "" {
		key = p.TaskID
	}
	return shard.Name(shard.Logical(p.Queue), c.shardIndex(nil, key), c.shards)
}
