package ops

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/status"
)

// TimelinePath is where, under the dashboard's root, the timeline page is
// served (/dashboard/timeline).
const TimelinePath = "/timeline"

// ErrNoSuchKey is what DashboardOptions.TaskIDForKey returns for an
// idempotency key no task can have been enqueued with (the deployment has
// no key secret yet): the page answers 404 without a redirect.
var ErrNoSuchKey = errors.New("ops: no task with that idempotency key")

// maxKeyFormBytes caps the body of the timeline page's form.
const maxKeyFormBytes = 4 << 10

// timelinePage serves RootPath/timeline: GET ?task=ID renders a task's
// timeline (404 when Redis holds nothing of it), GET without a task the
// look-up form, and POST (the form, key=...) answers 303 to the page of the
// task enqueued with that idempotency key. A key is posted, never put in
// a URL: keys may be built from person identifiers, and URLs end up in
// browser history and proxy logs; the page's URL carries only the task id,
// a keyed hash of the key. Every other path goes to next.
type timelinePage struct {
	path   string // root + TimelinePath
	root   string
	store  *status.Store
	taskID func(ctx context.Context, key string) (string, error)
	show   bool // identifiers shown (DashboardOptions.ShowPayloads)
	next   http.Handler
}

func (p *timelinePage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != p.path && r.URL.Path != p.path+"/" {
		p.next.ServeHTTP(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.get(w, r)
	case http.MethodPost:
		p.post(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "the timeline page takes GET ?task=ID or a POSTed form key=IDEMPOTENCY_KEY")
	}
}

func (p *timelinePage) get(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("task"))
	v := timelineView{Root: p.root, Action: p.path, TaskID: id}
	code := http.StatusOK
	if id != "" {
		tl, err := p.store.Lookup(r.Context(), id, status.LookupOptions{ShowIdentifiers: p.show})
		switch {
		case errors.Is(err, status.ErrNotFound):
			code, v.Problem = http.StatusNotFound, "No task "+id+" in Redis: never enqueued, or gone (timelines are kept CIOQ_STATUS_TTL, other tasks only while asynq keeps them; dead letters: cioq dlq show)."
		case err != nil:
			code, v.Problem = http.StatusServiceUnavailable, "Redis could not be read: "+err.Error()
		default:
			v.fill(tl, p.show)
		}
	}
	p.render(w, r, code, v)
}

func (p *timelinePage) post(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxKeyFormBytes)
	if err := r.ParseForm(); err != nil {
		p.render(w, r, http.StatusBadRequest, timelineView{Root: p.root, Action: p.path, Problem: "The form could not be read."})
		return
	}
	key := r.PostForm.Get("key")
	if key == "" {
		p.render(w, r, http.StatusBadRequest, timelineView{Root: p.root, Action: p.path, Problem: "key: give the idempotency key the task was enqueued with."})
		return
	}
	if p.taskID == nil {
		p.render(w, r, http.StatusNotFound, timelineView{Root: p.root, Action: p.path, Problem: "Look-up by idempotency key is not available here."})
		return
	}
	id, err := p.taskID(r.Context(), key)
	switch {
	case errors.Is(err, ErrNoSuchKey):
		p.render(w, r, http.StatusNotFound, timelineView{Root: p.root, Action: p.path, Problem: "No task with that idempotency key in Redis."})
		return
	case err != nil:
		p.render(w, r, http.StatusServiceUnavailable, timelineView{Root: p.root, Action: p.path, Problem: "The idempotency key could not be resolved: " + ScrubText(scrubWith(err.Error(), []string{key}))})
		return
	}
	http.Redirect(w, r, p.path+"?task="+url.QueryEscape(id), http.StatusSeeOther)
}

