package ops

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// MaxDashboardPageSize is the most tasks (or scheduler events) one page of
// the dashboard's JSON API lists: the largest page asynqmon's UI offers.
// A request asking for more (size=N) gets 400, so a response, which the
// redaction buffers whole, stays bounded.
const MaxDashboardPageSize = 100

// Messages of the dashboard's refusals (the "error" member of their JSON
// body).
const (
	// ErrArchivedTasksMessage is the message of the 405 the dashboard
	// answers to a request that would run or delete archived tasks.
	ErrArchivedTasksMessage = "manage dead letters with `cioq dlq retry|delete|purge`"

	// ErrArchiveMessage is the message of the 405 the dashboard answers to
	// a request that would archive tasks.
	ErrArchiveMessage = "archiving from the dashboard would put tasks in the archive without a dead letter record: " +
		"delete the task instead, or let the worker dead-letter it; manage dead letters with `cioq dlq`"

	// ErrCompletedTasksMessage is the message of the 405 the dashboard
	// answers to a request that would delete completed tasks.
	ErrCompletedTasksMessage = "completed tasks hold their idempotency keys until they expire (24 h by default): " +
		"deleting one would let its key be enqueued and sent again (dead letters: `cioq dlq`)"

	// ErrHostMessage is the message of the 421 the dashboard answers to a
	// request with an unexpected Host header.
	ErrHostMessage = "unexpected Host header: add the host name the dashboard is reached by to CIOQ_DASHBOARD_ALLOWED_HOSTS"

	// ErrContentTypeMessage is the message of the 415 the dashboard answers
	// to a request of its API that changes state and carries a body that
	// is not JSON.
	ErrContentTypeMessage = "the dashboard API takes application/json bodies"
)

// writeError answers status with {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// safeMethod reports whether m changes nothing (the methods
// http.CrossOriginProtection lets through).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// hostCheck refuses requests whose Host is not an IP address, localhost or
// one of allowed (lower case, no port).
func hostCheck(allowed map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, allowed) {
			writeError(w, http.StatusMisdirectedRequest, ErrHostMessage)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the Host header hostport names an IP address
// (a DNS-rebinding page cannot be the origin of one), localhost (browsers
// resolve it themselves) or an allowed name.
func hostAllowed(hostport string, allowed map[string]bool) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case host == "":
		return false
	case net.ParseIP(host) != nil, host == "localhost":
		return true
	}
	return allowed[host]
}

// crossOrigin refuses cross-origin requests that may change state.
func crossOrigin(cop *http.CrossOriginProtection, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "cross-origin request refused ("+err.Error()+
				"); behind a proxy that rewrites Host, list the dashboard's origin in CIOQ_DASHBOARD_TRUSTED_ORIGINS")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readOnly refuses every method but GET and HEAD.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "dashboard is read-only")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// guardTasks refuses, with 405, every method but GET and HEAD on the
// routes under queuesPrefix that would bypass the dead letter store or
// drop an idempotency key (see taskRefusal).
func guardTasks(queuesPrefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if msg := taskRefusal(queuesPrefix, r.URL.Path); msg != "" {
				w.Header().Set("Allow", "GET, HEAD")
				writeError(w, http.StatusMethodNotAllowed, msg)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// taskRefusal returns why a request that is not GET or HEAD to p must be
// refused, or "". p is cleaned first (asynqmon's router answers a path
// that is not clean with a redirect, never with its handler). Under
// queuesPrefix + "{qname}/": every route of archived_tasks (asynqmon's
// archived_tasks/{id}, archived_tasks/{id}:run, archived_tasks:run_all,
// :batch_run, :delete_all and :batch_delete) and of completed_tasks
// (completed_tasks/{id}, :delete_all, :batch_delete); and any path ending
// in :archive, :archive_all or :batch_archive (the archive actions of
// pending, scheduled, retry and aggregating tasks).
func taskRefusal(queuesPrefix, p string) string {
	rest, ok := strings.CutPrefix(path.Clean(p), queuesPrefix)
	if !ok {
		return ""
	}
	segs := strings.Split(rest, "/")
	if len(segs) >= 2 {
		family := segs[1]
		if family == "groups" && len(segs) >= 4 { // groups/{gname}/aggregating_tasks
			family = segs[3]
		}
		family, _, _ = strings.Cut(family, ":")
		switch family {
		case "archived_tasks":
			return ErrArchivedTasksMessage
		case "completed_tasks":
			return ErrCompletedTasksMessage
		}
	}
	last := segs[len(segs)-1]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		switch last[i+1:] {
		case "archive", "archive_all", "batch_archive":
			return ErrArchiveMessage
		}
	}
	return ""
}

// jsonBodies refuses, with 415, a request under apiPrefix that may change
// state and carries a Content-Type other than application/json, or a body
// without one. asynqmon decodes request bodies as JSON whatever their
// type, so an HTML form (urlencoded, multipart or text/plain, the only
// types a cross-site form can send) could otherwise drive it.
func jsonBodies(apiPrefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) && strings.HasPrefix(path.Clean(r.URL.Path)+"/", apiPrefix) && !jsonOrEmpty(r) {
			writeError(w, http.StatusUnsupportedMediaType, ErrContentTypeMessage)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// jsonOrEmpty reports whether r's body is declared JSON, or r has neither
// a Content-Type nor a body (asynqmon's UI sends its bodiless POSTs and
// DELETEs so).
func jsonOrEmpty(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// pageSizeLimit refuses, with 400, a request under apiPrefix whose size
// parameter (as asynqmon reads it: the first, when it is an integer) is
// over MaxDashboardPageSize.
func pageSizeLimit(apiPrefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, apiPrefix) {
			if n, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil && n > MaxDashboardPageSize {
				writeError(w, http.StatusBadRequest, "size: at most "+strconv.Itoa(MaxDashboardPageSize)+" per page")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers of every dashboard response: no
// sniffing, framing, referrer or caching, no use by other origins, and
// the Content-Security-Policy csp.
func securityHeaders(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// inlineScript matches a script element without attributes (asynqmon's
// index page has two: its settings and webpack's runtime).
var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// contentSecurityPolicy returns the dashboard's policy: scripts from the
// dashboard itself and the inline scripts of the index page asynqmon
// renders for root (allowed by their SHA-256, read here once); styles from
// itself, inline (Material-UI injects them at run time) and Google Fonts'
// stylesheets, which the page links, with their fonts; API requests to
// itself only; no plugins, no framing, no base URL or form target
// elsewhere.
func contentSecurityPolicy(ui http.Handler, root string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, root+"/", nil)
	if err != nil {
		return "", err
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	ui.ServeHTTP(rec, req)
	scripts := inlineScript.FindAllSubmatch(rec.body.Bytes(), -1)
	if rec.status != http.StatusOK || len(scripts) == 0 {
		return "", errors.New("ops: the dashboard's index page has no inline script to allow: asynqmon changed")
	}
	src := "'self'"
	for _, m := range scripts {
		sum := sha256.Sum256(m[1])
		src += " 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return "default-src 'none'; script-src " + src + "; " +
		"style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com; " +
		"img-src 'self' data:; connect-src 'self'; manifest-src 'self'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'", nil
}
