package ingest

import (
	"errors"
	"net/http"

	"github.com/cioq/cioq/status"
)

// taskStatus serves GET /v1/status/{task_id}: the task's timeline
// (producer.Status), for any bearer token of /v1/tasks. Person data
// Customer.io reported is never in it. The same 401 as /v1/tasks without a
// valid token; 404 when Redis holds nothing of the task.
func (s *Server) taskStatus(w http.ResponseWriter, r *http.Request) {
	tok := s.authToken(r)
	if tok == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cioq ingest"`)
		s.count("unknown", "unauthorized")
		writeJSON(w, errNoToken.status, map[string]any{"error": errorJSON{Code: errNoToken.code, Message: errNoToken.msg}})
		return
	}
	ctx, cancel := s.enqueueContext(r)
	defer cancel()
	tl, err := s.cfg.Producer.Status(ctx, r.PathValue("task_id"))
	switch {
	case errors.Is(err, status.ErrNotFound):
		writeError(w, &reqError{status: http.StatusNotFound, code: "not_found", msg: "no such task in Redis (never enqueued, or gone)"})
		return
	case err != nil:
		s.log.Warn("status: could not read a task's timeline", "error", err.Error())
		writeError(w, &reqError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "Redis did not answer; retry"})
		return
	}
	writeJSON(w, http.StatusOK, tl)
}