func (p *timelinePage) render(w http.ResponseWriter, r *http.Request, code int, v timelineView) {
	var buf bytes.Buffer
	if err := timelineTemplate.Execute(&buf, v); err != nil {
		writeError(w, http.StatusInternalServerError, "the timeline page could not be rendered")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// timelineView is what the page's template renders.
type timelineView struct {
	Root, Action string
	TaskID       string
	Problem      string
	Found        bool
	Facts        [][2]string
	State        string
	Final        bool
	Entries      []entryView
	Omitted      int
}

type entryView struct {
	At, Event, Source, Detail string
}

// fill renders tl as `cioq status` prints it; without show, every string
// is also scrubbed of email addresses, as the dashboard's API is.
func (v *timelineView) fill(tl *status.Timeline, show bool) {
	clean := func(s string) string {
		if show {
			return s
		}
		return ScrubText(s)
	}
	v.Found = true
	desc := []string{}
	for _, kv := range [][2]string{{"", tl.Type}, {"queue ", tl.Queue}, {"workspace ", workspaceName(tl.Workspace)}} {
		if kv[1] != "" {
			desc = append(desc, kv[0]+kv[1])
		}
	}
	add := func(k, val string) {
		if val != "" {
			v.Facts = append(v.Facts, [2]string{k, clean(val)})
		}
	}
	add("Task", tl.TaskID+" ("+strings.Join(desc, ", ")+")")
	add("Template", tl.Template)
	add("Trace", tl.TraceID)
	state := tl.State
	if tl.Final {
		state += " (final)"
	}
	if !tl.NextAttemptAt.IsZero() {
		state += ", next attempt " + stampOf(tl.NextAttemptAt)
	}
	v.State, v.Final = tl.State, tl.Final
	add("State", state)
	add("Reason", tl.Reason)
	add("Delivery", tl.Delivery)
	if strings.HasPrefix(tl.Delivery, "trigger:") {
		add("Reported", tl.CountsText())
	}
	for _, e := range tl.Entries {
		v.Entries = append(v.Entries, entryView{At: stampOf(e.At), Event: e.Label(), Source: e.Source, Detail: clean(e.Detail())})
	}
	v.Omitted = tl.Omitted
}

func workspaceName(ws string) string {
	if ws == "" {
		return "default"
	}
	return ws
}

// stampOf formats t as `cioq status` does: RFC 3339 in UTC, with
// milliseconds when it has any.
func stampOf(t time.Time) string {
	if t.Nanosecond() == 0 {
		return t.UTC().Format(time.RFC3339)
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// timelineTemplate is the page: no script, one inline style sheet (the
// dashboard's policy allows inline styles for asynqmon's UI already).
var timelineTemplate = template.Must(template.New("timeline").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{if .TaskID}}{{.TaskID}} · {{end}}cioq timeline</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#b3e5fc}
main{padding:20px;max-width:1100px}
form{margin:0 0 20px;display:flex;gap:8px;flex-wrap:wrap;align-items:center}
input[type=text]{padding:6px 8px;min-width:320px;font:inherit}
button{padding:6px 14px;font:inherit}
table{border-collapse:collapse;background:#fff;margin:0 0 20px}
th,td{text-align:left;padding:5px 12px;border-bottom:1px solid #e0e0e0;vertical-align:top}
th{background:#eceff1}
td.mono,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
.problem{background:#fff3e0;border-left:4px solid #fb8c00;padding:10px 14px;margin:0 0 20px}
.state{font-weight:600}
.final{color:#2e7d32}
</style></head>
<body>
<header><strong>cioq</strong><span>Message timeline</span><a href="{{.Root}}/">← queues</a></header>
<main>
<form method="get" action="{{.Action}}"><label for="task">Task id</label>
<input type="text" id="task" name="task" value="{{.TaskID}}" autocomplete="off" spellcheck="false"><button type="submit">Show</button></form>
<form method="post" action="{{.Action}}"><label for="key">or idempotency key</label>
<input type="text" id="key" name="key" autocomplete="off" spellcheck="false"><button type="submit" id="key-submit">Find</button></form>
{{if .Problem}}<p class="problem" id="problem">{{.Problem}}</p>{{end}}
{{if .Found}}
<table id="facts">{{range .Facts}}<tr><th>{{index . 0}}</th><td class="mono{{if eq (index . 0) "State"}} state{{if $.Final}} final{{end}}{{end}}">{{index . 1}}</td></tr>{{end}}</table>
<table id="entries"><thead><tr><th>At</th><th>Event</th><th>Source</th><th>Detail</th></tr></thead><tbody>
{{range .Entries}}<tr><td class="mono">{{.At}}</td><td>{{.Event}}</td><td>{{.Source}}</td><td class="mono">{{.Detail}}</td></tr>
{{end}}</tbody></table>
{{if .Omitted}}<p>({{.Omitted}} older entries or events not kept)</p>{{end}}
{{end}}
</main></body></html>
`))

// timelineLinkHTML is the link the dashboard adds to asynqmon's pages, right
// after <body>: plain HTML with a style attribute (the policy allows inline
// styles), no script, outside the element asynqmon's UI renders into.
const timelineLinkHTML = `<a id="cioq-timeline-link" href="%s" style="position:fixed;right:20px;top:14px;z-index:2000;` +
	`background:#263238;color:#fff;padding:8px 14px;border-radius:4px;font:500 14px Roboto,sans-serif;text-decoration:none;` +
	`box-shadow:0 2px 6px rgba(0,0,0,.3)">Message timelines</a>`

// linkBar adds the timeline link to the HTML pages next serves (asynqmon's
// index page, which it serves for every path of its UI); other responses
// pass untouched.
func linkBar(apiPrefix, href string, next http.Handler) http.Handler {
	link := []byte(strings.Replace(timelineLinkHTML, "%s", template.HTMLEscapeString(href), 1))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || strings.HasPrefix(r.URL.Path, apiPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		ctype := rec.header.Get("Content-Type")
		if ctype == "" {
			ctype = http.DetectContentType(body) // asynqmon's index page sets none
		}
		if rec.status == http.StatusOK && strings.HasPrefix(ctype, "text/html") {
			if i := bytes.Index(body, []byte("<body>")); i >= 0 {
				i += len("<body>")
				body = append(append(append([]byte{}, body[:i]...), link...), body[i:]...)
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}
