package sandbox

import (
	"reflect"
	"testing"
)

// deface changes, in place, every string, number, map entry and slice
// element reachable from v, so that a reader which handed out the
// sandbox's own maps, slices or records would see the sandbox change.
func deface(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			deface(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).CanSet() {
				deface(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			deface(v.Index(i)) // slice elements are addressable
		}
	case reflect.Map:
		if v.IsNil() {
			return // nothing shared (and nothing to write into)
		}
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			if inner := e; inner.Kind() == reflect.Interface && !inner.IsNil() {
				inner = inner.Elem()
				if inner.Kind() == reflect.Map || inner.Kind() == reflect.Slice {
					deface(inner) // shares the map's own nested value
					continue
				}
			}
			if e.Kind() == reflect.Map || e.Kind() == reflect.Slice {
				deface(e)
				continue
			}
			n := reflect.New(e.Type()).Elem()
			n.Set(e)
			deface(n)
			v.SetMapIndex(k, n)
		}
		if v.Type().Key().Kind() == reflect.String {
			z := reflect.New(v.Type().Elem()).Elem()
			v.SetMapIndex(reflect.ValueOf("defaced").Convert(v.Type().Key()), z)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString("defaced")
		}
	case reflect.Int, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1000)
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	default:
		// an interface holding a plain value is replaced by its map entry or
		// slice element above; other kinds are not in the records
	}
}

// TestReadersReturnCopies: whatever a caller does to what a reader
// returns (records, their maps and slices, nested JSON values), the
// sandbox's state, recording and faults stay as they were.
func TestReadersReturnCopies(t *testing.T) {
	e := newEnv(t, Config{AppRateLimit: -1})
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/customers/u1", `{"email":"u1@x.com","plan":{"tier":"gold","tags":["a",{"b":1}]}}`},
		{"PUT", "/api/v1/customers/u1/devices", `{"device":{"id":"tok1","platform":"ios","attributes":{"app":"1"}}}`},
		{"POST", "/api/v1/customers/u1/events", `{"name":"ordered","data":{"items":[{"sku":"x"}]}}`},
		{"POST", "/api/v1/events", `{"anonymous_id":"a1","name":"viewed","data":{"page":{"path":"/"}}}`},
		{"POST", "/api/v1/segments/1/add_customers", `{"ids":["u1"]}`},
		{"POST", "/api/v2/entity", `{"type":"object","action":"identify","identifiers":{"object_type_id":"1","object_id":"acme"},` +
			`"attributes":{"name":"Acme","meta":{"size":3}},"cio_relationships":[{"identifiers":{"id":"u1"},"relationship_attributes":{"role":{"name":"admin"}}}]}`},
		{"POST", "/api/v1/merge_customers", `{"primary":{"id":"u1"},"secondary":{"id":"u3"}}`},
		{"PUT", "/api/v1/customers/u4", `{}`},
		{"POST", "/api/v1/customers/u4/suppress", ``},
		{"POST", "/api/v1/metrics", `{"delivery_id":"d1","metric":"opened","extra":{"k":["v"]}}`},
		{"POST", "/api/v1/forms/f1/submit", `{"data":{"email":"f@x.com","name":"F"}}`},
	} {
		want(t, e.track(c.method, c.path, c.body), map[bool]int{true: 204, false: 200}[c.path == "/api/v1/forms/f1/submit"], "")
	}
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":1,"identifiers":{"id":"u1"},"to":"u1@x.com","message_data":{"order":{"id":7,"lines":[1,2]}}}`), 200, "")
	want(t, e.app("POST", "/v1/campaigns/1/triggers", `{"ids":["u1","nobody"],"data":{"a":{"b":1}}}`), 200, "")
	want(t, e.cdp("/track", `{"userId":"u1","event":"Clicked","properties":{"x":{"y":[1]}}}`), 200, "")
	e.r.AddFault(GroupCDP, Fault{Status: 503, PathPrefix: "/nowhere"})

	s := e.r.Server
	readers := map[string]func() any{
		"Person":          func() any { p, _ := s.Person("u1"); return p },
		"People":          func() any { return s.People() },
		"Events":          func() any { return s.Events("u1") },
		"AnonymousEvents": func() any { return s.AnonymousEvents("a1") },
		"Object":          func() any { o, _ := s.Object("1", "acme"); return o },
		"Relationships":   func() any { return s.Relationships("") },
		"SegmentMembers":  func() any { m, _ := s.SegmentMembers(1); return m },
		"Suppressions":    func() any { return s.Suppressions() },
		"Merges":          func() any { return s.Merges() },
		"Deliveries":      func() any { return s.Deliveries() },
		"DeliveryEvents":  func() any { return s.DeliveryEvents() },
		"Triggers":        func() any { return s.Triggers() },
		"Forms":           func() any { return s.Forms() },
		"CDPMessages":     func() any { return s.CDPMessages() },
		"Snapshot":        func() any { return s.Snapshot() },
		"Requests":        func() any { return s.Requests(RequestFilter{}) },
		"Stats":           func() any { return s.Stats() },
		"Faults":          func() any { return s.Faults() },
	}
	before := map[string]string{}
	for name, read := range readers {
		before[name] = mustJSON(read())
	}
	for name, read := range readers {
		got := read()
		if v := reflect.ValueOf(got); v.Kind() == reflect.Slice && v.Len() == 0 {
			t.Fatalf("%s is empty: the test would prove nothing", name)
		}
		p := reflect.New(reflect.TypeOf(got))
		p.Elem().Set(reflect.ValueOf(got))
		deface(p)
		if mustJSON(p.Elem().Interface()) == before[name] {
			t.Fatalf("deface did not change what %s returned", name)
		}
	}
	for name, read := range readers {
		if after := mustJSON(read()); after != before[name] {
			t.Errorf("changing what the readers returned changed %s:\nbefore %s\nafter  %s", name, before[name], after)
		}
	}
}
