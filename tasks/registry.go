package tasks

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
)

// Task type names: the asynq task type of every operation cioq delivers.
// They are part of the wire contract and never change meaning.
const (
	TypeSendEmail    = "cio:send_email"    // transactional email (App API)
	TypeSendPush     = "cio:send_push"     // transactional push (App API)
	TypeSendSMS      = "cio:send_sms"      // transactional SMS (App API)
	TypeSendInApp    = "cio:send_in_app"   // transactional in-app message (App API)
	TypeSendInbox    = "cio:send_inbox"    // transactional inbox message (App API)
	TypeSendWhatsApp = "cio:send_whatsapp" // transactional WhatsApp message (App API)

	TypeIdentify         = "cio:identify"          // create or update a person
	TypeTrack            = "cio:track"             // event, page or screen view of a person
	TypeTrackAnonymous   = "cio:track_anonymous"   // anonymous or invite event
	TypeMergeAnonymous   = "cio:merge_anonymous"   // identify carrying anonymous_id: merge on signup
	TypeMergePeople      = "cio:merge_people"      // merge two people (merge_customers)
	TypeDelete           = "cio:delete"            // delete a person
	TypeSuppress         = "cio:suppress"          // suppress a person
	TypeUnsuppress       = "cio:unsuppress"        // unsuppress a person
	TypeDeviceAdd        = "cio:device_add"        // add or update a person's push device
	TypeDeviceDelete     = "cio:device_delete"     // delete a person's push device
	TypeObjectUpsert     = "cio:object_upsert"     // create or update an object (company, account, ...)
	TypeObjectDelete     = "cio:object_delete"     // delete an object
	TypeRelate           = "cio:relate"            // relate a person to an object
	TypeUnrelate         = "cio:unrelate"          // remove a person's relationship to an object
	TypeBroadcastTrigger = "cio:broadcast_trigger" // trigger an API-triggered broadcast
	TypeSegmentAdd       = "cio:segment_add"       // add people to a manual segment
	TypeSegmentRemove    = "cio:segment_remove"    // remove people from a manual segment
	TypeFormSubmit       = "cio:form_submit"       // submit a form
	TypeMetric           = "cio:metric"            // report a delivery metric (opened, delivered, bounced, ...)
	TypeBatch            = "cio:batch"             // many batchable operations of one workspace in one task

	TypeCDPIdentify = "cdp:identify" // Pipelines identify
	TypeCDPTrack    = "cdp:track"    // Pipelines track
	TypeCDPPage     = "cdp:page"     // Pipelines page
	TypeCDPScreen   = "cdp:screen"   // Pipelines screen
	TypeCDPGroup    = "cdp:group"    // Pipelines group
	TypeCDPAlias    = "cdp:alias"    // Pipelines alias
)

// Queue names. Workers weigh them so transactional sends are never starved
// by bulk work.
const (
	QueueCritical = "critical" // transactional sends
	QueueDefault  = "default"  // people, events, objects, devices, Pipelines
	QueueBulk     = "bulk"     // broadcasts and manual segment changes
)

// Retry policy shared by every task type.
//
// The worker retries a transient failure after an exponential backoff
// starting at BackoffBase and capped at BackoffCap, with jitter. A task is
// dead-lettered only when its attempts are exhausted AND at least
// RetryWindow has passed since its enqueued_at: a Customer.io outage shorter
// than a day loses nothing.
//
// The window, not the budget, is what guarantees the 24 hours: the worker
// draws each delay with full jitter (uniformly in [0, nominal]), so a budget
// can run out sooner, and a failure that would spend the last retry before
// the window has passed is retried without spending it. The budget is sized
// for the typical case, delays at least half their nominal value: the
// nominal delays 1 s, 2 s, 4 s ... 512 s are
// 10 retries lasting at least 511.5 s, after which each retry waits at least
// 300 s (half of the 600 s cap), so ⌈(86400 − 511.5) / 300⌉ = 287 more
// retries are needed: 297 in all. [RetriesFor] computes it:
// RetriesFor(24*time.Hour, time.Second, 10*time.Minute) == 297. With
// nominal (unjittered) delays the same budget lasts about 48 h.
const (
	BackoffBase        = time.Second
	BackoffCap         = 10 * time.Minute
	DefaultRetryWindow = 24 * time.Hour
	DefaultMaxRetry    = 297
	DefaultTimeout     = 30 * time.Second
)

// RetriesFor returns the number of retries needed for a backoff that starts
// at base, doubles up to limit and may be shortened by jitter to half of its
// nominal delay, to keep a task alive for at least window.
func RetriesFor(window, base, limit time.Duration) int {
	if base <= 0 || limit <= 0 || window <= 0 {
		return 0
	}
	var total time.Duration
	n := 0
	d := base
	for total < window {
		nominal := min(d, limit)
		total += nominal / 2
		n++
		if d < limit {
			d *= 2
		}
	}
	return n
}

