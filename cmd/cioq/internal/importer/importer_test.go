package importer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/cmd/cioq/internal/importer"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// env is Redis, the sandbox and a producer.
type env struct {
	db   *testredis.DB
	sb   *sandbox.Server
	url  string
	prod *producer.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: testredis.New(t)}
	e.sb = sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1, MaxRecordedBody: -1})
	hs := httptest.NewServer(e.sb)
	t.Cleanup(func() { hs.Close(); e.sb.Close() })
	e.url = hs.URL
	e.prod = producer.NewFromRedis(e.db.Client)
	return e
}

// deliver runs a worker until every queued operation is delivered.
func (e *env) deliver(t *testing.T) {
	t.Helper()
	w, err := worker.New(worker.Config{
		Redis: e.db.ConnOpt(), ProbeInterval: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workspaces: map[string]customerio.Config{"": {
			SiteID: sandbox.DefaultSiteID, TrackAPIKey: sandbox.DefaultTrackAPIKey, AppAPIKey: sandbox.DefaultAppAPIKey,
			TrackURL: e.url + "/track", AppURL: e.url + "/app", Timeout: 5 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	insp := asynq.NewInspectorFromRedisClient(e.db.Client)
	deadline := time.Now().Add(60 * time.Second)
	for {
		qi, err := insp.GetQueueInfo(tasks.QueueDefault)
		if err == nil && qi.Pending == 0 && qi.Active == 0 && qi.Retry == 0 && qi.Scheduled == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v", qi)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFile writes a file in the test's directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func peopleCSV(n int, bad map[int]string) string {
	var b strings.Builder
	b.WriteString("id,email,plan,seats\n")
	for i := 0; i < n; i++ {
		seats := strconv.Itoa(i % 9)
		if v, ok := bad[i]; ok {
			seats = v
		}
		fmt.Fprintf(&b, "u%d,u%d@example.com,pro,%s\n", i, i, seats)
	}
	return b.String()
}

func readRejects(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("rejects line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestImportCSVRejectsAndDelivers: 1,200 people, of which two rows are
// refused (a seats cell that is no integer, an id over 150 bytes):
// those two go to the rejects file with their line numbers and a reason
// naming the column, never the value; the others are enqueued in
// cio:batch tasks of 500 and every one reaches Customer.io with its typed
// attributes.
func TestImportCSVRejectsAndDelivers(t *testing.T) {
	e := newEnv(t)
	path := writeFile(t, "people.csv", strings.Replace(peopleCSV(1200, map[int]string{100: "many"}), "\nu700,", "\n"+strings.Repeat("x", 200)+",", 1))
	sum, err := importer.Run(context.Background(), e.prod, importer.Options{Path: path,
		Mapping: mustMap(t, "id,email,attr.plan,attr.seats=seats:int"), MappingSpec: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 1200 || sum.Enqueued != 1198 || sum.Rejected != 2 || sum.Tasks != 3 || sum.Duplicates != 0 {
		t.Fatalf("summary %+v", sum)
	}
	rej := readRejects(t, sum.RejectsPath)
	if len(rej) != 2 || rej[0]["line"] != 102.0 || !strings.Contains(rej[0]["reason"].(string), `column "seats"`) ||
		rej[1]["line"] != 702.0 || !strings.Contains(rej[1]["reason"].(string), "identifiers.id") {
		t.Fatalf("rejects %v", rej)
	}
	for _, r := range rej {
		if strings.Contains(r["reason"].(string), "many") || strings.Contains(r["reason"].(string), "xxxx") {
			t.Errorf("reason %q quotes the value", r["reason"])
		}
		if !strings.Contains(r["row"].(string), "@example.com") {
			t.Errorf("row %q", r["row"])
		}
	}
	e.deliver(t)
	if n := len(e.sb.People()); n != 1198 {
		t.Errorf("%d people in Customer.io, want 1198", n)
	}
	p, ok := e.sb.Person("u5")
	if !ok || fmt.Sprint(p.Attributes["seats"]) != "5" || p.Attributes["plan"] != "pro" || p.Attributes["email"] != "u5@example.com" {
		t.Errorf("u5: %+v", p)
	}
	if _, ok := e.sb.Person("u100"); ok {
		t.Error("the rejected row reached Customer.io")
	}
}

func mustMap(t *testing.T, spec string) importer.Mapping {
	t.Helper()
	m, err := importer.ParseMapping(spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// failingEnqueuer enqueues through the producer, and on call n fails as
// configured: before enqueueing (Redis gone), or after (the process died
// between the enqueue and the checkpoint).
type failingEnqueuer struct {
	p     *producer.Client
	n     int32
	after bool
	calls atomic.Int32
}

var errInjected = errors.New("injected: connection reset")

func (f *failingEnqueuer) EnqueueBatch(ctx context.Context, ops []tasks.Payload, opts ...producer.EnqueueOption) (producer.BatchReceipt, error) {
	k := f.calls.Add(1)
	if k == f.n && !f.after {
		return producer.BatchReceipt{}, errInjected
	}
	rec, err := f.p.EnqueueBatch(ctx, ops, opts...)
	if k == f.n && f.after {
		return rec, errInjected
	}
	return rec, err
}

// TestImportResumeWithoutDuplicates: an events import of 2,000 rows (JSON
// lines) stops at its third batch, once because Redis failed before the
// batch was enqueued, once because the process died after enqueueing it
// and before the checkpoint. --resume goes on from the checkpoint; the
// batch enqueued twice is a duplicate the second time (its idempotency
// key); every event reaches Customer.io exactly once, and its id is the
// one derived from the file and line.
func TestImportResumeWithoutDuplicates(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(map[bool]string{false: "failed before the enqueue", true: "died after the enqueue"}[after], func(t *testing.T) {
			e := newEnv(t)
			var b strings.Builder
			for i := 0; i < 2000; i++ {
				fmt.Fprintf(&b, `{"identifiers":{"id":"imp"},"name":"backfilled","timestamp":1700000000,"data":{"i":%d}}`+"\n", i)
				if i == 1500 {
					b.WriteString(`{"identifiers":{"id":"imp"},"name":""}` + "\n") // rejected
				}
			}
			path := writeFile(t, "events.jsonl", b.String())
			o := importer.Options{Path: path, Type: tasks.TypeTrack}
			fe := &failingEnqueuer{p: e.prod, n: 3, after: after}
			sum, err := importer.Run(context.Background(), fe, o)
			if !errors.Is(err, errInjected) {
				t.Fatalf("first run: %v", err)
			}
			if sum.Rows < 1000 || sum.Rows > 1500 {
				t.Fatalf("first run summary %+v", sum)
			}
			if _, err := importer.Run(context.Background(), e.prod, o); !errors.As(err, new(*importer.CheckpointExistsError)) {
				t.Fatalf("run again without --resume: %v", err)
			}
			o.Resume = true
			sum, err = importer.Run(context.Background(), e.prod, o)
			if err != nil {
				t.Fatal(err)
			}
			if !sum.Resumed || sum.Rows != 2001 || sum.Rejected != 1 || sum.Enqueued != 2000 {
				t.Fatalf("resumed summary %+v", sum)
			}
			wantDup := int64(0)
			if after {
				wantDup = 500
			}
			if sum.Duplicates != wantDup {
				t.Errorf("duplicates %d, want %d", sum.Duplicates, wantDup)
			}
			if rej := readRejects(t, sum.RejectsPath); len(rej) != 1 || rej[0]["line"] != 1502.0 {
				t.Errorf("rejects %v, want line 1502 once", rej)
			}
			e.deliver(t)
			evs := e.sb.Events("imp")
			seen := map[string]int{}
			for _, ev := range evs {
				seen[fmt.Sprint(ev.Data["i"])]++
			}
			if len(evs) != 2000 || len(seen) != 2000 {
				t.Errorf("%d events stored, %d distinct, want 2000 each", len(evs), len(seen))
			}
			// Done: a third run does nothing.
			sum, err = importer.Run(context.Background(), e.prod, o)
			if err != nil || !sum.Done {
				t.Errorf("after the end: %+v %v", sum, err)
			}
		})
	}
}

// TestImportStrictEnqueuesNothingWhenARowIsRejected: with Strict, one bad
// row means nothing is enqueued, and the rejects file lists every bad row.
func TestImportStrictEnqueuesNothingWhenARowIsRejected(t *testing.T) {
	e := newEnv(t)
	path := writeFile(t, "p.csv", peopleCSV(50, map[int]string{3: "x", 40: "y"}))
	sum, err := importer.Run(context.Background(), e.prod, importer.Options{Path: path, Strict: true,
		Mapping: mustMap(t, "id,attr.seats=seats:int")})
	var re *importer.RejectedError
	if !errors.As(err, &re) || re.Line != 5 || re.Count != 2 {
		t.Fatalf("error %v", err)
	}
	if sum.Enqueued != 0 || len(readRejects(t, sum.RejectsPath)) != 2 {
		t.Errorf("summary %+v", sum)
	}
	if n, _ := e.db.Client.DBSize(context.Background()).Result(); n != 0 {
		t.Errorf("%d keys in Redis, want none", n)
	}
}

// TestImportCSVQuotedNewlines: a quoted cell spanning lines keeps the line
// numbers of the rows after it right, in the rejects file and on resume.
func TestImportCSVQuotedNewlines(t *testing.T) {
	e := newEnv(t)
	csv := "id,note,n\nu1,\"two\nlines\",1\nu2,plain,x\n"
	path := writeFile(t, "q.csv", csv)
	sum, err := importer.Run(context.Background(), e.prod, importer.Options{Path: path, Mapping: mustMap(t, "id,attr.note=note,attr.n=n:int")})
	if err != nil || sum.Enqueued != 1 || sum.Rejected != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	if rej := readRejects(t, sum.RejectsPath); rej[0]["line"] != 4.0 {
		t.Errorf("rejected at line %v, want 4", rej[0]["line"])
	}
}
