package customerio

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// RecipientFilter is a broadcast audience filter: exactly one of its fields.
type RecipientFilter struct {
	And       []RecipientFilter `json:"and,omitempty"`
	Or        []RecipientFilter `json:"or,omitempty"`
	Not       *RecipientFilter  `json:"not,omitempty"`
	Segment   *SegmentRef       `json:"segment,omitempty"`
	Attribute *AttributeFilter  `json:"attribute,omitempty"`
}

// SegmentRef names a segment in a recipient filter.
type SegmentRef struct {
	ID int `json:"id"`
}

// AttributeFilter matches people by an attribute: operator "eq" (with Value)
// or "exists".
type AttributeFilter struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    any    `json:"value,omitempty"`
}

// PerUserData is one row of a broadcast's per_user_data: ID or Email, and the
// data for that person's message.
type PerUserData struct {
	ID    string         `json:"id,omitempty"`
	Email string         `json:"email,omitempty"`
	Data  map[string]any `json:"data,omitempty"`
}

// TriggerBroadcastRequest is the body of POST /v1/campaigns/{id}/triggers. At
// most one recipient shape (Recipients, Emails, IDs, PerUserData, DataFileURL)
// is set; none means the broadcast's default audience. Only the flags that
// belong to the chosen shape may be set: ids → IDIgnoreMissing; emails →
// EmailIgnoreMissing, EmailAddDuplicates; per_user_data and data_file_url → all.
type TriggerBroadcastRequest struct {
	Data               map[string]any   `json:"data,omitempty"`
	Recipients         *RecipientFilter `json:"recipients,omitempty"`
	Emails             []string         `json:"emails,omitempty"`
	IDs                []string         `json:"ids,omitempty"`
	PerUserData        []PerUserData    `json:"per_user_data,omitempty"`
	DataFileURL        string           `json:"data_file_url,omitempty"`
	IDIgnoreMissing    bool             `json:"id_ignore_missing,omitempty"`
	EmailIgnoreMissing bool             `json:"email_ignore_missing,omitempty"`
	EmailAddDuplicates bool             `json:"email_add_duplicates,omitempty"`
}

// BroadcastTrigger is Customer.io's answer to a trigger: the trigger id.
type BroadcastTrigger struct {
	ID int `json:"id"`
}

// TriggerStatus is a broadcast trigger's state.
type TriggerStatus struct {
	ID          int   `json:"id"`
	BroadcastID int   `json:"broadcast_id"`
	CreatedAt   int64 `json:"created_at"`
	ProcessedAt int64 `json:"processed_at,omitempty"`
}

// TriggerErrors is one page of a trigger's errors. Next is the start offset of
// the following page.
type TriggerErrors struct {
	Errors []string `json:"errors"`
	Next   int      `json:"next,omitempty"`
}

