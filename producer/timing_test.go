package producer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

func TestParseDurationAndTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90s": 90 * time.Second, "15m": 15 * time.Minute, "1h30m": 90 * time.Minute, "-5m": -5 * time.Minute,
		"3600": time.Hour, " 1.5 ": 1500 * time.Millisecond, "0": 0, "-60": -time.Minute,
	} {
		if got, err := producer.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "1d", "NaN", "Inf", "0x10", "1e30", "5 minutes"} {
		if _, err := producer.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = nil error", in)
		}
	}
	want := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, in := range []string{"2026-01-02T15:04:05Z", "2026-01-02T17:04:05+02:00", "2026-01-02T17:04:05+0200", "2026-01-02T15:04:05",
		"1767366245", "1767366245000", "1767366245.0"} {
		if got, err := producer.ParseTime(in); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, err := producer.ParseTime("2026-01-02"); err != nil || !got.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseTime(date) = %v, %v", got, err)
	}
	for _, in := range []string{"", "tomorrow", "-1", "1969-12-31T00:00:00Z", "NaN", "1e20"} {
		if _, err := producer.ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = nil error", in)
		}
	}
}

// TestTimingOptions: the rules the CLI and /v1/tasks share, and the
// options they make: a delay schedules the task, an expiry goes into its
// envelope.
func TestTimingOptions(t *testing.T) {
	now := time.Now()
	future := now.Add(3 * time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name  string
		t     producer.Timing
		field string
	}{
		{"negative delay", producer.Timing{ProcessIn: "-1s"}, "process_in"},
		{"bad delay", producer.Timing{ProcessIn: "soon"}, "process_in"},
		{"both delays", producer.Timing{ProcessIn: "1m", ProcessAt: future}, "process_at"},
		{"bad process time", producer.Timing{ProcessAt: "later"}, "process_at"},
		{"zero expiry", producer.Timing{ExpiresIn: "0"}, "expires_in"},
		{"negative expiry", producer.Timing{ExpiresIn: "-1h"}, "expires_in"},
		{"bad expiry", producer.Timing{ExpiresIn: "an hour"}, "expires_in"},
		{"both expiries", producer.Timing{ExpiresIn: "1h", ExpiresAt: future}, "expires_at"},
		{"expiry past", producer.Timing{ExpiresAt: now.Add(-time.Second).UTC().Format(time.RFC3339)}, "expires_at"},
		{"expiry before the delay", producer.Timing{ProcessIn: "2h", ExpiresIn: "1h"}, "expires_in"},
		{"expiry before the process time", producer.Timing{ProcessAt: future, ExpiresIn: "1h"}, "expires_in"},
	} {
		_, err := c.t.Options(now)
		var ve *producer.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: Options = %v, want a *ValidationError on %s", c.name, err, c.field)
		}
	}
	for _, tm := range []producer.Timing{{}, {ProcessIn: "0"}, {ProcessAt: "1"}, {ExpiresIn: "1h", ProcessIn: "1h"}} {
		if _, err := tm.Options(now); err != nil {
			t.Errorf("Options(%+v) = %v", tm, err)
		}
	}

	c, insp := setup(t)
	opts, err := producer.Timing{ProcessIn: "10m", ExpiresIn: "1h"}.Options(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	r, err := c.Identify(ctx, tasks.Identify{Identifiers: person}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	info, env, _ := stored(t, insp, r)
	if info.State != asynq.TaskStateScheduled || info.NextProcessAt.Before(before.Add(10*time.Minute).Truncate(time.Second)) {
		t.Errorf("state %v at %v, want scheduled in 10m", info.State, info.NextProcessAt)
	}
	if exp, ok := env.Expiry(); !ok || exp.Before(before.Add(time.Hour).Truncate(time.Second)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("expiry %v %v, want in 1h", exp, ok)
	}
}
