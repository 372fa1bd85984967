package sandbox

import (
	"time"
)

// Default credentials used when the matching [Config] field is empty.
const (
	// DefaultSiteID is the Track API site id (Basic auth user name).
	DefaultSiteID = "sandbox-site"
	// DefaultTrackAPIKey is the Track API key (Basic auth password).
	DefaultTrackAPIKey = "sandbox-track-key"
	// DefaultAppAPIKey is the App API bearer key.
	DefaultAppAPIKey = "sandbox-app-key"
	// DefaultPipelinesWriteKey is the Pipelines (CDP) write key (Basic auth
	// user name, empty password).
	DefaultPipelinesWriteKey = "sandbox-write-key"
	// DefaultServiceToken is the service-account token accepted on
	// /v1/send/* together with X-Workspace-Id.
	DefaultServiceToken = "sa_live_sandbox"
	// DefaultWorkspaceID is the workspace id: the value X-Workspace-Id must
	// carry with the service token, and the environment_id of the region
	// lookup.
	DefaultWorkspaceID = 1
	// DefaultAppRateLimit is the App API limit in requests per second per key.
	DefaultAppRateLimit = 10
	// DefaultTransactionalRateLimit is the limit of transactional sends
	// (/v1/send/*) in requests per second per key: they are outside the App
	// API's 10 req/s (Customer.io documents 100 req/s in older docs and
	// 3000 per 3 s today, both soft; the sandbox enforces the stricter).
	DefaultTransactionalRateLimit = 100
	// DefaultAnonymousMergeWindow is how long after an identify carrying
	// an anonymous_id Customer.io still associates that id's anonymous
	// events with the person ("up to five minutes after", Customer.io's
	// "Anonymous events" documentation).
	DefaultAnonymousMergeWindow = 5 * time.Minute
	// DefaultBroadcastInterval is the minimum time between two triggers of
	// one broadcast.
	DefaultBroadcastInterval = 10 * time.Second
	// DefaultMaxRecorded is how many requests are kept in the recording.
	DefaultMaxRecorded = 100_000
	// DefaultMaxRecordedBody is how many bytes of each request body are kept
	// in the recording.
	DefaultMaxRecordedBody = 64 << 10
	// DefaultSegmentCount and DefaultBroadcastCount are the number of manual
	// segments (ids 1..20) and API-triggered broadcasts (ids 1..20) that
	// exist when Config.Segments / Config.Broadcasts are nil.
	DefaultSegmentCount   = 20
	DefaultBroadcastCount = 20
)

// Limits enforced by the sandbox, as Customer.io's Track, App and Pipelines
// API references and its "Invalid API requests" page document them. The
// Track v2, object and Pipelines size limits take the stricter decimal
// reading of Customer.io's "KB", as the client does, so that a request
// the sandbox accepts is within the limit under either reading.
const (
	MaxPersonIDBytes       = 150                 // person id (path or body), object_id
	MaxAttributes          = 300                 // attributes per identify
	MaxAttributeNameBytes  = 150                 // attribute name
	MaxAttributeValueBytes = 1000                // attribute value (strings: bytes; others: JSON size)
	MaxEventNameBytes      = 100                 // event name, after trimming
	MaxEventDataBytes      = 100_000             // event data, as JSON
	MaxEntityBytes         = 32_000              // v2 /entity body and each /batch item: must be smaller ("32kb", read strictly)
	MaxBatchBytes          = 500_000             // v2 /batch body: must be smaller ("500kb", read strictly)
	MaxObjectAttributes    = 300                 // attributes an object or a relationship holds
	MaxObjectAttrBytes     = 100_000             // an object's or a relationship's attributes, as JSON ("100 Kilobytes")
	MaxSegmentIDs          = 1000                // ids per segment add/remove
	MaxEmailRecipients     = 15                  // to+cc+bcc of a transactional email
	MaxAttachmentBytes     = 2 << 20             // total base64 attachment content: must be smaller (else 413)
	MaxSendAhead           = 90 * 24 * time.Hour // transactional send_at horizon
	MaxBroadcastIDs        = 10_000              // broadcast ids / per_user_data entries
	MaxBroadcastQueued     = 5                   // unprocessed triggers per broadcast
	MaxCDPMessageBytes     = 32_000              // Pipelines message: at most ("32 KB", read strictly)
	MaxCDPBatchBytes       = 500_000             // Pipelines batch: at most ("500 KB", read strictly)
)