// TriggerBroadcast triggers an API-triggered broadcast:
// POST /v1/campaigns/{broadcastID}/triggers. r nil (or with no recipient
// shape) sends to the broadcast's default audience; the body is then {} or
// {"data":...}, never an empty recipients filter. Customer.io allows one
// trigger per 10 seconds and 5 queued per broadcast.
func (c *Client) TriggerBroadcast(ctx context.Context, broadcastID int, r *TriggerBroadcastRequest) (*BroadcastTrigger, error) {
	if broadcastID < 1 {
		return nil, invalid("broadcast_id", "must be a positive broadcast id")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var body any = r
	if r == nil {
		body = struct{}{}
	}
	rq := &request{api: APIApp, op: "trigger_broadcast", method: http.MethodPost,
		path: []string{"v1", "campaigns", strconv.Itoa(broadcastID), "triggers"}, body: body}
	return doJSON[BroadcastTrigger](ctx, c, rq)
}

// TriggerStatus reads a broadcast trigger's state:
// GET /v1/campaigns/{broadcastID}/triggers/{triggerID}.
func (c *Client) TriggerStatus(ctx context.Context, broadcastID, triggerID int) (*TriggerStatus, error) {
	if err := checkTriggerIDs(broadcastID, triggerID); err != nil {
		return nil, err
	}
	rq := &request{api: APIApp, op: "trigger_status", method: http.MethodGet,
		path: []string{"v1", "campaigns", strconv.Itoa(broadcastID), "triggers", strconv.Itoa(triggerID)}}
	return doJSON[TriggerStatus](ctx, c, rq)
}

// TriggerErrors reads one page of a trigger's errors:
// GET /v1/campaigns/{broadcastID}/triggers/{triggerID}/errors?start=&limit=.
// start and limit are sent when positive; the next page starts at the
// result's Next.
func (c *Client) TriggerErrors(ctx context.Context, broadcastID, triggerID, start, limit int) (*TriggerErrors, error) {
	if err := checkTriggerIDs(broadcastID, triggerID); err != nil {
		return nil, err
	}
	if start < 0 {
		return nil, invalid("start", "must not be negative")
	}
	if limit < 0 {
		return nil, invalid("limit", "must not be negative")
	}
	q := url.Values{}
	if start > 0 {
		q.Set("start", strconv.Itoa(start))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	rq := &request{api: APIApp, op: "trigger_errors", method: http.MethodGet, query: q,
		path: []string{"v1", "campaigns", strconv.Itoa(broadcastID), "triggers", strconv.Itoa(triggerID), "errors"}}
	return doJSON[TriggerErrors](ctx, c, rq)
}

// checkTriggerIDs requires a positive broadcast id and trigger id.
func checkTriggerIDs(broadcastID, triggerID int) error {
	if broadcastID < 1 {
		return invalid("broadcast_id", "must be a positive broadcast id")
	}
	if triggerID < 1 {
		return invalid("trigger_id", "must be a positive trigger id")
	}
	return nil
}

// Validate checks an API-triggered broadcast: at most one recipient shape
// (none means the default audience), only the flags of that shape (ids:
// id_ignore_missing; emails: email_ignore_missing, email_add_duplicates;
// per_user_data and data_file_url: all three; default audience and a
// recipients filter: none), at most 10,000 ids or per_user_data rows, each
// row naming exactly one of id or email, a well-formed recipients filter and
// an absolute http(s) data_file_url.
func (r *TriggerBroadcastRequest) Validate() error {
	if r == nil {
		return nil // the default audience with no data
	}
	shape, err := r.recipientShape()
	if err != nil {
		return err
	}
	if err := r.checkFlags(shape); err != nil {
		return err
	}
	if err := r.checkRecipients(shape); err != nil {
		return err
	}
	if r.Data != nil && encodedSize(r.Data) < 0 {
		return invalid("data", "cannot be encoded as JSON")
	}
	return nil
}

// recipientShape names the one recipient shape r sets ("" for the default
// audience), refusing more than one.
func (r *TriggerBroadcastRequest) recipientShape() (string, error) {
	shapes := 0
	var shape string
	if r.Recipients != nil {
		shapes, shape = shapes+1, "recipients"
	}
	if r.Emails != nil {
		shapes, shape = shapes+1, "emails"
	}
	if r.IDs != nil {
		shapes, shape = shapes+1, "ids"
	}
	if r.PerUserData != nil {
		shapes, shape = shapes+1, "per_user_data"
	}
	if r.DataFileURL != "" {
		shapes, shape = shapes+1, "data_file_url"
	}
	if shapes > 1 {
		return "", invalid("recipients", "at most one of recipients, emails, ids, per_user_data, data_file_url may be set")
	}
	return shape, nil
}

// checkFlags refuses a recipient flag that does not belong to shape.
func (r *TriggerBroadcastRequest) checkFlags(shape string) error {
	allowed := map[string]bool{}
	switch shape {
	case "ids":
		allowed["id_ignore_missing"] = true
	case "emails":
		allowed["email_ignore_missing"], allowed["email_add_duplicates"] = true, true
	case "per_user_data", "data_file_url":
		allowed["id_ignore_missing"], allowed["email_ignore_missing"], allowed["email_add_duplicates"] = true, true, true
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"id_ignore_missing", r.IDIgnoreMissing}, {"email_ignore_missing", r.EmailIgnoreMissing}, {"email_add_duplicates", r.EmailAddDuplicates}} {
		if f.set && !allowed[f.name] {
			if shape == "" {
				shape = "the default audience"
			}
			return invalid(f.name, "does not apply to "+shape)
		}
	}
	return nil
}

// checkRecipients checks the recipients of shape: a well-formed filter,
// valid emails, at most 10,000 ids or rows naming one person each, an
// absolute http(s) data_file_url.
func (r *TriggerBroadcastRequest) checkRecipients(shape string) error {
	switch shape {
	case "recipients":
		if err := checkFilter("recipients", r.Recipients, 0); err != nil {
			return err
		}
	case "emails":
		if len(r.Emails) == 0 {
			return invalid("emails", "at least one email is required")
		}
		for i, e := range r.Emails {
			if strings.TrimSpace(e) == "" || !strings.Contains(e, "@") {
				return invalid(idx("emails", i), "must be an email address")
			}
		}
	case "ids":
		if len(r.IDs) == 0 {
			return invalid("ids", "at least one id is required")
		}
		if len(r.IDs) > MaxBroadcastRecipients {
			return invalid("ids", "at most 10000 ids")
		}
		for i, id := range r.IDs {
			if err := checkID(idx("ids", i), id); err != nil {
				return err
			}
		}
	case "per_user_data":
		if len(r.PerUserData) == 0 {
			return invalid("per_user_data", "at least one row is required")
		}
		if len(r.PerUserData) > MaxBroadcastRecipients {
			return invalid("per_user_data", "at most 10000 rows")
		}
		for i, row := range r.PerUserData {
			f := idx("per_user_data", i)
			if (row.ID == "") == (row.Email == "") {
				return invalid(f, "exactly one of id, email is required")
			}
			if err := checkID(f, row.ID+row.Email); err != nil {
				return err
			}
		}
	case "data_file_url":
		u, err := url.Parse(r.DataFileURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("data_file_url", "must be an absolute http or https URL")
		}
	}
	return nil
}

// checkFilter: exactly one key per level; and/or non-empty; segment id > 0;
// attribute field set, operator eq (with a value) or exists.
func checkFilter(field string, f *RecipientFilter, depth int) error {
	if f == nil {
		return invalid(field, "exactly one of and, or, not, segment, attribute is required")
	}
	if depth > 20 {
		return invalid(field, "is nested too deeply")
	}
	n := 0
	for _, set := range []bool{f.And != nil, f.Or != nil, f.Not != nil, f.Segment != nil, f.Attribute != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalid(field, "exactly one of and, or, not, segment, attribute is required")
	}
	switch {
	case f.And != nil || f.Or != nil:
		list, name := f.And, "and"
		if f.Or != nil {
			list, name = f.Or, "or"
		}
		if len(list) == 0 {
			return invalid(join(field, name), "at least one filter is required")
		}
		for i := range list {
			if err := checkFilter(idx(join(field, name), i), &list[i], depth+1); err != nil {
				return err
			}
		}
	case f.Not != nil:
		return checkFilter(join(field, "not"), f.Not, depth+1)
	case f.Segment != nil:
		if f.Segment.ID < 1 {
			return invalid(join(field, "segment.id"), "must be a positive segment id")
		}
	case f.Attribute != nil:
		a := f.Attribute
		if strings.TrimSpace(a.Field) == "" {
			return invalid(join(field, "attribute.field"), "is required")
		}
		switch a.Operator {
		case "eq":
			if a.Value == nil {
				return invalid(join(field, "attribute.value"), `is required with operator "eq"`)
			}
		case "exists":
		default:
			return invalid(join(field, "attribute.operator"), `must be "eq" or "exists"`)
		}
	}
	return nil
}
