// Package sandbox is a faithful in-process stand-in for Customer.io's Track
// (v1 and v2), App and Pipelines (CDP) HTTP APIs. It answers as Customer.io's
// documentation describes them (the Track, App and Pipelines API references,
// the "Invalid API requests" and "API-triggered broadcasts" pages): the same
// routes, authentication schemes, limits (see the Max constants), status
// codes, error bodies and rate limits, and the state a real workspace would
// keep (people, events, devices, objects, relationships, segments,
// suppressions, deliveries, triggers), which tests read back. Where the
// documentation is silent it makes the choices listed below. It is an
// [http.Handler] used by tests, by the demo (`cioq sandbox`) and by
// benchmarks; it is safe for concurrent use and keeps no lock while it
// injects latency.
//
// # Route groups and base URLs
//
// One [Server] serves three route groups under fixed prefixes, so one
// listener stands in for three Customer.io hosts:
//
//	group  prefix     base URL to configure a client with   stands in for
//	track  /track     http://host:port/track                https://track.customer.io
//	app    /app       http://host:port/app                  https://api.customer.io
//	cdp    /cdp/v1    http://host:port/cdp/v1               https://cdp.customer.io/v1
//
// so a Track identify is PUT http://host:port/track/api/v1/customers/{id}, a
// transactional email POST http://host:port/app/v1/send/email and a Pipelines
// identify POST http://host:port/cdp/v1/identify. [Server.TrackHandler],
// [Server.AppHandler] and [Server.CDPHandler] serve one group at the root
// (/api/v1/..., /v1/send/..., /identify) for a test that wants a group on its
// own httptest server. The control API (JSON, no auth) lives under
// /_sandbox/ on the combined handler; [Remote] is a small Go client for it.
//
// # Identifiers in paths
//
// Each path segment is percent-decoded exactly once ("%2F" stays inside the
// segment, "+" is a literal plus, "@" may be literal or "%40"). A path
// identifier "cio_<x>" addresses the person whose cio_id is <x>. An
// identifier containing "@" addresses the person with that email (compared
// case-insensitively) if one exists, and otherwise the person with that id
// (email-or-id workspace semantics). Anything else is an id, a phone number
// too (Customer.io's Track API reference: "a phone number in the path is
// treated as an id"). A person created through a path identifier gets it as
// their id.
//
// # Typed identifiers
//
// Track v2 person operations name a person by identifiers {"id"},
// {"email"}, {"cio_id"} (bare value) or {"phone"} (E.164, "+" and up to 15
// digits: the sandbox acts as a workspace with phone enabled as an
// identifier); merges, transactional sends and an object's relationships
// to people take id, email or cio_id only. A person's phone identifier is
// [Person.Phone] ([Server.PersonBy] finds a person by a typed identifier).
// Every object gets a cio_object_id when it is created ([Object.CioObjectID],
// [Server.ObjectByCioID]); object operations and relationships name an
// object by {"object_type_id","object_id"} or {"cio_object_id"} alone.
//
// # Deliberate choices where Customer.io's documentation is silent
//
//   - Suppress deletes the profile and blocks its id, email and phone; a later
//     identify, event or device call for a blocked identifier answers 200
//     and is ignored. Unsuppress by any of the blocked identifiers frees all
//     of them.
//   - An event whose id was already seen (anywhere in the workspace) answers
//     200 and is not stored again. Pipelines messages are deduplicated the
//     same way on messageId.
//   - An event, device or transactional send for an unknown person creates
//     that person; an identify with "_update": true never does; a path
//     "cio_<x>" for an unknown cio_id is dropped (200, no change), and so
//     is an operation or relationship naming a cio_object_id no object has
//     (a cio_object_id never creates an object).
//   - Broadcast triggers: 404 for unknown broadcasts, then body validation
//     (422), then the rate limits (429), so a rejected body does not use up
//     the trigger interval. Recipient flags that do not belong to the chosen
//     recipient shape are rejected with 422. A processed trigger sends the
//     broadcast's email to each existing person with an email address its
//     ids, emails or per_user_data name (Trigger.Messages: delivered, or
//     bounced for a bounce address; other audiences send nothing here),
//     reported by the reporting webhooks with broadcast_id and trigger_id.
//   - The App rate limit applies to every App API request, transactional
//     sends included, counted per key with a sliding one-second window.
//   - Transactional messages (Config.TransactionalMessages; by default
//     the demo's password_reset and order_confirmation) are listed by GET
//     /v1/transactional and their content variants served by GET
//     /v1/transactional/{id}/contents. A send naming one is rendered with
//     its message_data as Liquid's trigger and the person's attributes as
//     customer: a variable that is missing (or null) fails the delivery,
//     which is still accepted with 200, as Customer.io accepts a send
//     before rendering it; the delivery's status is "failed" and its
//     failure_message the Liquid error (/_sandbox/deliveries). With
//     Config.CheckTemplates a send naming an unknown id or trigger name is
//     answered 400 "transactional_message_id" not found, as Customer.io's
//     "Common transactional API errors" page documents; without it any id
//     is accepted.
//   - An anonymous event is associated with the person identified with its
//     anonymous_id only when it arrives up to five minutes after that
//     identify (Config.AnonymousMergeWindow, Customer.io's documented
//     server-side window); later ones stay anonymous, marked orphaned,
//     until an identify carries the id again. The window applies to Track
//     v1, Track v2 and Pipelines alike (for Pipelines UNCONFIRMED).
//   - What becomes of a transactional send after the 200 (Delivery.Status,
//     one model for /_sandbox/deliveries, GET /v1/messages/{id} and the
//     reporting webhooks): a send_at in the future is "scheduled", a
//     queue_draft "drafted"; a template that does not render (above) or
//     Config.DeliveryFailure fails it ("failed" with FailureMessage); a
//     recipient whose local part is "bounce" (bounce@example.com) bounces
//     with BounceReason; any other is delivered. GET /v1/messages/{id}
//     reports it as Customer.io's "Get a message" does (metrics with their
//     times, failure_message).
//   - The CDP API is permissive unless the request carries
//     "X-Strict-Mode: 1": malformed or oversize messages answer 200 and are
//     stored but not applied to state.
//
// # Fault injection
//
// [Server.AddFault] (or PUT /_sandbox/faults/{group}) adds a [Fault] to a
// group and returns its id: added latency, a canned status with optional
// body and Retry-After, a connection reset, or a hang until the client gives
// up; or, for a request that is served as usual (a send is made, a batch
// applied), an answer altered on the way out: another body (a 2xx that is
// not JSON), a body cut off mid-way (a read error after the status), or a
// v2 batch answer whose errors lack batch_index or name an index past the
// batch; for a fraction of requests, the next N requests, and/or a path
// prefix. A group holds any number of faults: every matching latency adds
// up, and the first matching fault (in the order they were added) with a
// status, reset, hang or altered answer applies its action. [Server.SetFault] (PUT ...?replace=true)
// replaces a group's faults with one; [Server.RemoveFault] (DELETE
// /_sandbox/faults/{group}/{id}) removes one, [Server.ClearFault] and
// [Server.ClearFaults] a group's or all.
//
// # Reporting webhooks
//
// With [Config.Webhooks] (or [Server.SetWebhooks]; `cioq sandbox
// --webhook-url`) the sandbox posts signed reporting webhooks of every
// transactional delivery, as Customer.io does: sent and delivered; sent and
// bounced (with a failure_message) for a bounce address; failed with the
// delivery's FailureMessage for a delivery that failed (a template variable
// the send lacked, or [Config.DeliveryFailure]); nothing yet for a
// scheduled or drafted one. One event per request, in order, retried while
// the receiver fails; Delay, Duplicate and Reorder make them late,
// repeated or out of order. Broadcast triggers report nothing.
//
// # Recorded requests
//
// [Server.Requests] (GET /_sandbox/requests) lists the recording oldest
// first; a Limit keeps the newest N matching requests, or the oldest N with
// [OrderOldest] (order=oldest), which with Since pages forward without gaps.
package sandbox
