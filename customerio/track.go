package customerio

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// personPath returns the v1 path of a person: /api/v1/customers/{id}[/more...].
// A "cio_"-prefixed id addresses a cio_id and is passed through as is.
func personPath(id string, more ...string) []string {
	return append([]string{"api", "v1", "customers", id}, more...)
}

// trackV1 sends a Track v1 request whose success body is ignored.
func (c *Client) trackV1(ctx context.Context, op, method string, path []string, body any, pathValues ...string) error {
	_, err := c.do(ctx, &request{api: APITrack, op: op, method: method, path: path, body: body, pathValues: pathValues})
	return err
}

// Identify creates or updates a person: PUT /api/v1/customers/{id} with the
// attributes as the body. id is an id, an email, or "cio_<cio_id>".
func (c *Client) Identify(ctx context.Context, id string, attributes map[string]any) error {
	if err := ValidatePersonID("id", id); err != nil {
		return err
	}
	if err := ValidateAttributes("attributes", attributes); err != nil {
		return err
	}
	if attributes == nil {
		attributes = map[string]any{}
	}
	return c.trackV1(ctx, "identify", http.MethodPut, personPath(id), attributes, id)
}

// Delete deletes a person: DELETE /api/v1/customers/{id}, no body.
func (c *Client) Delete(ctx context.Context, id string) error {
	if err := ValidatePersonID("id", id); err != nil {
		return err
	}
	return c.trackV1(ctx, "delete", http.MethodDelete, personPath(id), nil, id)
}

// Suppress deletes a person and blocks their identifiers from coming back:
// POST /api/v1/customers/{id}/suppress, no body.
func (c *Client) Suppress(ctx context.Context, id string) error {
	if err := ValidatePersonID("id", id); err != nil {
		return err
	}
	return c.trackV1(ctx, "suppress", http.MethodPost, personPath(id, "suppress"), nil, id)
}

// Unsuppress frees a suppressed identifier:
// POST /api/v1/customers/{id}/unsuppress, no body.
func (c *Client) Unsuppress(ctx context.Context, id string) error {
	if err := ValidatePersonID("id", id); err != nil {
		return err
	}
	return c.trackV1(ctx, "unsuppress", http.MethodPost, personPath(id, "unsuppress"), nil, id)
}

// EventType is the kind of a tracked event: a plain event, a page view or a
// screen view.
type EventType string

// Event types accepted by the Track API.
const (
	EventTypeEvent  EventType = "event"
	EventTypePage   EventType = "page"
	EventTypeScreen EventType = "screen"
)

// Event is the body of POST /api/v1/customers/{id}/events. For page views
// Name is the page URL or path; for screen views, the screen name.
type Event struct {
	Name string `json:"name"`
	// ID is a ULID; Customer.io drops an event whose id it has already seen.
	ID        string         `json:"id,omitempty"`
	Type      EventType      `json:"type,omitempty"`
	Timestamp int64          `json:"timestamp,omitempty"` // unix seconds
	Data      map[string]any `json:"data,omitempty"`
}

// AnonymousEvent is the body of POST /api/v1/events. With AnonymousID empty
// it is an invite event, which needs Data["recipient"].
type AnonymousEvent struct {
	AnonymousID string         `json:"anonymous_id,omitempty"`
	Name        string         `json:"name"`
	ID          string         `json:"id,omitempty"`
	Type        EventType      `json:"type,omitempty"`
	Timestamp   int64          `json:"timestamp,omitempty"`
	Data        map[string]any `json:"data,omitempty"`
}

// Track records an event (or, with Type page or screen, a page or screen
// view) for a person: POST /api/v1/customers/{id}/events. Give every event a
// ULID ID so that a retried delivery is dropped as a duplicate.
func (c *Client) Track(ctx context.Context, id string, ev Event) error {
	if err := ValidatePersonID("id", id); err != nil {
		return err
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	return c.trackV1(ctx, "track", http.MethodPost, personPath(id, "events"), ev, id)
}

// TrackAnonymous records an anonymous event: POST /api/v1/events. Without
// an AnonymousID it is an invite event, which needs Data["recipient"].
func (c *Client) TrackAnonymous(ctx context.Context, ev AnonymousEvent) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	return c.trackV1(ctx, "track_anonymous", http.MethodPost, []string{"api", "v1", "events"}, ev)
}

