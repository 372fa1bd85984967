package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testredis/topology"
)

// TestDoctor: `cioq doctor` on a server that keeps every acknowledged
// write (append-only file fsynced always, noeviction) with good
// credentials exits 0; with a refused App key, or against a Redis without
// persistence (the test server), it exits 1 naming the finding and its
// fix. The JSON form has one object per finding.
func TestDoctor(t *testing.T) {
	r := topology.StartReplicated(t, 0)
	c := r.Master.Client()
	defer c.Close()
	for _, kv := range [][2]string{{"appendonly", "yes"}, {"appendfsync", "always"}, {"maxmemory-policy", "noeviction"}} {
		if err := c.ConfigSet(context.Background(), kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sb := sandbox.NewTestServer(t)
	env := map[string]string{
		"REDIS_URL":                r.URL(),
		"CUSTOMERIO_SITE_ID":       sandbox.DefaultSiteID,
		"CUSTOMERIO_TRACK_API_KEY": sandbox.DefaultTrackAPIKey,
		"CUSTOMERIO_APP_API_KEY":   sandbox.DefaultAppAPIKey,
		"CUSTOMERIO_TRACK_URL":     sb.TrackURL(),
		"CUSTOMERIO_APP_URL":       sb.AppURL(),
	}
	res := cli(t, env, "", "doctor")
	if res.code != 0 {
		t.Fatalf("exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"ok          persistence", "appendfsync always", "ok          maxmemory-policy",
		"customerio:default:track", "customerio:default:app", "GET /v1/transactional accepted the credentials", "0 loses data, 0 fails"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}

	env["CUSTOMERIO_APP_API_KEY"] = "wrong-app-key"
	res = cli(t, env, "", "doctor", "--json")
	if res.code != 1 {
		t.Fatalf("refused App key: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var f struct{ Check, Verdict, Detail, Fix string }
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if f.Check == "customerio:default:app" {
			found = f.Verdict == "fails" && strings.Contains(f.Detail, "401") && f.Fix != ""
		}
	}
	if !found || strings.Contains(res.stdout, "wrong-app-key") {
		t.Errorf("want a failing customerio:default:app finding, no key:\n%s", res.stdout)
	}

	// The test server keeps nothing on disk.
	db := testredis.New(t)
	res = cli(t, map[string]string{"REDIS_URL": db.URL()}, "", "doctor", "--no-probes")
	if res.code != 1 || !strings.Contains(res.stdout, "loses data  persistence") || !strings.Contains(res.stdout, "fix: appendonly yes") {
		t.Errorf("no persistence: exit %d:\n%s", res.code, res.stdout)
	}
	if strings.Contains(res.stdout, "customerio") {
		t.Errorf("--no-probes probed:\n%s", res.stdout)
	}
}

// TestWorkerLogsRedisFindings: the worker logs the Redis findings that are
// not ok once at start (here: no persistence).
func TestWorkerLogsRedisFindings(t *testing.T) {
	db := testredis.New(t)
	sb := sandbox.NewTestServer(t)
	p := start(t, map[string]string{
		"REDIS_URL":                db.URL(),
		"CUSTOMERIO_SITE_ID":       sandbox.DefaultSiteID,
		"CUSTOMERIO_TRACK_API_KEY": sandbox.DefaultTrackAPIKey,
		"CUSTOMERIO_TRACK_URL":     sb.TrackURL(),
		"CIOQ_PROBE_INTERVAL":      "off",
	}, "worker", "--admin-addr", "")
	eventually(t, "the worker's start", func() bool { return strings.Contains(p.stderr.String(), "worker started") })
	log := p.stderr.String()
	before, _, _ := strings.Cut(log, "worker started")
	if strings.Count(before, "redis check") == 0 || !strings.Contains(before, `check=persistence verdict="loses data"`) {
		t.Errorf("no persistence finding logged before the start:\n%s", log)
	}
}
