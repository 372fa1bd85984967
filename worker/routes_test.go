package worker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// TestRoutesCoverEveryType: the delivery table has exactly one route per
// registered task type and agrees with the type's Spec: a batchable type
// has a Track v2 operation and only a batchable one does; every type has a
// send, except the ones whose payload splits itself into entity operations;
// each route takes the Go type its type decodes to (tasks.Spec.New), and
// refuses another. Forgetting a type here is a test failure, not a task
// dead-lettered at run time.
func TestRoutesCoverEveryType(t *testing.T) {
	specs := tasks.Types()
	if len(routes) != len(routeTable) {
		t.Errorf("routeTable names a type twice (%d entries, %d types)", len(routeTable), len(routes))
	}
	if len(routes) != len(specs) {
		t.Errorf("%d routes for %d registered types", len(routes), len(specs))
	}
	_, url := newSandbox(t)
	c, err := customerio.New(sandboxConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	batchable := 0
	for _, s := range specs {
		r, ok := routes[s.Type]
		if !ok {
			t.Errorf("%s: registered but has no route", s.Type)
			continue
		}
		task := &Task{ID: "t1", Type: s.Type, Envelope: &tasks.Envelope{V: 1}, Payload: s.New()}
		if s.Batchable {
			batchable++
			if r.op == nil {
				t.Errorf("%s: Spec says batchable but the route has no v2 operation", s.Type)
			} else if op, ok := r.op(task); !ok || op.Type == "" || op.Action == "" {
				t.Errorf("%s: v2 operation of its own payload = %+v, %v", s.Type, op, ok)
			}
		} else if r.op != nil {
			t.Errorf("%s: route has a v2 operation but Spec says not batchable", s.Type)
		}
		if r.multi != s.Multi {
			t.Errorf("%s: route multi = %v, Spec says Multi = %v", s.Type, r.multi, s.Multi)
		}
		if r.multi {
			if r.send != nil || r.op != nil {
				t.Errorf("%s: a multi-operation route has a send or a v2 operation of its own", s.Type)
			}
			continue
		}
		_, split := task.Payload.(splitPayload)
		switch {
		case r.send == nil && !split:
			t.Errorf("%s: route has no send and the payload does not split itself", s.Type)
		case r.send == nil && (s.API != customerio.APITrack || !s.Batchable):
			t.Errorf("%s: delivered as entity operations but Spec says API %s, batchable %v", s.Type, s.API, s.Batchable)
		case r.send != nil && split:
			t.Errorf("%s: payload splits itself but the route has a send too", s.Type)
		}
		if r.send != nil {
			// The zero payload is refused by the client or Customer.io, but
			// not for being of the wrong type.
			if _, err := r.send(ctx, c, task); isNoRoute(err) {
				t.Errorf("%s: send refuses its own payload type %T: %v", s.Type, task.Payload, err)
			}
			other := &Task{ID: "t1", Type: s.Type, Envelope: &tasks.Envelope{V: 1}, Payload: &tasks.Suppress{}}
			if s.Type == tasks.TypeSuppress {
				other.Payload = &tasks.Unsuppress{}
			}
			if _, err := r.send(ctx, c, other); !isNoRoute(err) {
				t.Errorf("%s: send of a %T = %v, want the no-delivery error", s.Type, other.Payload, err)
			}
		}
	}
	if len(BatchableTypes) != batchable {
		t.Errorf("BatchableTypes has %d types, the Specs %d", len(BatchableTypes), batchable)
	}
	for _, typ := range BatchableTypes {
		if _, ok := Operation(&Task{Type: typ, Envelope: &tasks.Envelope{}, Payload: &tasks.SendEmail{}}); ok {
			t.Errorf("Operation of a %s task holding another payload type reported ok", typ)
		}
	}
}

func isNoRoute(err error) bool {
	return errors.Is(err, asynq.SkipRetry) && strings.Contains(err.Error(), "no delivery for")
}

// TestAPIOfFollowsSpec: the API a task is delivered, rate-limited and
// recorded under is its Spec's, not a guess from the type name.
func TestAPIOfFollowsSpec(t *testing.T) {
	for _, s := range tasks.Types() {
		if got := apiOf(s.Type); got != s.API || got == "" {
			t.Errorf("apiOf(%s) = %q, Spec.API = %q", s.Type, got, s.API)
		}
	}
	if got := apiOf("cdp:unknown"); got != "" {
		t.Errorf("apiOf of an unknown type = %q, want \"\"", got)
	}
}
