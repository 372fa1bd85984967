package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// crmSecret signs the requests of the "crm" source signedConfig adds.
const crmSecret = "crm-shared-secret"

// signedConfig is testConfig with a custom source authenticated by a
// shared secret only.
func signedConfig() *FileConfig {
	fc := testConfig()
	fc.Sources = append(fc.Sources, SourceConfig{Name: "crm", Kind: KindCustom, SharedSecret: crmSecret,
		Mappings: &Mappings{UserID: "uid", Event: "what", MessageID: "id", Timestamp: "at"}})
	return fc
}

// signedReq is a request to path with body signed by secret.
func signedReq(path, secret string, body any) req {
	b := bodyBytes(body)
	return req{path: path, body: b, headers: map[string]string{"X-Signature": sign(secret, b)}}
}

func isoAgo(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339) }

// A signed message without a message id is refused, each time it is sent,
// naming the field (messageId, or the custom source's mapped path), and
// nothing is enqueued; a message authenticated by its write key needs none.
func TestSignedMessageWithoutIDRefused(t *testing.T) {
	e := newEnv(t, signedConfig(), nil)
	now := isoAgo(0)
	cases := []struct {
		name  string
		r     req
		field string
	}{
		{"segment", signedReq("/v1/sources/hook", hookSecret, map[string]any{"type": "track", "userId": "u", "event": "E", "sentAt": now}), "messageId"},
		{"segment, empty messageId", signedReq("/v1/sources/hook/track", hookSecret, map[string]any{"userId": "u", "event": "E", "messageId": "", "sentAt": now}), "messageId"},
		{"segment batch", signedReq("/v1/sources/hook/batch", hookSecret, map[string]any{"batch": []any{
			map[string]any{"type": "track", "userId": "u", "event": "E", "messageId": "m-1", "sentAt": now},
			map[string]any{"type": "identify", "userId": "u", "sentAt": now}}}), "batch[1].messageId"},
		{"custom", signedReq("/v1/custom/crm", crmSecret, map[string]any{"uid": "u", "what": "E", "at": now}), "id"},
		{"custom array", signedReq("/v1/custom/crm", crmSecret, []any{
			map[string]any{"uid": "u", "what": "E", "id": "c-1", "at": now},
			map[string]any{"uid": "u", "what": "E", "at": now}}), "[1].id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for attempt := 1; attempt <= 2; attempt++ { // the replay too
				r := e.do(c.r)
				if r.status != http.StatusBadRequest || r.errCode() != "missing_message_id" || r.errField() != c.field {
					t.Fatalf("attempt %d: %d %s, want 400 missing_message_id naming %s", attempt, r.status, r.raw, c.field)
				}
			}
			if n := e.totalTasks(); n != 0 {
				t.Fatalf("%d tasks enqueued", n)
			}
		})
	}
	// The same message with the source's write key: accepted.
	r := e.do(req{path: "/v1/sources/web/track", key: keyTrack, body: map[string]any{"userId": "u", "event": "E"}})
	if r.status != http.StatusOK || r.num("enqueued") != 1 {
		t.Errorf("write key, no messageId: %d %s", r.status, r.raw)
	}
}

