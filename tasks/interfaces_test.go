package tasks

import (
	"slices"
	"testing"
)

// TestContractInterfaces: exactly the intended types implement the
// interfaces the contracts and the worker's anonymous merge rely on (a
// new type that should, or a type that stopped, fails here).
func TestContractInterfaces(t *testing.T) {
	want := map[string][]string{
		"Templated":       {TypeSendEmail, TypeSendInApp, TypeSendInbox, TypeSendPush, TypeSendSMS, TypeSendWhatsApp},
		"Attributed":      {TypeCDPGroup, TypeCDPIdentify, TypeIdentify, TypeMergeAnonymous, TypeObjectUpsert},
		"Timestamped":     {TypeCDPAlias, TypeCDPGroup, TypeCDPIdentify, TypeCDPPage, TypeCDPScreen, TypeCDPTrack, TypeTrack, TypeTrackAnonymous},
		"AnonymousMerger": {TypeCDPAlias, TypeCDPIdentify, TypeIdentify, TypeMergeAnonymous},
		"AnonymousActor":  {TypeCDPPage, TypeCDPScreen, TypeCDPTrack, TypeTrackAnonymous},
	}
	got := map[string][]string{}
	for _, s := range Types() {
		p := s.New()
		for name, ok := range map[string]bool{
			"Templated":       is[Templated](p),
			"Attributed":      is[Attributed](p),
			"Timestamped":     is[Timestamped](p),
			"AnonymousMerger": is[AnonymousMerger](p),
			"AnonymousActor":  is[AnonymousActor](p),
		} {
			if ok {
				got[name] = append(got[name], s.Type)
			}
		}
	}
	for name, types := range want {
		slices.Sort(types)
		if !slices.Equal(got[name], types) {
			t.Errorf("%s is implemented by %v, want %v", name, got[name], types)
		}
	}
}

func is[I any](p Payload) bool { _, ok := p.(I); return ok }
