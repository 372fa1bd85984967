// Package keys is cioq's Redis key schema: every key cioq reads or writes,
// its own and asynq's, is built here and nowhere else, so a change to the
// schema is one visible diff (keys_test.go holds the golden list, and fails
// when a "cioq:" or "asynq:" key literal appears in any other non-test
// file).
//
// The names are part of cioq's stored state: records already in a user's
// Redis (dead letters, send records, ordering sequences, the key secret)
// are found again only under the same bytes. Never change an existing
// key's bytes; a new layout is a new key with a migration.
//
// # Hash tags (Redis Cluster)
//
// Redis Cluster puts a key in the slot of its hash tag, the text between
// the first "{" and the next "}" when it is not empty, or of the whole key
// without one. A Lua script or MULTI/EXEC may only touch keys of one slot,
// so keys used together carry the same tag (built by tag, the one place the
// braces are written):
//
//   - {dlq}: the dead-letter store's record, history and index are written
//     in one MULTI/EXEC, so a dead letter is complete or absent.
//   - {<queue>}: asynq's own tag for every key of a queue. cioq's retrying
//     index and stuck-task holding hash take the same tag, so one script
//     sees them and asynq's retry set, lease set, active list and task
//     hash together; its replication probe takes it to be written on the
//     node that holds the queue's tasks.
//   - {<workspace>:<api>}: a recovery run marker and its pulled marker,
//     read and written by one script.
//   - {<limiter key>}: a rate limit's GCRA position and 429 state, read by
//     one script.
//   - {cioq:seq:<workspace>:<order key>}: a person's ordering state
//     (SeqState) takes as its tag the whole name of the person's sequence
//     counter (Seq, which has no tag: it predates the state), so both hash
//     to the counter's slot and the stamp script sees them together.
//
// A logical queue split into shards (CIOQ_QUEUE_SHARDS) is several asynq
// queues, each its own {<queue>} tag: internal/shard names them so that
// their slots fall on different masters.
//
// Every other key is used alone (one command or a one-key script) and has
// no tag, so such keys spread over the cluster. Every Lua script of cioq's
// takes its keys from KEYS[], built here; none makes a key name in Lua.
//
// # Workspaces
//
// Keys that name a workspace use Workspace, which spells the default
// workspace "default" (envelopes spell it ""), so "" and "default" share
// them. The rate limiter's keys are the exception (RateLimitAPI,
// RateLimitBroadcast): they have always carried the workspace as given, so
// the default workspace's are "cioq:ratelimit:{:track}:tat" and so on, and
// they stay so (changing them would only reset a budget, but a key never
// changes its bytes here).
//
// # asynq's keys
//
// The Asynq* names are asynq's (v0.26, its internal/base), which the worker
// reads and changes itself for the stuck-task check and recovery pulls. On
// an asynq upgrade, check them against the new version's internal/base.
package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// tag wraps s in a Redis Cluster hash tag.
func tag(s string) string { return "{" + s + "}" }

// Workspace is the workspace part of a key: ws, or "default" for the
// default workspace's "" (so "" and "default" name the same keys).
func Workspace(ws string) string {
	if ws == "" {
		return "default"
	}
	return ws
}

// withEnqueued appends ":<enqueuedAt>" to key when the enqueue time (unix
// ms) is known (> 0).
func withEnqueued(key string, enqueuedAt int64) string {
	if enqueuedAt > 0 {
		key += ":" + strconv.FormatInt(enqueuedAt, 10)
	}
	return key
}

// Sent is the send record of a transactional send or broadcast trigger:
// cioq:sent:<task id>:<enqueued_at ms> (without ":<enqueued_at>" when it
// is unknown, 0). A string, the delivery reference ("delivery:<id>", or
// "sent"). The worker writes it once Customer.io accepted the send, before
// the task is acknowledged, and reads it before sending, so a retry does
// not send twice. Expires after worker.Config.SendDedupeTTL (7 days by
// default). The enqueue time tells a task from a later one that reuses its
// id (an idempotency key used again after the first left Redis). No tag.
func Sent(taskID string, enqueuedAt int64) string {
	return withEnqueued("cioq:sent:"+taskID, enqueuedAt)
}

// Attempts is a task's attempt log:
// cioq:attempts:<task id>:<enqueued_at ms> (without ":<enqueued_at>" when
// it is unknown, 0). A hash: n = attempts recorded, e<i mod cap> = entry i
// (JSON). The worker appends to it on every retried failure (one script)
// and reads it into the dead letter's history when the task is
// dead-lettered (also when asynq archived it), then deletes it. A task that
// succeeds leaves it to expire: each write sets its expiry to
// worker.AttemptHistoryTTL (24 h). No tag.
func Attempts(taskID string, enqueuedAt int64) string {
	return withEnqueued("cioq:attempts:"+taskID, enqueuedAt)
}