// The retry budget travels with the task, not in asynq's MaxRetry.
//
// asynq archives a task by itself once its retried count reaches its
// MaxRetry and an attempt fails in any way (a crash, a deadline asynq saw
// first, a 429), without asking the worker; a task archived so is in
// asynq's archive only, not in the dead-letter store. So the producer
// enqueues every task with asynq's MaxRetry at [AsynqMaxRetry] (asynq never
// archives it by itself) and the task's retry budget in the task header
// [HeaderRetryBudget]; the worker keeps the budget and dead-letters the task
// itself. A task without the header (enqueued by an older producer, or
// directly with an asynq client) has asynq's MaxRetry as its budget.
const (
	// HeaderRetryBudget is the asynq task header holding the task's retry
	// budget: the number of transient failures retried (decimal). A task
	// with budget n is attempted at least n+1 times before it can be
	// dead-lettered as exhausted.
	HeaderRetryBudget = "cioq-retry-budget"
	// AsynqMaxRetry is the asynq MaxRetry of every task the producer
	// enqueues: asynq's largest (an int32), so it never archives a task by
	// itself.
	AsynqMaxRetry = math.MaxInt32
)

// Defaults are the enqueue options a task type gets unless the producer
// overrides them.
type Defaults struct {
	// Queue is the asynq queue (QueueCritical, QueueDefault or QueueBulk).
	Queue string
	// MaxRetry is the retry budget: the number of transient failures
	// retried (DefaultMaxRetry), sent in HeaderRetryBudget.
	MaxRetry int
	// Timeout bounds one delivery attempt (DefaultTimeout).
	Timeout time.Duration
	// RetryWindow is the minimum time since enqueued_at before a task whose
	// attempts are exhausted is dead-lettered (DefaultRetryWindow).
	RetryWindow time.Duration
	// Expiry, when positive, is the default time after enqueueing past which
	// the task is dead-lettered as expired instead of delivered. 0 = never.
	// Every type defaults to 0; sends take an expiry per task.
	Expiry time.Duration
}

// Spec describes one task type: everything the producer, the worker and
// the front doors need to know about it besides what its payload answers
// itself (Validate, and the optional [PersonScoped] and [Deduplicated]).
// Adding a task type is one payload struct (in its API family's file), one
// Spec entry in the table below, and its example in the package
// documentation (TestSpecs and TestDocExamplesDecodeAndValidate fail until
// both are there), then its route in the worker's delivery table
// (worker/routes.go, checked by TestRoutesCoverEveryType).
type Spec struct {
	// Type is the task type name, e.g. TypeSendEmail.
	Type string
	// API is the Customer.io API that delivers the type:
	// customerio.APITrack (Track v1 and v2: people, events, devices,
	// objects, segments), customerio.APIApp (transactional sends and
	// broadcasts, which Customer.io does not deduplicate: the worker
	// records each success so a retry does not send twice) or
	// customerio.APIPipelines (cdp:*). Its credentials and rate limit
	// apply.
	API customerio.API
	// Batchable reports whether the type has a Track v2 operation, so the
	// worker can coalesce it with other tasks' operations into one
	// POST /api/v2/batch (worker.Batching), and its operations can go in a
	// cio:batch task.
	Batchable bool
	// Multi reports whether a task of the type carries several operations
	// of other (batchable) types, each with its own fate: cio:batch.
	Multi bool
	// New returns a fresh zero payload (a pointer) to decode into.
	New func() Payload
	// Defaults are the type's enqueue options: queue, retry budget
	// (MaxRetry), attempt timeout, retry window and expiry.
	Defaults Defaults
}

func defaults(queue string) Defaults {
	return Defaults{
		Queue:       queue,
		MaxRetry:    DefaultMaxRetry,
		Timeout:     DefaultTimeout,
		RetryWindow: DefaultRetryWindow,
	}
}

// newPayload returns a Spec.New for payload type T.
func newPayload[T any, PT interface {
	*T
	Payload
}]() Payload {
	return PT(new(T))
}

// The APIs, named short for the table.
const (
	apiApp       = customerio.APIApp
	apiTrack     = customerio.APITrack
	apiPipelines = customerio.APIPipelines
)