// A signed message whose time (sentAt, else timestamp; a custom source's
// mapped timestamp) is older than the dedupe window, too far in the
// future, or missing is refused naming the field; nothing is enqueued.
func TestSignedMessageOutsideWindowRefused(t *testing.T) {
	e := newEnv(t, signedConfig(), nil)
	msg := func(kv ...any) map[string]any {
		m := map[string]any{"type": "track", "userId": "u", "event": "E", "messageId": fmt.Sprint("m-", len(kv), kv)}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	old := isoAgo(DefaultDedupeWindow + time.Hour)
	cases := []struct {
		name        string
		r           req
		code, field string
	}{
		{"old sentAt", signedReq("/v1/sources/hook", hookSecret, msg("sentAt", old)), "stale_message", "sentAt"},
		{"old sentAt, fresh timestamp", signedReq("/v1/sources/hook", hookSecret, msg("sentAt", old, "timestamp", isoAgo(0))), "stale_message", "sentAt"},
		{"old timestamp, no sentAt", signedReq("/v1/sources/hook", hookSecret, msg("timestamp", old)), "stale_message", "timestamp"},
		{"sentAt in the future", signedReq("/v1/sources/hook", hookSecret, msg("sentAt", isoAgo(-MaxClockSkew-time.Hour))), "stale_message", "sentAt"},
		{"no time", signedReq("/v1/sources/hook", hookSecret, msg()), "missing_timestamp", "timestamp"},
		{"unreadable sentAt", signedReq("/v1/sources/hook", hookSecret, msg("sentAt", "yesterday")), "invalid_timestamp", "sentAt"},
		{"old batch item", signedReq("/v1/sources/hook/batch", hookSecret, map[string]any{"batch": []any{
			msg("sentAt", isoAgo(0)), msg("sentAt", old, "x", 1)}}), "stale_message", "batch[1].sentAt"},
		{"custom, old", signedReq("/v1/custom/crm", crmSecret, map[string]any{"uid": "u", "what": "E", "id": "c-1",
			"at": time.Now().Add(-DefaultDedupeWindow - time.Minute).Unix()}), "stale_message", "at"},
		{"custom, no time", signedReq("/v1/custom/crm", crmSecret, map[string]any{"uid": "u", "what": "E", "id": "c-2"}), "missing_timestamp", "at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.r)
			if r.status != http.StatusBadRequest || r.errCode() != c.code || r.errField() != c.field {
				t.Fatalf("%d %s, want 400 %s naming %s", r.status, r.raw, c.code, c.field)
			}
			if n := e.totalTasks(); n != 0 {
				t.Fatalf("%d tasks enqueued", n)
			}
		})
	}
	// Within the window (sentAt wins over an old timestamp): accepted.
	for _, r := range []req{
		signedReq("/v1/sources/hook", hookSecret, msg("sentAt", isoAgo(DefaultDedupeWindow-time.Hour), "timestamp", old)),
		signedReq("/v1/custom/crm", crmSecret, map[string]any{"uid": "u", "what": "E", "id": "c-3", "at": isoAgo(-time.Minute)}),
	} {
		if resp := e.do(r); resp.status/100 != 2 || resp.num("enqueued") != 1 {
			t.Errorf("%s within the window: %d %s", r.path, resp.status, resp.raw)
		}
	}
}

// A message's dedupe record is its own: once every task of it has left
// Redis (deleted here; delivered and past asynq's retention in life), the
// same message, signed or by write key, is still a duplicate for the
// window. The record's name holds no message id and lives window + skew.
func TestDedupeOutlivesTheTasks(t *testing.T) {
	e := newEnv(t, signedConfig(), nil)
	const secretID = "msg-id-7f3a9c"
	sent := []req{
		signedReq("/v1/sources/hook", hookSecret, map[string]any{"type": "track", "userId": "u1", "event": "E", "messageId": secretID, "sentAt": isoAgo(0)}),
		{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": []any{
			map[string]any{"type": "group", "userId": "u2", "groupId": "g", "messageId": secretID}, // two tasks, one record
			map[string]any{"type": "identify", "userId": "u3", "messageId": secretID + "-b"}}}},
		signedReq("/v1/custom/crm", crmSecret, map[string]any{"uid": "u4", "what": "E", "id": secretID, "at": time.Now().Unix()}),
		{path: "/v1/mparticle", key: keyMP, body: map[string]any{"user_identities": map[string]any{"customer_id": "u5"},
			"events": []any{map[string]any{"event_type": "custom_event", "data": map[string]any{"event_name": "E", "source_message_id": secretID}}}}},
	}
	want := []int{1, 3, 1, 1}
	for i, r := range sent {
		if resp := e.do(r); resp.status/100 != 2 || resp.num("enqueued") != want[i] {
			t.Fatalf("%s: %d %s, want %d enqueued", r.path, resp.status, resp.raw, want[i])
		}
	}
	ctx := context.Background()
	rdb := e.db.Client
	recs, err := rdb.Keys(ctx, keys.IngestSeen("*", "*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 { // hook, web ×2, crm, mp
		t.Errorf("dedupe records %v, want 5", recs)
	}
	for _, k := range recs {
		ttl := rdb.TTL(ctx, k).Val()
		if ttl <= DefaultDedupeWindow || ttl > DefaultDedupeWindow+MaxClockSkew {
			t.Errorf("%s expires in %s, want (%s, %s]", k, ttl, DefaultDedupeWindow, DefaultDedupeWindow+MaxClockSkew)
		}
	}
	// No key, and no value of cioq's own, holds the id or a credential.
	all, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		if leak := contains(k, secretID, keyTrack, keyMP, hookSecret, crmSecret); leak != "" {
			t.Errorf("Redis key %q holds %q", k, leak)
		}
		if strings.HasPrefix(k, "cioq:") && rdb.Type(ctx, k).Val() == "string" {
			if leak := contains(rdb.Get(ctx, k).Val(), secretID, keyTrack, keyMP, hookSecret, crmSecret); leak != "" {
				t.Errorf("Redis value of %q holds %q", k, leak)
			}
		}
	}

	if _, err := e.insp.DeleteAllPendingTasks(tasks.QueueDefault); err != nil { // where every task of these went
		t.Fatal(err)
	}
	if n := e.totalTasks(); n != 0 {
		t.Fatalf("%d tasks left after deleting them all", n)
	}
	for i, r := range sent {
		resp := e.do(r)
		if resp.status/100 != 2 || resp.num("enqueued") != 0 || resp.num("duplicates") != want[i] {
			t.Errorf("repeat to %s after its tasks left Redis: %d %s, want %d duplicates and nothing enqueued", r.path, resp.status, resp.raw, want[i])
		}
	}
	if n := e.totalTasks(); n != 0 {
		t.Errorf("%d tasks enqueued again", n)
	}
}

