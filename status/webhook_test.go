package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/status"
)

const signingKey = "whsec-test-signing-key"

// counter records the metrics and request counts a receiver reports.
type counter struct {
	mu        sync.Mutex
	outcomes  map[string]int // workspace|type|template|outcome
	requests  map[string]int // workspace|outcome
	delivered []time.Duration
}

func newCounter() *counter {
	return &counter{outcomes: map[string]int{}, requests: map[string]int{}}
}

func (c *counter) MessageOutcome(ws, typ, tmpl, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outcomes[ws+"|"+typ+"|"+tmpl+"|"+outcome]++
}

func (c *counter) MessageDelivered(ws, typ string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered = append(c.delivered, d)
}

func (c *counter) WebhookRequest(ws, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests[ws+"|"+outcome]++
}

func (c *counter) get(m map[string]int, k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[k]
}

// harness is a receiver on a real HTTP server over a real Redis.
type harness struct {
	store *status.Store
	srv   *httptest.Server
	c     *counter
	db    *testredis.DB
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db := testredis.New(t)
	h := &harness{c: newCounter(), db: db}
	h.store = status.NewStore(db.Client, status.Options{Metrics: h.c})
	rc, err := status.NewReceiver(status.ReceiverConfig{Store: h.store, Requests: h.c,
		SigningKeys: map[string]string{"": signingKey, "eu-shop": "eu-key"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rc.Mount(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// post sends body to path signed with key at ts (unix seconds); an empty
// key sends no signature.
func (h *harness) post(t *testing.T, path, key string, ts int64, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CIO-Timestamp", strconv.FormatInt(ts, 10))
	if key != "" {
		req.Header.Set("X-CIO-Signature", status.Sign([]byte(key), ts, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func event(id, metric, delivery string, at int64, data map[string]any) []byte {
	d := map[string]any{"delivery_id": delivery, "transactional_message_id": 3, "customer_id": "user-42",
		"recipient": "ada@example.com"}
	for k, v := range data {
		d[k] = v
	}
	b, _ := json.Marshal(map[string]any{"event_id": id, "object_type": "email", "metric": metric, "timestamp": at, "data": d})
	return b
}

// TestWebhookSignature: a signed, fresh request is accepted once its
// event is in Redis; a wrong signature, none, another workspace's key, an
// unknown workspace, a stale or a future timestamp all get the same 401
// and record nothing; a replay of an accepted request is acknowledged and
// records nothing more.
func TestWebhookSignature(t *testing.T) {
	h := newHarness(t)
	now := time.Now().Unix()
	body := event("ev-1", "delivered", "dlv-1", now, nil)

	code, resp := h.post(t, status.WebhookPath, signingKey, now, body)
	if code != 200 || !strings.Contains(resp, `"duplicates":0`) {
		t.Fatalf("signed request: %d %s", code, resp)
	}
	// The event is in Redis before the 200 (what the handler waits for).
	tl := lookupDelivery(t, h, "", "delivery:dlv-1")
	if tl != 1 {
		t.Fatalf("%d events recorded, want 1", tl)
	}

	var unauthorized []string
	for _, tc := range []struct {
		name, path, key string
		offset          int64 // seconds from the time of the request
	}{
		{"wrong signature", status.WebhookPath, "not-the-key", 0},
		{"no signature", status.WebhookPath, "", 0},
		{"another workspace's key", status.WebhookPath, "eu-key", 0},
		{"unknown workspace", status.WebhookPath + "/nope", signingKey, 0},
		{"unknown workspace, no key", status.WebhookPath + "/nope", "", 0},
		{"stale", status.WebhookPath, signingKey, -310},
		{"from the future", status.WebhookPath, signingKey, 310},
	} {
		b := event("ev-"+tc.name, "delivered", "dlv-2", now, nil)
		// The timestamp is taken when the request is made: on a loaded
		// machine seconds pass between the cases.
		code, resp := h.post(t, tc.path, tc.key, time.Now().Unix()+tc.offset, b)
		if code != 401 {
			t.Errorf("%s: %d %s, want 401", tc.name, code, resp)
		}
		unauthorized = append(unauthorized, resp)
	}
	for _, r := range unauthorized[1:] {
		if r != unauthorized[0] {
			t.Errorf("401 bodies differ: %q vs %q", r, unauthorized[0])
		}
	}
	if n := lookupDelivery(t, h, "", "delivery:dlv-2"); n != 0 {
		t.Errorf("refused requests recorded %d events", n)
	}
	if got := h.c.get(h.c.requests, "unknown|unauthorized"); got != 7 {
		t.Errorf("unauthorized count %d, want 7", got)
	}

	// Within the window a timestamp 299 s old is fine; another
	// workspace's path takes its own key.
	if code, resp := h.post(t, status.WebhookPath+"/eu-shop", "eu-key", now-299, event("ev-eu", "sent", "dlv-3", now, nil)); code != 200 {
		t.Errorf("eu-shop: %d %s", code, resp)
	}

	// A replay (Customer.io retrying, or someone who saw the request):
	// acknowledged, nothing changes.
	for i := 0; i < 2; i++ {
		code, resp = h.post(t, status.WebhookPath, signingKey, now, body)
		if code != 200 || !strings.Contains(resp, `"duplicates":1`) {
			t.Fatalf("replay: %d %s", code, resp)
		}
	}
	if n := lookupDelivery(t, h, "", "delivery:dlv-1"); n != 1 {
		t.Errorf("after replays %d events, want 1", n)
	}
	if got := h.c.get(h.c.outcomes, "default|cio:send_email|3|delivered"); got != 1 {
		t.Errorf("delivered outcome counted %d times, want 1 (%v)", got, h.c.outcomes)
	}
}

// lookupDelivery counts the events recorded for a delivery.
func lookupDelivery(t *testing.T, h *harness, ws, ref string) int {
	t.Helper()
	m, err := h.db.Client.HGetAll(context.Background(), keys.StatusDelivery(ws, ref)).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range m {
		if strings.HasPrefix(k, "ev:") {
			n++
		}
	}
	return n
}

// TestWebhookKeepsEverything: an authenticated body that is no event, an
// event naming no delivery and an event of an unknown metric are all
// acknowledged and kept (a refusal would hold back every later webhook).
func TestWebhookKeepsEverything(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now().Unix()
	for _, b := range [][]byte{
		[]byte(`{"hello":"world"}`),
		[]byte(`{"event_id":"c-1","object_type":"customer","metric":"subscribed","timestamp":1767222000,"data":{"customer_id":"u-1"}}`),
		event("ev-odd", "teleported", "dlv-9", now, nil),
	} {
		if code, resp := h.post(t, status.WebhookPath, signingKey, now, b); code != 200 {
			t.Errorf("%s: %d %s", b, code, resp)
		}
	}
	other, err := h.store.Other(ctx, "", 10)
	if err != nil || len(other) != 2 {
		t.Fatalf("other events %d (%v), want 2", len(other), err)
	}
	if n := lookupDelivery(t, h, "", "delivery:dlv-9"); n != 1 {
		t.Errorf("unknown metric: %d events, want 1", n)
	}
	if h.c.get(h.c.outcomes, "default|cio:send_email|3|other") != 1 {
		t.Errorf("unknown metric not counted as other: %v", h.c.outcomes)
	}
}

// TestWebhookBodyLimit: an oversized body is refused before anything else.
func TestWebhookBodyLimit(t *testing.T) {
	h := newHarness(t)
	big := []byte(fmt.Sprintf(`{"event_id":"x","metric":"sent","data":{"pad":%q}}`, strings.Repeat("a", status.DefaultMaxBodyBytes)))
	if code, _ := h.post(t, status.WebhookPath, signingKey, time.Now().Unix(), big); code != 413 {
		t.Errorf("oversized body: %d, want 413", code)
	}
}