// Validate checks a person's event: name non-blank and at most 100 bytes,
// type event|page|screen, id a ULID when set, timestamp not negative, data
// at most 100,000 bytes encoded.
func (e Event) Validate() error {
	if err := checkEventName("name", e.Name); err != nil {
		return err
	}
	if err := checkEventType("type", e.Type); err != nil {
		return err
	}
	if err := checkULID("id", e.ID); err != nil {
		return err
	}
	if e.Timestamp < 0 {
		return invalid("timestamp", "must not be negative")
	}
	return checkEventData("data", e.Data)
}

// Validate checks an anonymous event like Event.Validate; anonymous_id is at
// most 150 bytes, and an invite event (no anonymous_id) needs a non-blank
// data.recipient.
func (e AnonymousEvent) Validate() error {
	if err := (Event{Name: e.Name, ID: e.ID, Type: e.Type, Timestamp: e.Timestamp, Data: e.Data}).Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(e.AnonymousID) == "" {
		if r, _ := e.Data["recipient"].(string); strings.TrimSpace(r) == "" {
			return invalid("data.recipient", "is required for an invite event (no anonymous_id)")
		}
		return nil
	}
	return checkID("anonymous_id", e.AnonymousID)
}

// checkEventName: non-blank after trimming, at most 100 bytes.
func checkEventName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid(field, "must not be blank")
	}
	if len(name) > MaxEventNameBytes {
		return invalid(field, "must be at most 100 bytes")
	}
	return nil
}

// checkULID accepts "" or 26 Crockford base32 characters.
func checkULID(field, id string) error {
	if id == "" {
		return nil
	}
	if len(id) != 26 || id[0] > '7' {
		return invalid(field, "must be a ULID")
	}
	for i := 0; i < len(id); i++ {
		c := id[i] | 0x20 // lower-case letters
		if !(id[i] >= '0' && id[i] <= '9' || c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u') {
			return invalid(field, "must be a ULID")
		}
	}
	return nil
}

func checkEventType(field string, t EventType) error {
	switch t {
	case "", EventTypeEvent, EventTypePage, EventTypeScreen:
		return nil
	}
	return invalid(field, `must be "event", "page" or "screen"`)
}

func checkEventData(field string, data map[string]any) error {
	if data == nil {
		return nil
	}
	return checkEncoded(field, data, MaxEventDataBytes, false, "must be at most 100000 bytes encoded")
}

