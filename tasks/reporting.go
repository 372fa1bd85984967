package tasks

import (
	"github.com/cioq/cioq/customerio"
)

// Forms and delivery metrics (Track v1).

// FormSubmit submits a form to Customer.io (POST
// /api/v1/forms/{form_id}/submit): Customer.io creates or updates the
// person the data names (exactly one of data.email, data.id) and runs the
// campaigns the form triggers.
type FormSubmit struct {
	// FormID is the form's id: any string you choose, the first submission
	// creates the form in Customer.io.
	FormID string `json:"form_id"`
	// Data are the form's fields, strings only; exactly one of "email" or
	// "id" names the person.
	Data map[string]string `json:"data"`
}

// TaskType returns TypeFormSubmit.
func (FormSubmit) TaskType() string { return TypeFormSubmit }

// Validate applies the client's rules for a form submission.
func (p FormSubmit) Validate() error { return customerio.ValidateForm(p.FormID, p.Data) }

// Metric reports a delivery metric for a message Customer.io sent (POST
// /api/v1/metrics): a mobile backend telling Customer.io that a push was
// delivered or opened, an email relay reporting a bounce, a conversion
// attributed to a delivery.
type Metric customerio.Metric

// TaskType returns TypeMetric.
func (Metric) TaskType() string { return TypeMetric }

// Validate applies the client's rules for a delivery metric.
func (p Metric) Validate() error { return (*customerio.Metric)(&p).Validate() }
