package producer

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Timing is when a task may first be delivered and when it goes stale, as a
// caller writes them in text: each as a duration from now (ProcessIn,
// ExpiresIn; see ParseDuration) or as a moment (ProcessAt, ExpiresAt; see
// ParseTime), not both; "" means not given. The CLI's --in and
// --expires-in and POST /v1/tasks's process_in, process_at, expires_in and
// expires_at are all read with it, so they follow the same rules:
//
//   - a delay must not be negative (0: no delay); a process time in the
//     past means now;
//   - an expiry must be in the future: expires_in positive, expires_at
//     after now;
//   - the expiry must not be before the process time.
type Timing struct {
	ProcessIn string
	ProcessAt string
	ExpiresIn string
	ExpiresAt string
}

// Options checks t against now and returns its enqueue options (ProcessIn
// or ProcessAt, ExpiresIn or ExpiresAt; none when t is empty), or a
// *ValidationError whose Field is the one at fault: "process_in",
// "process_at", "expires_in" or "expires_at".
func (t Timing) Options(now time.Time) ([]EnqueueOption, error) {
	var opts []EnqueueOption
	var process, expiry time.Time
	expiryField := ""
	switch {
	case t.ProcessIn != "" && t.ProcessAt != "":
		return nil, invalid("process_at", "must not be given with process_in")
	case t.ProcessIn != "":
		d, err := ParseDuration(t.ProcessIn)
		if err != nil {
			return nil, invalid("process_in", err.Error())
		}
		if d < 0 {
			return nil, invalid("process_in", "must not be negative")
		}
		if d > 0 {
			process = now.Add(d)
			opts = append(opts, ProcessIn(d))
		}
	case t.ProcessAt != "":
		at, err := ParseTime(t.ProcessAt)
		if err != nil {
			return nil, invalid("process_at", err.Error())
		}
		if at.After(now) {
			process = at
		}
		opts = append(opts, ProcessAt(at))
	}
	switch {
	case t.ExpiresIn != "" && t.ExpiresAt != "":
		return nil, invalid("expires_at", "must not be given with expires_in")
	case t.ExpiresIn != "":
		d, err := ParseDuration(t.ExpiresIn)
		if err != nil {
			return nil, invalid("expires_in", err.Error())
		}
		if d <= 0 {
			return nil, invalid("expires_in", "must be positive")
		}
		expiry, expiryField = now.Add(d), "expires_in"
		opts = append(opts, ExpiresIn(d))
	case t.ExpiresAt != "":
		at, err := ParseTime(t.ExpiresAt)
		if err != nil {
			return nil, invalid("expires_at", err.Error())
		}
		if !at.After(now) {
			return nil, invalid("expires_at", "must be in the future")
		}
		expiry, expiryField = at, "expires_at"
		opts = append(opts, ExpiresAt(at))
	}
	if !expiry.IsZero() && !process.IsZero() && process.After(expiry) {
		return nil, invalid(expiryField, "must not be before the process time")
	}
	return opts, nil
}

// maxDuration bounds a number of seconds ParseDuration accepts (what a
// time.Duration holds, about 292 years).
const maxDuration = float64(math.MaxInt64) / float64(time.Second)

// ParseDuration reads a duration as cioq's interfaces take it: Go syntax
// ("90s", "15m", "1h30m", "-5m") or a number of seconds ("3600", "1.5").
// Its error text is the rule, without the input.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXnNiI") {
		if math.Abs(f) > maxDuration {
			return 0, errDuration
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	return d, nil
}

// ParseTime reads a moment as cioq's interfaces take it: an ISO-8601
// date-time (RFC 3339, "2026-01-02T15:04:05Z" or with an offset such as
// "+02:00" or "+0200"; without one it is UTC; a date alone is its
// midnight UTC) or a number of unix seconds (above 1e11, milliseconds, as
// JavaScript's Date.now() gives them). Its error text is the rule, without
// the input.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXnNiI") {
		if f < 0 || f > 1e16 {
			return time.Time{}, errTime
		}
		if f > 1e11 { // milliseconds
			f /= 1000
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Unix() < 0 {
				return time.Time{}, errTime
			}
			return t, nil
		}
	}
	return time.Time{}, errTime
}

// timingError is a rule of Timing's text, without the input.
type timingError string

func (e timingError) Error() string { return string(e) }

const (
	errDuration = timingError(`must be a duration such as "90s", "15m" or "1h30m", or a number of seconds`)
	errTime     = timingError(`must be an ISO-8601 date-time such as "2026-01-02T15:04:05Z", or unix seconds`)
)
