// Package internal holds no code of its own. Its subpackages are the leaves
// that several of cioq's packages share and no user should import: Redis
// connection options (redisconf), the Redis key schema (keys), the names
// of a logical queue's shards and their Cluster hash slots (shard), the
// producer's half of per-person ordering that the worker's dead-letter
// retry shares (sequence), replicated acknowledgements (redisack: WAIT
// after the writes cioq acknowledges), the operator's HTTP surface (ops:
// metrics, health, dashboard) and test support (testredis: a Redis database
// per test; testredis/topology: Sentinel groups and Clusters started from
// redis-server; testpg: a PostgreSQL database per test; testsupport:
// polling, the test logger, the sandbox's client configuration). They
// import nothing of cioq's but each other and customerio with its sandbox,
// the bottom of the graph (which test support needs for the sandbox's
// client configuration).
//
// The binary's own parts (configuration loading, cioq bench, the demo) live
// under cmd/cioq/internal. layers_test.go asserts these rules and the
// direction of every other import of the module.
package internal
