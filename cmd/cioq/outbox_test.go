package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testpg"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/tasks"
)

// commitOrder writes an order's confirmation email into the outbox of the
// database at url, in a committed transaction.
func commitOrder(t *testing.T, url, order string) outbox.Receipt {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	w, err := outbox.NewWriter(outbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := w.Pgx(tx).SendEmail(ctx, tasks.SendEmail{SendOptions: customerio.SendOptions{TransactionalMessageID: "order_confirmation",
		Identifiers: &customerio.Identifiers{ID: "user-7"}, MessageData: map[string]any{"order_id": order}}, To: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return rc
}

// `cioq outbox migrate` creates the table (twice: a no-op), --print shows
// the shipped SQL, and `cioq relay` relays a committed row, reports it on
// /metrics and /readyz, and exits 0 on SIGTERM.
func TestOutboxMigrateAndRelay(t *testing.T) {
	t.Parallel()
	pg := testpg.New(t)
	db := testredis.New(t)
	env := map[string]string{"CIOQ_OUTBOX_URL": pg.URL, "REDIS_URL": db.URL(), "CIOQ_LOG_FORMAT": "json"}
	for i := 0; i < 2; i++ {
		if r := cli(t, env, "", "outbox", "migrate"); r.code != 0 || !strings.Contains(r.stdout, "outbox table cioq.outbox ready") {
			t.Fatalf("migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	if r := cli(t, nil, "", "outbox", "migrate", "--print"); r.code != 0 || r.stdout != outbox.SchemaSQL {
		t.Errorf("--print: exit %d, the shipped schema.sql: %v", r.code, r.stdout == outbox.SchemaSQL)
	}
	if r := cli(t, map[string]string{"CIOQ_OUTBOX_URL": "postgres://u:s3cret@h:notaport/db"}, "", "outbox", "migrate"); r.code != 2 ||
		!strings.Contains(r.stderr, "CIOQ_OUTBOX_URL") || strings.Contains(r.stderr, "s3cret") {
		t.Errorf("bad URL: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := cli(t, env, "", "relay", "--schema", "Bad-Name"); r.code != 2 || !strings.Contains(r.stderr, "--schema") {
		t.Errorf("bad schema: exit %d, stderr %q", r.code, r.stderr)
	}

	rc := commitOrder(t, pg.URL, "ORD-1")
	admin := freeAddr(t)
	p := start(t, env, "relay", "--admin-addr", admin, "--poll-interval", "1h")
	p.waitStderr(`"msg":"outbox relay started"`, 15*time.Second)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	eventually(t, "the row relayed", func() bool {
		_, err := insp.GetTaskInfo(tasks.QueueCritical, rc.TaskID)
		return err == nil
	})
	// Notified, not polled (the poll interval is an hour).
	commitOrder(t, pg.URL, "ORD-2")
	eventually(t, "the metrics", func() bool {
		_, body := get(t, "http://"+admin+"/metrics")
		return strings.Contains(body, "cioq_outbox_relayed_total 2") && strings.Contains(body, "cioq_outbox_rows_waiting 0") &&
			strings.Contains(body, "cioq_outbox_oldest_row_age_seconds 0")
	})
	if code, body := get(t, "http://"+admin+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"outbox"`) {
		t.Errorf("/readyz %d: %s", code, body)
	}
	if code := p.stop(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), "ada@example.com") {
		t.Errorf("the log leaks a payload:\n%s", p.stderr.String())
	}
}

// `cioq worker` with CIOQ_OUTBOX_URL relays the outbox too, and delivers.
func TestWorkerRelaysTheOutbox(t *testing.T) {
	t.Parallel()
	pg := testpg.New(t)
	db := testredis.New(t)
	sb := sandbox.NewTestServer(t)
	env := map[string]string{"CIOQ_OUTBOX_URL": pg.URL, "REDIS_URL": db.URL(), "CIOQ_LOG_FORMAT": "json",
		"CUSTOMERIO_SITE_ID": sandbox.DefaultSiteID, "CUSTOMERIO_TRACK_API_KEY": sandbox.DefaultTrackAPIKey,
		"CUSTOMERIO_APP_API_KEY": sandbox.DefaultAppAPIKey, "CUSTOMERIO_TRACK_URL": sb.TrackURL(), "CUSTOMERIO_APP_URL": sb.AppURL(),
		"CIOQ_PROBE_INTERVAL": "off"}
	if r := cli(t, env, "", "outbox", "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.stderr)
	}
	p := start(t, env, "worker", "--admin-addr", "")
	p.waitStderr(`"outbox_relay":true`, 15*time.Second)
	commitOrder(t, pg.URL, "ORD-W")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := sb.WaitFor(ctx, func(s *sandbox.Server) bool { return len(s.Deliveries()) == 1 }); err != nil {
		t.Fatalf("no delivery: %v", err)
	}
	if code := p.stop(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
}
