package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cioq/cioq/producer"
)

// Environment variables of replicated acknowledgements, read by every
// command that writes to Redis (worker, serve, enqueue, dlq, demo).
const (
	EnvAckReplicas = "CIOQ_REDIS_ACK_REPLICAS" // 0 (default): no WAIT
	EnvAckTimeout  = "CIOQ_REDIS_ACK_TIMEOUT"  // Go duration (default 1s)
)

// Acks is CIOQ_REDIS_ACK_REPLICAS and CIOQ_REDIS_ACK_TIMEOUT: how many
// replicas must confirm each write cioq acknowledges, and how long to wait
// for them (0: producer.DefaultReplicaTimeout).
type Acks struct {
	Replicas int
	Timeout  time.Duration
}

// On reports whether replicas are required.
func (a Acks) On() bool { return a.Replicas > 0 }

// ProducerOptions are the producer options of the settings.
func (a Acks) ProducerOptions() []producer.Option {
	if !a.On() {
		return nil
	}
	return []producer.Option{producer.WithReplicas(a.Replicas, a.Timeout)}
}

// ReadTimeout is the Redis read timeout the settings need (0 when off):
// a WAIT may block for the timeout, and its answer must be read in time.
func (a Acks) ReadTimeout() time.Duration {
	if !a.On() {
		return 0
	}
	t := a.Timeout
	if t <= 0 {
		t = producer.DefaultReplicaTimeout
	}
	return t + 500*time.Millisecond
}

// LoadAcks reads CIOQ_REDIS_ACK_REPLICAS (an integer from 0 to 100) and
// CIOQ_REDIS_ACK_TIMEOUT (a duration from 1ms to 1m; it needs the first).
// Errors name the variable.
func LoadAcks(getenv func(string) string) (Acks, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var a Acks
	if v := get(EnvAckReplicas); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return a, fmt.Errorf("config: %s=%q: want an integer from 0 to 100 (the replicas that must have each acknowledged write)", EnvAckReplicas, v)
		}
		a.Replicas = n
	}
	if v := get(EnvAckTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Millisecond || d > time.Minute {
			return a, fmt.Errorf("config: %s=%q: want a duration from 1ms to 1m (e.g. 1s)", EnvAckTimeout, v)
		}
		if !a.On() {
			return a, fmt.Errorf("config: %s is set but %s is not (or 0): set how many replicas must confirm each write", EnvAckTimeout, EnvAckReplicas)
		}
		a.Timeout = d
	}
	if err := producer.CheckReplicas(a.Replicas, a.Timeout); err != nil {
		return a, fmt.Errorf("config: %s/%s: %w", EnvAckReplicas, EnvAckTimeout, err)
	}
	return a, nil
}