const (
	maxRequestBody           = 16 << 20
	defaultTriggerErrorLimit = 100
)

// Config configures a [Server]. The zero value is usable: every zero field
// takes the documented default.
type Config struct {
	// SiteID and TrackAPIKey are the Track API Basic credentials
	// (default DefaultSiteID, DefaultTrackAPIKey).
	SiteID, TrackAPIKey string
	// AppAPIKey is the App API bearer key (default DefaultAppAPIKey).
	AppAPIKey string
	// PipelinesWriteKey is the CDP write key (default DefaultPipelinesWriteKey).
	PipelinesWriteKey string
	// ServiceToken is the sa_live_ token accepted on /v1/send/* with
	// X-Workspace-Id equal to WorkspaceID (default DefaultServiceToken).
	ServiceToken string
	// WorkspaceID is the numeric workspace id (default DefaultWorkspaceID).
	WorkspaceID int
	// Region is "us" or "eu", answered by GET /api/v1/accounts/region
	// (default "us").
	Region string

	// AppRateLimit is the App API limit in requests per second per key,
	// for every App request but transactional sends (0 =
	// DefaultAppRateLimit, negative = no limit).
	AppRateLimit int
	// TransactionalRateLimit is the limit of transactional sends in
	// requests per second per key (0 = DefaultTransactionalRateLimit,
	// negative = no limit).
	TransactionalRateLimit int
	// TrackRateLimit is an optional limit in requests per second on the
	// whole Track group (0 or negative = no limit). Over it the sandbox
	// answers 429 {"meta":{"error":"rate limited"}} with Retry-After: 1.
	TrackRateLimit int
	// TrackRateWindow is the sliding window TrackRateLimit counts in
	// (0 = one second): e.g. 3000 per 3 s.
	TrackRateWindow time.Duration
	// BroadcastInterval is the minimum time between two triggers of one
	// broadcast (0 = DefaultBroadcastInterval, negative = no limit).
	BroadcastInterval time.Duration
	// TriggerProcessingDelay is how long a broadcast trigger stays queued
	// before it is processed (0 = processed immediately).
	TriggerProcessingDelay time.Duration

	// Segments lists the manual segment ids that exist (nil = 1..20; an
	// empty non-nil slice = none).
	Segments []int
	// Broadcasts lists the API-triggered broadcast ids that exist
	// (nil = 1..20; an empty non-nil slice = none).
	Broadcasts []int
	// TransactionalMessages are the workspace's transactional messages:
	// GET /v1/transactional lists them and GET
	// /v1/transactional/{id}/contents serves their Contents (nil =
	// DefaultTransactionalMessages; an empty non-nil slice = none). A send
	// naming one (by id, or by trigger name) is rendered with its
	// message_data: when the template uses a variable the send lacks, the
	// send is still accepted (as Customer.io does) and its delivery marked
	// DeliveryFailed with the reason.
	TransactionalMessages []TransactionalMessage
	// CheckTemplates answers a send naming no message of
	// TransactionalMessages as Customer.io does: 400
	// {"meta":{"error":"\"transactional_message_id\" not found"}}
	// (Customer.io's "Common transactional API errors" page gives the
	// status and the message; the exact bytes are UNCONFIRMED). Off by
	// default: any id is accepted.
	CheckTemplates bool

	// Webhooks sends reporting webhooks of transactional deliveries (see
	// Webhooks; the zero value sends none). Server.SetWebhooks changes it.
	Webhooks Webhooks
	// DeliveryFailure, when set, is asked about every transactional send
	// the sandbox accepts: a non-empty answer marks the delivery failed
	// with that reason (Delivery.Status "failed", FailureMessage), which its
	// reporting webhook and GET /v1/messages/{id} report.
	DeliveryFailure func(d Delivery) string

	// MaxRecorded caps the recorded requests; the oldest are dropped first
	// (0 = DefaultMaxRecorded, negative = record nothing). Counters stay
	// exact whatever the cap.
	MaxRecorded int
	// MaxRecordedBody caps the bytes of each recorded body
	// (0 = DefaultMaxRecordedBody, negative = keep no body).
	MaxRecordedBody int

	// AnonymousMergeWindow is how long after an identify that carries an
	// anonymous_id the anonymous events of that id are still associated
	// with the person (0 = DefaultAnonymousMergeWindow, Customer.io's five
	// minutes; negative = forever). Later ones stay anonymous, marked
	// Orphaned.
	AnonymousMergeWindow time.Duration

	// Now is the clock (default time.Now). Rate limits, trigger processing,
	// the anonymous merge window and timestamps all read it, so tests can
	// step time by hand.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&c.SiteID, DefaultSiteID)
	def(&c.TrackAPIKey, DefaultTrackAPIKey)
	def(&c.AppAPIKey, DefaultAppAPIKey)
	def(&c.PipelinesWriteKey, DefaultPipelinesWriteKey)
	def(&c.ServiceToken, DefaultServiceToken)
	def(&c.Region, "us")
	if c.WorkspaceID == 0 {
		c.WorkspaceID = DefaultWorkspaceID
	}
	if c.AppRateLimit == 0 {
		c.AppRateLimit = DefaultAppRateLimit
	}
	if c.TransactionalRateLimit == 0 {
		c.TransactionalRateLimit = DefaultTransactionalRateLimit
	}
	if c.BroadcastInterval == 0 {
		c.BroadcastInterval = DefaultBroadcastInterval
	}
	if c.Segments == nil {
		c.Segments = seq(DefaultSegmentCount)
	}
	if c.Broadcasts == nil {
		c.Broadcasts = seq(DefaultBroadcastCount)
	}
	if c.TransactionalMessages == nil {
		c.TransactionalMessages = DefaultTransactionalMessages()
	}
	if c.MaxRecorded == 0 {
		c.MaxRecorded = DefaultMaxRecorded
	}
	if c.MaxRecordedBody == 0 {
		c.MaxRecordedBody = DefaultMaxRecordedBody
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AnonymousMergeWindow == 0 {
		c.AnonymousMergeWindow = DefaultAnonymousMergeWindow
	}
	return c
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

// TransactionalMessage is one transactional message (template) the App
// API's GET /v1/transactional lists, with Customer.io's field names.
type TransactionalMessage struct {
	ID                 int64  `json:"id"`
	Name               string `json:"name"`
	Description        string `json:"description"`
	SendToUnsubscribed bool   `json:"send_to_unsubscribed"`
	LinkTracking       bool   `json:"link_tracking"`
	OpenTracking       bool   `json:"open_tracking"`
	HideMessageBody    bool   `json:"hide_message_body"`
	QueueDrafts        bool   `json:"queue_drafts"`
	CreatedAt          int64  `json:"created_at"`
	UpdatedAt          int64  `json:"updated_at"`
	// Trigger is the trigger name a send may give instead of the id
	// (compared case-insensitively; "" = Name). Customer.io's list does
	// not show it.
	Trigger string `json:"-"`
	// Contents are the message's content variants (GET
	// /v1/transactional/{id}/contents), rendered for its sends.
	Contents []TransactionalContent `json:"-"`
}

// DefaultTransactionalMessages are the messages of a sandbox whose
// Config.TransactionalMessages is nil: 1 "password_reset" (variables
// reset_link, and expiry_hours with a default) and 2 "order_confirmation"
// (order_id, total, a loop over items with quantity, name and price, and
// an optional coupon), the demo's two sends, each with one email content.
func DefaultTransactionalMessages() []TransactionalMessage {
	const created = 1552341937 // the example time of Customer.io's reference
	msgs := []TransactionalMessage{
		{ID: 1, Name: "password_reset", Description: "sends a link to reset a password", LinkTracking: true, OpenTracking: true, HideMessageBody: true, CreatedAt: created, UpdatedAt: created},
		{ID: 2, Name: "order_confirmation", Description: "confirms an order", LinkTracking: true, OpenTracking: true, CreatedAt: created, UpdatedAt: created},
	}
	for i := range msgs {
		msgs[i].Contents = defaultContents(msgs[i].ID, msgs[i].Name)
	}
	return msgs
}
