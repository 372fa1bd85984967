package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// offlineClient is a producer whose Redis cannot be reached; dials counts
// the attempts.
func offlineClient(t *testing.T) (*producer.Client, *atomic.Int64) {
	t.Helper()
	var dials atomic.Int64
	rdb := redis.NewClient(&redis.Options{Addr: "redis.invalid:6379", MaxRetries: -1,
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, errors.New("offline")
		}})
	t.Cleanup(func() { rdb.Close() })
	return producer.NewFromRedis(rdb), &dials
}

type checkCase struct {
	name    string
	typ     string
	payload string
	opts    []producer.EnqueueOption
	field   string // "" = valid
}

func checkCases() []checkCase {
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Hour).Unix()
	id := `{"identifiers":{"id":"u1"}}`
	return []checkCase{
		{"valid", tasks.TypeIdentify, id, nil, ""},
		{"valid with options", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.Queue("bulk"), producer.IdempotencyKey("k:1"),
			producer.Workspace("eu"), producer.ProcessIn(time.Minute), producer.ExpiresIn(time.Hour), producer.MaxRetry(3), producer.Timeout(time.Minute)}, ""},
		{"valid track without id", tasks.TypeTrack, `{"identifiers":{"id":"u1"},"name":"e"}`, nil, ""},
		{"valid cdp without messageId", tasks.TypeCDPTrack, `{"userId":"u1","event":"e","sentAt":"x"}`, nil, ""},
		{"valid envelope", tasks.TypeIdentify, `{"v":1,"workspace":"eu","expires_at":` + itoa(future) + `,"payload":` + id + `}`, nil, ""},
		{"unknown type", "cio:nope", `{}`, nil, "type"},
		{"malformed", tasks.TypeIdentify, `{"identifiers":`, nil, "payload"},
		{"not an object", tasks.TypeIdentify, `[1]`, nil, "payload"},
		{"wrong field type", tasks.TypeIdentify, `{"identifiers":{"id":5}}`, nil, "identifiers.id"},
		{"wrong field type in an envelope", tasks.TypeIdentify, `{"v":1,"payload":{"identifiers":{"id":5}}}`, nil, "payload.identifiers.id"},
		{"wrong type in an array", tasks.TypeSegmentAdd, `{"segment_id":1,"ids":["a",2]}`, nil, "ids[1]"},
		{"not UTF-8", tasks.TypeTrack, "{\"identifiers\":{\"id\":\"u\xff\xfe\xc31\"},\"name\":\"ev\"}", nil, "identifiers.id"},
		{"lone surrogate", tasks.TypeTrack, `{"identifiers":{"id":"u"},"name":"ev","data":{"blob":"\ud800"}}`, nil, "data.blob"},
		{"invalid payload", tasks.TypeTrack, `{"identifiers":{"id":"u"}}`, nil, "name"},
		{"invalid cdp", tasks.TypeCDPGroup, `{"userId":"u"}`, nil, "groupId"},
		{"queue chars", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.Queue("a b")}, "queue"},
		{"queue long", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.Queue(strings.Repeat("q", 65))}, "queue"},
		{"key chars", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.IdempotencyKey("has space")}, "idempotency_key"},
		{"key non-ascii", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.IdempotencyKey("clé")}, "idempotency_key"},
		{"key long", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.IdempotencyKey(strings.Repeat("k", 201))}, "idempotency_key"},
		{"workspace option", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.Workspace("Bad Name")}, "workspace"},
		{"envelope expired", tasks.TypeIdentify, `{"v":1,"expires_at":` + itoa(past) + `,"payload":` + id + `}`, nil, "expires_at"},
		{"envelope expiry before processing", tasks.TypeIdentify, `{"v":1,"expires_at":` + itoa(future) + `,"payload":` + id + `}`,
			[]producer.EnqueueOption{producer.ProcessIn(2 * time.Hour)}, "expires_at"},
		{"max retry", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.MaxRetry(-5)}, "max_retry"},
		{"timeout", tasks.TypeIdentify, id, []producer.EnqueueOption{producer.Timeout(time.Millisecond)}, "timeout"},
	}
}

// TestCheck: Check accepts what EnqueueRaw enqueues and refuses what it
// refuses, with the same error, and never touches Redis.
func TestCheck(t *testing.T) {
	off, dials := offlineClient(t)
	c, insp := setup(t)
	for _, tc := range checkCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := off.Check(tc.typ, json.RawMessage(tc.payload), tc.opts...)
			_, rawErr := c.EnqueueRaw(ctx, tc.typ, json.RawMessage(tc.payload), tc.opts...)
			if tc.field == "" {
				if err != nil || rawErr != nil {
					t.Fatalf("Check = %v, EnqueueRaw = %v; want both nil", err, rawErr)
				}
				return
			}
			var ve *producer.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Check = %v, want a *ValidationError on %q", err, tc.field)
			}
			if rawErr == nil || err.Error() != rawErr.Error() {
				t.Errorf("Check = %v\nEnqueueRaw = %v\nwant the same error", err, rawErr)
			}
		})
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("Check dialed Redis %d times", n)
	}
	want := 0
	for _, tc := range checkCases() {
		if tc.field == "" {
			want++
		}
	}
	if n := total(t, insp); n != want {
		t.Errorf("%d tasks in Redis, want %d (the valid cases' EnqueueRaw)", n, want)
	}
}
