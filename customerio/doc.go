// Package customerio is cioq's HTTP client for Customer.io: the Track API
// (v1 people, events, devices, merges, manual segments, forms; v2 entity and
// batch operations for people, objects and deliveries), the App API
// (transactional email, push, SMS, in-app, inbox and WhatsApp sends;
// API-triggered broadcasts, their status and errors) and the Data Pipelines
// (CDP) API (identify, track, page, screen, group, alias, batch).
//
// # Regions and base URLs
//
// Config.Region selects the data center: RegionUS (the default) uses
// https://track.customer.io, https://api.customer.io and
// https://cdp.customer.io/v1; RegionEU uses track-eu, api-eu and cdp-eu.
// Config.TrackURL, AppURL and PipelinesURL override one API's base URL (the
// Pipelines one includes /v1), for tests, the sandbox or a proxy.
//
// # Authentication
//
// Each API has its own credential and scheme:
//
//   - Track: HTTP Basic with Config.SiteID as user and Config.TrackAPIKey as
//     password (standard base64).
//   - App: "Authorization: Bearer <Config.AppAPIKey>". A service-account
//     token (sa_live_...) also sends "X-Workspace-Id: <Config.AppWorkspaceID>"
//     on transactional sends.
//   - Pipelines: HTTP Basic with Config.PipelinesWriteKey as user and an
//     empty password; Config.PipelinesStrict adds "X-Strict-Mode: 1".
//
// A call to an API whose credential is not configured fails at once with an
// *APIError of ClassAuth wrapping ErrMissingCredentials; nothing is sent.
// The default HTTP client does not follow redirects to another host (a
// wrong-region redirect surfaces as a ClassAuth error); with a custom
// Config.HTTPClient, Go itself drops Authorization on such redirects.
//
// # Requests
//
// Path identifiers are escaped per segment (url.PathEscape, plus "+" as
// %2B), so "/", spaces, "%", "+" and "@" survive; a v1 person id of the form
// "cio_<value>" addresses a cio_id. Bodies are JSON with
// "Content-Type: application/json"; body-less calls send no Content-Type.
// Every call is bounded by Config.Timeout (10s by default) unless the
// caller's context has a shorter deadline; connections are reused; response
// reads are capped at 1 MiB. The User-Agent is
// "cioq/<Version> (+https://github.com/cioq/cioq)".
//
// # Validation
//
// Every method checks Customer.io's documented limits before sending (ids
// and attribute names at most 150 bytes, values at most 1000 bytes, at most
// 300 attributes, event names at most 100 bytes, event data at most 100,000
// bytes, v2 operations below 32,000 bytes and batches below 500,000, at most
// 15 email recipients, attachments below 2,000,000 bytes, send_at at most 90
// days ahead, at most 10,000 broadcast ids or rows, exactly one person
// identifier where one is needed, the v2 action matrix). A refused call
// returns a *ValidationError naming the field and the rule, never the value.
// The same checks are exported (ValidatePersonID, Event.Validate,
// Operation.Validate, ValidateBatch, SendEmailRequest.Validate, ...) so that
// producers refuse bad tasks before they are queued.
//
// # Errors and classes
//
// Every other failure is an *APIError carrying the API, the operation, the
// HTTP status (0 for network errors, timeouts and missing credentials),
// Customer.io's message parsed from whichever documented shape the body has
// ({"meta":{"error"}}, {"meta":{"errors":[...]}}, JSON:API
// {"errors":[{"detail"}]}, Track v2 {"errors":[{"reason","field","message"}]},
// or plain text), Retry-After (seconds or an HTTP date) and a Class:
//
//   - ClassTransient: 408, 429, 5xx (including 522 and 524), network errors
//     and timeouts. Try again later, after RetryAfter when set.
//   - ClassAuth: 401, a missing credential, a refused redirect. Fix the
//     configuration; the task itself is fine.
//   - ClassPermanent: any other 4xx, an unreadable 2xx body, and every
//     *ValidationError. Retrying cannot help.
//
// A 2xx means Customer.io accepted the request, even when its body then
// breaks off or is not JSON: a call that needs no body (Track v1, v2
// entity, Pipelines) succeeds; one that does (a transactional send's
// delivery id, a broadcast trigger's id) returns a permanent *APIError with
// the 2xx status wrapping ErrUnreadableResponse, never a transient error,
// because the send or trigger was made and a retry would make it again.
//
// ClassOf classifies any error. Error texts never contain a key, a person
// identifier, an email address or message data: the message is scrubbed of
// the request's values and of anything that looks like an email, and network
// errors are reported without their URL (whose path holds identifiers).
//
// A v2 batch that Customer.io accepted as a whole (200 or 207) returns a nil
// error and a BatchResult listing the rejected items by batch_index. An
// answer that does not say which items it rejected (a 207 without a
// readable errors list, a body that breaks off, an error without a
// batch_index or with one past the batch) is a permanent *APIError instead:
// no item is blamed, and none is reported accepted.
//
// # No retries
//
// The client never retries: it makes one request per call (AddToSegment and
// RemoveFromSegment one per 1000 ids) and reports the outcome. Retries,
// backoff and rate limiting belong to the queue (see package worker).
// Transactional sends and broadcast triggers are not idempotent; Track events
// are safe to repeat when they carry a ULID id.
package customerio
