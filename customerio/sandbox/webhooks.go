package sandbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Webhooks configures the sandbox's reporting webhooks: like Customer.io,
// it POSTs one signed JSON event per request to URL for each transactional
// delivery it accepted and each message a broadcast trigger sent
// (Trigger.Messages): "sent" then "delivered", "sent" then "bounced" for
// a bounce address, or "failed" for a delivery marked failed (with
// Delivery.FailureMessage as failure_message). The zero value sends none.
//
// A broadcast message's event carries, instead of transactional_message_id
// and recipient, "broadcast_id", "trigger_id" (the id POST
// /v1/campaigns/{id}/triggers answered) and "email_address".
//
// Each request carries X-CIO-Timestamp (unix seconds, when it is sent) and
// X-CIO-Signature, the hex HMAC-SHA256 with SigningKey of "v0:" + the
// timestamp + ":" + the body, and the body
//
//	{"event_id":"…","object_type":"email","metric":"delivered","timestamp":…,
//	 "data":{"delivery_id":"…","transactional_message_id":"…","identifiers":{…},
//	         "customer_id":"…","recipient":"…","failure_message":"…"}}
//
// Events are sent one at a time, in order; one that is not answered 2xx
// within 4 s is retried with backoff (100 ms doubling to 5 s) and holds the
// later ones back, as Customer.io's do, until it succeeds or the sandbox
// is closed.
type Webhooks struct {
	// URL receives the events ("" = none are sent).
	URL string
	// SigningKey signs them.
	SigningKey string
	// Delay waits before each event is sent (a slow Customer.io).
	Delay time.Duration
	// Duplicate sends every event twice (the same event_id): a retry
	// whose first answer was lost.
	Duplicate bool
	// Reorder sends a delivery's events last first (delivered before
	// sent).
	Reorder bool
}

// WebhookStats count the reporting webhooks the sandbox sent.
type WebhookStats struct {
	// Queued events, Sent requests answered 2xx, Failed requests (not 2xx,
	// or no answer) that were retried.
	Queued, Sent, Failed int
}

// webhooks is the emitter: a queue of signed events and its one sender.
type webhooks struct {
	mu      sync.Mutex
	cfg     Webhooks
	queue   [][]byte
	wake    chan struct{}
	started bool
	stats   WebhookStats
	nextID  int
	client  *http.Client
}

// SetWebhooks configures (or, with a zero Webhooks, stops) the reporting
// webhooks of deliveries accepted from now on.
func (s *Server) SetWebhooks(w Webhooks) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.cfg = w
	if w.URL != "" && !s.hooks.started {
		s.hooks.started = true
		s.hooks.wake = make(chan struct{}, 1)
		s.hooks.client = &http.Client{Timeout: 4 * time.Second}
		go s.sendWebhooks()
	}
}

// WebhookStats returns how many reporting webhooks were queued and sent.
func (s *Server) WebhookStats() WebhookStats {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return s.hooks.stats
}

// reportDelivery queues a delivery's reporting webhooks.
func (s *Server) reportDelivery(d Delivery) {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg.URL == "" {
		return
	}
	metrics := deliveryMetrics(d)
	if h.cfg.Reorder {
		for i, j := 0, len(metrics)-1; i < j; i, j = i+1, j-1 {
			metrics[i], metrics[j] = metrics[j], metrics[i]
		}
	}
	at := d.QueuedAt.Unix()
	for _, m := range metrics {
		h.nextID++
		data := map[string]any{"delivery_id": d.DeliveryID}
		if d.TransactionalMessageID != "" {
			if n, err := strconv.ParseInt(d.TransactionalMessageID, 10, 64); err == nil {
				data["transactional_message_id"] = n
			} else {
				data["transactional_message_id"] = d.TransactionalMessageID
			}
		}
		if len(d.Identifiers) > 0 {
			data["identifiers"] = d.Identifiers
			if id := d.Identifiers["id"]; id != "" {
				data["customer_id"] = id
			}
		}
		if d.BroadcastID > 0 {
			// A broadcast message: Customer.io's broadcast_id, the trigger
			// that sent it, and the address as email_address.
			data["broadcast_id"], data["trigger_id"] = d.BroadcastID, d.TriggerID
			if d.To != "" {
				data["email_address"] = d.To
			}
		} else if d.To != "" {
			data["recipient"] = d.To
		}
		if m == DeliveryBounced || m == DeliveryFailed {
			data["failure_message"] = d.FailureMessage
		}
		b, _ := json.Marshal(map[string]any{
			"event_id":    fmt.Sprintf("sbx_%s_ev%d", s.instance, h.nextID),
			"object_type": channelObjectType(d.Channel), "metric": m, "timestamp": at, "data": data,
		})
		h.queue = append(h.queue, b)
		h.stats.Queued++
		if h.cfg.Duplicate {
			h.queue = append(h.queue, b)
		}
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// sendWebhooks sends the queue in order until the sandbox is closed.
func (s *Server) sendWebhooks() {
	h := &s.hooks
	for {
		h.mu.Lock()
		var body []byte
		if len(h.queue) > 0 {
			body = h.queue[0]
		}
		cfg := h.cfg
		h.mu.Unlock()
		if body == nil {
			select {
			case <-s.done:
				return
			case <-h.wake:
				continue
			}
		}
		if cfg.Delay > 0 && !s.sleep(cfg.Delay) {
			return
		}
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			if cfg.URL == "" || s.postWebhook(cfg, body) {
				break
			}
			h.mu.Lock()
			h.stats.Failed++
			cfg = h.cfg
			h.mu.Unlock()
			if !s.sleep(backoff) {
				return
			}
		}
		h.mu.Lock()
		h.queue = h.queue[1:]
		if cfg.URL != "" {
			h.stats.Sent++
		}
		h.mu.Unlock()
	}
}

// sleep waits d, false when the sandbox was closed meanwhile.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return false
	case <-t.C:
		return true
	}
}

// postWebhook sends one signed event; true on a 2xx.
func (s *Server) postWebhook(cfg Webhooks, body []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	// The wall clock, as the receiver checks it (Config.Now may be a
	// test's stepped clock).
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(cfg.SigningKey))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cioq-sandbox reporting webhooks")
	req.Header.Set("X-CIO-Timestamp", ts)
	req.Header.Set("X-CIO-Signature", hex.EncodeToString(mac.Sum(nil)))
	resp, err := s.hooks.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
