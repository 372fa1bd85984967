package sandbox

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/oklog/ulid/v2"
)

// v2BatchBody is one Track v2 batch of n person events shaped like the
// operations cioq sends.
func v2BatchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"batch":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"person","identifiers":{"id":"user-%d"},"action":"event","name":"signed_up","id":%q,"timestamp":1700000000,"attributes":{"plan":"pro","n":3,"ok":true}}`,
			i, ulid.Make().String())
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkV2Batch posts one 500-operation Track v2 batch per iteration
// (the same body each time: after the first, its events are duplicates by
// id) and reports the cost per operation.
func BenchmarkV2Batch(b *testing.B) {
	const items = 500
	s := New(Config{MaxRecorded: 1000})
	auth := basic(DefaultSiteID, DefaultTrackAPIKey)
	body := v2BatchBody(items)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", TrackPrefix+"/api/v2/batch", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	n := float64(b.N) * items
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/item")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/item")
}