// Every request its credentials do not authenticate gets one answer
// (status, body, headers) and is counted under the source "unknown",
// whether the named source exists, has a secret, is of another kind, or
// the signature is wrong or unreadable; refusals of the body before its
// signature is checked are the same for real and made-up names.
func TestUnauthenticatedAnswersAreIdentical(t *testing.T) {
	e := newEnv(t, signedConfig(), nil)
	body := map[string]any{"type": "track", "userId": "u", "event": "E", "messageId": "m", "sentAt": isoAgo(0)}
	bad := func(path string) req { return signedReq(path, "not-the-secret", body) }
	unauth := []struct {
		name string
		r    req
	}{
		{"unknown source, signed", signedReq("/v1/sources/nobody", hookSecret, body)},
		{"real source, bad signature", bad("/v1/sources/hook")},
		{"real source, signature not hex", req{path: "/v1/sources/hook/track", body: body, headers: map[string]string{"X-Signature": "zz"}}},
		{"source without a secret, signed", signedReq("/v1/sources/web", keyTrack, body)},
		{"custom source on the segment path, bad signature", bad("/v1/sources/crm")},
		{"custom source, bad signature", bad("/v1/custom/crm")},
		{"unknown custom source", bad("/v1/custom/nobody")},
		{"mparticle source, signed", signedReq("/v1/mparticle/mp", keyMP, body)},
		{"unknown source, write key of another", req{path: "/v1/sources/nobody/track", key: keyTrack, body: body}},
		{"real source, wrong write key", req{path: "/v1/sources/web/track", key: "nope", body: body}},
		{"no credentials", req{path: "/v1/track", body: body}},
	}
	var first response
	for i, c := range unauth {
		r := e.do(c.r)
		if i == 0 {
			first = r
			if r.status != http.StatusUnauthorized || r.errCode() != "unauthorized" {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
			continue
		}
		if r.status != first.status || r.raw != first.raw || r.header.Get("WWW-Authenticate") != first.header.Get("WWW-Authenticate") ||
			r.header.Get("Content-Type") != first.header.Get("Content-Type") {
			t.Errorf("%s: %d %q %s, differs from %q: %d %q %s", c.name, r.status, r.header.Get("WWW-Authenticate"), r.raw,
				unauth[0].name, first.status, first.header.Get("WWW-Authenticate"), first.raw)
		}
	}
	// A body refused before the signature is checked: the same for a real
	// and a made-up source.
	plain := map[string]string{"Content-Type": "text/plain"}
	real, made := bad("/v1/sources/hook"), bad("/v1/sources/nobody")
	for k, v := range plain {
		real.headers[k], made.headers[k] = v, v
	}
	if a, b := e.do(real), e.do(made); a.status != http.StatusUnsupportedMediaType || a.raw != b.raw || a.status != b.status {
		t.Errorf("415 for a real source %d %s, for a made-up one %d %s", a.status, a.raw, b.status, b.raw)
	}

	e.metrics.mu.Lock()
	defer e.metrics.mu.Unlock()
	for k, n := range e.metrics.n {
		if !strings.HasPrefix(k, "unknown/") {
			t.Errorf("counted under a real source before authentication: %s = %d", k, n)
		}
	}
	if got := e.metrics.n["unknown/unauthorized"]; got != len(unauth) {
		t.Errorf("unknown/unauthorized = %d, want %d", got, len(unauth))
	}
	if got := e.metrics.n["unknown/unsupported_media_type"]; got != 2 {
		t.Errorf("unknown/unsupported_media_type = %d, want 2", got)
	}
	if n := e.totalTasks(); n != 0 {
		t.Errorf("%d tasks enqueued", n)
	}
}

// The kind of a source is told (403 wrong_endpoint) only to a sender its
// signature authenticates: a bad signature on another kind's path is the
// plain 401, a good one the 403.
func TestSignatureCheckedBeforeKind(t *testing.T) {
	e := newEnv(t, signedConfig(), nil)
	obj := map[string]any{"type": "track", "uid": "u", "what": "E", "id": "c-1", "at": time.Now().Unix(), "userId": "u", "event": "E"}
	unknown := e.do(signedReq("/v1/sources/nobody", crmSecret, obj))
	r := e.do(signedReq("/v1/sources/crm", "wrong", obj))
	if r.status != http.StatusUnauthorized || r.raw != unknown.raw || strings.Contains(r.raw, "custom") {
		t.Errorf("bad signature, custom source on the segment path: %d %s; an unknown source gets %d %s", r.status, r.raw, unknown.status, unknown.raw)
	}
	r = e.do(signedReq("/v1/sources/crm", crmSecret, obj))
	if r.status != http.StatusForbidden || r.errCode() != "wrong_endpoint" {
		t.Errorf("good signature, custom source on the segment path: %d %s, want 403 wrong_endpoint", r.status, r.raw)
	}
	if e.metrics.get("crm/forbidden") != 1 || e.metrics.get("crm/unauthorized") != 0 {
		t.Errorf("metrics %v", e.metrics.n)
	}
	if n := e.totalTasks(); n != 0 {
		t.Errorf("%d tasks enqueued", n)
	}
}

// /v1/tasks puts tasks only in queues the workers serve (Config.Queues,
// or a token's own): made-up queues are refused naming the field, asynq's
// queue list gains nothing, and nothing is enqueued.
func TestTasksRefuseQueuesNoWorkerServes(t *testing.T) {
	fc := testConfig()
	fc.Tokens = append(fc.Tokens, TokenConfig{Name: "reports", Token: "tok-reports-secret", Queues: []string{"reports"}})
	e := newEnvWith(t, fc, nil, func(c *Config) { c.Queues = []string{"critical", "default", "bulk", "reports"} })
	ctx := context.Background()
	queues := func() []string { return e.db.Client.SMembers(ctx, keys.AsynqQueues).Val() }
	before := queues()
	identify := func(queue string) map[string]any {
		m := map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}}
		if queue != "" {
			m["queue"] = queue
		}
		return m
	}
	for i := 0; i < 20; i++ {
		q := fmt.Sprintf("made-up-%d", i)
		r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: identify(q)})
		if r.status != http.StatusBadRequest || r.errField() != "queue" || strings.Contains(r.raw, q) {
			t.Fatalf("queue %s: %d %s, want 400 naming queue (not its value)", q, r.status, r.raw)
		}
	}
	r := e.do(req{path: "/v1/tasks", bearer: taskToken, body: []any{identify("bulk"), identify(""), identify("nope")}})
	if r.status != http.StatusBadRequest || r.errField() != "[2].queue" {
		t.Errorf("array: %d %s, want 400 naming [2].queue", r.status, r.raw)
	}
	// A token with queues of its own: those only, also for a type's default.
	for _, c := range []struct {
		task  map[string]any
		field string
	}{{identify("bulk"), "queue"}, {identify(""), "queue"}} {
		r := e.do(req{path: "/v1/tasks", bearer: "tok-reports-secret", body: c.task})
		if r.status != http.StatusBadRequest || r.errField() != c.field {
			t.Errorf("reports token, queue %v: %d %s", c.task["queue"], r.status, r.raw)
		}
	}
	if n := e.totalTasks(); n != 0 {
		t.Fatalf("%d tasks enqueued", n)
	}
	if after := queues(); len(after) != len(before) {
		t.Errorf("asynq:queues went from %v to %v", before, after)
	}
	// Configured queues are accepted.
	for _, c := range []struct {
		token string
		task  map[string]any
	}{{taskToken, identify("")}, {taskToken, identify("bulk")}, {taskToken, identify("reports")}, {"tok-reports-secret", identify("reports")}} {
		if r := e.do(req{path: "/v1/tasks", bearer: c.token, body: c.task}); r.status != http.StatusAccepted {
			t.Errorf("queue %v: %d %s", c.task["queue"], r.status, r.raw)
		}
	}

	// A token naming a queue the workers do not serve stops start-up.
	fc.Tokens[1].Queues = []string{"reprots"}
	_, err := New(Config{Producer: e.prod, File: fc, Logger: testLogger()})
	if err == nil || !strings.Contains(err.Error(), `tokens[1] "reports": queues: "reprots" is not a queue the workers serve`) {
		t.Errorf("New = %v", err)
	}
}

