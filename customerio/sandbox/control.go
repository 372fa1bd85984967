package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Info describes a running sandbox: credentials and group path prefixes.
// GET /_sandbox/info answers it.
type Info struct {
	SiteID            string `json:"site_id"`
	TrackAPIKey       string `json:"track_api_key"`
	AppAPIKey         string `json:"app_api_key"`
	PipelinesWriteKey string `json:"pipelines_write_key"`
	ServiceToken      string `json:"service_token"`
	WorkspaceID       int    `json:"workspace_id"`
	TrackPath         string `json:"track_path"`
	AppPath           string `json:"app_path"`
	CDPPath           string `json:"cdp_path"`
}

func validGroup(g Group) bool { return g == GroupTrack || g == GroupApp || g == GroupCDP }

func ctlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// controlRoutes mounts the control API (the sandbox's own, not part of
// Customer.io's APIs; JSON, no auth):
//
//	GET    /_sandbox/info                      credentials and prefixes (Info)
//	GET    /_sandbox/requests?group=&since=&limit=&order=&method=&path=   []Request, oldest first
//	                                           (limit keeps the newest N, or with order=oldest the oldest N)
//	GET    /_sandbox/stats                     Stats
//	GET    /_sandbox/state                     Snapshot
//	GET    /_sandbox/people                    []Person
//	GET    /_sandbox/people/{ref}              Person (404 if unknown)
//	GET    /_sandbox/people/{ref}/events       []Event
//	GET    /_sandbox/anonymous_events?anonymous_id=   []Event
//	GET    /_sandbox/objects/{type}/{id}       Object
//	GET    /_sandbox/relationships?person=     []Relationship
//	GET    /_sandbox/segments/{id}             []Person (404 if no such segment)
//	POST   /_sandbox/segments                  {"id":N} creates a segment
//	POST   /_sandbox/broadcasts                {"id":N} creates a broadcast
//	GET    /_sandbox/deliveries | delivery_events | triggers | forms | cdp | merges | suppressions
//	GET    /_sandbox/faults                    map[group][]Fault, in the order added
//	PUT    /_sandbox/faults/{group}            Fault body adds it to the group's; answers it with its id
//	                                           (?replace=true: replaces the group's faults with it)
//	DELETE /_sandbox/faults/{group}/{id}       removes that fault (404 if the group has none with that id)
//	DELETE /_sandbox/faults/{group}            removes the group's faults
//	DELETE /_sandbox/faults                    removes every fault
//	POST   /_sandbox/reset                     Reset
func (s *Server) controlRoutes(m *http.ServeMux) {
	p := ControlPrefix
	m.HandleFunc("GET "+p+"/info", func(w http.ResponseWriter, r *http.Request) {
		c := s.cfg
		writeJSON(w, http.StatusOK, Info{c.SiteID, c.TrackAPIKey, c.AppAPIKey, c.PipelinesWriteKey, c.ServiceToken, c.WorkspaceID, TrackPrefix, AppPrefix, CDPPrefix})
	})
	m.HandleFunc("GET "+p+"/requests", s.ctlRequests)
	s.ctlStateRoutes(m, p)
	s.ctlFaultRoutes(m, p)
	m.HandleFunc("POST "+p+"/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, struct{}{})
	})
}

// ctlRequests answers GET /_sandbox/requests: the recording, selected by
// the group, since, limit, order, method and path parameters.
func (s *Server) ctlRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := RequestFilter{Group: Group(q.Get("group")), Method: q.Get("method"), PathContains: q.Get("path")}
	var err error
	if v := q.Get("since"); v != "" {
		if f.Since, err = strconv.ParseUint(v, 10, 64); err != nil {
			ctlError(w, http.StatusBadRequest, "since must be a sequence number")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 0 {
			ctlError(w, http.StatusBadRequest, "limit must be an integer ≥ 0")
			return
		}
	}
	switch o := Order(q.Get("order")); o {
	case "", OrderNewest, OrderOldest:
		f.Order = o
	default:
		ctlError(w, http.StatusBadRequest, "order must be newest or oldest")
		return
	}
	writeJSON(w, http.StatusOK, s.Requests(f))
}

