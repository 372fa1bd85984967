package ops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/cioq/cioq/status"
)

// DefaultDashboardRoot is where the dashboard is mounted when
// DashboardOptions.RootPath is empty.
const DefaultDashboardRoot = "/dashboard"

// ErrDashboardNoAuth is returned by NewDashboard when no credentials are set
// and AllowNoAuth is false.
var ErrDashboardNoAuth = errors.New("ops: dashboard needs CIOQ_DASHBOARD_USER and CIOQ_DASHBOARD_PASSWORD (or AllowNoAuth to serve it without authentication)")

// DashboardOptions configures NewDashboard. The zero value (plus
// RedisConnOpt and credentials) is a read-write dashboard at /dashboard with
// payloads redacted.
type DashboardOptions struct {
	// RootPath is the URL path the dashboard is served under, starting with
	// a slash. Default "/dashboard".
	RootPath string

	// RedisConnOpt is the asynq connection to the queues' Redis. Required.
	RedisConnOpt asynq.RedisConnOpt

	// Username and Password protect the dashboard with HTTP basic auth
	// (cmd reads them from CIOQ_DASHBOARD_USER and CIOQ_DASHBOARD_PASSWORD).
	// Both are required unless AllowNoAuth is set.
	Username string
	Password string

	// AllowNoAuth serves the dashboard without authentication when no
	// credentials are set. The caller should log a warning; see
	// DashboardOptions.Unauthenticated.
	AllowNoAuth bool

	// ReadOnly refuses every request but GET and HEAD with 405, and hides
	// asynqmon's buttons that change state. Without it the dashboard can
	// pause queues and run, cancel, archive or delete tasks, except archived
	// tasks: see NewDashboard.
	ReadOnly bool

	// ShowPayloads shows task payloads, results and error messages as they
	// are stored. Default false: they are passed through Redact and every
	// string the JSON API returns is scrubbed of emails.
	ShowPayloads bool

	// TrustedOrigins are origins, "scheme://host[:port]" as a browser sends
	// them in its Origin header ("https://cioq.example.com"), whose requests
	// that change state are accepted although that Origin does not match
	// the Host header: behind a TLS proxy that rewrites Host, for browsers
	// that send no Sec-Fetch-Site. Every other cross-origin request but GET,
	// HEAD and OPTIONS is refused (see NewDashboard). Their host names are
	// allowed Host headers too (see CheckHost). cmd reads them from
	// CIOQ_DASHBOARD_TRUSTED_ORIGINS.
	TrustedOrigins []string

	// CheckHost refuses, with 421, every request whose Host header is not
	// an IP address, "localhost" or one of AllowedHosts (or the host of one
	// of TrustedOrigins): a DNS-rebinding page reaches the dashboard under
	// a name of its own, and in the browser's eyes is then of the same
	// origin, so that neither basic auth with known credentials nor the
	// cross-origin check stops it. cmd sets it when serve listens on a
	// loopback address or runs with --no-auth, and in the demo.
	CheckHost bool

	// AllowedHosts are further host names (without a port; case does not
	// matter) the Host header may name when CheckHost is set. Giving any
	// sets CheckHost. cmd reads them from CIOQ_DASHBOARD_ALLOWED_HOSTS.
	AllowedHosts []string

	// Timelines, when set, serves the timeline page at RootPath/timeline
	// (TimelinePath), behind the same checks as the rest: a task's
	// timeline as `cioq status` prints it, with person data only when
	// ShowPayloads is set; asynqmon's pages get a link to it.
	Timelines *status.Store

	// TaskIDForKey resolves an idempotency key posted to the timeline
	// page into its task id (producer.Client.TaskIDForKey); ErrNoSuchKey
	// when no task can have that key. Nil: the page looks tasks up by id
	// only.
	TaskIDForKey func(ctx context.Context, key string) (string, error)
}

// Unauthenticated reports whether a dashboard built from o would be served
// without authentication (AllowNoAuth set and no credentials), so the caller
// can log a warning.
func (o DashboardOptions) Unauthenticated() bool {
	return o.Username == "" && o.Password == "" && o.AllowNoAuth
}

// Dashboard is the handler NewDashboard returns: asynqmon behind basic auth,
// an optional read-only guard and the redaction of its JSON API.
type Dashboard struct {
	root      string
	handler   http.Handler
	monitor   *asynqmon.HTTPHandler
	inspector *asynq.Inspector
}

