package tasks

import (
	"github.com/cioq/cioq/customerio"
)

// API-triggered broadcasts (App API).

// BroadcastTrigger triggers an API-triggered broadcast (POST
// /v1/campaigns/{broadcast_id}/triggers). Its JSON is broadcast_id next to
// Customer.io's trigger body.
type BroadcastTrigger struct {
	// BroadcastID is the broadcast (campaign) id (required).
	BroadcastID int `json:"broadcast_id"`
	customerio.TriggerBroadcastRequest
}

// TaskType returns TypeBroadcastTrigger.
func (BroadcastTrigger) TaskType() string { return TypeBroadcastTrigger }

// Validate checks the broadcast id and the trigger body.
func (p BroadcastTrigger) Validate() error {
	if p.BroadcastID <= 0 {
		return invalid("broadcast_id", "must be a positive integer")
	}
	return p.TriggerBroadcastRequest.Validate()
}
