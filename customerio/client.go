package customerio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Region is the data center of a Customer.io account.
type Region string

// Customer.io regions. The zero Region means RegionUS.
const (
	RegionUS Region = "us"
	RegionEU Region = "eu"
)

// API names one of Customer.io's HTTP APIs. Each has its own host, key and
// authentication scheme.
type API string

// The APIs the client speaks to.
const (
	APITrack     API = "track"     // Track API v1 and v2 (Basic site_id:track_api_key)
	APIApp       API = "app"       // App API: transactional sends, broadcasts (Bearer app_api_key)
	APIPipelines API = "pipelines" // Data Pipelines / CDP API (Basic write_key: with an empty password)
)

// Defaults.
const (
	// DefaultTimeout bounds every call when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBytes caps how much of a response body the client reads.
	MaxResponseBytes = 1 << 20
	// maxDrainBytes is how much of an unread remainder is drained so the
	// connection can be reused; beyond that the connection is closed.
	maxDrainBytes = 256 << 10
)

// Base URLs per region, as Customer.io's documentation gives them (the
// "Account regions" page and each API's reference). The Pipelines base
// includes /v1.
var baseURLs = map[Region]map[API]string{
	RegionUS: {
		APITrack:     "https://track.customer.io",
		APIApp:       "https://api.customer.io",
		APIPipelines: "https://cdp.customer.io/v1",
	},
	RegionEU: {
		APITrack:     "https://track-eu.customer.io",
		APIApp:       "https://api-eu.customer.io",
		APIPipelines: "https://cdp-eu.customer.io/v1",
	},
}

// Config configures a Client. The zero value of every field is a documented
// default; credentials of an API that is never called may be left empty (a
// call to that API then fails with ErrMissingCredentials, without a request).
type Config struct {
	// SiteID and TrackAPIKey authenticate Track API calls (v1 and v2) with
	// HTTP Basic auth, site_id:track_api_key in standard base64.
	SiteID, TrackAPIKey string
	// AppAPIKey authenticates App API calls (transactional sends,
	// broadcasts) as "Authorization: Bearer <key>". It may also be a
	// service-account token ("sa_live_..."), which spans workspaces: then
	// AppWorkspaceID is required, and is sent as X-Workspace-Id on
	// transactional sends (the only App calls such tokens are documented
	// for).
	AppAPIKey string
	// AppWorkspaceID is the numeric workspace id a service-account
	// AppAPIKey sends on behalf of (X-Workspace-Id); unused otherwise.
	AppWorkspaceID string
	// PipelinesWriteKey authenticates Pipelines (CDP) calls with HTTP Basic
	// auth: the write key as user name and an empty password.
	PipelinesWriteKey string
	// Region selects the hosts: "" or RegionUS for the US data center,
	// RegionEU for the EU one.
	Region Region
	// TrackURL, AppURL and PipelinesURL override the base URL of one API
	// (tests, the sandbox, proxies). PipelinesURL includes the /v1, like
	// https://cdp.customer.io/v1. Empty means the Region's host.
	TrackURL, AppURL, PipelinesURL string
	// PipelinesStrict sends "X-Strict-Mode: 1" on Pipelines calls, so that
	// invalid calls get a 4xx instead of a silent 200.
	PipelinesStrict bool
	// Timeout bounds every call, including reading the response; 0 means
	// DefaultTimeout (10s). A shorter deadline on the caller's context wins.
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a client with a tuned,
	// connection-reusing transport that does not follow redirects to another
	// host. A custom client's redirect policy is its own; note that Go drops
	// the Authorization header on redirects to a different host anyway.
	HTTPClient *http.Client
	// UserAgent, when set, is appended to the User-Agent header after
	// "cioq/<Version> (+https://github.com/cioq/cioq)".
	UserAgent string
	// WrapTransport, when set, wraps the transport of the client's
	// requests (the default one, or HTTPClient's): tracing, logging.
	// Each request's context names its API and operation (see
	// RequestOperation). An interface, so Config stays comparable.
	WrapTransport TransportWrapper
}

// TransportWrapper wraps an http.RoundTripper (Config.WrapTransport).
type TransportWrapper interface {
	WrapTransport(http.RoundTripper) http.RoundTripper
}

// endpoint is the resolved base URL and credentials of one API.
type endpoint struct {
	base    *url.URL
	baseStr string // base.String(), parsed once
	auth    string // Authorization header value; "" when not configured
	need    string // what is missing, for the ErrMissingCredentials error
}

// Client calls Customer.io's Track, App and Pipelines APIs. It is safe for
// concurrent use. It never retries: every method makes at most one request
// per call (AddToSegment and RemoveFromSegment one per 1000 ids) and
// reports the outcome as a classified *APIError so that the queue decides.
type Client struct {
	http      *http.Client
	timeout   time.Duration
	userAgent string
	strict    bool
	// workspaceID is X-Workspace-Id for a service-account App token ("" =
	// an ordinary App API key).
	workspaceID string
	endpoints   map[API]*endpoint
	secrets     []string // credentials, scrubbed from every error text
}