// BatchProgress is what a cio:batch task's earlier attempts settled:
// cioq:batch:<task id>:<enqueued_at ms> (without ":<enqueued_at>" when it
// is unknown, 0). A hash: s = a bitmap of the operations delivered or
// dead-lettered (bit i, from the high bit of byte 0, for operation i),
// a = a bitmap of those to send alone (a batch they were in failed without
// naming the operation at fault). The worker reads it at the start of each
// attempt, skipping what is settled, and writes it when the task is
// retried with some of its operations settled; it deletes it when the
// task is done. Each write sets its expiry to worker.BatchProgressTTL (7
// days). No tag.
func BatchProgress(taskID string, enqueuedAt int64) string {
	return withEnqueued("cioq:batch:"+taskID, enqueuedAt)
}

// DeadLetterIndex is the dead-letter store's index: cioq:{dlq}:index. A
// sorted set of dead letter ids scored by the last failure's unix ms.
// Written by the worker (worker.DeadLetters.Add) with the record; read and
// changed by `cioq dlq` (list, retry, delete, purge), counted by `cioq
// serve`'s metrics. No expiry: entries leave by dlq retry, delete or purge.
// Tag {dlq}.
const DeadLetterIndex = "cioq:{dlq}:index"

// DeadLetter is a dead letter's record: cioq:{dlq}:t:<task id>. A hash (id,
// type, queue, workspace, payload, attempts, class, status, message, error,
// first_failed, last_failed, ...), written and read as DeadLetterIndex is.
// No expiry. Tag {dlq}.
func DeadLetter(taskID string) string { return "cioq:" + tag("dlq") + ":t:" + taskID }

// DeadLetterHistory is a dead letter's failures: cioq:{dlq}:h:<task id>. A
// list of JSON entries, oldest first, trimmed to the newest
// worker.DeadLetterHistoryCap; written and read with its record. No expiry.
// Tag {dlq}.
func DeadLetterHistory(taskID string) string { return "cioq:" + tag("dlq") + ":h:" + taskID }

// Seq is a person's ordering sequence counter:
// cioq:seq:<workspace>:<order key>. A string (integer), the last number
// taken. The producer (producer.WithOrdering) and DeadLetters.Retry take
// the next one with the stamp script (internal/sequence), which also
// records the task holding it in SeqState; a counter that is gone while
// SeqState lives restarts above the highest number SeqState knows. Every
// stamp, every ordering gate and every finished task set its expiry to 7
// days. No tag (SeqState takes this whole key as its tag).
func Seq(workspace, orderKey string) string {
	return "cioq:seq:" + Workspace(workspace) + ":" + orderKey
}

// SeqState is a person's ordering state:
// cioq:{cioq:seq:<workspace>:<order key>}:state. A hash: done = the
// highest finished number (delivered, dead-lettered, or skipped because
// its task left the queue otherwise), at = unix ms of its last change, and
// one field per number from done up, "<seq>" = the task holding it
// ("<queue> <stamped unix ms> <task id>", or "" when no task holds it: its
// enqueue was a duplicate). The stamp script adds a number's field; the
// worker's ordering gate reads the fields below a task's number (and the
// asynq task of each) and raises done with the finished-task script, which
// deletes the fields below done. Every use sets its expiry to 7 days. Tag
// {<Seq's key>}: the counter's slot.
func SeqState(workspace, orderKey string) string {
	return "cioq:" + tag(Seq(workspace, orderKey)) + ":state"
}

// Done is the highest finished sequence number of a person:
// cioq:done:<workspace>:<order key>. A hash (seq, at = unix ms of the last
// change), only ever raised. The worker's ordering gate reads it beside
// SeqState's done and raises it with it (one-key scripts): it is the
// record workers before SeqState used, kept for them during an upgrade,
// and a second copy, so a person whose SeqState was lost still knows where
// it is. The gate and every write set its expiry to 7 days. No tag.
func Done(workspace, orderKey string) string {
	return "cioq:done:" + Workspace(workspace) + ":" + orderKey
}

