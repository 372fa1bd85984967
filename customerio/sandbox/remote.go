package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Remote is a client for the control API of a sandbox running in another
// process. BaseURL is the sandbox root (e.g. "http://127.0.0.1:8089"),
// without /_sandbox.
type Remote struct {
	// BaseURL is the sandbox's root URL.
	BaseURL string
	// HTTPClient is used for the calls (nil = http.DefaultClient).
	HTTPClient *http.Client
}

// RemoteError is a non-2xx answer from the control API.
type RemoteError struct {
	StatusCode int
	Body       string
}

// Error implements error.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("sandbox control API: status %d: %s", e.StatusCode, strings.TrimSpace(e.Body))
}

func (c Remote) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+ControlPrefix+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &RemoteError{StatusCode: resp.StatusCode, Body: string(b)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Info returns the sandbox's credentials and group prefixes.
func (c Remote) Info(ctx context.Context) (Info, error) {
	var out Info
	err := c.do(ctx, http.MethodGet, "/info", nil, &out)
	return out, err
}

// Requests returns recorded requests selected by f, oldest first (with a
// Limit, the newest Limit of them unless f.Order is OrderOldest).
func (c Remote) Requests(ctx context.Context, f RequestFilter) ([]Request, error) {
	q := url.Values{}
	if f.Group != "" {
		q.Set("group", string(f.Group))
	}
	if f.Since > 0 {
		q.Set("since", strconv.FormatUint(f.Since, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Order == OrderOldest {
		q.Set("order", string(OrderOldest))
	}
	if f.Method != "" {
		q.Set("method", f.Method)
	}
	if f.PathContains != "" {
		q.Set("path", f.PathContains)
	}
	var out []Request
	err := c.do(ctx, http.MethodGet, "/requests?"+q.Encode(), nil, &out)
	return out, err
}

// Stats returns the counters.
func (c Remote) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	err := c.do(ctx, http.MethodGet, "/stats", nil, &out)
	return out, err
}

// State returns the whole state.
func (c Remote) State(ctx context.Context) (Snapshot, error) {
	var out Snapshot
	err := c.do(ctx, http.MethodGet, "/state", nil, &out)
	return out, err
}

// Person returns the person ref addresses (id, email or cio_<x>); found is
// false when there is none.
func (c Remote) Person(ctx context.Context, ref string) (p Person, found bool, err error) {
	err = c.do(ctx, http.MethodGet, "/people/"+url.PathEscape(ref), nil, &p)
	var re *RemoteError
	if asRemote(err, &re) && re.StatusCode == http.StatusNotFound {
		return Person{}, false, nil
	}
	return p, err == nil, err
}

func asRemote(err error, target **RemoteError) bool {
	re, ok := err.(*RemoteError)
	if ok {
		*target = re
	}
	return ok
}

// Deliveries returns the recorded transactional sends.
func (c Remote) Deliveries(ctx context.Context) ([]Delivery, error) {
	var out []Delivery
	err := c.do(ctx, http.MethodGet, "/deliveries", nil, &out)
	return out, err
}

// Triggers returns the broadcast triggers.
func (c Remote) Triggers(ctx context.Context) ([]Trigger, error) {
	var out []Trigger
	err := c.do(ctx, http.MethodGet, "/triggers", nil, &out)
	return out, err
}

// CDPMessages returns the stored Pipelines messages.
func (c Remote) CDPMessages(ctx context.Context) ([]CDPMessage, error) {
	var out []CDPMessage
	err := c.do(ctx, http.MethodGet, "/cdp", nil, &out)
	return out, err
}

// AddFault installs f on group g next to the faults already there and
// returns its id (PUT /_sandbox/faults/{group}); see [Server.AddFault] for
// how faults combine.
func (c Remote) AddFault(ctx context.Context, g Group, f Fault) (string, error) {
	var out Fault
	err := c.do(ctx, http.MethodPut, "/faults/"+url.PathEscape(string(g)), f, &out)
	return out.ID, err
}

// SetFault replaces every fault of group g with f and returns f's id
// (PUT /_sandbox/faults/{group}?replace=true).
func (c Remote) SetFault(ctx context.Context, g Group, f Fault) (string, error) {
	var out Fault
	err := c.do(ctx, http.MethodPut, "/faults/"+url.PathEscape(string(g))+"?replace=true", f, &out)
	return out.ID, err
}

// RemoveFault removes the fault with that id from group g; found is false
// when the group has no such fault.
func (c Remote) RemoveFault(ctx context.Context, g Group, id string) (found bool, err error) {
	err = c.do(ctx, http.MethodDelete, "/faults/"+url.PathEscape(string(g))+"/"+url.PathEscape(id), nil, nil)
	var re *RemoteError
	if asRemote(err, &re) && re.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// ClearFault removes every fault of group g.
func (c Remote) ClearFault(ctx context.Context, g Group) error {
	return c.do(ctx, http.MethodDelete, "/faults/"+url.PathEscape(string(g)), nil, nil)
}

// ClearFaults removes every fault of every group.
func (c Remote) ClearFaults(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/faults", nil, nil)
}

// Faults returns the installed faults of each group that has any, in the
// order they were added.
func (c Remote) Faults(ctx context.Context) (map[Group][]Fault, error) {
	var out map[Group][]Fault
	err := c.do(ctx, http.MethodGet, "/faults", nil, &out)
	return out, err
}

// Reset forgets all state, recordings, counters and faults.
func (c Remote) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/reset", nil, nil)
}

// AddSegment creates a manual segment.
func (c Remote) AddSegment(ctx context.Context, id int) error {
	return c.do(ctx, http.MethodPost, "/segments", map[string]int{"id": id}, nil)
}

// AddBroadcast creates an API-triggered broadcast.
func (c Remote) AddBroadcast(ctx context.Context, id int) error {
	return c.do(ctx, http.MethodPost, "/broadcasts", map[string]int{"id": id}, nil)
}
