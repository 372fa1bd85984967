package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
)

// serve's listener carries the ingest front door: its /readyz says only
// whether the process is ready, never Redis's address or a check's error;
// with the dashboard's credentials it shows each check.
func TestServeReadyzIsGeneric(t *testing.T) {
	t.Parallel()
	down := freeAddr(t) // nothing listens there
	addr := freeAddr(t)
	p := start(t, map[string]string{
		"REDIS_URL":               "redis://" + down + "/0",
		"CIOQ_DASHBOARD_USER":     "admin",
		"CIOQ_DASHBOARD_PASSWORD": "s3cret",
	}, "serve", "--addr", addr, "--queue-metrics=false")
	p.waitStderr("msg=serving", 15*time.Second)
	_, port, _ := strings.Cut(down, ":")
	for _, auth := range [][]string{nil, {"admin", "wrong"}} {
		code, body := get(t, "http://"+addr+"/readyz", auth...)
		if code != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"unavailable"}` {
			t.Errorf("public /readyz (auth %v) = %d %s, want 503 with the status only", auth, code, body)
		}
	}
	code, body := get(t, "http://"+addr+"/readyz", "admin", "s3cret")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"name":"redis","ok":false`) || !strings.Contains(body, port) {
		t.Errorf("/readyz with the dashboard's credentials = %d %s, want the redis check's error", code, body)
	}
	if code := p.stop(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// The worker's admin port listens on 127.0.0.1:9090 unless told otherwise;
// CIOQ_ADMIN_ADDR moves it (as the containers do), and there /readyz shows
// each check, workspace names included.
func TestWorkerAdminAddr(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	sb := sandbox.NewTestServer(t)
	env := map[string]string{
		"REDIS_URL":                db.URL(),
		"CUSTOMERIO_SITE_ID":       sandbox.DefaultSiteID,
		"CUSTOMERIO_TRACK_API_KEY": sandbox.DefaultTrackAPIKey,
		"CUSTOMERIO_TRACK_URL":     sb.TrackURL(),
		"CIOQ_PROBE_INTERVAL":      "off",
	}
	// The default: 127.0.0.1:9090. Another process may hold that port on a
	// shared machine: then the worker stops naming the address it tried.
	p := start(t, env, "worker")
	listening := regexp.MustCompile(`admin port listening" addr=(\S+)`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		errText := p.stderr.String()
		if m := listening.FindStringSubmatch(errText); m != nil {
			if m[1] != "127.0.0.1:9090" {
				t.Errorf("admin port listens on %s by default, want 127.0.0.1:9090", m[1])
			}
			break
		}
		select {
		case <-p.done:
			if !strings.Contains(errText, "listen tcp 127.0.0.1:9090") {
				t.Errorf("worker exited without listening; stderr:\n%s", errText)
			}
		default:
			if time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			t.Fatalf("no admin port within 15 s; stderr:\n%s", errText)
		}
		break
	}
	p.stop(20 * time.Second)

	admin := freeAddr(t)
	env["CIOQ_ADMIN_ADDR"] = admin
	p = start(t, env, "worker")
	p.waitStderr(`msg="worker started"`, 15*time.Second)
	if !strings.Contains(p.stderr.String(), "addr="+admin) {
		t.Errorf("CIOQ_ADMIN_ADDR=%s not used:\n%s", admin, p.stderr.String())
	}
	code, body := get(t, "http://"+admin+"/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"name":"customerio:default:track"`) {
		t.Errorf("admin /readyz = %d %s, want every check", code, body)
	}
	if code := p.stop(20 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
