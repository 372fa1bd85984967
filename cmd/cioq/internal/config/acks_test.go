package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadAcks(t *testing.T) {
	cases := []struct {
		env     map[string]string
		want    Acks
		errWord string // in the error, "" for none
	}{
		{nil, Acks{}, ""},
		{map[string]string{EnvAckReplicas: "1"}, Acks{Replicas: 1}, ""},
		{map[string]string{EnvAckReplicas: " 2 ", EnvAckTimeout: "250ms"}, Acks{Replicas: 2, Timeout: 250 * time.Millisecond}, ""},
		{map[string]string{EnvAckReplicas: "0"}, Acks{}, ""},
		{map[string]string{EnvAckReplicas: "-1"}, Acks{}, EnvAckReplicas},
		{map[string]string{EnvAckReplicas: "one"}, Acks{}, EnvAckReplicas},
		{map[string]string{EnvAckReplicas: "1", EnvAckTimeout: "0s"}, Acks{}, EnvAckTimeout},
		{map[string]string{EnvAckReplicas: "1", EnvAckTimeout: "2m"}, Acks{}, EnvAckTimeout},
		{map[string]string{EnvAckTimeout: "1s"}, Acks{}, EnvAckReplicas},
	}
	for _, c := range cases {
		got, err := LoadAcks(func(k string) string { return c.env[k] })
		switch {
		case c.errWord == "" && err != nil:
			t.Errorf("%v: %v", c.env, err)
		case c.errWord != "" && (err == nil || !strings.Contains(err.Error(), c.errWord)):
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.errWord)
		case c.errWord == "" && got != c.want:
			t.Errorf("%v: %+v, want %+v", c.env, got, c.want)
		}
	}
	if got := (Acks{Replicas: 1}).ReadTimeout(); got != 1500*time.Millisecond {
		t.Errorf("ReadTimeout = %s", got)
	}
	if len((Acks{}).ProducerOptions()) != 0 || len((Acks{Replicas: 1}).ProducerOptions()) != 1 {
		t.Error("ProducerOptions")
	}
}

// TestWorkerConfigAcks: the worker gets the settings.
func TestWorkerConfigAcks(t *testing.T) {
	c := &Config{Acks: Acks{Replicas: 2, Timeout: time.Second}}
	if wc := c.WorkerConfig(); wc.Replicas != 2 || wc.ReplicaTimeout != time.Second {
		t.Errorf("worker config: %d %s", wc.Replicas, wc.ReplicaTimeout)
	}
}