// NewDashboard returns the asynqmon dashboard mounted under opts.RootPath.
// It is an error to give no credentials without AllowNoAuth, or only one of
// Username and Password. The returned handler is a *Dashboard; call its
// Close when done to release its Redis connections.
//
// Requests outside RootPath get 404. Requests are checked in this order,
// each refusal a JSON object {"error": "..."}:
//
//   - with CheckHost (or AllowedHosts), an unexpected Host header gets 421;
//   - a cross-origin request that is not GET, HEAD or OPTIONS gets 403
//     (http.CrossOriginProtection: Sec-Fetch-Site, else Origin against
//     Host; TrustedOrigins pass);
//   - basic auth (401);
//   - read-only: every method but GET and HEAD gets 405;
//   - requests that would break cioq's guarantees get 405 (below);
//   - a request of the JSON API that is not GET, HEAD or OPTIONS must
//     carry Content-Type application/json, or no Content-Type and no body,
//     else 415 (asynqmon decodes any body as JSON, which an HTML form could
//     otherwise send);
//   - a page of the API may list at most MaxDashboardPageSize tasks:
//     a larger size parameter gets 400.
//
// Every response carries security headers, a Content-Security-Policy among
// them that allows the embedded UI's own scripts (by hash) and nothing
// else's.
//
// With Timelines set, RootPath/timeline (TimelinePath) is cioq's own page
// of a task's timeline, after the Host, cross-origin and basic-auth checks
// and before the others (its form's POST, a look-up, is served read-only
// too): GET ?task=ID (404 for a task Redis holds nothing of), POST
// key=IDEMPOTENCY_KEY answered 303 to the key's task's page. asynqmon's
// HTML pages get a link to it (plain HTML, no script: the policy's hashes
// stay those of asynqmon's own inline scripts).
//
// Archived tasks are cioq's dead letters, whose records live in the
// worker's dead letter store: running or deleting them from the dashboard
// would bypass that store, so every request but GET and HEAD under a
// queue's archived_tasks API routes (run, delete, batch and all) gets 405
// with a JSON message pointing to `cioq dlq retry|delete|purge`, read-only
// or not. So does archiving a task (its :archive, :archive_all and
// :batch_archive routes in every state), which would put it in the archive
// with no dead letter record, and deleting completed tasks, which hold
// their idempotency keys: after one is deleted its key could be enqueued,
// and sent, again. With redaction on (ShowPayloads false),
// payloads and results go through Redact; each task's last error message and
// result have the values Redact hid from that task's payload replaced (or are
// hidden when the task can no longer be read); every other string
// of an API response (task ids, group names, options, Redis info) is scrubbed
// of emails. Task ids and group names are otherwise shown as they are: the
// producer makes a task id from an idempotency key by a keyed hash (the key
// itself is in the envelope, redacted with the payload), and group names
// must not carry person identifiers.
func NewDashboard(opts DashboardOptions) (http.Handler, error) {
	if opts.RedisConnOpt == nil {
		return nil, errors.New("ops: dashboard needs a Redis connection (RedisConnOpt)")
	}
	root := opts.RootPath
	if root == "" {
		root = DefaultDashboardRoot
	}
	if !strings.HasPrefix(root, "/") {
		return nil, errors.New("ops: dashboard RootPath must start with a slash")
	}
	root = strings.TrimSuffix(root, "/")
	if root == "" {
		return nil, errors.New("ops: dashboard RootPath must not be the site root")
	}
	switch {
	case opts.Username == "" && opts.Password == "":
		if !opts.AllowNoAuth {
			return nil, ErrDashboardNoAuth
		}
	case opts.Username == "" || opts.Password == "":
		return nil, errors.New("ops: dashboard needs both CIOQ_DASHBOARD_USER and CIOQ_DASHBOARD_PASSWORD")
	}

	mon := asynqmon.Options{
		RootPath:     root,
		RedisConnOpt: opts.RedisConnOpt,
		ReadOnly:     opts.ReadOnly,
	}
	if !opts.ShowPayloads {
		mon.PayloadFormatter = asynqmon.PayloadFormatterFunc(func(_ string, p []byte) string { return Redact(p) })
		mon.ResultFormatter = asynqmon.ResultFormatterFunc(func(_ string, p []byte) string { return Redact(p) })
	}

	cop := http.NewCrossOriginProtection()
	allowedHosts := map[string]bool{}
	for _, o := range opts.TrustedOrigins {
		o = strings.TrimSuffix(strings.TrimSpace(o), "/")
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("ops: dashboard trusted origin: %w", err)
		}
		u, _ := url.Parse(o)
		allowedHosts[strings.ToLower(u.Hostname())] = true
	}
	for _, name := range opts.AllowedHosts {
		name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
		if name == "" || strings.ContainsAny(name, ":/[]@ ") {
			return nil, fmt.Errorf("ops: dashboard allowed host %q: want a host name without scheme, port or path", name)
		}
		allowedHosts[name] = true
	}

	d := &Dashboard{root: root, monitor: asynqmon.New(mon)}
	csp, err := contentSecurityPolicy(d.monitor, root)
	if err != nil {
		d.monitor.Close()
		return nil, err
	}

	apiPrefix := root + "/api/"
	var h http.Handler = d.monitor
	if !opts.ShowPayloads {
		d.inspector = asynq.NewInspector(opts.RedisConnOpt)
		h = &redactAPI{next: h, apiPrefix: apiPrefix, inspector: d.inspector}
	}
	h = pageSizeLimit(apiPrefix, h)
	h = jsonBodies(apiPrefix, h)
	h = guardTasks(apiPrefix+"queues/", h)
	if opts.ReadOnly {
		h = readOnly(h)
	}
	if opts.Timelines != nil {
		// The page changes nothing, its POST included (a look-up), so a
		// read-only dashboard serves it too; the checks below apply.
		h = linkBar(apiPrefix, root+TimelinePath, h)
		h = &timelinePage{path: root + TimelinePath, root: root, store: opts.Timelines,
			taskID: opts.TaskIDForKey, show: opts.ShowPayloads, next: h}
	}
	if opts.Username != "" {
		h = basicAuth(opts.Username, opts.Password, h)
	}
	h = crossOrigin(cop, h)
	if opts.CheckHost || len(opts.AllowedHosts) > 0 {
		h = hostCheck(allowedHosts, h)
	}
	h = securityHeaders(csp, h)
	d.handler = h
	return d, nil
}

