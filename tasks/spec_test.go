package tasks_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// specWant is what each task type's Spec and payload must say. A type
// added to the registry without a row here fails TestSpecs: this table is
// the "its test" of "one payload struct, one Spec entry and its test".
var specWant = map[string]struct {
	api       customerio.API
	queue     string
	batchable bool
	// person is the JSON field of the payload that names the person of a
	// PersonScoped type ("" = not person-scoped).
	person string
	// eventID is the JSON field of a Deduplicated type's id ("" = none).
	eventID string
}{
	tasks.TypeSendEmail:    {api: customerio.APIApp, queue: tasks.QueueCritical},
	tasks.TypeSendPush:     {api: customerio.APIApp, queue: tasks.QueueCritical},
	tasks.TypeSendSMS:      {api: customerio.APIApp, queue: tasks.QueueCritical},
	tasks.TypeSendInApp:    {api: customerio.APIApp, queue: tasks.QueueCritical},
	tasks.TypeSendInbox:    {api: customerio.APIApp, queue: tasks.QueueCritical},
	tasks.TypeSendWhatsApp: {api: customerio.APIApp, queue: tasks.QueueCritical},

	tasks.TypeIdentify:       {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeTrack:          {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers", eventID: "id"},
	tasks.TypeTrackAnonymous: {api: customerio.APITrack, queue: tasks.QueueDefault, eventID: "id"},
	tasks.TypeMergeAnonymous: {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeMergePeople:    {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "primary"},
	tasks.TypeDelete:         {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeSuppress:       {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeUnsuppress:     {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeDeviceAdd:      {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeDeviceDelete:   {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeObjectUpsert:   {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true},
	tasks.TypeObjectDelete:   {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true},
	tasks.TypeRelate:         {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},
	tasks.TypeUnrelate:       {api: customerio.APITrack, queue: tasks.QueueDefault, batchable: true, person: "identifiers"},

	tasks.TypeBroadcastTrigger: {api: customerio.APIApp, queue: tasks.QueueBulk},
	tasks.TypeSegmentAdd:       {api: customerio.APITrack, queue: tasks.QueueBulk},
	tasks.TypeSegmentRemove:    {api: customerio.APITrack, queue: tasks.QueueBulk},
	tasks.TypeFormSubmit:       {api: customerio.APITrack, queue: tasks.QueueDefault},
	tasks.TypeMetric:           {api: customerio.APITrack, queue: tasks.QueueDefault},
	tasks.TypeBatch:            {api: customerio.APITrack, queue: tasks.QueueDefault},

	tasks.TypeCDPIdentify: {api: customerio.APIPipelines, queue: tasks.QueueDefault, eventID: "messageId"},
	tasks.TypeCDPTrack:    {api: customerio.APIPipelines, queue: tasks.QueueDefault, eventID: "messageId"},
	tasks.TypeCDPPage:     {api: customerio.APIPipelines, queue: tasks.QueueDefault, eventID: "messageId"},
	tasks.TypeCDPScreen:   {api: customerio.APIPipelines, queue: tasks.QueueDefault, eventID: "messageId"},
	tasks.TypeCDPGroup:    {api: customerio.APIPipelines, queue: tasks.QueueDefault, eventID: "messageId"},
	tasks.TypeCDPAlias:    {api: customerio.APIPipelines, queue: tasks.QueueDefault, eventID: "messageId"},
}

// TestSpecs: every registered type has a complete Spec (API, queue,
// budget, timeout, window, New), says the API, queue and batchability the
// table above says, and its payload implements exactly the optional
// interfaces the table says, for the value and the pointer alike.
func TestSpecs(t *testing.T) {
	specs := tasks.Types()
	if len(specs) != len(specWant) {
		t.Errorf("%d registered types, %d in specWant", len(specs), len(specWant))
	}
	for _, s := range specs {
		want, ok := specWant[s.Type]
		if !ok {
			t.Errorf("%s: registered but not in specWant", s.Type)
			continue
		}
		switch s.API {
		case customerio.APITrack, customerio.APIApp, customerio.APIPipelines:
		default:
			t.Errorf("%s: API %q is not a Customer.io API", s.Type, s.API)
		}
		if s.API != want.api {
			t.Errorf("%s: API %q, want %q", s.Type, s.API, want.api)
		}
		if s.Defaults.Queue != want.queue {
			t.Errorf("%s: queue %q, want %q", s.Type, s.Defaults.Queue, want.queue)
		}
		if s.Batchable != want.batchable {
			t.Errorf("%s: Batchable = %v, want %v", s.Type, s.Batchable, want.batchable)
		}
		if s.Batchable && s.API != customerio.APITrack {
			t.Errorf("%s: batchable but delivered through %s (batches are Track v2)", s.Type, s.API)
		}
		if s.Defaults.MaxRetry <= 0 || s.Defaults.Timeout <= 0 || s.Defaults.RetryWindow <= 0 || s.Defaults.Expiry < 0 {
			t.Errorf("%s: incomplete defaults %+v", s.Type, s.Defaults)
		}
		if s.New == nil {
			t.Errorf("%s: no New", s.Type)
			continue
		}
		ptr := s.New()
		if reflect.TypeOf(ptr).Kind() != reflect.Pointer {
			t.Errorf("%s: New returns a %T, want a pointer", s.Type, ptr)
			continue
		}
		val := reflect.ValueOf(ptr).Elem().Interface().(tasks.Payload)
		for _, p := range []tasks.Payload{ptr, val} {
			if _, is := p.(tasks.PersonScoped); is != (want.person != "") {
				t.Errorf("%s: %T implements PersonScoped = %v, want %v", s.Type, p, is, want.person != "")
			}
			if _, is := p.(tasks.Deduplicated); is != (want.eventID != "") {
				t.Errorf("%s: %T implements Deduplicated = %v, want %v", s.Type, p, is, want.eventID != "")
			}
		}
	}
}

// TestOptionalInterfacesMatchJSON: on each type's documented example,
// Person returns the identifiers its JSON names the person by, and
// EventID, EventIDField and WithEventID agree with the JSON: the field
// they name is the one that carries the id, and WithEventID changes a copy
// only, from the value and from the pointer.
func TestOptionalInterfacesMatchJSON(t *testing.T) {
	examples := docExamples(t)
	for typ, want := range specWant {
		js, ok := examples[typ]
		if !ok {
			continue // TestDocExamplesDecodeAndValidate reports it
		}
		_, p, err := tasks.Decode(typ, []byte(js))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(js), &fields); err != nil {
			t.Fatal(err)
		}
		if ps, ok := p.(tasks.PersonScoped); ok && want.person != "" {
			var ids customerio.Identifiers
			if err := json.Unmarshal(fields[want.person], &ids); err != nil || ids == (customerio.Identifiers{}) {
				t.Fatalf("%s: example has no %q identifiers (%v)", typ, want.person, err)
			}
			if got := ps.Person(); got != ids {
				t.Errorf("%s: Person() = %+v, want the %q identifiers %+v", typ, got, want.person, ids)
			}
		}
		d, ok := p.(tasks.Deduplicated)
		if !ok || want.eventID == "" {
			continue
		}
		if got := d.EventIDField(); got != want.eventID {
			t.Errorf("%s: EventIDField() = %q, want %q", typ, got, want.eventID)
		}
		var inExample string
		_ = json.Unmarshal(fields[want.eventID], &inExample)
		if d.EventID() != inExample {
			t.Errorf("%s: EventID() = %q, the example's %q is %q", typ, d.EventID(), want.eventID, inExample)
		}
		const id = "01HZY8V4Q6W5M3K2J1N0P9R8S7"
		val := reflect.ValueOf(p).Elem().Interface().(tasks.Deduplicated)
		for _, from := range []tasks.Deduplicated{d, val} {
			before := from.EventID()
			got := from.WithEventID(id)
			if from.EventID() != before {
				t.Errorf("%s: WithEventID on a %T modified it", typ, from)
			}
			if reflect.TypeOf(got).Kind() == reflect.Pointer || got.TaskType() != typ {
				t.Errorf("%s: WithEventID returned a %T", typ, got)
			}
			if got.(tasks.Deduplicated).EventID() != id {
				t.Errorf("%s: WithEventID(%q).EventID() = %q", typ, id, got.(tasks.Deduplicated).EventID())
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]json.RawMessage
			_ = json.Unmarshal(b, &out)
			if string(out[want.eventID]) != `"`+id+`"` {
				t.Errorf("%s: WithEventID's JSON has %s = %s, want %q", typ, want.eventID, out[want.eventID], id)
			}
		}
	}
}
