package outbox_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// A committed order's confirmation, written with pgx and with
// database/sql, is delivered to Customer.io (the sandbox) once each; the
// rows are gone.
func TestCommittedIsDeliveredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sb := startWorker(t, e.rdb)
	e.startRelay(t, outbox.RelayConfig{})

	e.order(t, "ORD-PGX", true)
	db, err := sql.Open("pgx", e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id) VALUES ('ORD-SQL')"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.SQL(tx).SendEmail(ctx, confirmation("ORD-SQL"), producer.IdempotencyKey("ORD-SQL:confirmation")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got := deliveries(t, sb, 2)
	if got["ORD-PGX"] != 1 || got["ORD-SQL"] != 1 || len(got) != 2 {
		t.Errorf("deliveries by order: %v", got)
	}
	eventually(t, 10*time.Second, "the rows deleted", func() bool { return e.rows(t) == 0 })
}

// A rolled-back order's confirmation never reaches Redis: the relay
// relays the committed order after it and nothing else.
func TestRolledBackIsNeverEnqueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.startRelay(t, outbox.RelayConfig{})
	rolled := e.order(t, "ORD-ROLLED-BACK", false)
	kept := e.order(t, "ORD-KEPT", true)
	eventually(t, 10*time.Second, "the committed row relayed", func() bool { return r.Stats().Relayed == 1 })
	ids := pendingIDs(t, e.insp)
	if len(ids) != 1 || ids[kept.TaskID] != 1 {
		t.Errorf("tasks in Redis: %v, want only %s", ids, kept.TaskID)
	}
	if _, err := e.insp.GetTaskInfo(tasks.QueueCritical, rolled.TaskID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("rolled-back task: %v", err)
	}
	if n := e.rows(t); n != 0 {
		t.Errorf("%d rows left", n)
	}
}

// An application killed (SIGKILL) right after its commit loses nothing:
// the confirmation is delivered.
func TestApplicationKilledAfterCommitIsDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := startWorker(t, e.rdb)
	app := child(t, "app", envChildPG+"="+e.db.URL)
	out, err := app.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	err = app.Wait()
	if !strings.HasPrefix(line, outbox.TaskIDPrefix) || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the application: printed %q, exited with %v; want a task id and a SIGKILL", line, err)
	}
	e.startRelay(t, outbox.RelayConfig{})
	if got := deliveries(t, sb, 1); got["ORD-KILLED"] != 1 || len(got) != 1 {
		t.Errorf("deliveries by order: %v", got)
	}
}

