// Package ingest is cioq's HTTP front door: apps in any language and
// customer data platforms (Segment, RudderStack, mParticle, webhooks) send
// events over HTTP, and ingest turns them into tasks through the producer.
// A request is answered 2xx only once Redis holds every task it makes.
//
//	fc, err := ingest.LoadConfig(os.Getenv("CIOQ_INGEST_CONFIG"))
//	...
//	h, err := ingest.New(ingest.Config{Producer: prod, File: fc, Metrics: metrics})
//	...
//	srv := ingest.NewHTTPServer(":8080", h) // timeouts against slow clients
//
// # Endpoints
//
// All endpoints take POST with a JSON body (Content-Type application/json,
// otherwise 415), optionally gzip-compressed (Content-Encoding: gzip). A body
// is capped at Config.MaxBodyBytes (500,000 bytes) before and after
// decompression (413), and read under the http.Server's ReadTimeout. A
// request holds at most Config.MaxItems (1,000) items: messages of a
// batch, objects of a custom array, tasks of a /v1/tasks array, tasks an
// mParticle request makes (413 too_many_items naming the list, or the
// first item over the cap of a top-level array: "[1000]"). Every
// string of a body, keys included, must be valid UTF-8 (400 invalid_utf8
// naming the field: decoders would replace the bytes by U+FFFD, making two
// different invalid ids one person).
//
//	POST /v1/identify /v1/track /v1/page /v1/screen /v1/group /v1/alias /v1/batch
//	     (also /v1/i /v1/t /v1/p /v1/s /v1/g /v1/a /v1/b)
//	     Segment spec, camelCase: Segment's HTTP API and webhook destination,
//	     RudderStack, analytics-node/analytics-go, Customer.io's Pipelines
//	     libraries. HTTP Basic auth, the source's write key as user name and
//	     an empty password (the password is ignored). The source is the one
//	     whose write key matches. A message is at most 32,000 bytes (413
//	     event_too_large); a batch is {"batch":[...], "context":{...}} whose
//	     context applies to items without one. 200 {"success":true,...}.
//	POST /v1/sources/{source}[/{call}]
//	     The same for a named source; also authenticated by X-Signature, the
//	     hex HMAC-SHA1 of the raw body (as received) with the source's shared
//	     secret, as Segment's webhook destination sends it. Without {call} the
//	     body's "type" (or "batch") decides. A signed body can be replayed
//	     by anyone who saw it, so each of its messages must carry a
//	     messageId (400 missing_message_id) and a time, sentAt or else
//	     timestamp (400 missing_timestamp), within Config.DedupeWindow (24
//	     h) before now and MaxClockSkew (1 h) after (400 stale_message):
//	     a repeat within the window is a duplicate, one after it is refused.
//	POST /v1/mparticle, /v1/mparticle/{source}
//	     An mParticle server-to-server batch (events, user_identities,
//	     user_attributes, mpid) or an array of them; Basic auth as above
//	     (mParticle does not sign). 202.
//	POST /v1/custom/{source}
//	     Any JSON object, or an array of them, read through the source's
//	     mappings; Basic auth or X-Signature (each signed object needs a
//	     message id and a time at the message_id and timestamp mappings,
//	     as above, naming the mapped path). 202.
//	POST /v1/tasks
//	     {"type","payload","idempotency_key","workspace","queue",
//	      "process_in","process_at","expires_in","expires_at"}
//	     or an array of them, validated exactly as producer.EnqueueRaw does;
//	     Authorization: Bearer <token>. process_in/expires_in are durations
//	     ("90s", "1h30m", or seconds), process_at/expires_at moments
//	     (ISO-8601 or unix seconds), read by producer.Timing with the rules
//	     of cioq enqueue's --in and --expires-in; a task past its expiry is
//	     dead-lettered as expired, not sent. A task's queue ("queue", or its
//	     type's) must be one of the token's queues, or without those one of
//	     Config.Queues, the queues the workers serve (400 naming queue;
//	     the binary reads CIOQ_QUEUES). 202 {"receipts":[{"task_id",
//	     "queue","type","duplicate"}],...}; with an idempotency_key, task_id
//	     is the producer's keyed hash of it, never the key.
//	GET /v1/status/{task_id}
//	     The task's timeline (producer.Status: status.Timeline as JSON) for
//	     any /v1/tasks token: attempts, acceptance and what Customer.io
//	     reported, never the person data it reported. 404 not_found when
//	     Redis holds nothing of the task; the same 401 as /v1/tasks.
//
// # Routing (mode)
//
// A source in mode "pipelines" forwards each message as a cdp:<type> task
// to Customer.io's Pipelines API, as received. A source in mode "track"
// (the default) translates it into Track API tasks:
//
//	identify (userId)                 cio:identify, traits → attributes
//	identify (userId + anonymousId)   cio:merge_anonymous
//	identify (anonymousId only)       nothing (counted as skipped: the Track API has no anonymous profiles)
//	track (userId)                    cio:track; (anonymousId only) cio:track_anonymous
//	page                              event of type page named properties.url, properties.path or name
//	screen                            event of type screen named name
//	group                             cio:object_upsert (traits.objectTypeId, default "1") and, with a
//	                                  userId, cio:relate (traits.relationshipAttributes)
//	alias                             cio:merge_people (previousId merged into userId)
//	track "User Deleted"              cio:delete; "User Suppressed"/"User Unsuppressed" cio:(un)suppress
//	track "Device Created or Updated" cio:device_add (context.device.token, .type); "Device Deleted" cio:device_delete
//	track "Relationship Deleted"      cio:unrelate (properties.objectId, .objectTypeId)
//	track "Object Deleted"            cio:object_delete
//
// ISO-8601 timestamps become unix seconds; traits.createdAt becomes
// created_at (unix seconds); other traits are copied as attributes. The
// messageId becomes the event's id: itself when it is a ULID, otherwise a
// ULID derived from source and messageId, so Customer.io drops repeats.
//
// mParticle batches (always Track): the person is the customer_id, or the
// email when the source sets email_fallback; a batch whose user has neither
// is skipped and counted (skipped_users, skipped_events in the response).
// user_attributes become one identify ("$FirstName" → first_name, email
// added); custom_event and screen_view become events named with spaces
// replaced by underscores (custom_attributes as data); user_attribute_change
// sets (or, deleted, clears) one attribute; opt_out sets unsubscribed; other
// event types are counted as ignored_events.
//
// # Duplicates
//
// A message with a messageId (mParticle: source_message_id or event_id;
// custom: the message_id mapping) already seen by the same source within
// the dedupe window (Config.DedupeWindow, 24 h) is acknowledged and not
// enqueued again; the response counts its tasks as duplicates. Once every
// task of a message is in Redis, a record of it is written
// (internal/keys.IngestSeen: the source and a SHA-256 digest of the id,
// never the id; kept for the window plus MaxClockSkew) and read before the
// message is enqueued again, however soon asynq dropped the tasks
// (delivered and past their retention, or deleted). Each derived task is
// also enqueued with producer.IdempotencyKey("ingest:<source>:<digest of
// messageId>:<kind>"), which the producer hashes into the task id: that
// catches a repeat arriving while the first is being enqueued, and the
// queued tasks of a partially enqueued message. Messages whose tasks go
// together in cio:batch tasks (below) share the key of the run instead,
// "ingest:run:<digest of their keys>" (key#0, key#1, ... per task): the
// same messages again, while the first tasks are in Redis, enqueue
// nothing.
//
// # Many messages, few tasks
//
// The Track-mode tasks of a request's consecutive messages that are all
// batchable (identify, track, page, screen, merges, objects,
// relationships: not anonymous events, Pipelines messages or /v1/tasks
// items) are enqueued together with producer.EnqueueBatch: cio:batch
// tasks of up to 500 operations, delivered as about one Track v2 batch
// request each, every operation with its own fate (see package worker).
// A request of many messages so costs a few Redis round trips. The
// response's enqueued and duplicates count operations (tasks a message
// makes), not asynq tasks.
//
// # Failures: what was accepted
//
// Every item of a request is checked before any is enqueued: one bad item
// refuses the whole request with a 4xx and nothing is enqueued. Tasks are
// then enqueued in order, and an item's tasks in order (a Track-mode group:
// cio:object_upsert, then cio:relate); a cio:batch task holds all its
// operations or none. When Redis fails in the middle, the answer is 503
// with
//
//	"accepted": [0, 1, ...]   the indices of the items whose every task Redis
//	                          holds (for a batch, positions in "batch"; for
//	                          an mParticle request, positions among the
//	                          tasks it produced, skipped users not counted)
//	"partial": [{"index": 37, "queued": ["cio:object_upsert"], "missing": ["cio:relate"]}]
//	                          the items of which Redis holds the first tasks
//	                          but not the rest (one split between two
//	                          cio:batch tasks, the second not enqueued): task types in the
//	                          item's order, queued ones newly enqueued or
//	                          duplicates; [] when the failure hit an item's
//	                          first task
//
//	"unreplicated": [12]      with replicated acknowledgements
//	                          (CIOQ_REDIS_ACK_REPLICAS, producer.WithReplicas):
//	                          the item (at most one) of which a task was
//	                          taken by Redis's master but confirmed by fewer
//	                          replicas than required in time: that task is
//	                          on the master only (a failover may lose it),
//	                          the item's tasks before it are replicated and
//	                          those after it missing; [] otherwise
//
// Every item listed in none of them has no task in Redis. Retrying the whole
// request is safe for messages with a messageId: what is queued is
// deduplicated and the rest is enqueued. Messages without one would be
// enqueued again: resend only the items not listed as accepted, knowing
// that a partial item's queued tasks are then enqueued a second time.
//
// Errors are JSON, {"error":{"code":"...","message":"...","field":"..."}};
// codes include malformed_json, invalid_utf8, missing_type, unknown_type,
// type_mismatch, missing_identity, invalid, invalid_timestamp, unknown_field,
// missing_message_id, missing_timestamp, stale_message, unauthorized (401),
// wrong_endpoint (403), body_too_large, event_too_large and too_many_items
// (413), unsupported_media_type and unsupported_encoding (415), timeout
// (408) and unavailable (503). Field is the message field
// ("batch[3].userId"), never its value; no error text carries a write key,
// an email or an identifier.
//
// Until a request is authenticated, nothing tells a real source from a
// made-up one: no credentials, a wrong write key, an unknown source, a
// wrong or unreadable signature, a signature for a source without a shared
// secret all get the same 401 unauthorized (body and headers), and every
// refusal is counted under the source "unknown". A signed request's body
// is read (and refused, 413 or 415, the same way for every name) before
// its signature is checked, and the signature before the source's kind:
// wrong_endpoint, which names the kind, is told only to a sender holding
// the source's credentials.
//
// # Configuration file
//
// JSON, path from CIOQ_INGEST_CONFIG; unknown keys are refused. Example
// (testdata/example-config.json):
//
//	{
//	  "sources": [
//	    {"name": "web", "kind": "segment", "mode": "track", "write_key_env": "CIOQ_WEB_WRITE_KEY"},
//	    {"name": "segment-webhook", "kind": "segment", "mode": "pipelines", "workspace": "eu",
//	     "shared_secret_env": "CIOQ_SEGMENT_WEBHOOK_SECRET"},
//	    {"name": "rudder", "kind": "rudderstack", "write_key_env": "CIOQ_RUDDER_WRITE_KEY"},
//	    {"name": "mp", "kind": "mparticle", "write_key_env": "CIOQ_MPARTICLE_WRITE_KEY", "email_fallback": true},
//	    {"name": "shop", "kind": "custom", "mode": "track", "write_key_env": "CIOQ_SHOP_WRITE_KEY",
//	     "mappings": {"user_id": "customer.id", "email": "customer.email", "event": "topic",
//	                  "event_properties": "order", "message_id": "webhook_id", "timestamp": "created_at",
//	                  "custom_attributes": {"plan": "customer.plan", "first_item": "order.items.0.name"}}}
//	  ],
//	  "tokens": [{"name": "backend", "token_env": "CIOQ_TASKS_TOKEN"}]
//	}
//
// Source keys: name ([a-z0-9_-]{1,64}, unique), kind (segment, rudderstack,
// mparticle, custom), mode (track or pipelines; default track; mparticle:
// track only), workspace (Customer.io workspace, "" = default; refused by
// New when Config.Producer was given producer.Workspaces without it), write_key or
// write_key_env, shared_secret or shared_secret_env (at least one
// credential; write keys unique; no shared secret for mparticle sources),
// email_fallback (mparticle), mappings (custom only, required there:
// user_id or email, and optionally event, event_properties, message_id,
// timestamp, custom_attributes; message_id and timestamp are required with
// a shared secret). Paths are dotted: "a.b.c", "items.0.name" (see
// Lookup). Token keys: name, token or token_env, and queues (optional: the
// only queues its tasks may go to, each one of Config.Queues). A secret
// given as *_env is read from that environment
// variable, which must be set. Any problem stops start-up with a
// *ConfigError naming the entry and field, never a secret.
//
// # Metrics
//
// Config.Metrics (an *ops.Metrics fits) counts every request by source and
// outcome: accepted, invalid, unauthorized, forbidden, too_large,
// unsupported_media_type, timeout, unavailable. A request not (yet)
// authenticated is counted under "unknown", never a source's name.
//
// Ingest has no rate limit of its own: a source that may flood it needs
// one in front (a proxy), or Config.MaxItems and MaxBodyBytes lowered.
package ingest