// New checks cfg and returns a Client. The error names the offending field
// (for example an unknown Region or a malformed TrackURL); it never contains
// a key.
func New(cfg Config) (*Client, error) {
	region := cfg.Region
	if region == "" {
		region = RegionUS
	}
	bases, ok := baseURLs[region]
	if !ok {
		return nil, fmt.Errorf("customerio: Config.Region: must be %q or %q", RegionUS, RegionEU)
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("customerio: Config.Timeout: must not be negative")
	}
	c := &Client{
		http:      cfg.HTTPClient,
		timeout:   cfg.Timeout,
		strict:    cfg.PipelinesStrict,
		endpoints: make(map[API]*endpoint, 3),
		userAgent: "cioq/" + Version + " (+https://github.com/cioq/cioq)",
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if ua := strings.TrimSpace(cfg.UserAgent); ua != "" {
		c.userAgent += " " + ua
	}
	if c.http == nil {
		c.http = newHTTPClient()
	}
	if cfg.WrapTransport != nil {
		hc := *c.http
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		hc.Transport = cfg.WrapTransport.WrapTransport(rt)
		c.http = &hc
	}
	overrides := []struct {
		api   API
		field string
		value string
	}{
		{APITrack, "TrackURL", cfg.TrackURL},
		{APIApp, "AppURL", cfg.AppURL},
		{APIPipelines, "PipelinesURL", cfg.PipelinesURL},
	}
	for _, o := range overrides {
		raw := o.value
		if raw == "" {
			raw = bases[o.api]
		}
		u, err := parseBaseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("customerio: Config.%s: %s", o.field, err)
		}
		c.endpoints[o.api] = &endpoint{base: u, baseStr: u.String()}
	}
	if cfg.SiteID != "" && cfg.TrackAPIKey != "" {
		c.endpoints[APITrack].auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.SiteID+":"+cfg.TrackAPIKey))
	} else {
		c.endpoints[APITrack].need = "Config.SiteID and Config.TrackAPIKey"
	}
	if cfg.AppAPIKey != "" {
		c.endpoints[APIApp].auth = "Bearer " + cfg.AppAPIKey
		if strings.HasPrefix(cfg.AppAPIKey, "sa_live_") {
			id := strings.TrimSpace(cfg.AppWorkspaceID)
			if _, err := strconv.ParseUint(id, 10, 64); err != nil {
				return nil, fmt.Errorf("customerio: Config.AppWorkspaceID: a service-account AppAPIKey (sa_live_...) needs the numeric id of the workspace it sends for")
			}
			c.workspaceID = id
		}
	} else {
		c.endpoints[APIApp].need = "Config.AppAPIKey"
	}
	if cfg.PipelinesWriteKey != "" {
		c.endpoints[APIPipelines].auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.PipelinesWriteKey+":"))
	} else {
		c.endpoints[APIPipelines].need = "Config.PipelinesWriteKey"
	}
	for _, s := range []string{cfg.TrackAPIKey, cfg.AppAPIKey, cfg.PipelinesWriteKey} {
		if s != "" {
			c.secrets = append(c.secrets, s)
		}
	}
	for _, ep := range c.endpoints {
		if ep.auth != "" {
			c.secrets = append(c.secrets, ep.auth, strings.TrimPrefix(strings.TrimPrefix(ep.auth, "Basic "), "Bearer "))
		}
	}
	return c, nil
}

// HasCredentials reports whether the client has the credentials of api
// (Track: site id and key; App: a key; Pipelines: a write key). A call to
// an API without them fails with ErrMissingCredentials, without a request.
func (c *Client) HasCredentials(api API) bool {
	ep := c.endpoints[api]
	return ep != nil && ep.auth != ""
}

// ServiceAccount reports whether the App API key is a service-account
// token (sa_live_...), sent with X-Workspace-Id on transactional sends.
func (c *Client) ServiceAccount() bool { return c.workspaceID != "" }

