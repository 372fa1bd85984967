// Package worker delivers cioq tasks from Redis (asynq) to Customer.io.
//
// [New] builds an asynq server on the queues (critical=6, default=3, bulk=1
// unless configured), polling idle queues every 50 ms and moving due
// retries every second. Each task is decoded and validated, checked for
// expiry, passed through the configured [Config.Middleware] and delivered by
// the handler of its API family (Track, App, Pipelines) with the
// workspace's *customerio.Client. One function, the retry policy, turns the
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
// one written in the meantime. Deleting or
// purging a dead letter deletes its task from asynq's archive only if it is
// archived there: a live task of the same id is never deleted.
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
//   - invalid: bytes that do not decode, an unknown type, or a payload that
//     does not validate; Customer.io is not called. Also a task asynq itself
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
// those milliseconds, or a request that timed out on our side after
// Customer.io accepted it, sends the message again on the retry.
package worker
