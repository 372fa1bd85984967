package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// Write keys and secrets of the test configuration.
const (
	keyTrack     = "wk-track-secret-1"
	keyPipelines = "wk-pipes-secret-2"
	keyMP        = "wk-mp-secret-3"
	keyCustom    = "wk-custom-secret-4"
	keyRudder    = "wk-rudder-secret-5"
	hookSecret   = "hook-shared-secret"
	taskToken    = "tok-backend-secret"
)

// testConfig is the configuration every test starts from.
func testConfig() *FileConfig {
	return &FileConfig{
		Sources: []SourceConfig{
			{Name: "web", Kind: KindSegment, Mode: ModeTrack, WriteKey: keyTrack},
			{Name: "pipes", Kind: KindSegment, Mode: ModePipelines, WriteKey: keyPipelines},
			{Name: "rudder", Kind: KindRudderStack, WriteKey: keyRudder},
			{Name: "hook", Kind: KindSegment, Mode: ModeTrack, SharedSecret: hookSecret},
			{Name: "mp", Kind: KindMParticle, WriteKey: keyMP, EmailFallback: true},
			{Name: "shop", Kind: KindCustom, WriteKey: keyCustom, Mappings: &Mappings{
				UserID: "customer.id", Email: "customer.email", Event: "topic", EventProperties: "order",
				MessageID: "webhook_id", Timestamp: "created_at",
				CustomAttributes: map[string]string{"plan": "customer.plan", "first_item": "order.items.0.name"},
			}},
		},
		Tokens: []TokenConfig{{Name: "backend", Token: taskToken}},
	}
}

// countingMetrics records IngestRequest calls.
type countingMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countingMetrics) IngestRequest(source, outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[source+"/"+outcome]++
}

func (m *countingMetrics) get(k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[k]
}

// env is a test world: Redis, a producer, the ingest server over HTTP, a
// sandbox and (once started) a worker delivering to it.
type env struct {
	t       *testing.T
	db      *testredis.DB
	prod    *producer.Client
	insp    *asynq.Inspector
	srv     *Server
	url     string
	sb      *sandbox.Server
	sbURL   string
	metrics *countingMetrics
	w       *worker.Worker
}

// testLogger is testsupport.Logger: quiet unless CIOQ_TEST_LOG is set.
func testLogger() *slog.Logger { return testsupport.Logger() }

// newEnv starts Redis, the producer (on the client mkRedis makes for the
// test's database, when given) and the server.
func newEnv(t *testing.T, fc *FileConfig, mkRedis func(*testredis.DB) redis.UniversalClient) *env {
	t.Helper()
	return newEnvWith(t, fc, mkRedis, nil)
}

// newEnvWith is newEnv with the server's Config adjusted by edit (when
// given) before New.
func newEnvWith(t *testing.T, fc *FileConfig, mkRedis func(*testredis.DB) redis.UniversalClient, edit func(*Config)) *env {
	t.Helper()
	e := &env{t: t, db: testredis.New(t), metrics: &countingMetrics{}}
	if fc == nil {
		fc = testConfig()
	}
	var rdb redis.UniversalClient = e.db.Client
	if mkRedis != nil {
		rdb = mkRedis(e.db)
	}
	e.prod = producer.NewFromRedis(rdb)
	e.insp = asynq.NewInspectorFromRedisClient(e.db.Client)
	cfg := Config{Producer: e.prod, File: fc, Metrics: e.metrics, Logger: testLogger()}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	e.sb = sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1})
	sbs := httptest.NewServer(e.sb)
	t.Cleanup(func() { sbs.Close(); e.sb.Close() })
	e.sbURL = sbs.URL
	return e
}

