package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// orderingTTL is how long a person's sequence counter lives after its last
// use; a person idle for longer starts again at 1, which a worker treats as
// "nothing to wait for".
const orderingTTL = 7 * 24 * time.Hour

// WithOrdering stamps every person-scoped Track task (identify, event,
// merges, delete, suppress, devices, relationships) with the person's next
// sequence number: one Redis round trip (INCR and EXPIRE of
// cioq:seq:<workspace>:<key>) per enqueue. Workers whose workspace is
// ordered (worker.Config.Ordering) then deliver a person's tasks in that
// order. The person is named by the identifier the task uses (id, email or
// cio_id; a merge by its primary), so a person addressed once by id and once
// by email is two sequences. The key is a hash of the identifier, never the
// identifier itself.
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
	default:
		return "", false
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12]), true
}

// SeqKey is the Redis key of a person's sequence counter.
func SeqKey(workspace, orderKey string) string { return keys.Seq(workspace, orderKey) }

// stamp gives meta the person's next sequence number when ordering is on
// and p is person-scoped.
func (c *Client) stamp(ctx context.Context, p tasks.Payload, meta *tasks.Meta) error {
	if !c.ordering {
		return nil
	}
	key, ok := OrderKey(p)
	if !ok {
		return nil
	}
	sk := SeqKey(meta.Workspace, key)
	pipe := c.rdb.Pipeline()
	incr := pipe.Incr(ctx, sk)
	pipe.Expire(ctx, sk, orderingTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("producer: ordering sequence: %w", err)
	}
	meta.OrderKey, meta.Seq = key, incr.Val()
	return nil
}