// Invalid input is refused before anything is written, with the
// producer's *ValidationError naming the field.
func TestWriterRefusesBadInputBeforeWriting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	o := e.w.Pgx(tx)
	noTo := confirmation("ORD-1")
	noTo.To = ""
	for _, tc := range []struct {
		name  string
		call  func() (outbox.Receipt, error)
		field string
	}{
		{"no to", func() (outbox.Receipt, error) { return o.SendEmail(ctx, noTo) }, "to"},
		{"bad key", func() (outbox.Receipt, error) {
			return o.SendEmail(ctx, confirmation("ORD-1"), producer.IdempotencyKey("has space"))
		}, "idempotency_key"},
		{"expired", func() (outbox.Receipt, error) {
			return o.SendEmail(ctx, confirmation("ORD-1"), producer.ExpiresAt(time.Now().Add(-time.Minute)))
		}, "expires_at"},
		{"bad workspace", func() (outbox.Receipt, error) {
			return o.SendEmail(ctx, confirmation("ORD-1"), producer.Workspace("Not Valid"))
		}, "workspace"},
		{"bad queue", func() (outbox.Receipt, error) {
			return o.SendEmail(ctx, confirmation("ORD-1"), producer.Queue("a queue"))
		}, "queue"},
		{"nil payload", func() (outbox.Receipt, error) { return o.Enqueue(ctx, nil) }, "payload"},
		{"unknown type", func() (outbox.Receipt, error) { return o.EnqueueRaw(ctx, "cio:nope", []byte(`{}`)) }, "type"},
		{"raw bad json", func() (outbox.Receipt, error) {
			return o.EnqueueRaw(ctx, tasks.TypeIdentify, []byte(`{"identifiers":{"id":1}}`))
		}, "identifiers.id"},
		{"page type", func() (outbox.Receipt, error) {
			return o.TrackPage(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "u"}, Event: customerio.Event{Name: "/", Type: "event"}})
		}, "type"},
	} {
		_, err := tc.call()
		var ve *producer.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || !strings.HasPrefix(err.Error(), "outbox: ") {
			t.Errorf("%s: %v; want a *ValidationError on %q", tc.name, err, tc.field)
		}
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM cioq.outbox").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows written: %d (%v)", n, err)
	}
	w, err := outbox.NewWriter(outbox.Config{Workspaces: []string{"eu"}})
	if err != nil {
		t.Fatal(err)
	}
	var uw *producer.UnknownWorkspaceError
	if _, err := w.Pgx(tx).SendEmail(ctx, confirmation("ORD-1"), producer.Workspace("us")); !errors.As(err, &uw) {
		t.Errorf("unknown workspace: %v", err)
	}

	// The workspace's contracts, as the producer's: a confirmation whose
	// template needs a variable it lacks writes no row.
	f, err := contracts.Parse([]byte(`{"workspaces":{"default":{"transactional":{"messages":[
		{"name":"order_confirmation","variables":{"order_id":{},"total":{"type":"number"}}}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := contracts.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	if w, err = outbox.NewWriter(outbox.Config{Contracts: set}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pgx(tx).SendEmail(ctx, confirmation("ORD-1")); err == nil || !strings.Contains(err.Error(), "message_data.total: required by template") {
		t.Errorf("contract: %v", err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM cioq.outbox").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows written: %d (%v)", n, err)
	}
}

// A row keeps everything the producer would have enqueued: the envelope,
// queue, key, workspace, expiry, process time, retries and timeout; the
// relayed task is the producer's, and a key the application also enqueued
// directly makes one task, not two.
func TestRelayedTaskIsTheProducers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	direct, err := e.prod.SendEmail(ctx, confirmation("ORD-D"), producer.IdempotencyKey("ORD-D:confirmation"))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := e.w.Pgx(tx)
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	scheduled, err := o.Track(ctx, tasks.Track{Identifiers: customerio.Identifiers{ID: "u1"}, Event: customerio.Event{Name: "paid"}},
		producer.Workspace("eu"), producer.Queue("bulk"), producer.ProcessAt(at), producer.ExpiresIn(2*time.Hour),
		producer.MaxRetry(5), producer.Timeout(7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.SendEmail(ctx, confirmation("ORD-D"), producer.IdempotencyKey("ORD-D:confirmation")); err != nil {
		t.Fatal(err)
	}
	var ws, key string
	if err := tx.QueryRow(ctx, "SELECT workspace, coalesce(idempotency_key, '') FROM cioq.outbox WHERE task_id = $1", scheduled.TaskID).Scan(&ws, &key); err != nil || ws != "eu" || key != "" {
		t.Errorf("row: workspace %q key %q (%v)", ws, key, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := e.startRelay(t, outbox.RelayConfig{})
	eventually(t, 10*time.Second, "two rows relayed", func() bool { return r.Stats().Relayed == 2 })
	if st := r.Stats(); st.Duplicates != 1 {
		t.Errorf("stats %+v: want the keyed row a duplicate of the direct enqueue", st)
	}
	ti, err := e.insp.GetTaskInfo("bulk", scheduled.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	// The retry budget travels in the task's header, as the producer's
	// (asynq's own MaxRetry is out of reach: the worker decides).
	if ti.State != asynq.TaskStateScheduled || !ti.NextProcessAt.Equal(at) || ti.Headers[tasks.HeaderRetryBudget] != "5" ||
		ti.MaxRetry != tasks.AsynqMaxRetry || ti.Timeout != 7*time.Second || ti.Type != tasks.TypeTrack {
		t.Errorf("task: state %v at %v budget %q retries %d timeout %v type %s", ti.State, ti.NextProcessAt, ti.Headers[tasks.HeaderRetryBudget], ti.MaxRetry, ti.Timeout, ti.Type)
	}
	env, p, err := tasks.Decode(ti.Type, ti.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if env.Workspace != "eu" || env.ExpiresAt == 0 || p.(*tasks.Track).ID == "" {
		t.Errorf("envelope %+v, payload %+v: want workspace eu, an expiry and a ULID id", env, p)
	}
	if ids := pendingIDs(t, e.insp); len(ids) != 1 || ids[direct.TaskID] != 1 {
		t.Errorf("critical tasks %v, want the direct one only", ids)
	}
}

// outbox.Tx has every typed method of producer.Client, with the same
// parameters.
func TestTxHasTheProducersMethods(t *testing.T) {
	pt := reflect.TypeOf(&producer.Client{})
	ot := reflect.TypeOf(&outbox.Tx{})
	ctxT := reflect.TypeOf((*context.Context)(nil)).Elem()
	n := 0
	for i := 0; i < pt.NumMethod(); i++ {
		m := pt.Method(i)
		ft := m.Type
		// Typed enqueue methods: (ctx, payload, ...EnqueueOption) (Receipt, error).
		if ft.NumIn() != 4 || ft.In(1) != ctxT || !ft.IsVariadic() || ft.In(3).Elem() != reflect.TypeOf(producer.EnqueueOption(nil)) {
			continue
		}
		if ft.NumOut() != 2 || ft.Out(0) != reflect.TypeOf(producer.Receipt{}) {
			continue
		}
		n++
		om, ok := ot.MethodByName(m.Name)
		if !ok {
			t.Errorf("outbox.Tx has no %s", m.Name)
			continue
		}
		for j := 1; j < ft.NumIn(); j++ {
			if om.Type.In(j) != ft.In(j) {
				t.Errorf("%s: parameter %d is %v, the producer's %v", m.Name, j, om.Type.In(j), ft.In(j))
			}
		}
	}
	if n < 30 {
		t.Errorf("found only %d typed methods on producer.Client", n)
	}
}
