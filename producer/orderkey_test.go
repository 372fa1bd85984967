package producer_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TestOrderKeyFollowsPersonScoped: OrderKey orders exactly the payloads
// that implement tasks.PersonScoped, value or pointer, and names the person
// they act on, so one person's identify, events, merges (by the primary),
// devices and relationships share one sequence. Every registered type is
// given identifiers (a send has them too) and must not be ordered unless it
// is person-scoped.
func TestOrderKeyFollowsPersonScoped(t *testing.T) {
	want, ok := producer.OrderKey(tasks.Identify{Identifiers: customerio.Identifiers{ID: "u1"}})
	if !ok || want == "" {
		t.Fatalf("OrderKey(identify) = %q, %v", want, ok)
	}
	person := []byte(`{"identifiers":{"id":"u1"},"primary":{"id":"u1"},"secondary":{"id":"u2"}}`)
	ordered := 0
	for _, s := range tasks.Types() {
		ptr := s.New()
		if err := json.Unmarshal(person, ptr); err != nil {
			t.Fatalf("%s: %v", s.Type, err)
		}
		val := reflect.ValueOf(ptr).Elem().Interface().(tasks.Payload)
		for _, p := range []tasks.Payload{ptr, val} {
			_, scoped := p.(tasks.PersonScoped)
			key, ok := producer.OrderKey(p)
			if ok != scoped {
				t.Errorf("%s: OrderKey(%T) ok = %v, PersonScoped = %v", s.Type, p, ok, scoped)
			}
			if ok && key != want {
				t.Errorf("%s: OrderKey(%T) = %q, want the person's key %q", s.Type, p, key, want)
			}
		}
		if _, scoped := ptr.(tasks.PersonScoped); scoped {
			ordered++
		}
	}
	if ordered == 0 {
		t.Error("no registered type is person-scoped")
	}
	// A person-scoped payload that names nobody has no key.
	if k, ok := producer.OrderKey(tasks.Delete{}); ok {
		t.Errorf("OrderKey(delete without identifiers) = %q, true", k)
	}
}

// TestOrderKeyByPhone: a person named by phone (Track v2) has an ordering
// key of their own, so their tasks are sequenced like anyone's.
func TestOrderKeyByPhone(t *testing.T) {
	ph := customerio.Identifiers{Phone: "+15555550100"}
	k1, ok1 := producer.OrderKey(tasks.Identify{Identifiers: ph})
	k2, ok2 := producer.OrderKey(tasks.Track{Identifiers: ph})
	other, _ := producer.OrderKey(tasks.Identify{Identifiers: customerio.Identifiers{ID: ph.Phone}})
	if !ok1 || !ok2 || k1 != k2 || k1 == other {
		t.Errorf("OrderKey by phone: %q %v, %q %v; by the same string as an id %q", k1, ok1, k2, ok2, other)
	}
}
