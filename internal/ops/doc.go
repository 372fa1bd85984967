// Package ops holds what operators use to watch cioq: the embedded asynqmon
// dashboard (behind basic auth, read-only if asked, with payloads redacted,
// refusing cross-origin changes, unexpected Host headers and the actions
// that would bypass the dead letter store or drop an idempotency hold),
// Prometheus metrics for workers and the ingest front door, a collector of
// queue sizes read from Redis, and the health endpoints Kubernetes probes.
//
// Nothing here decides how a task is delivered; workers and ingest call the
// methods of Metrics and supply readiness checks, cmd mounts the handlers.
//
// Redaction: person identifiers, emails, message data and attachment contents
// never reach the dashboard unless DashboardOptions.ShowPayloads is set. The
// rules live in Redact and are applied to task payloads, task results, error
// messages and every other string of the dashboard's JSON API.
package ops