// One request holds at most DefaultMaxItems items, on every path: more is
// a 413 too_many_items naming the list, and nothing is enqueued; exactly
// the cap is accepted.
func TestRequestOverItemCapRefused(t *testing.T) {
	e := newEnv(t, nil, nil)
	n := DefaultMaxItems + 1
	msgs := make([]any, n)
	objs := make([]any, n)
	tks := make([]any, n)
	evs := make([]any, n)
	for i := range msgs {
		msgs[i] = map[string]any{"type": "track", "userId": "u", "event": "E"}
		objs[i] = map[string]any{"customer": map[string]any{"id": "c"}, "topic": "E"}
		tks[i] = map[string]any{"type": tasks.TypeIdentify, "payload": map[string]any{"identifiers": map[string]any{"id": "u"}}}
		evs[i] = map[string]any{"event_type": "custom_event", "data": map[string]any{"event_name": "E"}}
	}
	for _, c := range []struct {
		r     req
		field string
	}{
		{req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": msgs}}, "batch"},
		{req{path: "/v1/custom/shop", key: keyCustom, body: objs}, fmt.Sprintf("[%d]", DefaultMaxItems)},
		{req{path: "/v1/tasks", bearer: taskToken, body: tks}, fmt.Sprintf("[%d]", DefaultMaxItems)},
		{req{path: "/v1/mparticle", key: keyMP, body: map[string]any{"user_identities": map[string]any{"customer_id": "m"}, "events": evs}}, "events"},
	} {
		r := e.do(c.r)
		if r.status != http.StatusRequestEntityTooLarge || r.errCode() != "too_many_items" || r.errField() != c.field {
			t.Errorf("%s: %d %.300s, want 413 too_many_items naming %s", c.r.path, r.status, r.raw, c.field)
		}
		if got := e.totalTasks(); got != 0 {
			t.Fatalf("%s: %d tasks enqueued", c.r.path, got)
		}
	}
	if e.metrics.get("web/too_large") != 1 || e.metrics.get("backend/too_large") != 1 {
		t.Errorf("metrics %v", e.metrics.n)
	}
	r := e.do(req{path: "/v1/batch", key: keyTrack, body: map[string]any{"batch": msgs[:DefaultMaxItems]}})
	if r.status != http.StatusOK || r.num("enqueued") != DefaultMaxItems {
		t.Errorf("a batch at the cap: %d %.300s", r.status, r.raw)
	}
}

// Kept as it is: no CORS (a preflight gets a 405 without any
// Access-Control header, a request with an Origin none either), and a
// body nested beyond the JSON decoder's depth is a 400, not a crash.
func TestNoCORSAndDeepNesting(t *testing.T) {
	e := newEnv(t, nil, nil)
	pre, _ := http.NewRequest(http.MethodOptions, e.url+"/v1/track", nil)
	pre.Header.Set("Origin", "https://evil.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("preflight: %d", resp.StatusCode)
	}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Errorf("preflight answered with %s", k)
		}
	}
	r := e.do(req{path: "/v1/track", key: keyTrack, body: map[string]any{"userId": "u", "event": "E"}, headers: map[string]string{"Origin": "https://evil.example"}})
	for k := range r.header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Errorf("POST with an Origin answered with %s", k)
		}
	}
	depth := 100000 // 200 KB, under the body cap
	for _, body := range []string{
		`{"userId":"u","event":"E","properties":{"a":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}`,
		`{"userId":"u\ud800","event":"E","properties":{"a":` + strings.Repeat(`{"b":`, depth/5) + `1` + strings.Repeat("}", depth/5) + `}}`,
	} {
		r := e.do(req{path: "/v1/track", key: keyTrack, body: body})
		if r.status != http.StatusBadRequest {
			t.Errorf("deeply nested body: %d %.200s", r.status, r.raw)
		}
	}
}