// ctlStateRoutes mounts the readers of the state under p (stats, state,
// people, events, objects, relationships, segments, the record lists) and
// the creation of segments and broadcasts.
func (s *Server) ctlStateRoutes(m *http.ServeMux, p string) {
	get := func(path string, f func() any) {
		m.HandleFunc("GET "+p+path, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, f()) })
	}
	get("/stats", func() any { return s.Stats() })
	get("/state", func() any { return s.Snapshot() })
	get("/people", func() any { return orEmpty(s.People()) })
	get("/deliveries", func() any { return orEmpty(s.Deliveries()) })
	get("/delivery_events", func() any { return orEmpty(s.DeliveryEvents()) })
	get("/triggers", func() any { return orEmpty(s.Triggers()) })
	get("/forms", func() any { return orEmpty(s.Forms()) })
	get("/cdp", func() any { return orEmpty(s.CDPMessages()) })
	get("/merges", func() any { return orEmpty(s.Merges()) })
	get("/suppressions", func() any { return orEmpty(s.Suppressions()) })
	m.HandleFunc("GET "+p+"/people/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if pp, found := s.Person(r.PathValue("ref")); found {
			writeJSON(w, http.StatusOK, pp)
			return
		}
		ctlError(w, http.StatusNotFound, "no such person")
	})
	m.HandleFunc("GET "+p+"/people/{ref}/events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, orEmpty(s.Events(r.PathValue("ref"))))
	})
	m.HandleFunc("GET "+p+"/anonymous_events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, orEmpty(s.AnonymousEvents(r.URL.Query().Get("anonymous_id"))))
	})
	m.HandleFunc("GET "+p+"/objects/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
		if o, found := s.Object(r.PathValue("type"), r.PathValue("id")); found {
			writeJSON(w, http.StatusOK, o)
			return
		}
		ctlError(w, http.StatusNotFound, "no such object")
	})
	m.HandleFunc("GET "+p+"/relationships", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, orEmpty(s.Relationships(r.URL.Query().Get("person"))))
	})
	m.HandleFunc("GET "+p+"/segments/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		members, found := s.SegmentMembers(id)
		if err != nil || !found {
			ctlError(w, http.StatusNotFound, "no such segment")
			return
		}
		writeJSON(w, http.StatusOK, orEmpty(members))
	})
	create := func(path string, f func(int)) {
		m.HandleFunc("POST "+p+path, func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				ID *int `json:"id"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ID == nil {
				ctlError(w, http.StatusBadRequest, `body must be {"id": <integer>}`)
				return
			}
			f(*body.ID)
			writeJSON(w, http.StatusOK, map[string]int{"id": *body.ID})
		})
	}
	create("/segments", s.AddSegment)
	create("/broadcasts", s.AddBroadcast)
}

// ctlFaultRoutes mounts the fault injection routes under p: list, add or
// replace, remove one, clear a group, clear all.
func (s *Server) ctlFaultRoutes(m *http.ServeMux, p string) {
	m.HandleFunc("GET "+p+"/faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Faults()) })
	group := func(w http.ResponseWriter, r *http.Request) (Group, bool) {
		g := Group(r.PathValue("group"))
		if !validGroup(g) {
			ctlError(w, http.StatusBadRequest, "group must be track, app or cdp")
			return "", false
		}
		return g, true
	}
	m.HandleFunc("PUT "+p+"/faults/{group}", func(w http.ResponseWriter, r *http.Request) {
		g, ok := group(w, r)
		if !ok {
			return
		}
		replace := false
		if v := r.URL.Query().Get("replace"); v != "" {
			var err error
			if replace, err = strconv.ParseBool(v); err != nil {
				ctlError(w, http.StatusBadRequest, "replace must be true or false")
				return
			}
		}
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			ctlError(w, http.StatusBadRequest, "body must be a Fault: "+err.Error())
			return
		}
		if err := f.Validate(); err != nil {
			ctlError(w, http.StatusBadRequest, err.Error())
			return
		}
		f.ID = s.faults.add(g, f, replace)
		writeJSON(w, http.StatusOK, f)
	})
	m.HandleFunc("DELETE "+p+"/faults/{group}/{id}", func(w http.ResponseWriter, r *http.Request) {
		g, ok := group(w, r)
		if !ok {
			return
		}
		if !s.RemoveFault(g, r.PathValue("id")) {
			ctlError(w, http.StatusNotFound, "no such fault in this group")
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	m.HandleFunc("DELETE "+p+"/faults/{group}", func(w http.ResponseWriter, r *http.Request) {
		g, ok := group(w, r)
		if !ok {
			return
		}
		s.ClearFault(g)
		writeJSON(w, http.StatusOK, struct{}{})
	})
	m.HandleFunc("DELETE "+p+"/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, struct{}{})
	})
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
