package producer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/redisack"
)

// ErrNotReplicated is wrapped by the error of an enqueue that Redis's
// master took but fewer replicas than WithReplicas asks for confirmed in
// time (errors.Is). The task may exist: it is in the master, and is lost
// only if the master fails before a replica has it (a Sentinel or Cluster
// failover promotes a replica). Retrying is safe with an IdempotencyKey: a
// task that survived makes the retry a duplicate (Receipt.Duplicate), one
// that was lost is enqueued again. Without a key a retry may enqueue the
// task twice (a track event then under two ids, which Customer.io does not
// recognise as one).
var ErrNotReplicated = redisack.ErrNotReplicated

// DefaultReplicaTimeout is how long an enqueue waits for its replicas when
// WithReplicas is given no timeout.
const DefaultReplicaTimeout = redisack.DefaultTimeout

// WithReplicas makes every write an enqueue acknowledges wait until n
// replicas have it, at most timeout (DefaultReplicaTimeout, 1 s, when 0):
// the task itself (asynq's enqueue script), the ordering sequence number
// (WithOrdering) and the idempotency-key secret when this client creates
// it. Each such write is followed by Redis's WAIT on the connection that
// made it, in the same round trip (Sentinel: the master's connection;
// Cluster: the node that took the write). An enqueue that fewer replicas
// confirmed returns an error wrapping ErrNotReplicated; see there for what
// a retry does. A duplicate (an idempotency key already taken) is
// confirmed the same way: a small write in the queue's hash slot
// (keys.ReplicationProbe) whose WAIT covers the first task, which the
// master holds.
//
// n = 0 turns it off (the default: Redis answers as soon as its master has
// the write). Give n = the number of replicas: with fewer, a replica that
// is not promoted can confirm a write and drop it when it follows the new
// master. The cost is one replica round trip per enqueue. Redis's
// min-replicas-to-write is the server-side alternative; the README's
// "Running on Sentinel or Cluster" compares them, with measurements.
//
// New raises the client's read timeout to timeout+0.5 s when it is lower,
// so WAIT's answer is read in time. NewFromRedis cannot change rdb's
// options: it panics when rdb's read timeout is shorter than that (go-redis's
// default, 3 s, allows a timeout of up to 2.5 s), and when n or timeout is
// negative; check settings from configuration with CheckReplicas first. It
// adds a hook to rdb that acts only on this client's enqueues (for a
// cluster client, on each node, which may ask the cluster for its layout
// once).
func WithReplicas(n int, timeout time.Duration) Option {
	return func(c *Client) { c.acks = redisack.Settings{Replicas: n, Timeout: timeout} }
}

// CheckReplicas reports what WithReplicas would refuse: a negative number
// of replicas or timeout, or a timeout under a millisecond.
func CheckReplicas(n int, timeout time.Duration) error {
	return redisack.Settings{Replicas: n, Timeout: timeout}.Check()
}

// installAcks adds the WAIT hook to rdb.
func (c *Client) installAcks(rdb redis.UniversalClient, used bool) error {
	if !used {
		return redisack.Install(rdb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := redisack.InstallUsed(ctx, rdb); err != nil {
		// The hook is on rdb; nodes go-redis creates from now on get it.
		if _, cluster := rdb.(*redis.ClusterClient); !cluster {
			return err
		}
	}
	return nil
}

// acked returns ctx with the client's WithReplicas settings, so writes
// made with it wait for their replicas.
func (c *Client) acked(ctx context.Context) context.Context {
	return redisack.With(ctx, c.acks)
}

// notReplicated returns the error of an enqueue whose write fewer replicas
// than required confirmed (asynq returns the hook's error as text), nil
// for any other failure.
func notReplicated(ctx context.Context, typ string) error {
	if u := redisack.Unconfirmed(ctx); u != nil {
		return fmt.Errorf("producer: enqueue %s: %w", typ, u)
	}
	return nil
}

// confirmDuplicate confirms, when replicas are required, that the task a
// duplicate was refused for is replicated: the refusal wrote nothing, so
// its WAIT proved nothing. A write in the queue's slot (the same master
// holds the first task, written before it) makes the WAIT cover the task.
func (c *Client) confirmDuplicate(ctx context.Context, typ, queue string) error {
	if !c.acks.On() {
		return nil
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := c.rdb.Set(ctx, keys.ReplicationProbe(queue), now, time.Minute).Err(); err != nil {
		return fmt.Errorf("producer: enqueue %s: confirm the duplicate's replicas: %w", typ, err)
	}
	return nil
}
