package testsupport

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
)

// PollInterval is how often Eventually checks its condition.
const PollInterval = 20 * time.Millisecond

// Eventually checks cond every PollInterval until it holds, and fails the
// test (naming what it waited for) when it still does not after d. It is
// for state that no signal announces; where one does (the sandbox's
// WaitFor, a channel), wait for that instead.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
			return // Fatalf ends the test's goroutine; a fake testing.TB may return
		}
		time.Sleep(PollInterval)
	}
}

// LogEnv is the environment variable that turns test logs on: when it is
// set (to anything), Logger writes debug-level text to stderr.
const LogEnv = "CIOQ_TEST_LOG"

// Logger returns a logger for the component under test. It discards
// everything unless CIOQ_TEST_LOG is set, so `go test -v` shows the tests'
// own lines and CIOQ_TEST_LOG=1 adds the components' logs at debug level.
// Discarded records are still formatted (at info level and above), so
// tests run the code that renders log attributes.
func Logger() *slog.Logger {
	if os.Getenv(LogEnv) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// SandboxConfig is a customerio.Config for the sandbox served at url (its
// root, such as an httptest.Server's URL): the sandbox's default
// credentials for all three APIs, their base URLs below url, and a
// five-second request timeout.
func SandboxConfig(url string) customerio.Config {
	return customerio.Config{
		SiteID:            sandbox.DefaultSiteID,
		TrackAPIKey:       sandbox.DefaultTrackAPIKey,
		AppAPIKey:         sandbox.DefaultAppAPIKey,
		PipelinesWriteKey: sandbox.DefaultPipelinesWriteKey,
		TrackURL:          url + sandbox.TrackPrefix,
		AppURL:            url + sandbox.AppPrefix,
		PipelinesURL:      url + sandbox.CDPPrefix,
		Timeout:           5 * time.Second,
	}
}
