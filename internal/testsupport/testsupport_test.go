package testsupport

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
)

// recorder is a testing.TB that records Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

// Eventually returns once the condition holds, and otherwise fails naming
// what it waited for and for how long.
func TestEventually(t *testing.T) {
	t.Parallel()
	calls := 0
	r := &recorder{TB: t}
	Eventually(r, time.Minute, "the third call", func() bool { calls++; return calls == 3 })
	if r.fatal != "" || calls != 3 {
		t.Fatalf("condition true at the third call: %d calls, failure %q", calls, r.fatal)
	}

	r = &recorder{TB: t}
	Eventually(r, 3*PollInterval, "the impossible", func() bool { return false })
	if !strings.Contains(r.fatal, "waiting for the impossible") || !strings.Contains(r.fatal, (3*PollInterval).String()) {
		t.Fatalf("failure %q does not name what it waited for and how long", r.fatal)
	}
}

// Logger is at debug level only when CIOQ_TEST_LOG is set.
func TestLogger(t *testing.T) {
	ctx := context.Background()
	t.Setenv(LogEnv, "")
	if Logger().Enabled(ctx, slog.LevelDebug) {
		t.Fatal("debug logs enabled without " + LogEnv)
	}
	t.Setenv(LogEnv, "1")
	if !Logger().Enabled(ctx, slog.LevelDebug) {
		t.Fatal("debug logs not enabled with " + LogEnv + " set")
	}
}

// A client on SandboxConfig reaches the sandbox's Track, App and Pipelines
// APIs with its credentials.
func TestSandboxConfig(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewTestServer(t)
	c, err := customerio.New(SandboxConfig(sb.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Identify(ctx, "u-1", map[string]any{"plan": "pro"}); err != nil {
		t.Fatalf("Track: %v", err)
	}
	if _, err := c.SendEmail(ctx, &customerio.SendEmailRequest{To: "a@example.com", Subject: "s", Body: "b"}); err != nil {
		t.Fatalf("App: %v", err)
	}
	if err := c.Pipelines(ctx, customerio.CallIdentify, customerio.PipelinesMessage{UserID: "u-2"}); err != nil {
		t.Fatalf("Pipelines: %v", err)
	}
	if _, ok := sb.Person("u-1"); !ok || len(sb.Deliveries()) != 1 || len(sb.CDPMessages()) != 1 {
		t.Fatalf("sandbox state: person %v, %d deliveries, %d CDP messages", ok, len(sb.Deliveries()), len(sb.CDPMessages()))
	}
}
