// Package worker delivers cioq tasks from Redis (asynq) to Customer.io.
//
// [New] builds an asynq server on the queues (critical=6, default=3, bulk=1
// unless configured), polling idle queues every 20 ms and moving due
// retries every second. A worker on one Redis server (or Sentinel) fetches
// up to 8 tasks in one round trip whichever queue holds them (at most its
// concurrency, 64 KiB of messages), each leased as asynq leases it: asynq
// alone fetches one task at a time and tries the queues one round trip
// each, in a weighted random order (see dequeue.go). Each task is decoded and validated, checked for
// expiry, passed through the configured [Config.Middleware] and delivered
// through its type's route in one delivery table (routes.go: the Customer.io
// call, and the Track v2 operation of a batchable type) with the
// workspace's *customerio.Client, under the API its tasks.Spec names
// (Track, App, Pipelines: credentials, rate limit, send records). One function, the retry policy, turns the
// outcome into success, a retry or a dead letter, logs the decision with
// its reason (type, task id, queue, class, status, attempt; never payloads,
// identifiers or keys) and tells the [Observer].
//
// # Delivery semantics
//
// At least once. A task leaves Redis only when Customer.io accepted it or
// when it was written to the dead-letter store ([DeadLetters]), and that
// record is written before asynq archives the task. A dead letter means
// "not delivered": the store holds a record only for a task that left
// asynq's queues undelivered, never for one that is pending, scheduled or
// retrying.
//
// The worker decides every task's fate; asynq never dead-letters a task on
// its own. The producer enqueues each task with asynq's MaxRetry out of
// reach (tasks.AsynqMaxRetry) and the task's retry budget in its
// tasks.HeaderRetryBudget header, which the worker keeps. Each attempt runs
// under a deadline of its own, a margin ahead of asynq's (a fifth of the
// task's timeout, at most 2 s), so its decision is recorded and reaches
// asynq before asynq acts on the deadline itself. When asynq acts first
// anyway (the decision took longer than the margin, the worker lost its
// lease), asynq retries the task and no dead letter is left for it: the
// worker writes none once asynq stopped waiting for the attempt, and
// asynq's error handler, which runs before asynq retries the task, removes
// one written in the meantime. Deleting or purging a dead letter deletes
// its task from asynq's archive only if it is archived there: a live task
// of the same id is never deleted.
//
// Accepted means a 2xx: one whose body then breaks off or is not the
// documented JSON is still a delivery (a send is recorded as sent, without
// its delivery id), never a retry or a dead letter.
//
// Batched tasks (see [Batching]) each keep their own fate. A 207 whose
// errors name items by batch_index dead-letters those tasks and delivers
// the others. An answer that names no item (an error without a
// batch_index or with one past the batch, a 207 without a readable errors
// list, a 400 or 413 refusing the whole batch) acknowledges none and blames
// none: every task of the batch is retried as after a transient failure,
// marked in its attempt log to go alone from then on (as without
// batching), so that a task Customer.io refuses is dead-lettered by itself.
//
// A multi-operation task (cio:batch, tasks.Batch) carries up to 1,000
// batchable operations of one workspace; each has its own fate, as if it
// were a task of its own (see multi.go): an operation refused for good
// becomes a dead letter of its own type with its own payload (id
// ItemID(task, index)), the others are delivered; a transient failure
// retries the task, which then sends only the operations not yet settled
// (its progress record, keys.BatchProgress); an operation in a batch whose
// failure names none is sent alone from then on; one too large for a batch
// item goes alone at once; once the task's budget and window are used up,
// the operations left are dead-lettered one by one as exhausted. A few
// cio:batch tasks are delivered at once (one per batch request in flight);
// the dequeue hook lets asynq hold only two more than that, whatever the
// concurrency (dequeue.go), so a queue of them does not fill the worker's
// memory with payloads waiting for a slot.
//
// Retried (the task stays in Redis):
//   - 408, 5xx, network errors and timeouts: exponential backoff with full
//     jitter (1 s doubling to 10 min by default); a Retry-After wins. Each
//     spends one retry of the task's budget (MaxRetry retries, 297 by
//     default: MaxRetry+1 attempts). When the budget runs out before the
//     task's retry window (24 h since enqueued_at) has passed, the task
//     keeps retrying without spending it until it has; the backoff keeps
//     growing (asynq's retried count, which it follows, still counts these
//     failures). Once both are used up, the next transient failure
//     dead-letters it as exhausted.
//   - 429: after Retry-After (or the backoff), never spending the budget,
//     and never dead-lettered, however the budget was used up.
//     asynq stores retry times in whole seconds, truncating; delays are
//     rounded up so a retry is never earlier than Retry-After.
//   - 401, or no credentials for the task's API in its workspace (or an
//     unknown workspace): a configuration problem, not the task's fault.
//     Retried every AuthRetryDelay (30 s) without spending the budget;
//     [Worker.Health] fails, naming the workspace and API, while such a task
//     is waiting (until a call for that workspace and API succeeds, or the
//     kept tasks are gone: see [Worker.Checks]). Logged once a minute, not
//     per task. A task whose workspace is unknown to the worker is
//     dead-lettered as config once its retry window has passed.
//   - Credentials are also probed at Start and every ProbeInterval with a
//     read that needs no person (Track GET /api/v1/accounts/region, App GET
//     /v1/transactional), so a wrong key fails Health before any task does.
//   - After an outage: the first success on a workspace and API after a run
//     of transient failures (seen by any process; recorded in Redis) pulls
//     that workspace and API's retrying tasks forward, spread at the rate
//     limiter's pace, instead of each waiting out its own backoff; tasks
//     throttled by a 429 keep their Retry-After ([Recovery]).
//   - A handler panic: recovered and treated as a transient failure.
//   - A worker that crashes mid-task: asynq's lease (30 s, hard-coded)
//     expires and another worker's recoverer (every minute, for leases
//     expired more than 30 s ago) retries the task; this spends a retry
//     like a transient failure, but never dead-letters the task by itself
//     (a task that kills its worker on every attempt is retried, with the
//     backoff, until someone deletes it).
//   - Shutdown: in-flight tasks get ShutdownTimeout to finish; asynq puts
//     the rest back in their queue without spending a retry.
//
// Dead-lettered (class in the store; asynq's archive keeps a copy for the
// dashboard):
//   - permanent: other 4xx (400, 403, 404, 413, 422, ...), at once, with the
//     status and Customer.io's message.
//   - invalid: bytes that do not decode, an unknown type, a payload that
//     does not validate, or one the contracts in force refuse
//     ([Config.Contracts]: a send missing its template's variable, an
//     attribute of the wrong type, with the contract's reason); Customer.io
//     is not called. Also a task asynq itself
//     can neither run nor recover (its asynq message does not decode, or its
//     id has no task data): a check every StuckCheckInterval (one process at
//     a time) moves such an entry out of asynq's active list once its lease
//     has been expired for a lease period (30 s), keeping what could be read
//     of it; an entry with a live lease is never touched.
//   - expired: a send past its expires_at; never sent.
//   - exhausted: a transient failure once both the retry budget and the
//     retry window are used up.
//   - config: the task's workspace is unknown to the worker and its retry
//     window passed while it was kept; Customer.io is not called.
//
// Tasks without a retry budget header (enqueued by an older producer, with
// the budget as asynq's MaxRetry, or directly with an asynq client) still
// work, by the rules that held when they were enqueued: their budget is
// asynq's MaxRetry, and asynq archives them by itself once their retried
// count has reached it and an attempt fails in any way. So the worker stops
// spending their budget one retry early (MaxRetry attempts, at least 1),
// keeping asynq's last retry for a 429, a 401 or a crash; dead-letters any
// failure (as exhausted) once asynq's count is used up; and when asynq
// archives one at a deadline it reached first, asynq's error handler records
// it as exhausted before the archive (should that attempt still deliver the
// task, the record and the archive entry are removed again). Only one
// whose worker crashed on its last attempt reaches asynq's archive
// unrecorded (asynq's recoverer archives it without calling the worker): a
// reconciler, run at start and every ReconcileInterval as a safety net,
// copies every archived task the store lacks, with asynq's last error. It
// reads each queue's archive as one snapshot of ids, so asynq trimming the
// oldest entries meanwhile does not make it skip others.
//
// # Anonymous merges
//
// Customer.io associates an anonymous event with a person only when it
// receives it within five minutes of the identify that carries its
// anonymous_id. Once the worker delivered such a merge it remembers the
// anonymous id's person (Config.AnonymousMergeTTL, 30 days), and delivers
// a later anonymous event of that visitor as the person's event, with the
// same id ([AnonymousRescueObserver] counts them).
//
// A dead letter's history lists every failed attempt, not only the last
// error asynq keeps: each retried failure (time, class, status, attempt
// number, a short reason) is written to a per-task attempt log in Redis as
// it happens (the newest [AttemptHistoryCap], expiring [AttemptHistoryTTL]
// after the latest failure, so a task that later succeeds costs its
// success path nothing), and moved into the record when the task is
// dead-lettered. [DeadLetter.Attempts] counts the attempts that spent the
// retry budget, out of [DeadLetter.AttemptsAllowed].
//
// asynq's archive keeps at most 9,999 tasks per queue and 90 days, dropping
// the oldest silently; the store keeps every record until [DeadLetters.Delete],
// [DeadLetters.Purge] or [DeadLetters.Retry] (which re-enqueues a new task
// with a full budget and a new retry window before removing the record).
// Retry is idempotent: the new task's id is derived from the record
// ([RetryTaskID]), so a second retry of the same record (after one that
// enqueued and then failed to remove the record, or at the same moment)
// finds the task in Redis, enqueues nothing and removes the record
// ([AlreadyRetriedError]); a transactional send's record (below) stops a
// second send even once that task has left Redis.
//
// # Per-person ordering
//
// In the workspaces [Ordering] lists, a person's tasks stamped by
// producer.WithOrdering reach Customer.io in the order of their numbers:
// task n is delivered only once every earlier number is settled, and
// waits (rescheduled without spending its budget, other people unblocked)
// until then. A number is settled when it is recorded as finished (the
// task was delivered or dead-lettered by an ordered worker), when no task
// holds it (its enqueue was a duplicate of an idempotency key), or when
// the task holding it has left asynq's queues otherwise: deleted,
// archived, or completed elsewhere. The producer records which task id
// holds each number, and the worker looks each of those tasks up in asynq
// (its state: pending, active, scheduled, retry or aggregating means still
// to come), so a predecessor that is retrying, kept for missing
// credentials, scheduled for later, or active on a worker that crashed
// (until asynq's recoverer retries it, 60 to 120 s later) is waited for
// however long that takes, and one that is gone is skipped at once
// (logged, OrderingWait with gaveUp). A task whose predecessor is running
// waits in the worker (up to Ordering.ActiveWait) and goes as soon as it
// is done (a predecessor finishing in the same process wakes it; others
// are looked at every 20 ms); one rescheduled to wait is run at once by
// its predecessor's finish, not after its delay. The task that recorded the highest
// finished number is looked up too: it records that before asynq
// acknowledges it, and a crash in between delivers it again, before its
// successor.
//
// Time decides only what Redis cannot tell: a number is taken just before
// its task is enqueued (with Redis Cluster the two cannot be one step), so
// a number whose task is not in Redis may be on its way; it is skipped
// Ordering.MaxWait (30 s) after it was taken. So are, all at once, numbers
// of which no record exists (stamped by an earlier version, or lost with an
// evicted key) once the person's sequence has not moved for MaxWait.
//
// The records live 7 days after their last use (each stamp, each gate run,
// each finished task), so a person whose tasks only wait keeps them. The
// highest finished number is kept twice (cioq:{cioq:seq:<ws>:<key>}:state
// and cioq:done:<ws>:<key>), so losing one key loses no progress; a
// counter that is lost while the state lives restarts above it.
// [DeadLetters.Retry] gives a person's task a new number at the end of the
// person's sequence: it is delivered after the person's tasks enqueued
// before the retry (its old number was finished when it was
// dead-lettered).
//
// # Duplicates
//
// Track events and Pipelines messages carry an id (the producer sets a
// ULID; without one the worker derives one from the task id with
// [EventID]), so Customer.io drops a repeat. Identify, devices, objects and
// segment changes are idempotent. Transactional sends and broadcast
// triggers are not: after Customer.io accepts one, the worker records it in
// Redis (cioq:sent:<task id>:<enqueued_at>, the delivery or trigger id,
// SendDedupeTTL = 7 days) before acknowledging the task, and a later
// attempt of the same task that finds the record succeeds without calling
// Customer.io, even if the send has expired meanwhile. (The enqueue time
// tells a retry from a new task that reuses an idempotency key after the
// old one left Redis.) The
// remaining duplicate window is the gap between Customer.io accepting the
// send and that record being written: a crash, a kill or a Redis outage in
// those milliseconds, or a request that timed out on our side before
// Customer.io's status arrived although it accepted the send, sends the
// message again on the retry. Once a 2xx status has arrived the send is
// recorded, whatever happens to its body.
//
// # Replicas
//
// Redis answers a write once its master has it; replicas get it a moment
// later. A Sentinel or Cluster failover in that moment promotes a replica
// without the write. With Config.Replicas = n the worker's writes whose
// loss costs a duplicate or a loss wait until n replicas have them (Redis
// WAIT on the connection that made the write, at most
// Config.ReplicaTimeout): the send record (lost, the retry after a
// failover would send the message again) and the dead letter (with
// [DeadLetters.Retry]'s re-enqueue and the removals). Before delivering a
// task the worker also confirms that the replicas hold it (a small write
// in the task's queue slot, whose WAIT covers the task): a task read from
// a master cut off from its replicas, an old master during a failover, is
// retried later instead (without spending its budget), because the
// failover drops it and its producer, told the enqueue was not confirmed,
// enqueues it again; delivering both would deliver it twice. A dead letter fewer
// replicas confirmed fails the attempt, so the task is retried and
// dead-lettered again (the record is merged by id); a send record fewer
// replicas confirmed is logged and the task acknowledged, since writing
// it again would not confirm it sooner. asynq's own bookkeeping (a task
// done, archived, retried) does not wait: if a failover loses it, the task
// runs again, which the event ids and the send record make harmless.
// Producers have the same option (producer.WithReplicas).
//
// # Queue shards
//
// On a Redis Cluster each asynq queue lives in one hash slot, on one
// master. Config.Shards = n (CIOQ_QUEUE_SHARDS) serves each logical queue
// as the n asynq queues package internal/shard names, whose slots fall
// on different masters, each with the logical queue's weight; producers
// give the same n (producer.WithShards). The worker also serves the
// queues of another n that still hold tasks when it starts, so changing
// n loses nothing; [Worker.Unserved] names those that reached an old name
// later, and the reconciler logs them (see shards.go). Dead letters keep
// the asynq queue; [Filter].Queue takes a logical queue for all its
// shards, and [DeadLetters.SetShards] makes a retry go to the logical
// queue's shard under the current n.
package worker
