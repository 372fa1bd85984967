package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// idempotencyKey is the producer idempotency key of the task derived from
// a message: the source, a digest of the message id (any length, any
// characters) and the kind of derived task, so the tasks of one message
// are deduplicated independently and two sources never collide.
func idempotencyKey(source, messageID, suffix string) string {
	if messageID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(messageID))
	return "ingest:" + source + ":" + hex.EncodeToString(sum[:16]) + ":" + suffix
}

// eventID is the Customer.io event id (a ULID) of a message: the messageId
// itself when it is a ULID, otherwise a ULID derived from source and
// messageId (time part 0, entropy the first 80 bits of SHA-256), so every
// retry of the same message carries the same id. "" when there is none.
func eventID(source, messageID string) string {
	if messageID == "" {
		return ""
	}
	if id, err := ulid.ParseStrict(messageID); err == nil {
		return id.String()
	}
	var id ulid.ULID
	sum := sha256.Sum256([]byte("cioq-ingest:" + source + ":" + messageID))
	_ = id.SetTime(0)
	_ = id.SetEntropy(sum[:10])
	return id.String()
}

var errTimestamp = errors.New("must be an ISO-8601 date-time")

// unixSeconds converts an ISO-8601 timestamp (RFC 3339, fractional seconds
// allowed) or a number of unix seconds (milliseconds when above 1e11) to
// unix seconds. nil or "" gives 0.
func unixSeconds(v any) (int64, error) {
	switch t := v.(type) {
	case nil:
		return 0, nil
	case string:
		s := strings.TrimSpace(t)
		if s == "" {
			return 0, nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"} {
			if tm, err := time.Parse(layout, s); err == nil {
				if tm.Unix() < 0 {
					return 0, errTimestamp
				}
				return tm.Unix(), nil
			}
		}
		if d, err := time.Parse("2006-01-02", s); err == nil && d.Unix() >= 0 {
			return d.Unix(), nil
		}
		return 0, errTimestamp
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return 0, errTimestamp
		}
		return numSeconds(f)
	case float64:
		return numSeconds(t)
	}
	return 0, errTimestamp
}

func numSeconds(f float64) (int64, error) {
	if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e16 {
		return 0, errTimestamp
	}
	if f > 1e11 { // milliseconds
		f /= 1000
	}
	return int64(f), nil
}

// idString returns a string id, or a number written as a string.
func idString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return ""
}
