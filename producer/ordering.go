package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/sequence"
	"github.com/cioq/cioq/tasks"
)

// WithOrdering stamps every person-scoped Track task (identify, event,
// merges, delete, suppress, devices, relationships) with the person's next
// sequence number: one Redis round trip per enqueue (a script that INCRs
// cioq:seq:<workspace>:<key> and records in the person's state which task
// id holds the number). Workers whose workspace is ordered
// (worker.Config.Ordering) then deliver a person's tasks in that order:
// each waits until every earlier task of the person has finished or left
// the queue. The person is named by the identifier the task uses (id,
// email or cio_id; a merge by its primary), so a person addressed once by
// id and once by email is two sequences. The key is a hash of the
// identifier, never the identifier itself.
//
// An enqueue refused as a duplicate of its idempotency key takes a number
// but records it as held by no task (one more round trip), so the person's
// next task does not wait for it. A counter that expired (7 days unused)
// or was lost while the person's state lives restarts above the numbers
// that state knows.
func WithOrdering() Option {
	return func(c *Client) { c.ordering = true }
}

// OrderKey returns the ordering key of a person-scoped payload (one that
// implements tasks.PersonScoped: the key names its Person), and false for
// a payload that is not (sends, broadcasts, segments, objects alone,
// anonymous events, Pipelines messages).
func OrderKey(p tasks.Payload) (string, bool) {
	ps, ok := p.(tasks.PersonScoped)
	if !ok {
		return "", false
	}
	ids := ps.Person()
	var s string
	switch {
	case ids.ID != "":
		s = "id:" + ids.ID
	case ids.Email != "":
		s = "email:" + strings.ToLower(ids.Email)
	case ids.CioID != "":
		s = "cio_id:" + ids.CioID
	case ids.Phone != "":
		s = "phone:" + ids.Phone
	default:
		return "", false
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12]), true
}

// SeqKey is the Redis key of a person's sequence counter.
func SeqKey(workspace, orderKey string) string { return keys.Seq(workspace, orderKey) }

// stamp gives pl's task the person's next sequence number when ordering is
// on and p is person-scoped. The number is recorded with the task id that
// will hold it, so the id is decided here: the idempotency key's, or a new
// UUID (asynq's own form).
func (c *Client) stamp(ctx context.Context, p tasks.Payload, pl *plan) error {
	if !c.ordering {
		return nil
	}
	key, ok := OrderKey(p)
	if !ok {
		return nil
	}
	id := uuid.NewString()
	if pl.key != "" {
		k, err := c.keyer(ctx)
		if err != nil {
			return err
		}
		id = k.taskID(pl.key)
	}
	seq, err := sequence.Stamp(ctx, c.rdb, pl.meta.Workspace, key, pl.queue, id)
	if err != nil {
		return fmt.Errorf("producer: ordering sequence: %w", err)
	}
	pl.id = id
	pl.meta.OrderKey, pl.meta.Seq = key, seq
	return nil
}

// unstamp records that pl's number is held by no task: its enqueue was a
// duplicate. Best effort: a number left recorded with the duplicate's id
// names the first task, which the worker recognizes as another number's.
func (c *Client) unstamp(ctx context.Context, pl plan) {
	if pl.meta.Seq <= 0 {
		return
	}
	_ = sequence.Void(context.WithoutCancel(ctx), c.rdb, pl.meta.Workspace, pl.meta.OrderKey, pl.meta.Seq)
}
