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
// (email-or-id workspace semantics). Anything else is an id. A person created
// through a path identifier gets it as their id.
//
// # Deliberate choices where Customer.io's documentation is silent
//
//   - Suppress deletes the profile and blocks its id and email; a later
//     identify, event or device call for a blocked identifier answers 200
//     and is ignored. Unsuppress by any of the blocked identifiers frees all
//     of them.
//   - An event whose id was already seen (anywhere in the workspace) answers
//     200 and is not stored again. Pipelines messages are deduplicated the
//     same way on messageId.
//   - An event, device or transactional send for an unknown person creates
//     that person; an identify with "_update": true never does; a path
//     "cio_<x>" for an unknown cio_id is dropped (200, no change).
//   - Broadcast triggers: 404 for unknown broadcasts, then body validation
//     (422), then the rate limits (429), so a rejected body does not use up
//     the trigger interval. Recipient flags that do not belong to the chosen
//     recipient shape are rejected with 422.
//   - The App rate limit applies to every App API request, transactional
//     sends included, counted per key with a sliding one-second window.
//   - What becomes of a transactional send after the 200 (Delivery.Status):
//     a recipient whose local part is "bounce" (bounce@example.com)
//     bounces with BounceReason; a delivery something marked "failed" (with
//     its FailureReason) fails; any other is delivered. GET
//     /v1/messages/{id} reports it as Customer.io's "Get a message" does
//     (metrics with their times, failure_message).
//   - The CDP API is permissive unless the request carries
//     "X-Strict-Mode: 1": malformed or oversize messages answer 200 and are
//     stored but not applied to state.
//
// # Fault injection
//
// [Server.AddFault] (or PUT /_sandbox/faults/{group}) adds a [Fault] to a
// group and returns its id: added latency, a canned status with optional
// body and Retry-After, a connection reset, or a hang until the client gives
// up; for a fraction of requests, the next N requests, and/or a path prefix.
// A group holds any number of faults: every matching latency adds up, and the
// first matching fault (in the order they were added) with a status, reset
// or hang answers the request. [Server.SetFault] (PUT ...?replace=true)
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
// delivery's FailureReason for a delivery marked failed
// ([Config.DeliveryFailure], or anything that sets Delivery.Status before
// the delivery is stored). One event per request, in order, retried while
// the receiver fails; Delay, Duplicate and Reorder make them late,
// repeated or out of order. Broadcast triggers report nothing.
//
// # Recorded requests
//
// [Server.Requests] (GET /_sandbox/requests) lists the recording oldest
// first; a Limit keeps the newest N matching requests, or the oldest N with
// [OrderOldest] (order=oldest), which with Since pages forward without gaps.
package sandbox
