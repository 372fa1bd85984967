package demo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/cioq/cioq/customerio/sandbox"
)

// PrintSandboxSummary prints what the sandbox received: requests per
// endpoint, people, events, transactional deliveries, objects and
// relationships, manual segments, broadcast triggers and Pipelines
// messages. It is a demo with fake data, so identifiers and attributes are
// shown.
func PrintSandboxSummary(w io.Writer, sb *sandbox.Running) {
	snap := sb.Snapshot()
	fmt.Fprintf(w, "\nWhat the sandbox (standing in for Customer.io) received:\n")
	printRequests(w, sb)
	byCio := printPeople(w, snap)
	printEvents(w, snap, byCio)
	printDeliveries(w, snap)
	printObjects(w, snap, byCio)
	printSegments(w, snap, byCio)
	printTriggers(w, snap)
	printCDPMessages(w, snap)
}

// printRequests counts the recorded requests by method and endpoint, with
// the statuses answered.
func printRequests(w io.Writer, sb *sandbox.Running) {
	fmt.Fprintf(w, "\n  Requests by endpoint (%d in all):\n", sb.Stats().Total)
	counts := map[string]int{}
	statuses := map[string]map[int]int{}
	for _, r := range sb.Requests(sandbox.RequestFilter{}) {
		k := r.Method + " " + endpointOf(r.Path)
		counts[k]++
		if statuses[k] == nil {
			statuses[k] = map[int]int{}
		}
		statuses[k][r.Status]++
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		var st []string
		for _, code := range slices.Sorted(maps.Keys(statuses[k])) {
			st = append(st, fmt.Sprintf("%d×%d", statuses[k][code], code))
		}
		fmt.Fprintf(w, "    %3d  %-52s %s\n", counts[k], k, strings.Join(st, " "))
	}
}

// printPeople prints each person and returns their names (id, else email)
// by cio_id.
func printPeople(w io.Writer, snap sandbox.Snapshot) map[string]string {
	byCio := map[string]string{}
	fmt.Fprintf(w, "\n  People (%d):\n", len(snap.People))
	for _, p := range snap.People {
		name := p.ID
		if name == "" {
			name = p.Email
		}
		byCio[p.CioID] = name
		fmt.Fprintf(w, "    %-10s %s\n", name, attrString(p.Attributes))
	}
	return byCio
}

// printEvents prints each person's events, then the anonymous ones.
func printEvents(w io.Writer, snap sandbox.Snapshot, byCio map[string]string) {
	fmt.Fprintf(w, "\n  Events:\n")
	n := 0
	for _, p := range snap.People {
		for _, e := range p.Events {
			n++
			from := ""
			if e.AnonymousID != "" {
				from = " (anonymous " + e.AnonymousID + ", merged on signup)"
			}
			fmt.Fprintf(w, "    %-10s %-6s %-18s %s%s\n", byCio[p.CioID], e.Type, e.Name, attrString(e.Data), from)
		}
	}
	for anon, evs := range snap.AnonymousEvents {
		for _, e := range evs {
			n++
			state := "not merged yet"
			if e.Orphaned {
				state = "orphaned: it arrived more than five minutes after the merge"
			}
			fmt.Fprintf(w, "    %-10s %-6s %-18s %s (%s)\n", anon, e.Type, e.Name, attrString(e.Data), state)
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "    (none)\n")
	}
}

func printDeliveries(w io.Writer, snap sandbox.Snapshot) {
	fmt.Fprintf(w, "\n  Transactional deliveries (%d):\n", len(snap.Deliveries))
	for _, dl := range snap.Deliveries {
		fmt.Fprintf(w, "    %-6s %-20s %-9s to %-22s %s\n", dl.Channel, dl.TransactionalMessageID, dl.Status, dl.To, attrString(dl.MessageData))
		if dl.FailureMessage != "" {
			fmt.Fprintf(w, "           failure: %s\n", dl.FailureMessage)
		}
	}
}

func printObjects(w io.Writer, snap sandbox.Snapshot, byCio map[string]string) {
	fmt.Fprintf(w, "\n  Objects and relationships:\n")
	for _, o := range snap.Objects {
		fmt.Fprintf(w, "    object %s/%s  %s\n", o.TypeID, o.ID, attrString(o.Attributes))
	}
	for _, r := range snap.Relationships {
		who := byCio[r.PersonCioID]
		if who == "" {
			who = r.AnonymousID
		}
		fmt.Fprintf(w, "    %s → object %s/%s  %s\n", who, r.ObjectTypeID, r.ObjectID, attrString(r.Attributes))
	}
}

func printSegments(w io.Writer, snap sandbox.Snapshot, byCio map[string]string) {
	fmt.Fprintf(w, "\n  Manual segments:\n")
	for _, id := range slices.Sorted(maps.Keys(snap.Segments)) {
		members := snap.Segments[id]
		if len(members) == 0 {
			continue
		}
		names := make([]string, len(members))
		for i, c := range members {
			names[i] = byCio[c]
		}
		fmt.Fprintf(w, "    segment %d: %s\n", id, strings.Join(names, ", "))
	}
}

func printTriggers(w io.Writer, snap sandbox.Snapshot) {
	fmt.Fprintf(w, "\n  Broadcast triggers (%d):\n", len(snap.Triggers))
	for _, t := range snap.Triggers {
		state := "queued"
		if !t.ProcessedAt.IsZero() {
			state = "processed"
		}
		fmt.Fprintf(w, "    broadcast %d  trigger %d  recipients by %s  %s  data %s\n", t.BroadcastID, t.ID, t.Shape, state, attrString(asMap(t.Body["data"])))
	}
}

func printCDPMessages(w io.Writer, snap sandbox.Snapshot) {
	fmt.Fprintf(w, "\n  Pipelines (CDP) messages (%d):\n", len(snap.CDPMessages))
	for _, m := range snap.CDPMessages {
		what := ""
		switch m.Type {
		case "identify":
			what = "traits " + attrString(asMap(m.Body["traits"]))
		case "track":
			what = fmt.Sprintf("%q %s", m.Body["event"], attrString(asMap(m.Body["properties"])))
		}
		fmt.Fprintf(w, "    %-8s userId %-10v %s\n", m.Type, m.Body["userId"], what)
	}
}

// endpointOf replaces identifiers in a recorded path with placeholders.
func endpointOf(path string) string {
	segs := strings.Split(path, "/")
	for i := 1; i < len(segs); i++ {
		switch segs[i-1] {
		case "customers", "campaigns", "segments", "triggers", "devices":
			if segs[i] != "" {
				segs[i] = "{id}"
			}
		}
	}
	return strings.Join(segs, "/")
}

func attrString(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
