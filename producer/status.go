package producer

import (
	"context"

	"github.com/cioq/cioq/status"
)

// Status returns the timeline of the task taskID (a Receipt's TaskID):
// where it is in asynq while it waits or retries, and for transactional
// sends and broadcast triggers every failed attempt, Customer.io's
// acceptance with its delivery id and what Customer.io reported since
// (sent, delivered, opened, clicked, bounced, failed with its reason, ...)
// or the dead letter; status.ErrNotFound when Redis holds nothing of it.
// Person data Customer.io reported (recipients, customer ids, clicked
// links, addresses in reasons) is left out; status.NewStore(c.Redis(),
// ...).Lookup with LookupOptions.ShowIdentifiers has it.
func (c *Client) Status(ctx context.Context, taskID string) (*status.Timeline, error) {
	return status.NewStore(c.rdb, status.Options{}).Lookup(ctx, taskID, status.LookupOptions{})
}

// StatusForKey is Status of the task enqueued with IdempotencyKey(key).
func (c *Client) StatusForKey(ctx context.Context, key string) (*status.Timeline, error) {
	id, err := c.TaskIDForKey(ctx, key)
	if err != nil {
		return nil, err
	}
	return c.Status(ctx, id)
}
