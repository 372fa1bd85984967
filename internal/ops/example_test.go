package ops_test

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cioq/cioq/internal/ops"
)

// A worker's admin port: its metrics, liveness, and readiness that fails
// while an API rejects the credentials.
func ExampleAdminMux() {
	reg := prometheus.NewRegistry()
	metrics := ops.NewMetrics(reg)
	metrics.Delivered("cio:track", "default", 1200*time.Millisecond)
	metrics.CustomerIOResponse("track", 200, 80*time.Millisecond)

	var authErr error = errors.New("app API: 401 for workspace eu-main")
	health := ops.NewHealth(
		// ops.RedisCheck(redisClient) in a real worker
		ops.CheckFunc("customerio_auth", func() error { return authErr }),
	)
	srv := httptest.NewServer(ops.AdminMux(ops.Handler(reg), health))
	defer srv.Close()

	show := func(path string, match string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), match) {
				fmt.Println(resp.StatusCode, sc.Text())
			}
		}
	}
	show("/metrics", "cioq_deliveries_total{")
	show("/healthz", "")
	show("/readyz", "")
	authErr = nil
	show("/readyz", "")
	// Output:
	// 200 cioq_deliveries_total{outcome="delivered",type="cio:track"} 1
	// 200 {"status":"ok"}
	// 503 {"status":"unavailable","checks":[{"name":"customerio_auth","ok":false,"error":"app API: 401 for workspace eu-main"}]}
	// 200 {"status":"ok","checks":[{"name":"customerio_auth","ok":true}]}
}

// What the dashboard shows of a transactional email task.
func ExampleRedact() {
	payload := []byte(`{"v":1,"workspace":"eu-main","payload":{"transactional_message_id":"password_reset",` +
		`"to":"jane@example.com","identifiers":{"id":"user-42"},"message_data":{"reset_link":"https://x.test/r/abc"},` +
		`"attachments":{"invoice.pdf":"SGVsbG8="}}}`)
	fmt.Println(ops.Redact(payload))
	fmt.Println(ops.Redact([]byte{0xff, 0x00}))
	// Output:
	// {"payload":{"attachments":{"invoice.pdf":"[8 bytes dropped]"},"identifiers":{"id":"[redacted]"},"message_data":{"reset_link":"[redacted]"},"to":"[redacted]","transactional_message_id":"password_reset"},"v":1,"workspace":"eu-main"}
	// [2 bytes, not JSON]
}

// cmd decides whether to warn before mounting the dashboard.
func ExampleDashboardOptions_Unauthenticated() {
	opts := ops.DashboardOptions{AllowNoAuth: true} // CIOQ_DASHBOARD_USER/PASSWORD unset
	if opts.Unauthenticated() {
		fmt.Println("WARN dashboard served without authentication")
	}
	// Output: WARN dashboard served without authentication
}
