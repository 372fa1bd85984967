package sandbox

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func BenchmarkTrackEvent(b *testing.B) {
	s := New(Config{MaxRecorded: 1000})
	auth := basic(DefaultSiteID, DefaultTrackAPIKey)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req := httptest.NewRequest("POST", fmt.Sprintf("/track/api/v1/customers/u%d/events", i%1000), strings.NewReader(`{"name":"ev","data":{"a":1}}`))
			req.Header.Set("Authorization", auth)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
