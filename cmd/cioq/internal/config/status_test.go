package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadStatus(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		want    Status
		wantErr string
	}{
		{env: nil, want: Status{}},
		{env: map[string]string{EnvStatusTTL: "7d", EnvStatusPollAfter: "15m"}, want: Status{TTL: 7 * 24 * time.Hour, PollAfter: 15 * time.Minute}},
		{env: map[string]string{EnvStatusTTL: "720h", EnvStatusPollAfter: "off"}, want: Status{TTL: 720 * time.Hour}},
		{env: map[string]string{EnvStatusTTL: "off"}, want: Status{Off: true}},
		{env: map[string]string{EnvStatusTTL: "10m"}, wantErr: EnvStatusTTL},
		{env: map[string]string{EnvStatusTTL: "1.5d"}, wantErr: EnvStatusTTL},
		{env: map[string]string{EnvStatusPollAfter: "10s"}, wantErr: EnvStatusPollAfter},
	} {
		got, err := LoadStatus(env(tc.env))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want one naming %s", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v, %v; want %+v", tc.env, got, err, tc.want)
		}
	}
}

func TestWebhookSigningKeys(t *testing.T) {
	file := writeFile(t, `{"workspaces": {
		"eu": {"app_api_key": "k", "webhook_signing_key_env": "EU_WH"},
		"us2": {"app_api_key": "k", "webhook_signing_key": "inline-key"},
		"none": {"app_api_key": "k"}}}`)
	got, err := WebhookSigningKeys(env(map[string]string{EnvWebhookSigningKey: "default-key", EnvWorkspacesFile: file, "EU_WH": "eu-key"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[""] != "default-key" || got["eu"] != "eu-key" || got["us2"] != "inline-key" {
		t.Errorf("keys %v", got)
	}
	_, err = WebhookSigningKeys(env(map[string]string{EnvWorkspacesFile: file}))
	if err == nil || !strings.Contains(err.Error(), "workspaces.eu.webhook_signing_key_env") || strings.Contains(err.Error(), "eu-key") {
		t.Errorf("unset variable: %v", err)
	}
	both := writeFile(t, `{"workspaces": {"default": {"webhook_signing_key": "a"}}}`)
	if _, err := WebhookSigningKeys(env(map[string]string{EnvWorkspacesFile: both, EnvWebhookSigningKey: "b"})); err == nil {
		t.Error("the default workspace's key twice: no error")
	}
}