// specs is every task type, in the order of the type names above.
var specs = []Spec{
	{Type: TypeSendEmail, API: apiApp, New: newPayload[SendEmail], Defaults: defaults(QueueCritical)},
	{Type: TypeSendPush, API: apiApp, New: newPayload[SendPush], Defaults: defaults(QueueCritical)},
	{Type: TypeSendSMS, API: apiApp, New: newPayload[SendSMS], Defaults: defaults(QueueCritical)},
	{Type: TypeSendInApp, API: apiApp, New: newPayload[SendInApp], Defaults: defaults(QueueCritical)},
	{Type: TypeSendInbox, API: apiApp, New: newPayload[SendInbox], Defaults: defaults(QueueCritical)},
	{Type: TypeSendWhatsApp, API: apiApp, New: newPayload[SendWhatsApp], Defaults: defaults(QueueCritical)},

	{Type: TypeIdentify, API: apiTrack, Batchable: true, New: newPayload[Identify], Defaults: defaults(QueueDefault)},
	{Type: TypeTrack, API: apiTrack, Batchable: true, New: newPayload[Track], Defaults: defaults(QueueDefault)},
	// Track v2 names a person by id, email, phone or cio_id only: an
	// anonymous event has no v2 operation.
	{Type: TypeTrackAnonymous, API: apiTrack, New: newPayload[TrackAnonymous], Defaults: defaults(QueueDefault)},
	{Type: TypeMergeAnonymous, API: apiTrack, Batchable: true, New: newPayload[MergeAnonymous], Defaults: defaults(QueueDefault)},
	{Type: TypeMergePeople, API: apiTrack, Batchable: true, New: newPayload[MergePeople], Defaults: defaults(QueueDefault)},
	{Type: TypeDelete, API: apiTrack, Batchable: true, New: newPayload[Delete], Defaults: defaults(QueueDefault)},
	{Type: TypeSuppress, API: apiTrack, Batchable: true, New: newPayload[Suppress], Defaults: defaults(QueueDefault)},
	{Type: TypeUnsuppress, API: apiTrack, Batchable: true, New: newPayload[Unsuppress], Defaults: defaults(QueueDefault)},
	{Type: TypeDeviceAdd, API: apiTrack, Batchable: true, New: newPayload[DeviceAdd], Defaults: defaults(QueueDefault)},
	{Type: TypeDeviceDelete, API: apiTrack, Batchable: true, New: newPayload[DeviceDelete], Defaults: defaults(QueueDefault)},
	{Type: TypeObjectUpsert, API: apiTrack, Batchable: true, New: newPayload[ObjectUpsert], Defaults: defaults(QueueDefault)},
	{Type: TypeObjectDelete, API: apiTrack, Batchable: true, New: newPayload[ObjectDelete], Defaults: defaults(QueueDefault)},
	{Type: TypeRelate, API: apiTrack, Batchable: true, New: newPayload[Relate], Defaults: defaults(QueueDefault)},
	{Type: TypeUnrelate, API: apiTrack, Batchable: true, New: newPayload[Unrelate], Defaults: defaults(QueueDefault)},

	{Type: TypeBroadcastTrigger, API: apiApp, New: newPayload[BroadcastTrigger], Defaults: defaults(QueueBulk)},
	// Manual segments are Track v1 only.
	{Type: TypeSegmentAdd, API: apiTrack, New: newPayload[SegmentAdd], Defaults: defaults(QueueBulk)},
	{Type: TypeSegmentRemove, API: apiTrack, New: newPayload[SegmentRemove], Defaults: defaults(QueueBulk)},
	// Forms and metrics are Track v1 only (v2's delivery entity takes only
	// opened, converted and delivered).
	{Type: TypeFormSubmit, API: apiTrack, New: newPayload[FormSubmit], Defaults: defaults(QueueDefault)},
	{Type: TypeMetric, API: apiTrack, New: newPayload[Metric], Defaults: defaults(QueueDefault)},
	// Many batchable operations in one task (multi.go).
	{Type: TypeBatch, API: apiTrack, Multi: true, New: newPayload[Batch], Defaults: defaults(QueueDefault)},

	{Type: TypeCDPIdentify, API: apiPipelines, New: newPayload[CDPIdentify], Defaults: defaults(QueueDefault)},
	{Type: TypeCDPTrack, API: apiPipelines, New: newPayload[CDPTrack], Defaults: defaults(QueueDefault)},
	{Type: TypeCDPPage, API: apiPipelines, New: newPayload[CDPPage], Defaults: defaults(QueueDefault)},
	{Type: TypeCDPScreen, API: apiPipelines, New: newPayload[CDPScreen], Defaults: defaults(QueueDefault)},
	{Type: TypeCDPGroup, API: apiPipelines, New: newPayload[CDPGroup], Defaults: defaults(QueueDefault)},
	{Type: TypeCDPAlias, API: apiPipelines, New: newPayload[CDPAlias], Defaults: defaults(QueueDefault)},
}

// registry indexes specs by type name; types is specs sorted by name.
var registry, types = index(specs)

func index(specs []Spec) (map[string]Spec, []Spec) {
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		if _, dup := m[s.Type]; dup {
			panic("tasks: task type " + s.Type + " registered twice")
		}
		m[s.Type] = s
	}
	sorted := slices.Clone(specs)
	slices.SortFunc(sorted, func(a, b Spec) int { return strings.Compare(a.Type, b.Type) })
	return m, sorted
}

// Lookup returns the Spec of a task type.
func Lookup(typ string) (Spec, bool) {
	s, ok := registry[typ]
	return s, ok
}

// Types returns every task type's Spec, sorted by type name. The slice is a
// copy the caller may modify.
func Types() []Spec {
	out := make([]Spec, len(types))
	copy(out, types)
	return out
}