// startWorker starts a worker (one task at a time, so tasks are delivered
// in the order they were enqueued) delivering to the sandbox.
func (e *env) startWorker() {
	e.t.Helper()
	cio := testsupport.SandboxConfig(e.sbURL)
	w, err := worker.New(worker.Config{
		Redis:       e.db.ConnOpt(),
		Workspaces:  map[string]customerio.Config{"": cio, "eu": cio},
		Concurrency: 1,
		Backoff:     worker.BackoffConfig{Base: 100 * time.Millisecond, Cap: time.Second},
		Logger:      testLogger(),
		// No credentials probes: tests check which APIs the tasks called.
		ProbeInterval: -1,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.w = w
	e.t.Cleanup(w.Shutdown)
}

// waitSandbox waits until cond holds, failing after 30 s.
func (e *env) waitSandbox(what string, cond func(*sandbox.Server) bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sb.WaitFor(ctx, cond); err != nil {
		e.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitDrained waits until no task is pending, scheduled, active or retrying.
func (e *env) waitDrained() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		busy := 0
		for _, q := range []string{"critical", "default", "bulk"} {
			if qi, err := e.insp.GetQueueInfo(q); err == nil {
				busy += qi.Pending + qi.Active + qi.Scheduled + qi.Retry
			}
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("queues not drained: %d tasks left", busy)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// taskCounts counts the tasks waiting in Redis by type.
func (e *env) taskCounts() map[string]int { // operations by type (see countOps)
	e.t.Helper()
	out := map[string]int{}
	for _, q := range []string{"critical", "default", "bulk"} {
		for page := 1; ; page++ {
			infos, err := e.insp.ListPendingTasks(q, asynq.PageSize(500), asynq.Page(page))
			if err != nil || len(infos) == 0 {
				break
			}
			for _, ti := range infos {
				countOps(out, ti)
			}
		}
		for page := 1; ; page++ {
			infos, err := e.insp.ListScheduledTasks(q, asynq.PageSize(500), asynq.Page(page))
			if err != nil || len(infos) == 0 {
				break
			}
			for _, ti := range infos {
				countOps(out, ti)
			}
		}
	}
	return out
}

// rawTaskCount is the number of asynq tasks pending in the queues.
func (e *env) rawTaskCount() int {
	e.t.Helper()
	n := 0
	for _, q := range []string{"critical", "default", "bulk"} {
		if qi, err := e.insp.GetQueueInfo(q); err == nil {
			n += qi.Pending + qi.Scheduled
		}
	}
	return n
}

// countOps counts the operations of a task by type: a cio:batch task's
// by its operations' types.
func countOps(out map[string]int, ti *asynq.TaskInfo) {
	if ti.Type != tasks.TypeBatch {
		out[ti.Type]++
		return
	}
	_, p, err := tasks.Decode(ti.Type, ti.Payload)
	if err != nil {
		out[ti.Type]++
		return
	}
	for _, it := range p.(*tasks.Batch).Operations {
		out[it.Type]++
	}
}

func (e *env) totalTasks() int {
	n := 0
	for _, c := range e.taskCounts() {
		n += c
	}
	return n
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) errCode() string {
	eo, _ := r.body["error"].(map[string]any)
	s, _ := eo["code"].(string)
	return s
}

func (r response) errField() string {
	eo, _ := r.body["error"].(map[string]any)
	s, _ := eo["field"].(string)
	return s
}

func (r response) num(k string) int {
	f, _ := r.body[k].(float64)
	return int(f)
}

// req describes a request.
type req struct {
	path    string
	body    any // []byte, string, or a value to encode as JSON
	key     string
	bearer  string
	headers map[string]string
	gzip    bool
}

func basic(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
}

func bodyBytes(v any) []byte {
	switch b := v.(type) {
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func (e *env) do(r req) response {
	e.t.Helper()
	b := bodyBytes(r.body)
	if r.gzip {
		b = gz(b)
	}
	hr, err := http.NewRequest(http.MethodPost, e.url+r.path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if r.gzip {
		hr.Header.Set("Content-Encoding", "gzip")
	}
	if r.key != "" {
		hr.Header.Set("Authorization", basic(r.key))
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.headers {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		e.t.Fatalf("%s: response is not JSON: %q", r.path, raw)
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func eqCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	for _, k := range sortedKeys(want) {
		if got[k] != want[k] {
			t.Errorf("%s: %s = %d, want %d", what, k, got[k], want[k])
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok && got[k] != 0 {
			t.Errorf("%s: unexpected %s = %d", what, k, got[k])
		}
	}
}

func contains(s string, subs ...string) string {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return x
		}
	}
	return ""
}

// sign is the X-Signature of body with secret: hex HMAC-SHA1.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
