package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/customerio/sandbox"
)

func runSandbox(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "sandbox", "[flags]",
		"Serves the in-process Customer.io stand-in (Track v1/v2, App, Pipelines and\n"+
			"its /_sandbox/ control API) and prints its base URLs and demo credentials\n"+
			"as environment settings for a worker. Runs until SIGTERM or SIGINT.\n\n"+
			"With --webhook-url it posts signed reporting webhooks for every\n"+
			"transactional delivery, as Customer.io does: sent and delivered; sent and\n"+
			"bounced for an address like bounce@example.com. Point it at cioq serve's\n"+
			"receiver (http://HOST:8080/v1/customerio/webhooks) with the same signing\n"+
			"key (CIOQ_WEBHOOK_SIGNING_KEY, which both read).\n\n"+
			"Environment: CIOQ_WEBHOOK_SIGNING_KEY, CIOQ_LOG_LEVEL, CIOQ_LOG_FORMAT.")
	addr := fs.String("addr", "127.0.0.1:8025", "listen address")
	hookURL := fs.String("webhook-url", "", "post reporting webhooks of each delivery to this URL")
	hookKey := fs.String("webhook-signing-key", "", "sign them with this key (default CIOQ_WEBHOOK_SIGNING_KEY)")
	hookDelay := fs.Duration("webhook-delay", 0, "wait this long before each webhook")
	hookDup := fs.Bool("webhook-duplicate", false, "send every webhook twice")
	hookReorder := fs.Bool("webhook-reorder", false, "send a delivery's webhooks last first")
	checkTemplates := fs.Bool("check-templates", false, "answer a send naming no template of the sandbox (password_reset, order_confirmation) 400, as Customer.io does")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	log, err := newLogger(a.getenv, a.stderr)
	if err != nil {
		return err
	}
	hooks := sandbox.Webhooks{URL: *hookURL, SigningKey: *hookKey, Delay: *hookDelay, Duplicate: *hookDup, Reorder: *hookReorder}
	if hooks.SigningKey == "" {
		keys, err := config.WebhookSigningKeys(a.getenv)
		if err != nil {
			return configError(err)
		}
		hooks.SigningKey = keys[config.DefaultWorkspace]
	}
	if hooks.URL != "" && hooks.SigningKey == "" {
		return usageErrorf("--webhook-url needs --webhook-signing-key or %s", config.EnvWebhookSigningKey)
	}
	r, err := sandbox.Start(*addr, sandbox.Config{Webhooks: hooks, CheckTemplates: *checkTemplates})
	if err != nil {
		return usageErrorf("--addr: %v", err)
	}
	base := sandboxBase(r)
	fmt.Fprintf(a.stdout, "Customer.io sandbox listening on %s (control API: %s/_sandbox/state)\n", base, base)
	fmt.Fprintln(a.stdout, "Point a worker at it with:")
	printSandboxEnv(a.stdout, r, "  ")
	<-ctx.Done()
	log.Info("shutting down the sandbox")
	r.Close()
	return nil
}

// sandboxBase is the sandbox's root URL as reachable from this machine.
func sandboxBase(r *sandbox.Running) string {
	host := strings.TrimPrefix(r.URL, "http://")
	if a, err := net.ResolveTCPAddr("tcp", host); err == nil {
		return "http://" + localAddr(a)
	}
	return r.URL
}

// sandboxEnv is the environment a worker needs to deliver to r.
func sandboxEnv(r *sandbox.Running) [][2]string {
	base := sandboxBase(r)
	cfg := r.Config()
	return [][2]string{
		{"CUSTOMERIO_TRACK_URL", base + sandbox.TrackPrefix},
		{"CUSTOMERIO_APP_URL", base + sandbox.AppPrefix},
		{"CUSTOMERIO_PIPELINES_URL", base + sandbox.CDPPrefix},
		{"CUSTOMERIO_SITE_ID", cfg.SiteID},
		{"CUSTOMERIO_TRACK_API_KEY", cfg.TrackAPIKey},
		{"CUSTOMERIO_APP_API_KEY", cfg.AppAPIKey},
		{"CUSTOMERIO_PIPELINES_WRITE_KEY", cfg.PipelinesWriteKey},
	}
}

func printSandboxEnv(w io.Writer, r *sandbox.Running, indent string) {
	for _, kv := range sandboxEnv(r) {
		fmt.Fprintf(w, "%s%s=%s\n", indent, kv[0], kv[1])
	}
}
