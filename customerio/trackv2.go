package customerio

import (
	"context"
	"net/http"
)

// Entity sends one Track v2 operation: POST /api/v2/entity. A 2xx answer
// that still lists errors is reported as a permanent *APIError.
func (c *Client) Entity(ctx context.Context, op Operation) error {
	if err := op.Validate(); err != nil {
		return err
	}
	rq := &request{api: APITrack, op: "entity", method: http.MethodPost, path: []string{"api", "v2", "entity"}, body: op}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return err
	}
	if msg := parseMessage(resp.body); len(resp.body) > 0 && msg != "" && hasErrors(resp.body) {
		return &APIError{API: APITrack, Operation: rq.op, StatusCode: resp.status, Class: ClassPermanent,
			Message: truncate(resp.scrub.scrub(msg), maxMessageBytes)}
	}
	return nil
}

// Batch sends Track v2 operations in one request: POST /api/v2/batch with
// {"batch":[...]}. The error is non-nil only when the whole request failed;
// otherwise the BatchResult lists the items Customer.io rejected (from a 207,
// or from a 200 that carries errors), by batch_index. Their texts are
// scrubbed like APIError messages.
func (c *Client) Batch(ctx context.Context, ops []Operation) (BatchResult, error) {
	if err := ValidateBatch(ops); err != nil {
		return BatchResult{}, err
	}
	rq := &request{api: APITrack, op: "batch", method: http.MethodPost, path: []string{"api", "v2", "batch"}, body: batchBody{ops}}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return BatchResult{}, err
	}
	var res BatchResult
	if len(resp.body) == 0 || !hasErrors(resp.body) {
		if resp.status == http.StatusMultiStatus {
			return BatchResult{}, &APIError{API: APITrack, Operation: rq.op, StatusCode: resp.status, Class: ClassPermanent,
				Message: "207 without a readable errors list"}
		}
		return res, nil
	}
	if err := resp.decode(rq, &res); err != nil {
		return BatchResult{}, err
	}
	for i := range res.Errors {
		e := &res.Errors[i]
		e.Reason = truncate(resp.scrub.scrub(e.Reason), maxMessageBytes)
		e.Field = truncate(resp.scrub.scrub(e.Field), maxMessageBytes)
		e.Message = truncate(resp.scrub.scrub(e.Message), maxMessageBytes)
	}
	return res, nil
}

// hasErrors reports whether a JSON body has a non-empty "errors" member.
func hasErrors(body []byte) bool {
	var v struct {
		Errors []any `json:"errors"`
	}
	return decodeLoose(body, &v) && len(v.Errors) > 0
}

// ItemError returns Customer.io's error for item i of the batch, or nil when
// item i was accepted.
func (r BatchResult) ItemError(i int) *BatchItemError {
	for k := range r.Errors {
		if r.Errors[k].BatchIndex == i {
			e := r.Errors[k]
			return &e
		}
	}
	return nil
}