// Device is a push device for PUT /api/v1/customers/{id}/devices (v1 names the
// token "id"). Attributes are strings per the API (device_os, app_version, ...).
type Device struct {
	ID         string            `json:"id"`
	Platform   string            `json:"platform"`
	LastUsed   int64             `json:"last_used,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// AddDevice adds or updates a person's push device:
// PUT /api/v1/customers/{id}/devices with {"device":{...}}.
func (c *Client) AddDevice(ctx context.Context, id string, d Device) error {
	if err := ValidatePersonID("id", id); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}
	return c.trackV1(ctx, "add_device", http.MethodPut, personPath(id, "devices"), struct {
		Device Device `json:"device"`
	}{d}, id)
}

// DeleteDevice removes a person's device:
// DELETE /api/v1/customers/{id}/devices/{deviceID}, no body.
func (c *Client) DeleteDevice(ctx context.Context, id, deviceID string) error {
	if err := ValidatePersonID("id", id); err != nil {
		return err
	}
	if strings.TrimSpace(deviceID) == "" {
		return invalid("device_id", "is required")
	}
	return c.trackV1(ctx, "delete_device", http.MethodDelete, personPath(id, "devices", deviceID), nil, id, deviceID)
}

// Validate checks a v1 device: a non-blank token (id; no length is
// documented), platform ios or android, last_used not negative, and string
// attributes within the attribute limits.
func (d Device) Validate() error {
	if strings.TrimSpace(d.ID) == "" {
		return invalid("device.id", "is required")
	}
	if err := checkPlatform("device.platform", d.Platform); err != nil {
		return err
	}
	if d.LastUsed < 0 {
		return invalid("device.last_used", "must not be negative")
	}
	return checkStringAttributes("device.attributes", d.Attributes)
}

func checkPlatform(field, p string) error {
	switch p {
	case "ios", "android":
		return nil
	}
	return invalid(field, `must be "ios" or "android"`)
}

// MergeCustomers merges secondary into primary (irreversible; secondary is
// deleted): POST /api/v1/merge_customers. Each names exactly one of id,
// email or cio_id (bare value).
func (c *Client) MergeCustomers(ctx context.Context, primary, secondary Identifiers) error {
	if err := ValidatePersonIdentifiers("primary", &primary); err != nil {
		return err
	}
	if err := ValidatePersonIdentifiers("secondary", &secondary); err != nil {
		return err
	}
	return c.trackV1(ctx, "merge_customers", http.MethodPost, []string{"api", "v1", "merge_customers"}, struct {
		Primary   Identifiers `json:"primary"`
		Secondary Identifiers `json:"secondary"`
	}{primary, secondary})
}

// IDType says what the ids of a manual segment request are.
type IDType string

// Identifier types for segment membership requests and merges.
const (
	IDTypeID    IDType = "id"
	IDTypeEmail IDType = "email"
	IDTypeCioID IDType = "cio_id"
)

// AddToSegment adds people to a manual segment:
// POST /api/v1/segments/{segmentID}/add_customers[?id_type=...]. idType ""
// or IDTypeID sends no id_type. Lists longer than 1000 ids are sent as
// consecutive requests of at most 1000, in order; the first failure stops
// the rest and is returned (adding again is harmless, so the caller may
// retry the whole call).
func (c *Client) AddToSegment(ctx context.Context, segmentID int, idType IDType, ids []string) error {
	return c.segment(ctx, "add_to_segment", "add_customers", segmentID, idType, ids)
}

// RemoveFromSegment removes people from a manual segment:
// POST /api/v1/segments/{segmentID}/remove_customers[?id_type=...], split
// like AddToSegment.
func (c *Client) RemoveFromSegment(ctx context.Context, segmentID int, idType IDType, ids []string) error {
	return c.segment(ctx, "remove_from_segment", "remove_customers", segmentID, idType, ids)
}

func (c *Client) segment(ctx context.Context, op, verb string, segmentID int, idType IDType, ids []string) error {
	if segmentID < 1 {
		return invalid("segment_id", "must be a positive segment id")
	}
	if err := checkIDType("id_type", idType); err != nil {
		return err
	}
	if err := ValidateSegmentIDs("ids", ids); err != nil {
		return err
	}
	var q url.Values
	if idType != "" && idType != IDTypeID {
		q = url.Values{"id_type": {string(idType)}}
	}
	for start := 0; start < len(ids); start += MaxSegmentIDs {
		end := min(start+MaxSegmentIDs, len(ids))
		_, err := c.do(ctx, &request{
			api: APITrack, op: op, method: http.MethodPost,
			path:  []string{"api", "v1", "segments", strconv.Itoa(segmentID), verb},
			query: q,
			body: struct {
				IDs []string `json:"ids"`
			}{ids[start:end]},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ValidateSegmentIDs checks the ids of a manual segment request: at least
// one, each non-blank and at most 150 bytes. Lists longer than 1000 are not
// refused: the client splits them.
func ValidateSegmentIDs(field string, ids []string) error {
	if len(ids) == 0 {
		return invalid(field, "at least one id is required")
	}
	for i, id := range ids {
		if err := checkID(idx(field, i), id); err != nil {
			return err
		}
	}
	return nil
}

func checkIDType(field string, t IDType) error {
	switch t {
	case "", IDTypeID, IDTypeEmail, IDTypeCioID:
		return nil
	}
	return invalid(field, `must be "id", "email" or "cio_id"`)
}

// SubmitForm submits a form: POST /api/v1/forms/{formID}/submit with
// {"data":{...}}. data needs exactly one of "email" or "id". Success is 204.
func (c *Client) SubmitForm(ctx context.Context, formID string, data map[string]string) error {
	if err := ValidateForm(formID, data); err != nil {
		return err
	}
	return c.trackV1(ctx, "submit_form", http.MethodPost, []string{"api", "v1", "forms", formID, "submit"}, struct {
		Data map[string]string `json:"data"`
	}{data}, formID)
}

// ValidateForm checks a form submission: a form id (non-blank, at most 150
// bytes) and data with exactly one of "email" or "id", at most 300 fields.
func ValidateForm(formID string, data map[string]string) error {
	if strings.TrimSpace(formID) == "" {
		return invalid("form_id", "is required")
	}
	if len(formID) > MaxIDBytes {
		return invalid("form_id", "must be at most 150 bytes")
	}
	if (strings.TrimSpace(data["email"]) == "") == (strings.TrimSpace(data["id"]) == "") {
		return invalid("data", "exactly one of email, id is required")
	}
	return checkStringAttributes("data", data)
}

// Metric is a delivery metric reported to Customer.io for a message it
// sent (POST /api/v1/metrics, the universal metrics endpoint): how a
// mobile backend or an email relay tells Customer.io that a delivery was
// opened, clicked, converted, delivered or bounced, so its campaign metrics
// and conversions count it.
type Metric struct {
	// DeliveryID is the CIO-Delivery-ID of the message (required).
	DeliveryID string `json:"delivery_id"`
	// Metric is one of MetricNames (required).
	Metric string `json:"metric"`
	// Href is the link clicked (clicked metrics).
	Href string `json:"href,omitempty"`
	// Reason says why a failure metric (bounced, dropped, ...) happened.
	Reason string `json:"reason,omitempty"`
	// Recipient is the address that received the message.
	Recipient string `json:"recipient,omitempty"`
	// Timestamp is when it happened, Unix seconds (0 = when received).
	Timestamp int64 `json:"timestamp,omitempty"`
}

// MetricNames are the metrics /api/v1/metrics accepts.
var MetricNames = []string{"bounced", "clicked", "converted", "deferred", "delivered", "dropped", "opened", "spammed"}

// Validate checks the delivery id, the metric name and the timestamp.
func (m *Metric) Validate() error {
	if err := checkID("delivery_id", m.DeliveryID); err != nil {
		return err
	}
	if !slices.Contains(MetricNames, m.Metric) {
		return invalid("metric", "must be one of "+strings.Join(MetricNames, ", "))
	}
	if m.Timestamp < 0 {
		return invalid("timestamp", "must be Unix seconds")
	}
	return nil
}

// ReportMetric reports a delivery metric: POST /api/v1/metrics.
func (c *Client) ReportMetric(ctx context.Context, m Metric) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return c.trackV1(ctx, "report_metric", http.MethodPost, []string{"api", "v1", "metrics"}, m)
}

// AccountRegion is the answer of the Track API's region lookup.
type AccountRegion struct {
	// URL is the Track API base URL of the account's region, e.g.
	// "https://track-eu.customer.io".
	URL string `json:"url"`
	// Region is "us" or "eu".
	Region string `json:"region"`
	// EnvironmentID is the id of the workspace the credentials belong to.
	EnvironmentID int64 `json:"environment_id"`
}

// Region looks up the region and workspace of the Track credentials:
// GET /api/v1/accounts/region, answered on either regional host
// (Customer.io's Track API reference). It changes nothing and needs no person, which makes it the Track
// API's credentials check: wrong credentials fail with a ClassAuth
// *APIError (401).
func (c *Client) Region(ctx context.Context) (*AccountRegion, error) {
	rq := &request{api: APITrack, op: "region", method: http.MethodGet, path: []string{"api", "v1", "accounts", "region"}}
	return doJSON[AccountRegion](ctx, c, rq)
}
