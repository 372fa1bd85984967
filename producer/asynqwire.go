package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// The producer's enqueue of a task to process now, without asynq.Client.
//
// asynq.Client.Enqueue spends more CPU than the Redis round trip it makes
// is worth at tens of thousands of tasks per second: it composes its
// options, encodes the message with reflection-driven protobuf, builds a
// TaskInfo and asks crypto/rand for every task id. The producer knows all
// of a task's fields already, so it writes asynq's task message itself
// (appendTaskMessage: the fields asynq's Client sets, in asynq's wire
// format) and stores it with wireEnqueueScript, which leaves Redis exactly
// as asynq's enqueue does: the task hash with the message, state
// "pending" and the pending_since time (unix ns), the id pushed to the
// head of the queue's pending list, nothing written when a task with that
// id exists (an idempotency key's duplicate: asynq.ErrTaskIDConflict), and
// the queue added to asynq's set of queues once per queue and client.
// TestWireMatchesAsynq holds both to asynq's own: the same bytes, the same
// hash, and an asynq server and Inspector reading the task as asynq's.
// Tasks with a process time go through asynq.Client (its schedule).

// wireEnqueueScript stores one pending task. KEYS: the task hash, the
// queue's pending list. ARGV: the encoded message, the task id, the time
// (unix ns). It returns 1 when stored, 0 when the id is taken.
var wireEnqueueScript = redis.NewScript(`
local taken = redis.call("EXISTS", KEYS[1])
if taken ~= 0 then return 0 end
redis.call("HSET", KEYS[1], "msg", ARGV[1], "state", "pending", "pending_since", ARGV[3])
redis.call("LPUSH", KEYS[2], ARGV[2])
return 1
`)

// asynqAllQueues is the set asynq lists the queues of a deployment in.
const asynqAllQueues = keys.AsynqQueues

// asynq's TaskMessage field numbers (its internal/proto/asynq.proto).
const (
	tmType      protowire.Number = 1
	tmPayload   protowire.Number = 2
	tmID        protowire.Number = 3
	tmQueue     protowire.Number = 4
	tmRetry     protowire.Number = 5
	tmTimeout   protowire.Number = 8
	tmDeadline  protowire.Number = 9
	tmRetention protowire.Number = 12
	tmHeaders   protowire.Number = 15
)

// wireTask is what asynq's Client puts in the message of a task enqueued
// to be processed now with the producer's options (queue, MaxRetry,
// Timeout, Retention, TaskID): no deadline, unique key or group.
type wireTask struct {
	typ       string
	payload   []byte
	headers   map[string]string
	id        string
	queue     string
	retry     int
	timeout   time.Duration
	retention time.Duration
}

// appendTaskMessage appends t encoded as asynq's TaskMessage, fields in
// number order and zero values left out, as proto.Marshal writes them.
func appendTaskMessage(b []byte, t *wireTask) []byte {
	b = appendString(b, tmType, t.typ)
	if len(t.payload) > 0 {
		b = protowire.AppendTag(b, tmPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, t.payload)
	}
	b = appendString(b, tmID, t.id)
	b = appendString(b, tmQueue, t.queue)
	b = appendVarint(b, tmRetry, uint64(int64(int32(t.retry))))
	b = appendVarint(b, tmTimeout, uint64(int64(t.timeout.Seconds())))
	// Deadline: asynq's "none" is time.Unix(0, 0), encoded as 0: left out.
	b = appendVarint(b, tmRetention, uint64(int64(t.retention.Seconds())))
	for k, v := range t.headers {
		n := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
		b = protowire.AppendTag(b, tmHeaders, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

func appendString(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// wireBufs recycles message buffers.
var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// wireEnqueue enqueues t to be processed now. A taken id is
// asynq.ErrTaskIDConflict, as from asynq.Client.
func (c *Client) wireEnqueue(ctx context.Context, t *wireTask) error {
	if t.id == "" {
		t.id = newUUID()
	}
	if err := c.publishQueue(ctx, t.queue); err != nil {
		return err
	}
	bp := wireBufs.Get().(*[]byte)
	msg := appendTaskMessage((*bp)[:0], t)
	now := strconv.AppendInt(make([]byte, 0, 20), time.Now().UnixNano(), 10)
	n, err := wireEnqueueScript.Run(ctx, c.rdb, []string{keys.AsynqTask(t.queue, t.id), keys.AsynqPending(t.queue)}, msg, t.id, now).Int()
	if cap(msg) <= 64<<10 {
		*bp = msg
		wireBufs.Put(bp)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return asynq.ErrTaskIDConflict
	}
	return nil
}

// publishQueue adds queue to asynq's set of queues, once per Client and
// queue, as asynq's Client does.
func (c *Client) publishQueue(ctx context.Context, queue string) error {
	if _, ok := c.published.Load(queue); ok {
		return nil
	}
	if err := c.rdb.SAdd(ctx, asynqAllQueues, queue).Err(); err != nil {
		return err
	}
	c.published.Store(queue, true)
	return nil
}

// uuidBufs hands out random bytes for task ids from crypto/rand, read 1
// KiB at a time.
var uuidBufs = sync.Pool{New: func() any { return new(uuidBuf) }}

type uuidBuf struct {
	b [1024]byte
	n int // bytes used
}

// newUUID returns a random (version 4) UUID in its 36-character form, as
// asynq gives a task without a TaskID.
func newUUID() string {
	u := uuidBufs.Get().(*uuidBuf)
	if u.n == 0 || u.n+16 > len(u.b) {
		if _, err := rand.Read(u.b[:]); err != nil {
			panic("producer: crypto/rand: " + err.Error()) // never fails on supported platforms
		}
		u.n = 0
	}
	var r [16]byte
	copy(r[:], u.b[u.n:u.n+16])
	clear(u.b[u.n : u.n+16]) // never handed out twice, even by a copy
	u.n += 16
	uuidBufs.Put(u)
	r[6] = r[6]&0x0f | 0x40
	r[8] = r[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], r[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], r[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], r[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], r[8:10])
	s[23] = '-'
	hex.Encode(s[24:], r[10:])
	return string(s[:])
}

// wireRetry is the MaxRetry the producer gives asynq (the budget travels
// in a header).
const wireRetry = tasks.AsynqMaxRetry
