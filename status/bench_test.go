package status_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/status"
)

// BenchmarkAccepted: what the worker adds to a send Customer.io accepted
// (one pipelined round trip to Redis).
func BenchmarkAccepted(b *testing.B) {
	db := testredis.New(b)
	st := status.NewStore(db.Client, status.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := "task-" + strconv.Itoa(i)
		if err := st.Accepted(ctx, status.Task{ID: id, EnqueuedAt: 1, Type: "cio:send_email", Queue: "critical", Template: "welcome"}, "delivery:"+id, 1, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebhook: one signed reporting webhook through the receiver
// (signature, parse, one script call), as Customer.io's 4 s timeout sees it
// minus the network.
func BenchmarkWebhook(b *testing.B) {
	db := testredis.New(b)
	st := status.NewStore(db.Client, status.Options{})
	rc, _ := status.NewReceiver(status.ReceiverConfig{Store: st, SigningKeys: map[string]string{"": "k"}})
	mux := http.NewServeMux()
	rc.Mount(mux)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := []byte(`{"event_id":"ev-` + strconv.Itoa(i) + `","object_type":"email","metric":"delivered","timestamp":` + now + `,"data":{"delivery_id":"d-` + strconv.Itoa(i) + `","transactional_message_id":3}}`)
		ts, _ := strconv.ParseInt(now, 10, 64)
		req := httptest.NewRequest(http.MethodPost, status.WebhookPath, bytes.NewReader(body))
		req.Header.Set("X-CIO-Timestamp", now)
		req.Header.Set("X-CIO-Signature", status.Sign([]byte("k"), ts, body))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
