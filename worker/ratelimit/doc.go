// Package ratelimit enforces rate limits that every worker process shares,
// so that N horizontally scaled workers together stay under Customer.io's
// limits instead of each of them alone.
//
// # Algorithm
//
// Each key (one workspace and one API, see Key) holds a GCRA state in Redis:
// the "theoretical arrival time" of the next request. One Lua script reads
// it, decides and writes it back atomically, using Redis's own clock (TIME),
// so processes with skewed clocks still agree. A Limit of Rate requests per
// Period with Burst allows Burst requests at once after a quiet period and
// then one every Period/Rate; over any window of length W at most
// Burst + Rate*W/Period requests pass.
//
// # Allow, Reserve and Wait
//
// Allow takes a slot only when one is free now. Reserve also takes a slot
// that frees up within maxWait and says how long to sleep before using it.
// Wait is Reserve plus the sleep: it returns nil when the caller may go, or
// a *WaitTooLongError (carrying RetryAfter and ComeBack) without consuming a
// slot when the next slot is further away than maxWait or than ctx's
// deadline. A worker uses that to reschedule the task for later rather than
// spend a retry or hold a worker slot while sleeping. The callers turned away
// queue up: each is given the slot after the previous one's and told to come
// back (ComeBack) when that slot enters its maxWait horizon, so they return
// one per slot, in turn, rather than all when the next slot frees (when all
// but one would be turned away again and the slots after theirs go unused:
// at 5 req/s that used half the limit). The queue is a hint, not a
// reservation: a slot nobody claims in time goes to whoever asks, and an
// unused slot resets the queue. A slot reserved by Wait is consumed even
// when ctx ends during the sleep.
//
// # Adaptive slow-down
//
// Throttled records that Customer.io answered 429 for a key. The key's
// effective rate then drops to Decrease (default half) of what it was, never
// below Floor (default 10 %) of the configured Limit, and recovers linearly
// to 100 % over Recovery (default 30 s) unless another 429 comes. 429s within
// Cooldown (default 1 s) of the last decrease count once, so a burst of
// rejections seen by many workers at the same moment halves the rate once,
// not once per worker. The state lives in Redis next to the GCRA state, so
// every process slows down together. The burst shrinks with the rate.
// Pause additionally holds a key for a 429's Retry-After.
//
// # Keys in Redis
//
// For key k the limiter uses <Prefix>{k}:tat, <Prefix>{k}:429 and
// <Prefix>{k}:wake (the come-back queue; the braces keep them in one Redis
// Cluster slot). They expire on their own once idle.
package ratelimit
