package worker

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/status"
)

// DefaultStatusPollHorizon is how long after its acceptance a send is
// polled at most (StatusConfig.PollHorizon).
const DefaultStatusPollHorizon = 72 * time.Hour

// statusPollBatch is how many sends of a workspace one round claims.
const statusPollBatch = 50

// statusPollLoop runs the fallback poll every PollInterval until Shutdown.
func (w *Worker) statusPollLoop() {
	defer w.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(w.cfg.Status.PollInterval)
	defer t.Stop()
	for {
		w.statusPoll(ctx)
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// statusPoll reads, for every workspace with App credentials, the sends
// and broadcast triggers accepted more than PollAfter ago that have no
// final state yet, with GET /v1/messages/{delivery id} or GET
// /v1/campaigns/{broadcast id}/triggers/{trigger id} through the App API's
// shared rate limit, and records what Customer.io says (source "poll"). A
// send found final, a trigger found processed, or either older than
// PollHorizon, leaves the poll's queue; one still on its way is read again
// a PollInterval later.
func (w *Worker) statusPoll(ctx context.Context) {
	w.mu.Lock()
	names := make([]string, 0, len(w.clients))
	for ws, c := range w.clients {
		if c.HasCredentials(customerio.APIApp) && !c.ServiceAccount() {
			names = append(names, ws)
		}
	}
	w.mu.Unlock()
	sort.Strings(names)
	for _, ws := range names {
		if ctx.Err() != nil {
			return
		}
		refs, err := w.status.ClaimDue(ctx, ws, statusPollBatch, w.cfg.Status.PollInterval)
		if err != nil {
			w.log.Debug("fallback poll: could not read its queue", "workspace", displayWS(ws), "error", err.Error())
			continue
		}
		for _, ref := range refs {
			if !w.pollDelivery(ctx, ws, ref) {
				break // throttled or shutting down: the rest waits for the next round
			}
		}
	}
}

// pollDelivery reads and records one delivery or broadcast trigger; false
// when the round should stop (a 429, the rate limiter, shutdown).
func (w *Worker) pollDelivery(ctx context.Context, ws, ref string) bool {
	id, ok := strings.CutPrefix(ref, "delivery:")
	var bid, tid int
	if !ok {
		bid, tid, ok = triggerIDs(ref, "")
	}
	link, err := w.status.DeliveryLink(ctx, ws, ref)
	if ok && tid > 0 && err == nil {
		// The trigger's broadcast is the template the worker recorded.
		bid, tid, ok = triggerIDs(ref, link.Template)
		ok = ok && bid > 0
	}
	if !ok || err == nil && (link.AcceptedAt.IsZero() || w.cfg.Now().Sub(link.AcceptedAt) > w.cfg.Status.PollHorizon) {
		_ = w.status.DonePolling(ctx, ws, ref)
		return true
	}
	if err != nil {
		return true
	}
	c := w.client(ws)
	if c == nil {
		return true
	}
	g := w.probeGate(authKey{ws, customerio.APIApp})
	if g != nil {
		gctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := w.waitProbeGate(gctx, *g)
		cancel()
		if err != nil {
			return false
		}
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, probeTimeout)
	var msg *customerio.Message
	var trig *customerio.TriggerStatus
	if tid > 0 {
		trig, err = c.TriggerStatus(rctx, bid, tid)
	} else {
		msg, err = c.Message(rctx, id)
	}
	cancel()
	w.obs.Response(string(customerio.APIApp), statusClass(err), time.Since(start))
	if err == nil && trig != nil && trig.ProcessedAt > 0 {
		// Processed: read how many recipients it could not reach (one
		// more App API call, through the same limit).
		rctx, cancel := context.WithTimeout(ctx, probeTimeout)
		start = time.Now()
		var errs *customerio.TriggerErrors
		errs, err = c.TriggerErrors(rctx, bid, tid, 0, triggerErrorsPage)
		cancel()
		w.obs.Response(string(customerio.APIApp), statusClass(err), time.Since(start))
		if err == nil {
			recordTrigger(ctx, w.status, ws, ref, trig, len(errs.Errors))
			_ = w.status.DonePolling(ctx, ws, ref) // nothing more to learn from the trigger
			return true
		}
	}
	if err != nil {
		var ae *customerio.APIError
		if g != nil {
			w.throttled(ws, []gate{*g}, err)
		}
		switch {
		case errors.As(err, &ae) && ae.StatusCode == 429:
			return false
		case ctx.Err() != nil:
			return false
		}
		// 404 (not visible yet) and transient failures: read again later.
		w.log.Debug("fallback poll: could not read a delivery", "workspace", displayWS(ws), "error", err.Error())
		return true
	}
	if msg != nil {
		recordMessage(ctx, w.status, ws, ref, msg, w.cfg.Now())
	}
	return true // a trigger not processed yet: read again later
}

// triggerErrorsPage is how many of a trigger's errors the poll reads: it
// records how many there are (up to this many), never the errors, which
// name people.
const triggerErrorsPage = 100

// triggerIDs returns the broadcast and trigger ids of ref
// ("trigger:<id>") and tmpl ("broadcast:<id>", the template the worker
// recorded at acceptance; "" gives broadcast 0); ok is false when ref is
// no trigger, or tmpl is given and names no broadcast.
func triggerIDs(ref, tmpl string) (bid, tid int, ok bool) {
	s, isTrigger := strings.CutPrefix(ref, "trigger:")
	if !isTrigger {
		return 0, 0, false
	}
	tid, err := strconv.Atoi(s)
	if err != nil || tid < 1 {
		return 0, 0, false
	}
	if tmpl == "" {
		return 0, tid, true
	}
	bid, err = strconv.Atoi(strings.TrimPrefix(tmpl, "broadcast:"))
	if err != nil || bid < 1 || !strings.HasPrefix(tmpl, "broadcast:") {
		return 0, 0, false
	}
	return bid, tid, true
}

// recordTrigger records that a broadcast trigger was processed (kind
// "processed", at its processed_at), with how many of its recipients
// Customer.io reported errors for (GET .../errors; at most
// triggerErrorsPage counted).
func recordTrigger(ctx context.Context, st *status.Store, ws, ref string, trig *customerio.TriggerStatus, nerrs int) {
	ev := status.Event{ID: "poll:" + status.KindProcessed, Metric: status.KindProcessed, At: trig.ProcessedAt, Source: "poll"}
	switch {
	case nerrs >= triggerErrorsPage:
		ev.Reason = strconv.Itoa(nerrs) + "+ recipient errors (cioq shows no recipients: GET /v1/campaigns/{id}/triggers/{trigger}/errors)"
	case nerrs > 0:
		ev.Reason = strconv.Itoa(nerrs) + " recipient errors (cioq shows no recipients: GET /v1/campaigns/{id}/triggers/{trigger}/errors)"
	}
	_, _, _ = st.RecordEvent(ctx, ws, ref, ev)
}

// recordMessage records what GET /v1/messages said of a delivery: each
// metric with its time, and the failure message with a failure (a failed
// delivery without a failure metric is recorded as failed).
func recordMessage(ctx context.Context, st *status.Store, ws, ref string, msg *customerio.Message, now time.Time) {
	metrics := make([]string, 0, len(msg.Metrics))
	failedMetric := false
	for m := range msg.Metrics {
		metrics = append(metrics, m)
		switch m {
		case status.MetricFailed, status.MetricBounced, status.MetricDropped, status.MetricUndeliverable:
			failedMetric = true
		}
	}
	sort.Strings(metrics)
	if msg.FailureMessage != "" && !failedMetric {
		metrics = append(metrics, status.MetricFailed)
	}
	for _, m := range metrics {
		at := msg.Metrics[m]
		if at <= 0 {
			at = now.Unix()
		}
		ev := status.Event{ID: "poll:" + m, Metric: m, ObjectType: msg.Type, At: at, Source: "poll"}
		switch m {
		case status.MetricFailed, status.MetricBounced, status.MetricDropped, status.MetricUndeliverable:
			ev.Reason = msg.FailureMessage
		}
		_, _, _ = st.RecordEvent(ctx, ws, ref, ev)
	}
}
