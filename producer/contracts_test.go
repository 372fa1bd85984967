package producer_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// seedContracts are the seed's three rows as a contracts file: a template
// (its id and the variables it needs), declared attribute types, and
// timestamps.
const seedContracts = `{"workspaces": {"default": {
  "transactional": {"strict_ids": true, "messages": [
    {"id": 7, "trigger": "password_reset", "channel": "email",
     "variables": {"reset_link": {"type": "string"}, "expiry_hours": {"type": "number", "optional": true}}}]},
  "attributes": {"people": {"attributes": {
    "total_revenue": {"type": "number", "policy": "coerce"},
    "churn_risk_score": {"type": "number"}}}},
  "events": {"timestamp_policy": "coerce"}}}}`

func seedSet(t testing.TB) *contracts.Set {
	t.Helper()
	f, err := contracts.Parse([]byte(seedContracts))
	if err != nil {
		t.Fatal(err)
	}
	s, err := contracts.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refusedField returns the field of err's ValidationError, failing when
// err is not a contract refusal.
func refusedField(t *testing.T, err error) string {
	t.Helper()
	var ce *contracts.Error
	var ve *producer.ValidationError
	if !errors.As(err, &ce) || !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *contracts.Error unwrapping to a ValidationError", err)
	}
	return ve.Field
}

// TestContractsRefuseAtEnqueue: each row of the seed's error table is
// refused by Enqueue, EnqueueRaw, Check and CheckPayload, naming the field
// (and the template and id), and nothing reaches Redis. Without the
// option the same tasks are enqueued.
func TestContractsRefuseAtEnqueue(t *testing.T) {
	c, insp := setup(t, producer.WithContracts(seedSet(t)))
	send := tasks.SendEmail{To: "ada@example.com", SendOptions: customerio.SendOptions{
		TransactionalMessageID: "password_reset", Identifiers: &person}}
	unknown := send
	unknown.TransactionalMessageID = "99"
	identify := tasks.Identify{Identifiers: person, Attributes: map[string]any{"churn_risk_score": "0.8"}}
	cases := []struct {
		name  string
		p     tasks.Payload
		field string
		text  string
	}{
		{"invalid template", unknown, "transactional_message_id", `(strict_ids), got 99`},
		{"missing required data", send, "message_data.reset_link", `message_data.reset_link: required by template "password_reset" (id 7), missing`},
		{"segment not updating", identify, "attributes.churn_risk_score", `declared a number (people attributes), got a string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Enqueue(ctx, tc.p)
			if got := refusedField(t, err); got != tc.field || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("Enqueue: field %q, error %q; want %q containing %q", got, err, tc.field, tc.text)
			}
			if got := refusedField(t, c.CheckPayload(tc.p)); got != tc.field {
				t.Errorf("CheckPayload: field %q", got)
			}
			raw, _ := json.Marshal(tc.p)
			_, err = c.EnqueueRaw(ctx, tc.p.TaskType(), raw)
			if got := refusedField(t, err); got != tc.field {
				t.Errorf("EnqueueRaw: field %q", got)
			}
			if got := refusedField(t, c.Check(tc.p.TaskType(), raw)); got != tc.field {
				t.Errorf("Check: field %q", got)
			}
		})
	}
	if n := total(t, insp); n != 0 {
		t.Fatalf("%d task(s) enqueued for refused items", n)
	}

	plain, insp2 := setup(t)
	for _, tc := range cases {
		if _, err := plain.Enqueue(ctx, tc.p); err != nil {
			t.Errorf("%s without contracts: %v", tc.name, err)
		}
	}
	if n := total(t, insp2); n != len(cases) {
		t.Errorf("without contracts %d enqueued, want %d", n, len(cases))
	}
}

// TestContractsCoerceAtEnqueue: a coerced attribute and a millisecond or
// ISO-8601 timestamp are stored coerced, typed and raw; the rest of a raw
// payload keeps its fields.
func TestContractsCoerceAtEnqueue(t *testing.T) {
	c, insp := setup(t, producer.WithContracts(seedSet(t)))
	caller := map[string]any{"total_revenue": "1000", "plan": "pro"}
	r, err := c.Identify(ctx, tasks.Identify{Identifiers: person, Attributes: caller})
	if err != nil {
		t.Fatal(err)
	}
	_, _, p := stored(t, insp, r)
	if got := p.(*tasks.Identify).Attributes["total_revenue"]; got != 1000.0 {
		t.Errorf("stored total_revenue = %#v, want the number 1000", got)
	}
	if caller["total_revenue"] != "1000" {
		t.Error("the caller's attributes were modified")
	}

	r, err = c.EnqueueRaw(ctx, tasks.TypeIdentify, json.RawMessage(`{"identifiers":{"id":"u"},"attributes":{"total_revenue":" 1250.50 ","plan":"pro"}}`))
	if err != nil {
		t.Fatal(err)
	}
	info, _, p := stored(t, insp, r)
	if got := p.(*tasks.Identify).Attributes; got["total_revenue"] != 1250.5 || got["plan"] != "pro" {
		t.Errorf("stored attributes = %#v", got)
	}
	if !strings.Contains(string(info.Payload), `"total_revenue":1250.50`) {
		t.Errorf("stored bytes %s: want the number as written", info.Payload)
	}

	r, err = c.Track(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "order_completed", Timestamp: 1767222000123}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, p = stored(t, insp, r); p.(*tasks.Track).Timestamp != 1767222000 {
		t.Errorf("stored timestamp = %d, want seconds", p.(*tasks.Track).Timestamp)
	}
	for _, raw := range []string{
		`{"identifiers":{"id":"u"},"name":"e","timestamp":"2026-01-01T00:00:00Z"}`,
		`{"v":1,"payload":{"identifiers":{"id":"u"},"name":"e","timestamp":"1767225600000"}}`,
	} {
		r, err = c.EnqueueRaw(ctx, tasks.TypeTrack, json.RawMessage(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if _, _, p = stored(t, insp, r); p.(*tasks.Track).Timestamp != 1767225600 {
			t.Errorf("%s: stored timestamp = %d", raw, p.(*tasks.Track).Timestamp)
		}
	}
	r, err = c.EnqueueRaw(ctx, tasks.TypeCDPTrack, json.RawMessage(`{"userId":"u","event":"e","timestamp":1767225600000,"sentAt":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, p = stored(t, insp, r); p.(*tasks.CDPTrack).Timestamp != "2026-01-01T00:00:00Z" || p.(*tasks.CDPTrack).Extra["sentAt"] == nil {
		t.Errorf("stored Pipelines message = %#v", p)
	}
}
