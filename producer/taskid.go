package producer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/keys"
)

// KeySecretRedisKey is the Redis key holding the deployment's generated
// idempotency key secret (see WithKeySecret). It is written once, with SET
// NX, by the first client that needs it, and never expires: deleting it
// makes every later use of an idempotency key a new task id.
const KeySecretRedisKey = keys.KeySecret

// MinKeySecretLen is the shortest idempotency key secret accepted, in bytes
// (32 characters: e.g. 16 random bytes in hex; a generated secret is 32
// random bytes in hex, 64 characters).
const MinKeySecretLen = 32

// keyIDPrefix starts every task id derived from an idempotency key; asynq's
// own ids are UUIDs (hex digits and dashes), so the two never meet.
const keyIDPrefix = "k-"

// keyIDBytes is how many bytes of the HMAC a task id keeps (160 bits).
const keyIDBytes = 20

// keyIDEncoding writes a task id's bytes: RFC 4648 base32 in lower case,
// unpadded (20 bytes make 32 characters, URL- and Redis-key-safe).
var keyIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CheckKeySecret reports whether secret can be an idempotency key secret:
// at least MinKeySecretLen bytes. Its error never contains the secret.
func CheckKeySecret(secret string) error {
	if len(secret) < MinKeySecretLen {
		return fmt.Errorf("must be at least %d characters (e.g. `openssl rand -hex 32`), got %d", MinKeySecretLen, len(secret))
	}
	return nil
}

// WithKeySecret sets the secret that idempotency keys are hashed with into
// task ids (the cioq binary reads it from CIOQ_KEY_SECRET). Every process
// of a deployment must use the same secret, or none: a key enqueued by two
// processes with different secrets gets two task ids and is delivered
// twice. Without this option the client uses the deployment's generated
// secret, stored in Redis under KeySecretRedisKey (created on first use),
// which every client on the same Redis agrees on.
//
// The secret is a string of at least MinKeySecretLen bytes, used as the
// HMAC key as is; the generated one is 64 hex characters, so setting
// CIOQ_KEY_SECRET to the value stored in Redis keeps every task id. New and
// NewFromRedis panic on a shorter secret: check one that comes from
// configuration with CheckKeySecret first.
func WithKeySecret(secret string) Option {
	return func(c *Client) { c.keySecret = &secret }
}

// keyer derives task ids from idempotency keys with one secret.
type keyer struct {
	macs sync.Pool // *mac
}

// mac is a reusable HMAC-SHA256 keyed with the secret, with its buffers
// (so deriving an id allocates only the id).
type mac struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
	out [len(keyIDPrefix) + 32]byte
}

func newKeyer(secret []byte) *keyer {
	k := &keyer{}
	k.macs.New = func() any {
		m := &mac{h: hmac.New(sha256.New, secret)}
		copy(m.out[:], keyIDPrefix)
		return m
	}
	return k
}

// taskID is the task id of key: "k-" and the first 20 bytes of
// HMAC-SHA256(secret, key) in lower-case base32.
func (k *keyer) taskID(key string) string {
	m := k.macs.Get().(*mac)
	m.h.Reset()
	m.in = append(m.in[:0], key...)
	m.h.Write(m.in)
	m.h.Sum(m.sum[:0])
	keyIDEncoding.Encode(m.out[len(keyIDPrefix):], m.sum[:keyIDBytes])
	id := string(m.out[:])
	k.macs.Put(m)
	return id
}

// TaskIDForKey returns the asynq task id of a task enqueued with
// IdempotencyKey(key) through this client: "k-" followed by 32 lower-case
// base32 characters, the first 160 bits of HMAC-SHA256 of the key under the
// deployment's secret (WithKeySecret, or the one generated in Redis, which
// this call may create). The key itself never becomes an id, so a person
// identifier in a key does not reach logs, receipts, `cioq dlq list` or the
// redacted dashboard, all of which show task ids; and without the secret
// nobody can confirm a guessed key from its id. Use it to look a keyed task
// up (asynq.Inspector, the dead letter store).
//
// Two keys share an id with probability 2^-160; among n keys alive at once
// the chance of any collision is below n²/2^161 (for a trillion keys, about
// 10^-25), so a fresh key is never mistaken for a duplicate of another in
// practice.
func (c *Client) TaskIDForKey(ctx context.Context, key string) (string, error) {
	k, err := c.keyer(c.acked(ctx))
	if err != nil {
		return "", err
	}
	return k.taskID(key), nil
}

// ErrKeySecret is wrapped by the error of an enqueue that needed the
// deployment's idempotency key secret and could not read or create it in
// Redis (errors.Is).
var ErrKeySecret = errors.New("idempotency key secret unavailable")

// keyer returns the client's keyer, reading (or first creating) the
// deployment's secret in Redis once; a failure is not cached, so the next
// keyed enqueue tries again.
func (c *Client) keyer(ctx context.Context) (*keyer, error) {
	if k := c.keys.Load(); k != nil {
		return k, nil
	}
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	if k := c.keys.Load(); k != nil {
		return k, nil
	}
	secret, err := c.loadKeySecret(ctx)
	if err != nil {
		return nil, err
	}
	k := newKeyer(secret)
	c.keys.Store(k)
	return k, nil
}

// loadKeySecret reads the deployment's secret, creating it when there is
// none: SET NX of a new random secret, then GET, in one round trip. Of two
// clients creating it at once, one SET wins and both GETs read the
// winner's secret.
func (c *Client) loadKeySecret(ctx context.Context) ([]byte, error) {
	var fresh [32]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return nil, fmt.Errorf("producer: %w: generate: %w", ErrKeySecret, err)
	}
	var get *redis.StringCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, KeySecretRedisKey, hex.EncodeToString(fresh[:]), 0)
		get = p.Get(ctx, KeySecretRedisKey)
		return nil
	})
	if err != nil {
		// Redis errors name the command and its key, never the value.
		return nil, fmt.Errorf("producer: %w: read %s: %w", ErrKeySecret, KeySecretRedisKey, err)
	}
	secret := get.Val()
	if err := CheckKeySecret(secret); err != nil {
		return nil, fmt.Errorf("producer: %w: the value of %s %v; set CIOQ_KEY_SECRET (WithKeySecret) or replace it", ErrKeySecret, KeySecretRedisKey, err)
	}
	return []byte(secret), nil
}
