package main

import (
	"net/http"
	"sort"
	"strings"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/status"
)

// mountWebhooks mounts Customer.io's reporting webhook receiver on mux
// when a signing key is configured (CIOQ_WEBHOOK_SIGNING_KEY, the
// workspaces file's webhook_signing_key), and returns a word on its state
// for the start-up log.
func mountWebhooks(o siteOptions, mux *http.ServeMux) (string, error) {
	keys, err := config.WebhookSigningKeys(o.getenv)
	if err != nil {
		return "", configError(err)
	}
	st, err := config.LoadStatus(o.getenv)
	if err != nil {
		return "", configError(err)
	}
	if len(keys) == 0 {
		return "off (" + config.EnvWebhookSigningKey + " not set)", nil
	}
	mm := o.messages
	if mm == nil {
		mm = ops.NewMessageMetrics(o.reg)
	}
	store := status.NewStore(o.rdb, status.Options{TTL: st.TTL, Metrics: mm})
	rc, err := status.NewReceiver(status.ReceiverConfig{Store: store, SigningKeys: keys, Requests: mm, Logger: o.log})
	if err != nil {
		return "", configError(err)
	}
	rc.Mount(mux)
	ws := rc.Workspaces()
	sort.Strings(ws)
	return "on at " + status.WebhookPath + " (workspaces " + strings.Join(ws, ",") + ")", nil
}
