package customerio

import (
	"context"
	"net/http"
	"net/url"
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

// SubmitForm submits a form: POST /api/v1/forms/{formID}/submit with
// {"data":{...}}. data needs exactly one of "email" or "id". Success is 204.
func (c *Client) SubmitForm(ctx context.Context, formID string, data map[string]string) error {
	if strings.TrimSpace(formID) == "" {
		return invalid("form_id", "is required")
	}
	if len(formID) > MaxIDBytes {
		return invalid("form_id", "must be at most 150 bytes")
	}
	if (strings.TrimSpace(data["email"]) == "") == (strings.TrimSpace(data["id"]) == "") {
		return invalid("data", "exactly one of email, id is required")
	}
	if err := checkStringAttributes("data", data); err != nil {
		return err
	}
	return c.trackV1(ctx, "submit_form", http.MethodPost, []string{"api", "v1", "forms", formID, "submit"}, struct {
		Data map[string]string `json:"data"`
	}{data}, formID)
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
// GET /api/v1/accounts/region, answered on either regional host (contract
// §1). It changes nothing and needs no person, which makes it the Track
// API's credentials check: wrong credentials fail with a ClassAuth
// *APIError (401).
func (c *Client) Region(ctx context.Context) (*AccountRegion, error) {
	rq := &request{api: APITrack, op: "region", method: http.MethodGet, path: []string{"api", "v1", "accounts", "region"}}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var out AccountRegion
	if err := resp.decode(rq, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
