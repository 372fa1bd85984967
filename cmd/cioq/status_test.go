package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/tasks"
)

// TestFollowingAMessage runs what the README's "Following a message"
// describes, with separate processes: `cioq serve` receives the sandbox's
// signed reporting webhooks (CIOQ_WEBHOOK_SIGNING_KEY), `cioq worker`
// delivers, and `cioq status` shows each send's fate: delivered, bounced
// with the reason (redacted without --payload), failed with the Liquid
// error of a template variable the send lacked (the sandbox renders its
// templates as Customer.io does and reports the failure), by task id or
// key, as a table or JSON; a forged webhook gets 401; an unknown task
// exits 1.
func TestFollowingAMessage(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	addr := freeAddr(t)
	base := "http://" + addr
	srv := start(t, map[string]string{
		"REDIS_URL": db.URL(), "CIOQ_WEBHOOK_SIGNING_KEY": "wh-secret-key",
	}, "serve", "--addr", addr, "--no-auth")
	srv.waitStderr("msg=serving", 15*time.Second)
	if !strings.Contains(srv.stderr.String(), `webhooks="on at /v1/customerio/webhooks (workspaces default)"`) {
		t.Errorf("receiver not on:\n%s", srv.stderr.String())
	}
	sb := sandbox.NewTestServer(t, sandbox.Config{Webhooks: sandbox.Webhooks{URL: base + status.WebhookPath, SigningKey: "wh-secret-key"}})
	w := start(t, map[string]string{
		"REDIS_URL": db.URL(), "CUSTOMERIO_APP_API_KEY": sandbox.DefaultAppAPIKey, "CUSTOMERIO_APP_URL": sb.AppURL(),
		"CIOQ_PROBE_INTERVAL": "off",
	}, "worker", "--admin-addr", "off")
	w.waitStderr("worker started", 15*time.Second)

	ctx := context.Background()
	prod := producer.NewFromRedis(db.Client)
	withLink := sendOpts("password_reset", "user-1")
	withLink.MessageData = map[string]any{"reset_link": "https://example.com/reset/1"}
	ok, err := prod.SendEmail(ctx, tasks.SendEmail{SendOptions: withLink, To: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	noLink, err := prod.SendEmail(ctx, tasks.SendEmail{SendOptions: sendOpts("password_reset", "user-3"), To: "cy@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	bounce, err := prod.SendEmail(ctx, tasks.SendEmail{SendOptions: sendOpts("welcome", "user-2"), To: "bounce@example.com"},
		producer.IdempotencyKey("welcome:user-2"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": db.URL()}
	var r result
	eventually(t, "the send delivered", func() bool {
		r = cli(t, env, "", "status", ok.TaskID)
		return r.code == 0 && strings.Contains(r.stdout, "State     delivered (final)")
	})
	for _, want := range []string{"Template  password_reset", "delivery:", "enqueued", "accepted", "sent       webhook", "delivered  webhook"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cioq status lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "ada@example.com") {
		t.Errorf("cioq status shows the recipient without --payload:\n%s", r.stdout)
	}
	eventually(t, "the bounce", func() bool {
		r = cli(t, env, "", "status", "--key", "welcome:user-2")
		return r.code == 0 && strings.Contains(r.stdout, "State     bounced (final)")
	})
	if !strings.Contains(r.stdout, "Reason    550 5.1.1") || !strings.Contains(r.stdout, bounce.TaskID) {
		t.Errorf("bounced: %s", r.stdout)
	}
	eventually(t, "the failed send", func() bool {
		r = cli(t, env, "", "status", noLink.TaskID)
		return r.code == 0 && strings.Contains(r.stdout, "State     failed (final)")
	})
	if !strings.Contains(r.stdout, "Reason    Liquid error: undefined variable in {{ trigger.reset_link }}") || !strings.Contains(r.stdout, "failed    webhook  email Liquid error") {
		t.Errorf("failed: %s", r.stdout)
	}
	r = cli(t, env, "", "status", bounce.TaskID, "--json", "--payload")
	var tl status.Timeline
	if err := json.Unmarshal([]byte(r.stdout), &tl); err != nil || tl.State != "bounced" || tl.Reason != sandbox.BounceReason {
		t.Errorf("--json: %v %+v\n%s", err, tl, r.stdout)
	}
	if !strings.Contains(r.stdout, "bounce@example.com") {
		t.Errorf("--payload does not show the recipient:\n%s", r.stdout)
	}
	if r := cli(t, env, "", "status", "no-such-task"); r.code != 1 || !strings.Contains(r.stderr, "no task no-such-task in Redis") {
		t.Errorf("unknown task: exit %d, %s", r.code, r.stderr)
	}
	if r := cli(t, env, "", "status"); r.code != 2 {
		t.Errorf("no argument: exit %d", r.code)
	}

	// A forged webhook (another key) is refused and changes nothing.
	body := []byte(`{"event_id":"forged","object_type":"email","metric":"failed","timestamp":1,"data":{"delivery_id":"` + strings.TrimPrefix(tl.Delivery, "delivery:") + `"}}`)
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, base+status.WebhookPath, bytes.NewReader(body))
	req.Header.Set("X-CIO-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-CIO-Signature", status.Sign([]byte("not-the-key"), ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("forged webhook: %d", resp.StatusCode)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`cioq_message_outcomes_total{outcome="bounced",template="welcome",type="cio:send_email",workspace="default"} 1`,
		`cioq_webhook_requests_total{outcome="unauthorized",workspace="unknown"} 1`,
		`cioq_message_outcomes_total{outcome="failed",template="password_reset",type="cio:send_email",workspace="default"} 1`,
		`cioq_message_delivery_seconds_count{type="cio:send_email",workspace="default"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("serve's /metrics lacks %s", want)
		}
	}
}
