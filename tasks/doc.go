// Package tasks is the contract between cioq's producers and its workers:
// the task type names, one payload struct per Customer.io operation, their
// validation, the default enqueue options of each type, and the versioned
// encoding of a task's bytes. It knows nothing about Redis or HTTP.
//
// # Payloads
//
// A payload's JSON uses Customer.io's own field names; the transactional
// sends and the Pipelines messages are exactly Customer.io's request bodies
// (named types of the customerio request structs). Every payload implements
// [Payload]: TaskType names its type and Validate applies the very rules the
// customerio client applies before sending (it calls the customerio
// validation functions), so a task Customer.io would refuse is refused at
// enqueue time instead of three retries later. Validation errors are
// *customerio.ValidationError values naming the field, never its value.
//
// # Encoding
//
// The bytes of an asynq task are an envelope around the payload:
//
//	{"v":1,"workspace":"eu","expires_at":1767225600,"enqueued_at":1767222000123,"payload":{...}}
//
// v is the envelope version ([Version]); workspace (optional, "" = default)
// names the Customer.io workspace whose credentials deliver the task;
// expires_at (optional, unix seconds) is when a send becomes stale and is
// dead-lettered as expired instead of sent; enqueued_at (unix milliseconds)
// starts the retry window; order_key and seq (optional) place the task in
// a person's sequence; idempotency_key (optional) is the producer's
// idempotency key as given, kept for the views that show payloads (the task
// id is a keyed hash of it, and every view that redacts payloads redacts
// it too). [Decode] keeps the payload's bytes as written
// (unknown fields included) and unknown envelope fields, so a task written
// by today's producer is read by tomorrow's worker and re-encoding loses
// nothing. A JSON object with neither "v" nor "payload" is read as a bare
// version 1 payload, so any language can enqueue a plain Customer.io body
// with its asynq client. A newer version, an unknown type or malformed JSON
// is a *[DecodeError] (errors.Is: [ErrUnsupportedVersion], [ErrUnknownType],
// [ErrMalformed]) whose text never quotes the bytes. A value of the wrong
// JSON type is named by its JSON path as written, with what was expected
// and what was found:
//
//	tasks: decode cio:track: invalid field "timestamp": must be an integer, got 1.5
//	tasks: decode cio:broadcast_trigger: invalid field "per_user_data[1].id": must be a string, got a number
//
// (a number is shown only where a number is expected; strings never are:
// see [DescribeJSONError]).
//
// # Text is UTF-8
//
// Every string of a task, keys included, must be valid UTF-8. encoding/json
// silently replaces invalid bytes (and lone surrogate escapes such as
// \ud800) by U+FFFD, so two different invalid identifiers would reach
// Customer.io as one person. [Encode], [MarshalPayload], [EncodeRaw] and
// [Decode] refuse them instead, naming the field ("identifiers.id",
// "data.blob"); [CheckUTF8] is the same check for any JSON text, which the
// CLI and the ingest front door run on what they receive.
//
// # Queues, retries, expiry
//
// Transactional sends go to [QueueCritical]; people, events, objects,
// devices and Pipelines messages to [QueueDefault]; broadcasts and manual
// segment changes to [QueueBulk]. Transient failures are retried for at least
// [DefaultRetryWindow] (24 h) before a task is dead-lettered: see
// [DefaultMaxRetry] for how the retry budget was sized. Each attempt is
// bounded by [DefaultTimeout]. [Lookup] and [Types] give each type's
// [Spec]: its Customer.io API, whether its Track v2 operation can be
// batched, and its [Defaults] (queue, retry budget, timeout, window,
// expiry).
//
// # One place per task type
//
// A payload answers what producers and workers need to know about its
// content through small optional interfaces, so neither switches on
// payload types: [PersonScoped] names the person a Track task acts on
// (the producer's per-person ordering), [Deduplicated] gives the id by
// which Customer.io drops repeats (the producer fills a missing one with
// a ULID); [Templated], [Attributed] and [Timestamped] give the contracts
// (package contracts) a send's template and message_data, a person's or
// object's attributes and an event's timestamp; [AnonymousMerger] and
// [AnonymousActor] tell the worker which tasks merge an anonymous visitor
// and which events may be an anonymous visitor's. Adding a task type is one payload struct in its API family's
// file (sends.go, people.go, objects.go, broadcasts.go, segments.go,
// cdp.go), one entry in the Spec table (registry.go), its example below,
// and its route in the worker's delivery table (worker/routes.go: its
// Customer.io call, and its Track v2 operation when batchable); the tests
// of tasks and worker fail until each is there.
//
// # Task types and example payloads
//
// Each section below is a task type and an example payload; the package
// tests decode and validate every example.
//
// # cio:send_email
//
// Transactional email ([SendEmail], POST /v1/send/email): to is required;
// transactional_message_id names a template (a number or a trigger name).
//
//	{"transactional_message_id": "password_reset", "to": "ada@example.com",
//	 "identifiers": {"id": "user-123"},
//	 "message_data": {"reset_link": "https://app.example.com/reset?token=abc123", "expiry_hours": 1}}
//
// # cio:send_push
//
// Transactional push ([SendPush], POST /v1/send/push): identifiers and
// transactional_message_id are required.
//
//	{"transactional_message_id": 12, "identifiers": {"id": "user-123"},
//	 "title": "Your order shipped", "message": "ORD-12345 is on its way"}
//
// # cio:send_sms
//
// Transactional SMS ([SendSMS], POST /v1/send/sms).
//
//	{"transactional_message_id": "login_code", "identifiers": {"id": "user-123"},
//	 "to": "+15555550100", "message_data": {"code": "492817"}}
//
// # cio:send_in_app
//
// Transactional in-app message ([SendInApp], POST /v1/send/in_app).
//
//	{"transactional_message_id": 7, "identifiers": {"email": "ada@example.com"}}
//
// # cio:send_inbox
//
// Transactional inbox message ([SendInbox], POST /v1/send/inbox_message).
//
//	{"transactional_message_id": 8, "identifiers": {"cio_id": "a3000001"},
//	 "message_data": {"invoice": "INV-2024-001"}}
//
// # cio:send_whatsapp
//
// Transactional WhatsApp message ([SendWhatsApp], POST /v1/send/whatsapp);
// tracked turns link tracking on or off for this send.
//
//	{"transactional_message_id": "order_update", "identifiers": {"id": "user-123"},
//	 "to": "+15555550100", "tracked": false}
//
// # cio:identify
//
// Create or update a person ([Identify], PUT /api/v1/customers/{id});
// identifiers holds exactly one of id, email, cio_id, or phone (E.164, like
// "+15555550100"). A person named by phone has no Track v1 address: their
// identify, events, devices, deletes, suppressions and relationships are
// delivered as Track v2 operations only, each within one operation's
// 32,000 bytes; merges and transactional sends take no phone. Attributes
// that drive segments (revenue, order count, churn risk) are plain
// attributes.
//
//	{"identifiers": {"id": "user-123"},
//	 "attributes": {"email": "ada@example.com", "total_revenue": 1250.5, "order_count": 12,
//	                "churn_risk_score": 0.2, "premium_features_used": true}}
//
// # cio:track
//
// An event, page view ("type": "page", name = URL or path) or screen view
// ("type": "screen") of a person ([Track], POST
// /api/v1/customers/{id}/events). id is a ULID; the producer assigns one
// when it is missing, so Customer.io drops repeats. timestamp is unix
// seconds and defaults to the time Customer.io receives the event.
//
//	{"identifiers": {"id": "user-123"}, "name": "order_completed",
//	 "id": "01HZY8V4Q6W5M3K2J1N0P9R8S7", "timestamp": 1767222000,
//	 "data": {"order_id": "ORD-12345", "total": 59.98}}
//
// # cio:track_anonymous
//
// An event of a visitor not yet identified ([TrackAnonymous], POST
// /api/v1/events). Without anonymous_id it is an invite event and needs
// data.recipient.
//
//	{"anonymous_id": "anon-7f3a", "name": "/pricing", "type": "page",
//	 "data": {"referrer": "https://www.google.com/"}}
//
// # cio:merge_anonymous
//
// Merge on signup ([MergeAnonymous]): identify the person with the
// anonymous_id they browsed with, so Customer.io merges that anonymous
// activity (of the last 30 days) into them.
//
//	{"identifiers": {"id": "user-123"}, "anonymous_id": "anon-7f3a",
//	 "attributes": {"email": "ada@example.com", "created_at": 1767222000}}
//
// # cio:merge_people
//
// Merge two people ([MergePeople], POST /api/v1/merge_customers): the
// secondary is merged into the primary and deleted.
//
//	{"primary": {"id": "user-123"}, "secondary": {"email": "ada.old@example.com"}}
//
// # cio:delete
//
// Delete a person ([Delete], DELETE /api/v1/customers/{id}).
//
//	{"identifiers": {"id": "user-123"}}
//
// # cio:suppress
//
// Delete and suppress a person ([Suppress]).
//
//	{"identifiers": {"email": "ada@example.com"}}
//
// # cio:unsuppress
//
// Lift a suppression ([Unsuppress]).
//
//	{"identifiers": {"email": "ada@example.com"}}
//
// # cio:device_add
//
// Add or update a push device ([DeviceAdd], PUT
// /api/v1/customers/{id}/devices); platform is ios or android.
//
//	{"identifiers": {"id": "user-123"},
//	 "device": {"id": "fcm-token-abc", "platform": "android", "last_used": 1767222000,
//	            "attributes": {"app_version": "2.4.1"}}}
//
// # cio:device_delete
//
// Delete a push device ([DeviceDelete]).
//
//	{"identifiers": {"id": "user-123"}, "device": {"id": "fcm-token-abc"}}
//
// # cio:object_upsert
//
// Create or update an object such as a company ([ObjectUpsert], Track v2
// object identify). object_type_id is the object type's id as a string of
// digits and is required (no default). Every object type (and cio:relate,
// cio:unrelate) may name the object by "cio_object_id" instead of
// object_type_id and object_id: the id Customer.io gave it, which names an
// existing object only.
//
//	{"object_type_id": "1", "object_id": "acme",
//	 "attributes": {"name": "Acme Inc", "plan": "enterprise", "mrr": 4200, "employee_count": 250}}
//
// # cio:object_delete
//
// Delete an object ([ObjectDelete]).
//
//	{"object_type_id": "1", "object_id": "acme"}
//
// # cio:relate
//
// Relate a person to an object, e.g. a member of a company ([Relate], Track
// v2 add_relationships).
//
//	{"identifiers": {"id": "user-123"}, "object_type_id": "1", "object_id": "acme",
//	 "relationship_attributes": {"role": "admin"}}
//
// # cio:unrelate
//
// Remove a person's relationship to an object ([Unrelate]).
//
//	{"identifiers": {"id": "user-123"}, "object_type_id": "1", "object_id": "acme"}
//
// # cio:broadcast_trigger
//
// Trigger an API-triggered broadcast ([BroadcastTrigger], POST
// /v1/campaigns/{broadcast_id}/triggers): broadcast_id next to Customer.io's
// trigger body (data and at most one recipient shape).
//
//	{"broadcast_id": 42, "data": {"headline": "Spring sale"},
//	 "recipients": {"segment": {"id": 7}}}
//
// # cio:segment_add
//
// Add people to a manual segment ([SegmentAdd]); id_type is id (default),
// email or cio_id. Lists over 1000 ids are split by the worker.
//
//	{"segment_id": 7, "ids": ["user-123", "user-456"], "id_type": "id"}
//
// # cio:segment_remove
//
// Remove people from a manual segment ([SegmentRemove]).
//
//	{"segment_id": 7, "ids": ["ada@example.com"], "id_type": "email"}
//
// # cio:form_submit
//
// Submit a form ([FormSubmit]): string fields, exactly one of email or id
// naming the person.
//
//	{"form_id": "newsletter_signup", "data": {"email": "ada@example.com", "first_name": "Ada", "plan": "pro"}}
//
// # cio:metric
//
// Report a delivery metric ([Metric]) for a message Customer.io sent, by
// its CIO-Delivery-ID: bounced, clicked, converted, deferred, delivered,
// dropped, opened or spammed. Push opens and deliveries reported by a
// mobile backend use it too (the older /push/events endpoint is
// deprecated in favour of this one).
//
//	{"delivery_id": "RPILAgABAWnlyCDs4_Cuqzu8Ti4S", "metric": "opened", "timestamp": 1767222000}
//
// # cio:batch
//
// Many batchable operations of one workspace in one task ([Batch]): each
// an operation type (identify, track, merges, delete, suppress, devices,
// objects, relationships) and its payload, as its own task would carry
// it. The worker delivers them in Track v2 batch requests, each
// operation with its own fate (an operation Customer.io refuses becomes a
// dead letter of its own type). producer.EnqueueBatch fills these.
//
//	{"operations": [
//	  {"type": "cio:identify", "payload": {"identifiers": {"id": "user-123"}, "attributes": {"plan": "pro"}}},
//	  {"type": "cio:track", "payload": {"identifiers": {"id": "user-123"}, "name": "upgraded",
//	   "id": "01HZY8V4Q6W5M3K2J1N0P9R8S7"}}]}
//
// # cdp:identify
//
// Pipelines identify ([CDPIdentify]): a Segment-spec message (camelCase),
// userId or anonymousId required. The producer assigns a ULID messageId
// when it is missing. Every cdp:* payload keeps the Segment fields it does
// not name (sentAt, originalTimestamp, channel, ...) and delivers them
// unchanged; see [customerio.PipelinesMessage].
//
//	{"userId": "user-123", "traits": {"email": "ada@example.com", "plan": "pro"}}
//
// # cdp:track
//
// Pipelines track ([CDPTrack]): event required.
//
//	{"userId": "user-123", "event": "Order Completed",
//	 "properties": {"order_id": "ORD-12345", "revenue": 59.98},
//	 "timestamp": "2026-01-01T00:00:00Z"}
//
// # cdp:page
//
// Pipelines page view ([CDPPage]).
//
//	{"anonymousId": "anon-7f3a", "name": "Pricing", "properties": {"path": "/pricing"}}
//
// # cdp:screen
//
// Pipelines screen view ([CDPScreen]).
//
//	{"userId": "user-123", "name": "Checkout"}
//
// # cdp:group
//
// Pipelines group ([CDPGroup]): groupId required.
//
//	{"userId": "user-123", "groupId": "acme", "traits": {"name": "Acme Inc", "plan": "enterprise"}}
//
// # cdp:alias
//
// Pipelines alias ([CDPAlias]): previousId and userId required.
//
//	{"previousId": "anon-7f3a", "userId": "user-123"}
package tasks