// AnonymousMerge is the person an anonymous visitor was merged into:
// cioq:anon:<workspace>:<hash>, where hash is the first 12 bytes of the
// SHA-256 of the anonymous id, in hex (the id itself stays out of key
// names). A string, the person's identifiers as JSON ({"id":"..."}). The
// worker writes it when it delivered a merge (an identify carrying
// anonymous_id, cio:merge_anonymous, a Pipelines identify with userId and
// anonymousId, a Pipelines alias) and reads it before delivering an
// anonymous event, which it then delivers as that person's event
// (Customer.io merges only the anonymous events it receives within five
// minutes of the identify). Each write sets its expiry to
// worker.Config.AnonymousMergeTTL (30 days: Customer.io keeps anonymous
// events that long). No tag.
func AnonymousMerge(workspace, anonymousID string) string {
	sum := sha256.Sum256([]byte(anonymousID))
	return "cioq:anon:" + Workspace(workspace) + ":" + hex.EncodeToString(sum[:12])
}

// KeySecret is the deployment's generated idempotency-key secret:
// cioq:key-secret. A string (hex). The producer creates it (SETNX) on first
// use when CIOQ_KEY_SECRET is not set and reads it; `cioq dlq` checks that
// it exists. No expiry: losing it changes every keyed task's id. No tag.
const KeySecret = "cioq:key-secret"

// RecoveryRun marks a run of transient failures of one workspace and API:
// cioq:recovery:{<workspace>:<api>}:run. A string, the last failure's unix
// ms. The worker sets it on every transient failure (expiry 24 h from the
// last) and the process whose success ends the run deletes it (with
// RecoveryPulled, one script). Tag {<workspace>:<api>}.
func RecoveryRun(workspace, api string) string {
	return "cioq:recovery:" + tag(Workspace(workspace)+":"+api) + ":run"
}

// RecoveryPulled exists for worker.Recovery.MinInterval (30 s by default)
// after a pull of one workspace and API's retrying tasks:
// cioq:recovery:{<workspace>:<api>}:pulled. A string ("1"), set NX with
// that expiry by the script that ends a run. Tag {<workspace>:<api>}.
func RecoveryPulled(workspace, api string) string {
	return "cioq:recovery:" + tag(Workspace(workspace)+":"+api) + ":pulled"
}

// Retrying is the index of one queue's tasks of one workspace and API whose
// latest failure was transient: cioq:{<queue>}:retrying:<workspace>:<api>.
// A sorted set of task ids scored by the failure's unix ms. The worker adds
// to it on a transient failure, removes a task throttled or kept for
// credentials, and its pull script reads it with asynq's retry and lease
// sets. Each write sets its expiry to 25 h. Tag {<queue>}, asynq's.
func Retrying(queue, workspace, api string) string {
	return "cioq:" + tag(queue) + ":retrying:" + Workspace(workspace) + ":" + api
}

// ReplicationProbe is written to confirm that a queue's master has
// replicated what it holds: cioq:{<queue>}:replicated. A string (unix ms of
// the last write), expiring after a minute. With replicated
// acknowledgements (producer.WithReplicas), an enqueue refused as a
// duplicate writes nothing, so the producer sets this key and its WAIT
// then covers the first task, which the same master wrote earlier; and
// the worker (worker.Config.Replicas) sets it before delivering a task of
// the queue, so that its WAIT confirms the task. Nobody reads it. Tag
// {<queue>}, asynq's, so it lives on the task's node.
func ReplicationProbe(queue string) string { return "cioq:" + tag(queue) + ":replicated" }

// StuckLock is the lock of the stuck-task check: cioq:lock:stuck-check. A
// string, the holder's random token, set NX by the worker that runs the
// check and deleted by it at the end (a one-key script comparing the
// token); expires after 5 minutes should its holder die. No tag.
const StuckLock = "cioq:lock:stuck-check"

// StuckHold holds entries the stuck-task check took out of a queue's active
// list until their dead letter is written: cioq:{<queue>}:stuck. A hash:
// field = task id, value = "m" + the message's bytes, or "-" when there was
// none. Written by the claim script together with asynq's active list,
// lease set and task hash; each field is deleted once its dead letter is
// written. No expiry. Tag {<queue>}, asynq's.
func StuckHold(queue string) string { return "cioq:" + tag(queue) + ":stuck" }

// RateLimitPrefix starts the rate limiter's keys unless
// ratelimit.Config.Prefix says otherwise: "cioq:ratelimit:".
const RateLimitPrefix = "cioq:ratelimit:"

// RateLimitTAT is a rate limit's GCRA position (its theoretical arrival
// time): <prefix>{<limiter key>}:tat, with prefix RateLimitPrefix by
// default. A string (seconds since 2017-01-01, 6 decimals), written and read
// by the limiter's scripts in every worker; expires once the position is
// in the past (plus 1 s). Tag {<limiter key>}.
func RateLimitTAT(prefix, limiterKey string) string { return prefix + tag(limiterKey) + ":tat" }

