// Package shard names the asynq queues a logical queue is split into
// (CIOQ_QUEUE_SHARDS, producer.WithShards, worker.Config.Shards), so that
// one logical queue's tasks spread over the masters of a Redis Cluster.
//
// asynq keeps every key of a queue under the hash tag {<queue name>}
// (internal/keys), so a queue lives in one hash slot, on one master, and
// that master's single Redis thread bounds the queue's throughput. With n
// shards, a logical queue q is the n asynq queues
//
//	q.s<i>.<salt>   (i = 0 .. n-1)
//
// where salt is the smallest number (in base 36) that puts the name's hash
// slot in the middle half of the i-th of n equal parts of the slot range
// (0-16383). A Cluster whose masters own equal contiguous slot ranges, as
// redis-cli --cluster create makes them, so has shard i on master i when n
// is its number of masters (or a multiple of it). n = 1 is the plain name
// q, so a deployment that does not shard sees no change.
//
// The names depend on n: changing n gives every shard a new name, and the
// old ones (the plain name included) are found again in asynq:queues by
// the worker, which keeps serving those that hold tasks (worker.Config.Shards).
package shard

import (
	"strconv"
	"strings"
	"sync"
)

// Slots is the number of Redis Cluster hash slots.
const Slots = 16384

// Max is the largest number of shards a logical queue may be split into.
const Max = 16

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash
// tag (the text between the first "{" and the next "}" when not empty),
// else of the whole key, modulo 16384. It is what CLUSTER KEYSLOT answers.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % Slots
}

// QueueSlot is the hash slot of every key of the asynq queue named queue
// (asynq's tag is {<queue>}).
func QueueSlot(queue string) int { return Slot("{" + queue + "}") }

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

type nameKey struct {
	queue string
	i, n  int
}

// names caches Name's answers (a handful of queues and counts).
var names sync.Map // nameKey -> string

// Name is the asynq queue of shard i (0 <= i < n) of logical queue q: q
// itself when n <= 1, else q.s<i>.<salt> (see the package doc). It panics
// when i is out of range.
func Name(q string, i, n int) string {
	if n <= 1 {
		if i != 0 {
			panic("shard: index out of range")
		}
		return q
	}
	if i < 0 || i >= n {
		panic("shard: index out of range")
	}
	k := nameKey{q, i, n}
	if v, ok := names.Load(k); ok {
		return v.(string)
	}
	// The middle half of part i: [lo + w/4, hi - w/4).
	lo, hi := i*Slots/n, (i+1)*Slots/n
	w := hi - lo
	lo, hi = lo+w/4, hi-w/4
	prefix := q + ".s" + strconv.Itoa(i) + "."
	for s := 0; ; s++ {
		name := prefix + strconv.FormatInt(int64(s), 36)
		if sl := QueueSlot(name); sl >= lo && sl < hi {
			names.Store(k, name)
			return name
		}
	}
}

// Names are the asynq queues of logical queue q split into n shards, shard
// 0 first ([q] when n <= 1).
func Names(q string, n int) []string {
	if n <= 1 {
		return []string{q}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = Name(q, i, n)
	}
	return out
}

// Parse tells which shard the asynq queue name is: its logical queue and
// its index, for a name that Name gives for some shard count (2 to Max; a
// name may be the same shard of several counts); ok is false for a name
// that is no shard's (a plain queue: its own logical queue, shard 0).
func Parse(name string) (q string, i int, ok bool) {
	j := strings.LastIndexByte(name, '.')
	if j < 0 {
		return name, 0, false
	}
	k := strings.LastIndexByte(name[:j], '.')
	if k < 1 || j < k+3 || name[k+1] != 's' {
		return name, 0, false
	}
	idx, err := strconv.Atoi(name[k+2 : j])
	if err != nil || idx < 0 || idx >= Max || name[k+2:j] != strconv.Itoa(idx) {
		return name, 0, false
	}
	q = name[:k]
	for n := max(idx+1, 2); n <= Max; n++ {
		if Name(q, idx, n) == name {
			return q, idx, true
		}
	}
	return name, 0, false
}

// Logical is the logical queue of the asynq queue name: the queue it is a
// shard of, or name itself.
func Logical(name string) string {
	q, _, _ := Parse(name)
	return q
}

// Index picks the shard of a task among n by a key that names what must
// stay together (a person, an idempotency key): the same key always picks
// the same shard (FNV-1a, modulo n). n <= 1 is 0.
func Index(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// Check reports whether n is a valid shard count (1 to Max).
func Check(n int) bool { return n >= 1 && n <= Max }
