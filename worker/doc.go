// Package worker delivers cioq tasks from Redis (asynq) to Customer.io.
//
// [New] builds an asynq server on the queues (critical=6, default=3, bulk=1
// unless configured), polling idle queues every 50 ms and moving due
// retries every second. Each task is decoded and validated, checked for
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
// record is written before asynq is told to archive the task.
//
// Retried (the task stays in Redis):
//   - 408, 5xx, network errors and timeouts: exponential backoff with full
//     jitter (1 s doubling to 10 min by default); a Retry-After wins. Each
//     spends one retry of the task's budget (MaxRetry). When the budget runs
//     out before the task's retry window (24 h since enqueued_at) has
//     passed, the task keeps retrying without spending it until it has.
//   - 429: after Retry-After (or the backoff), never spending the budget.
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
//     expired more than 30 s ago) retries the task; this counts as a retry.
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
//   - exhausted: transient failures past both the retry budget and the
//     retry window; or a task asynq archived by itself (e.g. its worker
//     crashed on the last allowed attempt, or MaxRetry was 0): a reconciler
//     run at start and every ReconcileInterval copies those from asynq's
//     archive with asynq's last error.
//   - config: the task's workspace is unknown to the worker and its retry
//     window passed while it was kept; Customer.io is not called.
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