// ServeHTTP serves the dashboard.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != d.root && !strings.HasPrefix(r.URL.Path, d.root+"/") {
		http.NotFound(w, r)
		return
	}
	d.handler.ServeHTTP(w, r)
}

// RootPath returns the path the dashboard is served under, without a
// trailing slash.
func (d *Dashboard) RootPath() string { return d.root }

// Close releases the dashboard's Redis connections.
func (d *Dashboard) Close() error {
	err := d.monitor.Close()
	if d.inspector != nil {
		err = errors.Join(err, d.inspector.Close())
	}
	return err
}

// basicAuth requires the given credentials, compared in constant time.
func basicAuth(user, pass string, next http.Handler) http.Handler {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(pass))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="cioq dashboard", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// redactAPI rewrites the JSON API's responses: error messages of tasks are
// scrubbed of the values their payloads hid, every string of emails.
type redactAPI struct {
	next      http.Handler
	apiPrefix string
	inspector *asynq.Inspector
}

func (a *redactAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, a.apiPrefix) {
		a.next.ServeHTTP(w, r)
		return
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	a.next.ServeHTTP(rec, r)

	body := rec.body.Bytes()
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if len(bytes.TrimSpace(body)) > 0 && dec.Decode(&doc) == nil {
		c := &apiScrubber{inspector: a.inspector, secrets: map[string][]string{}}
		body = []byte(encodeJSON(c.walk(doc)) + "\n")
		if rec.header.Get("Content-Type") == "" {
			rec.header.Set("Content-Type", "application/json")
		}
	} else {
		body = []byte(ScrubText(string(body)))
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

type apiScrubber struct {
	inspector *asynq.Inspector
	secrets   map[string][]string // by queue+id
}

func (c *apiScrubber) walk(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = c.walk(e)
		}
		for _, field := range taskTextFields {
			if msg, ok := x[field].(string); ok && msg != "" {
				out[field] = c.scrubTaskText(x, msg)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = c.walk(e)
		}
		return out
	case string:
		return ScrubText(x)
	default:
		return v
	}
}

// taskTextFields are the members of a task object in asynqmon's responses
// that carry text a worker wrote about the task.
var taskTextFields = []string{"error_message", "result"}

// scrubTaskText hides, in a task's error message or result, every value
// Redact hid from the task's payload. When the task cannot be read the text
// is hidden.
func (c *apiScrubber) scrubTaskText(task map[string]any, msg string) string {
	id, _ := task["id"].(string)
	queue, _ := task["queue"].(string)
	if id == "" || queue == "" {
		return Redacted
	}
	key := queue + "\x00" + id
	secrets, ok := c.secrets[key]
	if !ok {
		info, err := c.inspector.GetTaskInfo(queue, id)
		if err != nil {
			return Redacted
		}
		_, secrets = redact(info.Payload)
		c.secrets[key] = secrets
	}
	return scrubWith(msg, secrets)
}

// recorder buffers a response so it can be rewritten.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}
