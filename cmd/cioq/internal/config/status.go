package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Environment variables of delivery status (package status).
const (
	// EnvStatusTTL is how long a task's timeline is kept: a duration of at
	// least 1h, or "off" (the worker records no timelines).
	EnvStatusTTL = "CIOQ_STATUS_TTL"
	// EnvStatusPollAfter turns the fallback poll on: a send accepted that
	// long ago without a final state is read with GET /v1/messages/{id}
	// (a duration of at least 1m, or "off", the default).
	EnvStatusPollAfter = "CIOQ_STATUS_POLL_AFTER"
	// EnvWebhookSigningKey is the default workspace's reporting webhook
	// signing key (`cioq serve`).
	EnvWebhookSigningKey = "CIOQ_WEBHOOK_SIGNING_KEY"
)

// Status is the delivery status settings.
type Status struct {
	// Off is CIOQ_STATUS_TTL=off: no timelines are written.
	Off bool
	// TTL is CIOQ_STATUS_TTL; 0 when unset (status.DefaultTTL, 30 days).
	TTL time.Duration
	// PollAfter is CIOQ_STATUS_POLL_AFTER; 0 when off (the default).
	PollAfter time.Duration
}

// LoadStatus reads CIOQ_STATUS_TTL and CIOQ_STATUS_POLL_AFTER.
func LoadStatus(getenv func(string) string) (Status, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var s Status
	if v := strings.TrimSpace(getenv(EnvStatusTTL)); v != "" {
		if strings.EqualFold(v, "off") {
			s.Off = true
		} else if d, err := parseDays(v); err != nil || d < time.Hour {
			return s, fmt.Errorf("config: %s=%q: want a duration of at least 1h (720h, 30d) or off", EnvStatusTTL, v)
		} else {
			s.TTL = d
		}
	}
	if v := strings.TrimSpace(getenv(EnvStatusPollAfter)); v != "" && !strings.EqualFold(v, "off") {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return s, fmt.Errorf("config: %s=%q: want a duration of at least 1m (e.g. 15m) or off", EnvStatusPollAfter, v)
		}
		s.PollAfter = d
	}
	return s, nil
}

// parseDays is time.ParseDuration that also takes whole days ("30d").
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n && days > 0 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(v)
}

// WebhookSigningKeys returns the reporting webhook signing key of each
// workspace that has one: CIOQ_WEBHOOK_SIGNING_KEY for the default
// workspace (""), and webhook_signing_key (or webhook_signing_key_env) of
// the workspaces file CIOQ_WORKSPACES_FILE names ("default" there is the
// default workspace). Only those keys are read of the file, so `cioq
// serve` needs none of the Customer.io credentials. Errors name the
// variable or the file and key, never a key's value.
func WebhookSigningKeys(getenv func(string) string) (map[string]string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	out := map[string]string{}
	if v := strings.TrimSpace(getenv(EnvWebhookSigningKey)); v != "" {
		out[DefaultWorkspace] = v
	}
	path := strings.TrimSpace(getenv(EnvWorkspacesFile))
	if path == "" {
		return out, nil
	}
	prefix := fmt.Sprintf("config: %s %s", EnvWorkspacesFile, path)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	var f workspacesFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %v", prefix, err)
	}
	names := make([]string, 0, len(f.Workspaces))
	for n := range f.Workspaces {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		fw := f.Workspaces[name]
		key := fmt.Sprintf("%s: workspaces.%s.webhook_signing_key", prefix, name)
		if fw.WebhookSigningKey != "" && fw.WebhookSigningKeyEnv != "" {
			return nil, fmt.Errorf("%s: set webhook_signing_key or webhook_signing_key_env, not both", key)
		}
		v := strings.TrimSpace(fw.WebhookSigningKey)
		if fw.WebhookSigningKeyEnv != "" {
			if v = strings.TrimSpace(getenv(fw.WebhookSigningKeyEnv)); v == "" {
				return nil, fmt.Errorf("%s_env: environment variable %s is not set", key, fw.WebhookSigningKeyEnv)
			}
		}
		if v == "" {
			continue
		}
		ws := name
		if ws == "default" {
			ws = DefaultWorkspace
		}
		if _, dup := out[ws]; dup {
			return nil, fmt.Errorf("%s: the default workspace's key is already set by %s", key, EnvWebhookSigningKey)
		}
		out[ws] = v
	}
	return out, nil
}