// parseBaseURL accepts an absolute http(s) URL without query or fragment and
// strips a trailing slash. Its error does not repeat the URL (it may carry
// userinfo).
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("must be an absolute http or https URL")
	}
	if u.Host == "" {
		return nil, errors.New("must name a host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("must not carry a query, a fragment or credentials")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// newHTTPClient returns the default client: a cloned default transport tuned
// for many calls to few hosts, and a redirect policy that never follows a
// redirect to another host (the request carries credentials).
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 128
	tr.IdleConnTimeout = 90 * time.Second
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = 0 // the per-call context deadline bounds it
	tr.ForceAttemptHTTP2 = true
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 || req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// request describes one HTTP call.
type request struct {
	api    API
	op     string
	method string
	// path holds the unescaped path segments after the API's base path;
	// each is escaped on its own, so "/" inside an identifier stays in it.
	path  []string
	query url.Values
	body  any // nil: no body and no Content-Type
	// raw, when set, is the body already encoded (body is then nil).
	raw []byte
	// parts, when set, are the operations of a Track v2 batch, encoded:
	// the body {"batch":[parts...]} is read from them as it is sent,
	// never joined into one buffer (raw and body are then nil).
	parts []json.RawMessage
	// pathValues are identifiers taken from the path, scrubbed from errors.
	pathValues []string
}

// escapeSegment escapes one path segment so that it survives the round trip
// through any server: url.PathEscape plus "+" as %2B (some servers decode
// "+" as a space).
func escapeSegment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
}

// response is a successful (2xx) answer.
type response struct {
	status int
	body   []byte
	scrub  *scrubber
	// readErr is why body could not be read to its end (the connection
	// broke, the deadline passed); body then holds what was read. The
	// status says Customer.io accepted the request all the same.
	readErr error
}

// do sends rq and returns its 2xx response, or an error: *ValidationError if
// the body cannot be encoded, otherwise *APIError.
func (c *Client) do(ctx context.Context, rq *request) (*response, error) {
	ep := c.endpoints[rq.api]
	if ep.auth == "" {
		return nil, &APIError{
			API: rq.api, Operation: rq.op, Class: ClassAuth,
			Err: fmt.Errorf("%w: the %s API needs %s", ErrMissingCredentials, rq.api, ep.need),
		}
	}
	body := rq.raw
	if rq.body != nil {
		var err error
		if body, err = encodeJSON(rq.body); err != nil {
			return nil, &ValidationError{Field: "body", Reason: "cannot be encoded as JSON"}
		}
	}
	sc := c.newScrubber(rq, body)

	u := *ep.base
	var plain, escaped strings.Builder
	for _, seg := range rq.path {
		plain.WriteByte('/')
		plain.WriteString(seg)
		escaped.WriteByte('/')
		escaped.WriteString(escapeSegment(seg))
	}
	u.Path = ep.base.Path + plain.String()
	u.RawPath = ep.base.EscapedPath() + escaped.String()
	if len(rq.query) > 0 {
		u.RawQuery = rq.query.Encode()
	}

	ctx, cancel := context.WithTimeout(context.WithValue(ctx, operationKey{}, operation{rq.api, rq.op}), c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	if rq.parts != nil {
		rd = newBatchReader(rq.parts)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, ep.baseStr, rd)
	if err != nil {
		return nil, c.networkError(rq, sc, err)
	}
	if rq.parts != nil {
		req.ContentLength = rd.(*batchReader).size
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(newBatchReader(rq.parts)), nil }
	}
	req.URL = &u
	req.Host = u.Host
	req.Header.Set("Authorization", ep.auth)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil || rq.parts != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.api == APIPipelines && c.strict {
		req.Header.Set("X-Strict-Mode", "1")
	}
	if rq.api == APIApp && c.workspaceID != "" && len(rq.path) > 1 && rq.path[1] == "send" {
		req.Header.Set("X-Workspace-Id", c.workspaceID)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.networkError(rq, sc, err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	// Drain a bounded remainder so the connection can be reused, then close.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Accepted, even when the body broke off: a caller that needs the
		// body gets ErrUnreadableResponse from decode; one that does not
		// has succeeded.
		return &response{status: resp.StatusCode, body: data, scrub: sc, readErr: err}, nil
	}
	if err != nil {
		return nil, c.networkError(rq, sc, err)
	}
	return nil, newStatusError(rq.api, rq.op, resp.StatusCode, resp.Header, data, sc)
}

type operationKey struct{}

type operation struct {
	api API
	op  string
}

// RequestOperation returns the API and operation ("send_email",
// "identify", "batch", ...) of a request the client sends, from its
// context: what a WrapTransport may name it by (its URL can hold person
// identifiers). ok is false for any other request.
func RequestOperation(ctx context.Context) (api API, op string, ok bool) {
	o, ok := ctx.Value(operationKey{}).(operation)
	return o.api, o.op, ok
}

// doJSON sends rq and decodes its 2xx body into a new T (see decode).
func doJSON[T any](ctx context.Context, c *Client, rq *request) (*T, error) {
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var out T
	if err := resp.decode(rq, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// decode unmarshals a 2xx body into out. A body that could not be read to
// its end, or is not the documented JSON, is r.unreadable().
func (r *response) decode(rq *request, out any) error {
	if r.readErr != nil {
		return r.unreadable(rq)
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		return r.unreadable(rq)
	}
	return nil
}

// unreadable is the error of a 2xx answer whose body the caller needs but
// cannot have: a permanent *APIError wrapping ErrUnreadableResponse. The
// request was processed, so a retry could duplicate it.
func (r *response) unreadable(rq *request) error {
	e := &APIError{API: rq.api, Operation: rq.op, StatusCode: r.status, Class: ClassPermanent,
		Message: "response body is not the documented JSON", Err: ErrUnreadableResponse}
	if r.readErr != nil {
		var ue *url.Error
		cause := r.readErr
		if errors.As(cause, &ue) {
			cause = ue.Err
		}
		e.Message = "response body could not be read"
		e.Err = fmt.Errorf("%w (%w)", ErrUnreadableResponse, &scrubbedError{err: cause, text: r.scrub.scrub(cause.Error())})
	}
	return e
}