// RateLimitThrottle is a rate limit's adaptive slow-down after a 429:
// <prefix>{<limiter key>}:429. A hash (f = the rate factor after the last
// decrease, t = its time), read with RateLimitTAT by one script; expires
// once the rate has recovered (ratelimit.Config.Recovery, 30 s, plus 1 s).
// Tag {<limiter key>}.
func RateLimitThrottle(prefix, limiterKey string) string { return prefix + tag(limiterKey) + ":429" }

// RateLimitWake is the come-back queue of a rate limit: the slot (seconds
// since 2017-01-01, a string) given to the last caller the limiter turned
// away, so that the next is told to come back one slot later. Written and
// read with RateLimitTAT by the reserve script; deleted when a slot went
// unused; expires at that slot. Same tag as RateLimitTAT.
func RateLimitWake(prefix, limiterKey string) string { return prefix + tag(limiterKey) + ":wake" }

// RateLimitAPI is the limiter key of one API in one workspace,
// <workspace>:<api> (e.g. "eu:track"), the part of RateLimitTAT and
// RateLimitThrottle between the braces. The workspace is as given, not
// Workspace's: the default workspace's is ":track" (see the package doc).
func RateLimitAPI(workspace, api string) string { return workspace + ":" + api }

// RateLimitBroadcast is the limiter key of one API-triggered broadcast in a
// workspace, <workspace>:broadcast:<id>; the workspace is as given, as in
// RateLimitAPI.
func RateLimitBroadcast(workspace string, broadcastID int) string {
	return workspace + ":broadcast:" + strconv.Itoa(broadcastID)
}

// IngestSeen is the ingest front door's record of a message it enqueued:
// cioq:ingest:seen:<source>:<digest>, digest being 32 hex characters of
// SHA-256 of the source and the message's id (never the id itself). A
// string ("1"), set NX by `cioq serve` (package ingest) once every task of
// the message is in Redis, and read before a message is enqueued: a
// message whose record exists is a duplicate. Expires after the ingest's
// dedupe window plus its clock-skew allowance (25 h by default), however
// long asynq keeps the tasks. No tag.
func IngestSeen(source, digest string) string {
	return "cioq:ingest:seen:" + source + ":" + digest
}

// StatusTask is a task's delivery timeline: cioq:status:t:<task id>. A
// hash: enq = the enqueue time (unix ms) of the task it describes, m = the
// task's facts (JSON: workspace, type, template, queue, trace), d = the
// delivery reference once Customer.io accepted the task ("delivery:<id>",
// "trigger:<id>"), acc = when (unix ms), n = entries recorded, e<i mod cap>
// = entry i (JSON: a failed attempt, the acceptance, the dead letter).
// Written by the worker for App API tasks (transactional sends, broadcast
// triggers) with a one-key script that replaces a record of another
// enqueue time (an idempotency key used again); read by `cioq status`,
// GET /v1/status and producer.Status. Each write sets its expiry to the
// status TTL (30 days by default). No tag.
func StatusTask(taskID string) string { return "cioq:status:t:" + taskID }

// StatusDelivery is what Customer.io reported about one delivery (or
// broadcast trigger) of a workspace: cioq:status:d:<workspace>:<ref>, ref
// being the task's delivery reference ("delivery:<id>", "trigger:<id>"). A
// hash: task, type, tmpl, acc = the task it belongs to, its type, template
// and acceptance time (unix ms), written by the worker at acceptance;
// ev:<event id> = one event (a short JSON array), set only if absent, so
// a repeated event_id changes nothing; n = events kept, x = events past the
// cap and c:<metric> their count per metric (a trigger's record counts all
// its deliveries' events there), s, sid, sr, sa = the event deciding the
// state (the highest ranked), its field, rank and time; to, cid = the
// first recipient and customer id reported. Written by `cioq serve`'s reporting webhook receiver and the
// worker's fallback poll (one-key script), whichever comes first: events
// that arrive before the acceptance are kept. Each write sets its expiry
// to the status TTL. No tag.
func StatusDelivery(workspace, ref string) string {
	return "cioq:status:d:" + Workspace(workspace) + ":" + ref
}

