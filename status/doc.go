// Package status follows each task past Customer.io's 2xx: accepted is not
// delivered. It keeps one timeline per task in Redis (enqueued, every
// failed attempt, accepted with Customer.io's delivery id, then what
// Customer.io reports: sent, delivered, opened, clicked, bounced, failed
// with its reason, ..., or dead-lettered), receives Customer.io's
// reporting webhooks to fill it in, and reads it back.
//
// # Writers
//
// The worker (package worker) writes an App API task's entries (a
// transactional send, a broadcast trigger) with [Store.Attempt],
// [Store.Accepted] and [Store.DeadLettered]: one Redis call per failed
// attempt, acceptance or dead letter, nothing for other task types.
// [Store.Accepted] also links the delivery ("delivery:<id>",
// "trigger:<id>") to the task, which is how reporting webhook events, keyed
// by delivery_id, find it. The events of a broadcast's messages name their
// trigger (trigger_id) and join the trigger task's timeline instead: one
// timeline for everything one trigger sent, its state the most serious
// outcome among them, its counts per metric.
//
// [Receiver] is the http.Handler of Customer.io's reporting webhooks
// (`cioq serve` mounts it at [WebhookPath] and WebhookPath/{workspace}). It
// verifies X-CIO-Signature (hex HMAC-SHA256 with the workspace's signing
// key of "v0:" + X-CIO-Timestamp + ":" + the raw body, compared in
// constant time), refuses a timestamp more than 5 minutes away, answers
// every unauthenticated request the same 401 (an unknown workspace looks
// like a bad signature), and answers 200 once the event is in Redis: one
// script call. An event_id seen before changes nothing (a retried
// webhook), events of one delivery arriving in any order make one
// timeline (the state is decided by rank, not arrival), events arriving
// before the worker recorded the acceptance wait for it, and events naming
// no delivery, or of a metric cioq does not know, are kept too.
//
// The worker's fallback poll, when reporting webhooks are not configured,
// reads GET /v1/messages/{id} for accepted sends without a final state, and
// GET /v1/campaigns/{broadcast}/triggers/{trigger} for accepted triggers
// until processed ([KindProcessed]), and records what it finds with
// [Store.RecordEvent] (source "poll").
//
// # Readers
//
// [Store.Lookup] returns a task's [Timeline]: its record, its delivery's
// events and asynq's record of the task while asynq has one (for tasks of
// the other APIs, which Customer.io reports nothing about, that is all).
// `cioq status`, serve's GET /v1/status/{task_id} and producer.Status read
// it. Person data of reported events (recipient, customer id, clicked
// link, email addresses in reasons) is removed unless
// LookupOptions.ShowIdentifiers asks for it.
//
// # Cost
//
// Records expire [DefaultTTL] (30 days) after their latest change. A
// task's record holds at most [EntryCap] entries and its delivery's at
// most [EventCap] events (the state-deciding event is kept whatever the
// count). Measured with MEMORY USAGE on Redis 7 (TestRecordSize), a send
// that was accepted, sent and delivered costs about 820 bytes of Redis
// memory for its two records, and every further event about 85 bytes (a
// failure's reason or a clicked link more); a failed attempt adds about
// 150. A million sends a day kept 30 days is about 25 GB: lower the TTL
// (CIOQ_STATUS_TTL) to match your volume.
//
// The Redis keys are in internal/keys (StatusTask, StatusDelivery,
// StatusPending, StatusEventSeen, StatusOther).
package status
