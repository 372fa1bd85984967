package customerio

import (
	"context"
	"net/http"
)

// Pipelines sends one Data Pipelines (CDP) call: POST <PipelinesURL>/{call}
// (identify, track, page, screen, group or alias) with m as the body. In
// permissive mode (the default) Customer.io answers 200 even to invalid
// calls; Config.PipelinesStrict asks for 4xx instead.
func (c *Client) Pipelines(ctx context.Context, call PipelinesCall, m PipelinesMessage) error {
	if err := m.Validate(call); err != nil {
		return err
	}
	_, err := c.do(ctx, &request{api: APIPipelines, op: string(call), method: http.MethodPost, path: []string{string(call)}, body: m})
	return err
}

// PipelinesBatch sends several Pipelines messages in one request:
// POST <PipelinesURL>/batch with {"batch":[...]}. Every message needs its
// Type; the request must stay within 500,000 bytes.
func (c *Client) PipelinesBatch(ctx context.Context, msgs []PipelinesMessage) error {
	if err := validatePipelinesBatch(msgs); err != nil {
		return err
	}
	_, err := c.do(ctx, &request{api: APIPipelines, op: "batch", method: http.MethodPost, path: []string{"batch"}, body: pipelinesBatchBody{msgs}})
	return err
}
