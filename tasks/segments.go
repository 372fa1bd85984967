package tasks

import (
	"github.com/cioq/cioq/customerio"
)

// Manual segment membership (Track v1).

// SegmentAdd adds people to a manual segment (POST
// /api/v1/segments/{segment_id}/add_customers). The worker splits more than
// 1000 ids into several requests.
type SegmentAdd struct {
	// SegmentID is the manual segment's id (required).
	SegmentID int `json:"segment_id"`
	// IDs are the people's identifiers, of the kind IDType says.
	IDs []string `json:"ids"`
	// IDType is id (default), email or cio_id.
	IDType customerio.IDType `json:"id_type,omitempty"`
}

// TaskType returns TypeSegmentAdd.
func (SegmentAdd) TaskType() string { return TypeSegmentAdd }

// Validate checks the segment id, the ids and the id type.
func (p SegmentAdd) Validate() error { return validateSegment(p.SegmentID, p.IDs, p.IDType) }

// SegmentRemove removes people from a manual segment (POST
// /api/v1/segments/{segment_id}/remove_customers).
type SegmentRemove struct {
	// SegmentID is the manual segment's id (required).
	SegmentID int `json:"segment_id"`
	// IDs are the people's identifiers, of the kind IDType says.
	IDs []string `json:"ids"`
	// IDType is id (default), email or cio_id.
	IDType customerio.IDType `json:"id_type,omitempty"`
}

// TaskType returns TypeSegmentRemove.
func (SegmentRemove) TaskType() string { return TypeSegmentRemove }

// Validate checks the segment id, the ids and the id type.
func (p SegmentRemove) Validate() error { return validateSegment(p.SegmentID, p.IDs, p.IDType) }

func validateSegment(id int, ids []string, idType customerio.IDType) error {
	if id <= 0 {
		return invalid("segment_id", "must be a positive integer")
	}
	switch idType {
	case "", customerio.IDTypeID, customerio.IDTypeEmail, customerio.IDTypeCioID:
	default:
		return invalid("id_type", "must be id, email or cio_id")
	}
	return customerio.ValidateSegmentIDs("ids", ids)
}
