package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
)

// A message with an id (Segment's messageId, a custom source's mapped
// message_id, an mParticle event's source_message_id) is remembered for
// the dedupe window in a record of its own, keys.IngestSeen, written once
// every task of the message is in Redis and read before a message is
// enqueued. The producer's idempotency keys (one per derived task, held by
// asynq only while it keeps the task) still catch concurrent repeats and
// the queued part of a partially enqueued item; the record makes the
// window hold however soon the tasks leave Redis (delivered and past
// asynq's retention, or deleted from the dashboard).

// seenKey is the dedupe record of message mid of source ("" without an
// id): a digest of both, never the id itself.
func seenKey(source, mid string) string {
	if mid == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(source + "\x00" + mid))
	return keys.IngestSeen(source, hex.EncodeToString(sum[:16]))
}

// seenTTL is how long a record is kept: the window plus the clock skew a
// signed message's time may have, so a signed repeat is refused by its
// record until its time has left the window (and from then on by that).
func (s *Server) seenTTL() time.Duration { return s.cfg.DedupeWindow + MaxClockSkew }

// seen reports, for each item, whether its message is already recorded
// (one round trip for the request, none when no item has an id).
func (s *Server) seen(ctx context.Context, source string, items []item) ([]bool, error) {
	out := make([]bool, len(items))
	ks := make([]string, len(items))
	n := 0
	for i, it := range items {
		if len(it.jobs) > 0 {
			if ks[i] = seenKey(source, it.mid); ks[i] != "" {
				n++
			}
		}
	}
	if n == 0 {
		return out, nil
	}
	cmds := make([]*redis.IntCmd, len(items))
	_, err := s.cfg.Producer.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range ks {
			if k != "" {
				cmds[i] = p.Exists(ctx, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, c := range cmds {
		out[i] = c != nil && c.Val() > 0
	}
	return out, nil
}

// remember writes the records of messages whose every task is now in
// Redis. A failure is logged, not answered: the tasks are queued, and
// their idempotency keys still catch repeats while asynq keeps them.
func (s *Server) remember(ctx context.Context, source string, recs []string) {
	if len(recs) == 0 {
		return
	}
	ttl := s.seenTTL()
	_, err := s.cfg.Producer.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range recs {
			p.SetNX(ctx, k, "1", ttl)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("ingest: dedupe records not written; until asynq drops the tasks their idempotency keys still catch repeats",
			"source", source, "messages", len(recs), "error", scrubErr(err))
	}
}

// signedTime is the time of a signed message and the field it came from.
type signedTime struct {
	field string // as the sender wrote it: "sentAt", "batch[2].timestamp", "created_at"
	unix  int64  // unix seconds; 0 when absent
}

// checkReplay refuses a message authenticated by its signature that could
// be a replay: one without a message id (midField names where it should
// be), without a time, or whose time lies outside [now - window, now +
// MaxClockSkew]. A signed body can be resent by anyone who saw it; its id
// makes a repeat within the window a duplicate, and its time refuses it
// once the window (and the record) are gone.
func (s *Server) checkReplay(mid, midField string, t signedTime) *reqError {
	if mid == "" {
		return bad("missing_message_id", midField, "a signed message needs a message id (%s): without one a replayed request could not be told from a new one", midField)
	}
	if t.unix == 0 {
		return bad("missing_timestamp", t.field, "a signed message needs its time (%s), so a replay older than the dedupe window is refused", t.field)
	}
	now := s.cfg.Now()
	at := time.Unix(t.unix, 0)
	if at.Before(now.Add(-s.cfg.DedupeWindow)) {
		return bad("stale_message", t.field, "%s is more than %s in the past: a signed message older than the dedupe window is refused as a possible replay", t.field, hours(s.cfg.DedupeWindow))
	}
	if at.After(now.Add(MaxClockSkew)) {
		return bad("stale_message", t.field, "%s is more than %s in the future: check the sender's clock", t.field, hours(MaxClockSkew))
	}
	return nil
}

// hours writes a duration for messages: "24 h", "90 min", "45 s".
func hours(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.Round(time.Second).String()
}

// tooManyItems refuses a request holding more than max items; field names
// the list (or, for a top-level array, the first item over the cap).
func tooManyItems(field string, max int) *reqError {
	return &reqError{status: http.StatusRequestEntityTooLarge, code: "too_many_items", field: field,
		msg: fmt.Sprintf("a request may hold at most %d items (messages, objects, events or tasks): send the rest in another request", max)}
}
