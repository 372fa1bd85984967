package producer_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestEnqueueRefusesInvalidUTF8: a Go string that is not UTF-8 anywhere in
// a typed payload (json.Marshal would silently write U+FFFD, so two
// different invalid ids would reach Customer.io as one person) is refused
// with a *ValidationError naming its JSON path; nothing reaches Redis, and
// with ordering on no sequence number is taken.
func TestEnqueueRefusesInvalidUTF8(t *testing.T) {
	db := testredis.New(t)
	c := producer.NewFromRedis(db.Client, producer.WithOrdering())
	plain, insp := setup(t)
	bad := "u\xff\xfe\xc31"
	pp := &person
	for _, tc := range []struct {
		name  string
		p     tasks.Payload
		field string
	}{
		{"person id", tasks.Track{Identifiers: customerio.Identifiers{ID: bad}, Event: customerio.Event{Name: "ev"}}, "identifiers.id"},
		{"another invalid id", tasks.Identify{Identifiers: customerio.Identifiers{ID: "u\xfe1"}}, "identifiers.id"},
		{"email", &tasks.Delete{Identifiers: customerio.Identifiers{Email: "a\xc3@example.com"}}, "identifiers.email"},
		{"event data", tasks.Track{Identifiers: person, Event: customerio.Event{Name: "ev", Data: map[string]any{"blob": bad}}}, "data.blob"},
		{"nested attribute", tasks.Identify{Identifiers: person, Attributes: map[string]any{"address": map[string]any{"city": bad}}}, "attributes.address.city"},
		{"attribute in a list", tasks.Identify{Identifiers: person, Attributes: map[string]any{"tags": []any{"a", bad}}}, "attributes.tags[1]"},
		{"attribute name", tasks.Identify{Identifiers: person, Attributes: map[string]any{bad: 1}}, "attributes"},
		{"message data", tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "1", Identifiers: pp, MessageData: map[string]any{"name": bad}}, To: "a@example.com"}, "message_data.name"},
		{"subject", tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "1", Identifiers: pp}, To: "a@example.com", Subject: bad}, "subject"},
		{"broadcast row", tasks.BroadcastTrigger{BroadcastID: 1, TriggerBroadcastRequest: customerio.TriggerBroadcastRequest{PerUserData: []customerio.PerUserData{{ID: "a"}, {ID: bad}}}}, "per_user_data[1].id"},
		{"cdp trait", tasks.CDPIdentify{UserID: "u1", Traits: map[string]any{"plan": bad}}, "traits.plan"},
		{"cdp extra field", tasks.CDPTrack{UserID: "u1", Event: "E", Extra: map[string]json.RawMessage{"channel": json.RawMessage("\"\xff\"")}}, "channel"},
		{"cdp extra key", tasks.CDPTrack{UserID: "u1", Event: "E", Extra: map[string]json.RawMessage{bad: json.RawMessage(`1`)}}, "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cl := range []*producer.Client{c, plain} {
				_, err := cl.Enqueue(ctx, tc.p)
				var ve *producer.ValidationError
				if !errors.As(err, &ve) || ve.Field != tc.field || !strings.Contains(ve.Reason, "not valid UTF-8") {
					t.Fatalf("Enqueue = %v, want a *ValidationError on %q", err, tc.field)
				}
				if strings.Contains(err.Error(), "\xff") || strings.Contains(err.Error(), "encode:") {
					t.Errorf("error text %q", err)
				}
			}
		})
	}
	if n := total(t, insp); n != 0 {
		t.Errorf("%d tasks in Redis", n)
	}
	if keys, err := db.Client.Keys(ctx, "*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("the ordering client wrote %v (%v); a refused task takes no sequence number", keys, err)
	}

	// Valid text, U+FFFD included, is enqueued.
	if _, err := c.Track(ctx, tasks.Track{Identifiers: person, Event: customerio.Event{Name: "ev", Data: map[string]any{"s": "café \uFFFD 😀"}}}); err != nil {
		t.Errorf("Track with valid text: %v", err)
	}
}
