// Package producer is the library applications import to hand Customer.io
// calls to cioq's durable queue instead of making them inline.
//
//	c, err := producer.New(os.Getenv("REDIS_URL"))
//	...
//	r, err := c.SendEmail(ctx, tasks.SendEmail{
//		SendOptions: customerio.SendOptions{TransactionalMessageID: "password_reset",
//			Identifiers: &customerio.Identifiers{ID: "user-123"}},
//		To: "ada@example.com",
//	}, producer.ExpiresIn(time.Hour), producer.IdempotencyKey("reset:"+tokenID))
//
// Every method validates its payload with the customerio client's own rules
// before anything reaches Redis (a *ValidationError naming the field), puts
// the task in its type's queue (tasks.QueueCritical for sends,
// tasks.QueueDefault for people, events, objects and Pipelines,
// tasks.QueueBulk for broadcasts and segments) with the type's retry budget
// and timeout, and returns a Receipt once Redis holds the task.
//
// # Delivery guarantees the producer sets up
//
//   - Track events without an id, and Pipelines messages without a
//     messageId, get a ULID at enqueue time, so a delivery retried after a
//     timeout is dropped by Customer.io as a repeat.
//   - IdempotencyKey makes a keyed hash of the key the asynq task id
//     (HMAC-SHA256 under the deployment's secret: WithKeySecret, or one
//     generated in Redis on first use that every client shares): the same
//     key again, from any process, enqueues nothing and returns the first
//     task's receipt with Duplicate set. The key itself stays out of task
//     ids, so out of logs and receipts. A keyed task is retained for the
//     idempotency window (WithIdempotencyWindow, default 24 h) after it
//     completes, so the key keeps deduplicating; this costs one extra Redis
//     read only when a duplicate is refused, and one per client to read the
//     secret.
//   - ExpiresAt/ExpiresIn mark a send stale: past it the worker
//     dead-letters it as expired instead of sending it late. Timing reads
//     a delay and an expiry written as text ("15m", "1h", an ISO-8601
//     moment) with the rules the CLI and POST /v1/tasks apply.
//   - WithOrdering stamps each person-scoped task with the person's next
//     sequence number and records which task id holds it, so workers with
//     ordering deliver a person's tasks in enqueue order (each waits until
//     every earlier one finished or left the queue). A duplicate of an
//     idempotency key takes no place in the sequence.
//   - WithReplicas(n, timeout) makes an enqueue return only once n Redis
//     replicas hold the task (WAIT on the write's connection), so a
//     Sentinel or Cluster failover cannot lose an acknowledged task; an
//     enqueue fewer replicas confirmed fails with ErrNotReplicated (the
//     task may exist: retry it under its IdempotencyKey).
//   - WithShards(n) splits each queue into n asynq queues whose hash slots
//     fall on different Redis Cluster masters; a person's tasks share one
//     shard, a keyed task goes to its key's, others take turns. Workers
//     take the same n (worker.Config.Shards).
//   - Workspace names the Customer.io workspace whose credentials deliver
//     the task. A client created with Workspaces (the workers' workspace
//     names) refuses another name with an *UnknownWorkspaceError.
//   - WithContracts checks every task against the workspace's contracts
//     (package contracts): a send naming a template and missing one of its
//     variables, an attribute of the wrong declared type, a millisecond
//     event timestamp are refused naming the field, or coerced by policy
//     ("1000" → 1000), before anything reaches Redis.
//
// EnqueueRaw takes a task type and a JSON payload (for the HTTP ingest and
// the CLI); it validates exactly like the typed methods (a cio:batch
// payload operation by operation) and keeps fields it does not know.
//
// EnqueueBatch puts many batchable operations in a few cio:batch tasks (up
// to BatchSize operations each), so a burst costs a few Redis round trips
// and the worker sends each task as about one Track v2 batch request; see
// there for how idempotency keys and WithOrdering apply.
package producer
