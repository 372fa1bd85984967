package ingest

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// With a producer that knows the workspaces, a source naming another one
// stops start-up with an error naming the source; known ones and the
// default workspace start.
func TestSourceWithUnknownWorkspaceRefused(t *testing.T) {
	db := testredis.New(t)
	prod := producer.NewFromRedis(db.Client, producer.Workspaces("eu-shop"))
	fc := testConfig()
	fc.Sources[1].Workspace = "eu-shpo" // "pipes", mistyped
	_, err := New(Config{Producer: prod, File: fc, Logger: testLogger()})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != `sources[1] "pipes": workspace` || !strings.Contains(err.Error(), `"eu-shpo" is not a configured workspace (configured: default, eu-shop)`) {
		t.Fatalf("New = %v", err)
	}
	for _, ws := range []string{"eu-shop", "default", ""} {
		fc.Sources[1].Workspace = ws
		if _, err := New(Config{Producer: prod, File: fc, Logger: testLogger()}); err != nil {
			t.Errorf("workspace %q: %v", ws, err)
		}
	}
	// A producer without the list accepts any well-formed name, as before.
	fc.Sources[1].Workspace = "eu-shpo"
	if _, err := New(Config{Producer: producer.NewFromRedis(db.Client), File: fc, Logger: testLogger()}); err != nil {
		t.Errorf("without Workspaces: %v", err)
	}
}

// POST /v1/tasks refuses a task naming an unknown workspace with a 400
// naming the field and the workspace; nothing is enqueued.
func TestTasksUnknownWorkspaceRefused(t *testing.T) {
	e := &env{t: t, db: testredis.New(t), metrics: &countingMetrics{}}
	e.prod = producer.NewFromRedis(e.db.Client, producer.Workspaces("eu-shop"))
	e.insp = asynq.NewInspectorFromRedisClient(e.db.Client)
	srv, err := New(Config{Producer: e.prod, File: testConfig(), Metrics: e.metrics, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	ident := map[string]any{"identifiers": map[string]any{"id": "u"}}
	for name, body := range map[string]any{
		"option":   map[string]any{"type": tasks.TypeIdentify, "payload": ident, "workspace": "nope"},
		"envelope": map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"v": 1, "workspace": "nope", "payload": ident}},
	} {
		r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: body})
		if r.status != 400 || r.errField() != "workspace" || !strings.Contains(r.raw, `\"nope\" is not a configured workspace`) {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if n := e.totalTasks(); n != 0 {
		t.Fatalf("%d tasks enqueued", n)
	}
	if r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: map[string]any{"type": tasks.TypeIdentify, "payload": ident, "workspace": "eu-shop"}}); r.status != 202 {
		t.Errorf("known workspace: %d %s", r.status, r.raw)
	}
}
