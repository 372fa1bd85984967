package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cioq/cioq/producer"
)

// EnvQueueShards is how many asynq queues each logical queue is split
// into (producer.WithShards, worker.Config.Shards), read by every command
// that enqueues or serves tasks (worker, serve, enqueue, import, dlq,
// outbox relay, demo). Default 1: the plain queue names.
const EnvQueueShards = "CIOQ_QUEUE_SHARDS"

// LoadShards reads CIOQ_QUEUE_SHARDS: an integer from 1 to
// producer.MaxShards (16), 1 when unset. The error names the variable.
func LoadShards(getenv func(string) string) (int, error) {
	v := strings.TrimSpace(getenv(EnvQueueShards))
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || producer.CheckShards(n) != nil {
		return 1, fmt.Errorf("config: %s=%q: want an integer from 1 to %d (the asynq queues each logical queue is split into; use the number of Redis Cluster masters)", EnvQueueShards, v, producer.MaxShards)
	}
	return n, nil
}

// ShardOptions are the producer options of a shard count (none for 1).
func ShardOptions(n int) []producer.Option {
	if n <= 1 {
		return nil
	}
	return []producer.Option{producer.WithShards(n)}
}
