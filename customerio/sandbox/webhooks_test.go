package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookSink records the webhooks it receives, checking each signature; it
// answers 500 to the first fail requests.
type hookSink struct {
	mu     sync.Mutex
	events []map[string]any
	bad    int
	fail   int
	got    chan struct{}
}

func newHookSink(t *testing.T, key string, fail int) (*hookSink, string) {
	k := &hookSink{fail: fail, got: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte("v0:" + r.Header.Get("X-CIO-Timestamp") + ":"))
		mac.Write(b)
		k.mu.Lock()
		defer k.mu.Unlock()
		if r.Header.Get("X-CIO-Signature") != hex.EncodeToString(mac.Sum(nil)) {
			k.bad++
		}
		if k.fail > 0 {
			k.fail--
			w.WriteHeader(500)
			return
		}
		var ev map[string]any
		json.Unmarshal(b, &ev)
		k.events = append(k.events, ev)
		k.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return k, srv.URL
}

func (k *hookSink) wait(t *testing.T, n int) []map[string]any {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-k.got:
		case <-time.After(20 * time.Second):
			t.Fatalf("received %d of %d webhooks", i, n)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]map[string]any(nil), k.events...)
}

func metricsOf(evs []map[string]any) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e["metric"].(string))
	}
	return out
}

// TestWebhooks: each delivery's reporting webhooks, signed, in order and
// retried through a failing endpoint: sent and delivered, sent and bounced
// with the reason for a bounce address, failed with the reason for a
// delivery marked failed; Duplicate and Reorder repeat and reverse them.
func TestWebhooks(t *testing.T) {
	sink, url := newHookSink(t, "k1", 2)
	e := newEnv(t, Config{Webhooks: Webhooks{URL: url, SigningKey: "k1"},
		DeliveryFailure: func(d Delivery) string {
			if d.MessageData["broken"] != nil {
				return "Missing liquid variable 'reset_link'"
			}
			return ""
		}})
	for _, body := range []string{
		`{"transactional_message_id":3,"to":"ada@example.com","identifiers":{"id":"u1"}}`,
		`{"transactional_message_id":"welcome","to":"bounce@example.com","identifiers":{"email":"bounce@example.com"}}`,
		`{"transactional_message_id":"reset","to":"bob@example.com","identifiers":{"id":"u2"},"message_data":{"broken":true}}`,
	} {
		want(t, e.app("POST", "/v1/send/email", body), 200, "")
	}
	evs := sink.wait(t, 5)
	if got := metricsOf(evs); len(got) != 5 || got[0] != "sent" || got[1] != "delivered" || got[2] != "sent" || got[3] != "bounced" || got[4] != "failed" {
		t.Fatalf("metrics %v", got)
	}
	ds := e.r.Deliveries()
	d0 := evs[0]["data"].(map[string]any)
	if d0["delivery_id"] != ds[0].DeliveryID || d0["transactional_message_id"] != float64(3) || d0["customer_id"] != "u1" || evs[0]["object_type"] != "email" {
		t.Errorf("first event %v", evs[0])
	}
	if evs[0]["event_id"] == evs[1]["event_id"] {
		t.Error("two events share an event_id")
	}
	if evs[3]["data"].(map[string]any)["failure_message"] != BounceReason || evs[4]["data"].(map[string]any)["failure_message"] != "Missing liquid variable 'reset_link'" {
		t.Errorf("reasons %v / %v", evs[3], evs[4])
	}
	if ds[2].Status != DeliveryFailed {
		t.Errorf("the failed delivery is %q", ds[2].Status)
	}
	st := e.r.WebhookStats()
	for deadline := time.Now().Add(10 * time.Second); st.Sent < 5 && time.Now().Before(deadline); st = e.r.WebhookStats() {
		time.Sleep(5 * time.Millisecond) // the 5th is counted once its answer is read
	}
	if sink.bad != 0 || st.Queued != 5 || st.Sent != 5 || st.Failed != 2 {
		t.Errorf("bad signatures %d, stats %+v", sink.bad, st)
	}

	e.r.SetWebhooks(Webhooks{URL: url, SigningKey: "k1", Duplicate: true, Reorder: true, Delay: time.Millisecond})
	want(t, e.app("POST", "/v1/send/email", `{"transactional_message_id":3,"to":"cy@example.com","identifiers":{"id":"u3"}}`), 200, "")
	evs = sink.wait(t, 4)[5:]
	if got := metricsOf(evs); len(got) != 4 || got[0] != "delivered" || got[1] != "delivered" || got[2] != "sent" || evs[0]["event_id"] != evs[1]["event_id"] {
		t.Errorf("duplicated and reordered: %v", got)
	}
}

