package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cioq/cioq/internal/shard"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/worker"
)

// TestDLQLogicalQueues: `cioq dlq` speaks of logical queues: a shard's
// dead letter is listed under its logical queue (JSON names the shard),
// --queue default takes in every shard, stats count by logical queue; and
// retry, with CIOQ_QUEUE_SHARDS=3, re-enqueues into a shard of the
// logical queue. A bad CIOQ_QUEUE_SHARDS is a configuration error naming
// the variable.
func TestDLQLogicalQueues(t *testing.T) {
	db := testredis.New(t)
	names := shard.Names("default", 3)
	seedDeadLetters(t, db, 4, func(i int) *worker.DeadLetter {
		d := genericDeadLetter(i)
		d.Type, d.Queue = "cio:identify", "default"
		if i < 3 {
			d.Queue = names[i]
		}
		return d
	})
	env := map[string]string{"REDIS_URL": db.URL(), "CIOQ_QUEUE_SHARDS": "3"}
	r := cli(t, env, "", "dlq", "list", "--queue", "default", "--json")
	if r.code != 0 {
		t.Fatalf("dlq list: %d %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("dlq list --queue default: %d lines, want 4:\n%s", len(lines), r.stdout)
	}
	shards := map[string]bool{}
	for _, l := range lines {
		var it dlqItem
		if err := json.Unmarshal([]byte(l), &it); err != nil {
			t.Fatal(err)
		}
		if it.Queue != "default" {
			t.Errorf("listed queue %q, want the logical queue", it.Queue)
		}
		shards[it.Shard] = true
	}
	if len(shards) != 4 || !shards[""] || !shards[names[1]] {
		t.Errorf("shards listed: %v, want the three and none (the plain queue)", shards)
	}
	r = cli(t, env, "", "dlq", "stats", "--json")
	var st dlqStats
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Queue["default"] != 4 || len(st.Queue) != 1 {
		t.Errorf("dlq stats: %+v (%v): want 4 in default", st, err)
	}
	r = cli(t, env, "", "dlq", "retry", "dl-00003")
	var rl retryLine
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &rl); err != nil || r.code != 0 || rl.Queue != "default" || shard.Logical(rl.Shard) != "default" || rl.Shard == "" {
		t.Errorf("dlq retry: %d %q %q: want a default shard", r.code, r.stdout, r.stderr)
	}
	bad := cli(t, map[string]string{"REDIS_URL": db.URL(), "CIOQ_QUEUE_SHARDS": "40"}, "", "dlq", "stats")
	if bad.code != 2 || !strings.Contains(bad.stderr, "CIOQ_QUEUE_SHARDS") {
		t.Errorf("CIOQ_QUEUE_SHARDS=40: exit %d, %q; want 2 naming the variable", bad.code, bad.stderr)
	}
}