// StatusPending is the fallback poll's queue of one workspace's accepted
// deliveries without a final state: cioq:status:pending:<workspace>. A
// sorted set of delivery references scored by when (unix ms) the poll
// should next read them. The worker adds a send at acceptance when the
// poll is on; the poll claims due entries (a one-key script moving their
// score forward) and removes them at a final state or past the poll's
// horizon, as the webhook receiver does at a final state. No expiry:
// entries leave one by one. No tag.
func StatusPending(workspace string) string {
	return "cioq:status:pending:" + Workspace(workspace)
}

// StatusEventSeen remembers a reporting webhook event that names no
// delivery: cioq:status:e:<workspace>:<digest>, digest being 32 hex
// characters of SHA-256 of the event id. A string ("1"), set NX by the
// receiver: a repeat is dropped. Expires after the status TTL. No tag.
func StatusEventSeen(workspace, digest string) string {
	return "cioq:status:e:" + Workspace(workspace) + ":" + digest
}

// StatusOther keeps the newest reporting webhook events of a workspace that
// name no delivery cioq can link (a customer subscribing, a body that is
// not an event): cioq:status:other:<workspace>. A list of JSON entries,
// newest first, trimmed to 1,000 by the receiver (LPUSH, LTRIM), which sets
// its expiry to the status TTL. No tag.
func StatusOther(workspace string) string {
	return "cioq:status:other:" + Workspace(workspace)
}

// TestRedisNextDB is the test support's database counter:
// cioq:testredis:next-db, in database 0 of the test Redis only. A string
// (integer), INCRed by every test that reserves a database. No expiry. No
// tag.
const TestRedisNextDB = "cioq:testredis:next-db"

// asynqQueue is the prefix of every key of an asynq queue, with asynq's
// {<queue>} tag.
func asynqQueue(queue string) string { return "asynq:" + tag(queue) + ":" }

// AsynqQueues is asynq's set of every queue's name: asynq:queues. Written
// by asynq when a task is enqueued; the worker reads it to find queues
// other processes serve. No tag (asynq's).
const AsynqQueues = "asynq:queues"

// AsynqActive is asynq's list of a queue's task ids being processed:
// asynq:{<queue>}:active. The stuck-task check reads it and removes a
// stuck id from it (asynq's).
func AsynqActive(queue string) string { return asynqQueue(queue) + "active" }

// AsynqLease is asynq's sorted set of a queue's active task ids by lease
// expiry (unix s): asynq:{<queue>}:lease. The stuck-task check reads it,
// removes a stuck id and gives a leaseless one an expired lease; the
// recovery pull reads it (asynq's).
func AsynqLease(queue string) string { return asynqQueue(queue) + "lease" }

// AsynqRetry is asynq's sorted set of a queue's task ids waiting for a
// retry, by retry time (unix s): asynq:{<queue>}:retry. The recovery pull
// moves entries forward in it (ZADD XX; asynq's).
func AsynqRetry(queue string) string { return asynqQueue(queue) + "retry" }

// AsynqArchived is asynq's sorted set of a queue's archived task ids, by
// archive time (unix s): asynq:{<queue>}:archived. The reconciler reads it;
// the dead-letter store removes an archived task from it (asynq's).
func AsynqArchived(queue string) string { return asynqQueue(queue) + "archived" }

// AsynqScheduled is asynq's sorted set of a queue's task ids scheduled
// for later, by process time (unix s): asynq:{<queue>}:scheduled. The
// worker counts it to find queue shards that still hold tasks (asynq's).
func AsynqScheduled(queue string) string { return asynqQueue(queue) + "scheduled" }

// AsynqPending is asynq's list of a queue's task ids ready to run:
// asynq:{<queue>}:pending (asynq's; cioq's tests use it).
func AsynqPending(queue string) string { return asynqQueue(queue) + "pending" }

// AsynqPaused is asynq's marker of a paused queue: asynq:{<queue>}:paused
// (a string; present = paused). The worker's dequeue script checks it, as
// asynq's own does (asynq's).
func AsynqPaused(queue string) string { return asynqQueue(queue) + "paused" }

// AsynqTaskPrefix is the prefix of asynq's task hashes of a queue,
// asynq:{<queue>}:t: (AsynqTask without the id), which asynq's dequeue
// script takes as an argument (asynq's).
func AsynqTaskPrefix(queue string) string { return asynqQueue(queue) + "t:" }

// AsynqTask is asynq's hash of one task: asynq:{<queue>}:t:<task id> (msg =
// the encoded task message, state = pending, active, scheduled, retry,
// aggregating, completed or archived, ...). The stuck-task check reads its
// msg and deletes the hash of a stuck task; the ordering gate reads the
// state of a person's earlier tasks (asynq's).
func AsynqTask(queue, taskID string) string { return asynqQueue(queue) + "t:" + taskID }