// TestBroadcastWebhooks: a trigger of an API-triggered broadcast sends the
// broadcast's email to each person it names who exists (a missing one is
// a trigger error, not a message), each message reported by signed
// webhooks with broadcast_id, trigger_id and email_address: sent and
// delivered, sent and bounced for a bounce address. The trigger's status
// (GET /v1/campaigns/{id}/triggers/{trigger}) says it was processed.
func TestBroadcastWebhooks(t *testing.T) {
	sink, url := newHookSink(t, "k1", 0)
	e := newEnv(t, Config{Webhooks: Webhooks{URL: url, SigningKey: "k1"}})
	want(t, e.track("PUT", "/api/v1/customers/u1", `{"email":"ada@example.com"}`), 200, "")
	want(t, e.track("PUT", "/api/v1/customers/u2", `{"email":"bounce@example.com"}`), 200, "")
	want(t, e.app("POST", "/v1/campaigns/3/triggers", `{"ids":["u1","u2","nobody"],"id_ignore_missing":true}`), 200, "")

	evs := sink.wait(t, 4)
	if got := metricsOf(evs); len(got) != 4 || got[0] != "sent" || got[1] != "delivered" || got[2] != "sent" || got[3] != "bounced" {
		t.Fatalf("metrics %v", got)
	}
	trs := e.r.Triggers()
	if len(trs) != 1 || len(trs[0].Messages) != 2 {
		t.Fatalf("triggers %+v", trs)
	}
	tr := trs[0]
	for i, ev := range evs {
		d := ev["data"].(map[string]any)
		m := tr.Messages[i/2]
		if d["broadcast_id"] != float64(3) || d["trigger_id"] != float64(tr.ID) || d["delivery_id"] != m.DeliveryID || ev["object_type"] != "email" {
			t.Errorf("event %d: %v", i, ev)
		}
		if _, ok := d["transactional_message_id"]; ok {
			t.Errorf("a broadcast message's event names a transactional message: %v", ev)
		}
	}
	d1, d3 := evs[1]["data"].(map[string]any), evs[3]["data"].(map[string]any)
	if d1["email_address"] != "ada@example.com" || d1["customer_id"] != "u1" || d3["failure_message"] != BounceReason {
		t.Errorf("delivered %v, bounced %v", d1, d3)
	}
	if tr.Messages[0].Status != DeliveryDelivered || tr.Messages[1].Status != DeliveryBounced {
		t.Errorf("messages %+v", tr.Messages)
	}
	if sink.bad != 0 {
		t.Errorf("%d bad signatures", sink.bad)
	}
	r := e.app("GET", fmt.Sprintf("/v1/campaigns/3/triggers/%d", tr.ID), "")
	want(t, r, 200, "")
	if !strings.Contains(r.body, `"processed_at":`) || strings.Contains(r.body, `"processed_at":null`) {
		t.Errorf("trigger status %s", r.body)
	}
	// Without webhooks configured a trigger sends (and records) its
	// messages all the same; a default-audience trigger sends none.
	want(t, e.app("POST", "/v1/campaigns/4/triggers", `{}`), 200, "")
	if trs := e.r.Triggers(); len(trs) != 2 || len(trs[1].Messages) != 0 {
		t.Errorf("default audience: %+v", trs[1])
	}
}
