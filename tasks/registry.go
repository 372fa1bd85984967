package tasks

import (
	"math"
	"sort"
	"time"
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

// Spec describes one task type.
type Spec struct {
	// Type is the task type name, e.g. TypeSendEmail.
	Type string
	// New returns a fresh zero payload (a pointer) to decode into.
	New func() Payload
	// Defaults are the type's enqueue options.
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

var registry = map[string]Spec{}

func register(typ, queue string, newFn func() Payload) {
	registry[typ] = Spec{Type: typ, New: newFn, Defaults: defaults(queue)}
}

func init() {
	register(TypeSendEmail, QueueCritical, func() Payload { return new(SendEmail) })
	register(TypeSendPush, QueueCritical, func() Payload { return new(SendPush) })
	register(TypeSendSMS, QueueCritical, func() Payload { return new(SendSMS) })
	register(TypeSendInApp, QueueCritical, func() Payload { return new(SendInApp) })
	register(TypeSendInbox, QueueCritical, func() Payload { return new(SendInbox) })
	register(TypeSendWhatsApp, QueueCritical, func() Payload { return new(SendWhatsApp) })

	register(TypeIdentify, QueueDefault, func() Payload { return new(Identify) })
	register(TypeTrack, QueueDefault, func() Payload { return new(Track) })
	register(TypeTrackAnonymous, QueueDefault, func() Payload { return new(TrackAnonymous) })
	register(TypeMergeAnonymous, QueueDefault, func() Payload { return new(MergeAnonymous) })
	register(TypeMergePeople, QueueDefault, func() Payload { return new(MergePeople) })
	register(TypeDelete, QueueDefault, func() Payload { return new(Delete) })
	register(TypeSuppress, QueueDefault, func() Payload { return new(Suppress) })
	register(TypeUnsuppress, QueueDefault, func() Payload { return new(Unsuppress) })
	register(TypeDeviceAdd, QueueDefault, func() Payload { return new(DeviceAdd) })
	register(TypeDeviceDelete, QueueDefault, func() Payload { return new(DeviceDelete) })
	register(TypeObjectUpsert, QueueDefault, func() Payload { return new(ObjectUpsert) })
	register(TypeObjectDelete, QueueDefault, func() Payload { return new(ObjectDelete) })
	register(TypeRelate, QueueDefault, func() Payload { return new(Relate) })
	register(TypeUnrelate, QueueDefault, func() Payload { return new(Unrelate) })

	register(TypeBroadcastTrigger, QueueBulk, func() Payload { return new(BroadcastTrigger) })
	register(TypeSegmentAdd, QueueBulk, func() Payload { return new(SegmentAdd) })
	register(TypeSegmentRemove, QueueBulk, func() Payload { return new(SegmentRemove) })

	register(TypeCDPIdentify, QueueDefault, func() Payload { return new(CDPIdentify) })
	register(TypeCDPTrack, QueueDefault, func() Payload { return new(CDPTrack) })
	register(TypeCDPPage, QueueDefault, func() Payload { return new(CDPPage) })
	register(TypeCDPScreen, QueueDefault, func() Payload { return new(CDPScreen) })
	register(TypeCDPGroup, QueueDefault, func() Payload { return new(CDPGroup) })
	register(TypeCDPAlias, QueueDefault, func() Payload { return new(CDPAlias) })

	types = make([]Spec, 0, len(registry))
	for _, s := range registry {
		types = append(types, s)
	}
	sort.Slice(types, func(i, j int) bool { return types[i].Type < types[j].Type })
}

var types []Spec

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
