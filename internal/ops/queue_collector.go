package ops

import (
	"context"
	"sort"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cioq/cioq/internal/shard"
)

// QueueStates are the values of cioq_queue_tasks' state label.
var QueueStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed", "aggregating"}

// deadLetterTimeout bounds the dead letter count callback on each scrape.
const deadLetterTimeout = 5 * time.Second

var (
	descQueueTasks = prometheus.NewDesc("cioq_queue_tasks",
		"Tasks in the queue by state (completed: kept for retention).", []string{"queue", "state"}, nil)
	descQueueLatency = prometheus.NewDesc("cioq_queue_latency_seconds",
		"Age of the oldest pending task in the queue.", []string{"queue"}, nil)
	descQueueProcessedToday = prometheus.NewDesc("cioq_queue_processed_today",
		"Tasks processed (succeeded or failed) today, UTC; resets daily.", []string{"queue"}, nil)
	descQueueFailedToday = prometheus.NewDesc("cioq_queue_failed_today",
		"Tasks whose processing failed today, UTC; resets daily.", []string{"queue"}, nil)
	descQueueProcessed = prometheus.NewDesc("cioq_queue_processed_total",
		"Tasks processed (succeeded or failed) since the queue was created, as stored in Redis.", []string{"queue"}, nil)
	descQueueFailed = prometheus.NewDesc("cioq_queue_failed_total",
		"Failed processing attempts since the queue was created, as stored in Redis.", []string{"queue"}, nil)
	descQueuePaused = prometheus.NewDesc("cioq_queue_paused",
		"1 when the queue is paused.", []string{"queue"}, nil)
	descQueueMemory = prometheus.NewDesc("cioq_queue_memory_bytes",
		"Approximate Redis memory used by the queue and its tasks (sampled).", []string{"queue"}, nil)
	descDeadLetters = prometheus.NewDesc("cioq_dead_letters",
		"Entries in cioq's dead letter store.", nil, nil)
	descQueueShards = prometheus.NewDesc("cioq_queue_shards",
		"asynq queues the logical queue is made of (CIOQ_QUEUE_SHARDS, and those of an earlier count still listed).", []string{"queue"}, nil)
	descCollectorUp = prometheus.NewDesc("cioq_queue_collector_up",
		"1 when the last scrape read the source (queues or dead_letters) from Redis, 0 when it failed.", []string{"source"}, nil)
)

// QueueCollector is a prometheus.Collector reporting the state of every
// logical queue, read from Redis on each scrape. A logical queue split
// into shards (CIOQ_QUEUE_SHARDS, internal/shard) is reported once, its
// shards summed (latency: the oldest of them; paused: 1 when any is),
// under the logical name:
//
//	cioq_queue_tasks{queue,state}          pending|active|scheduled|retry|archived|completed|aggregating
//	cioq_queue_latency_seconds{queue}      age of the oldest pending task
//	cioq_queue_processed_today{queue}      processed today (UTC, resets daily)
//	cioq_queue_failed_today{queue}         failed today (UTC, resets daily)
//	cioq_queue_processed_total{queue}      cumulative processed (counter)
//	cioq_queue_failed_total{queue}         cumulative failed (counter)
//	cioq_queue_paused{queue}               1 when paused
//	cioq_queue_memory_bytes{queue}         sampled Redis memory usage
//	cioq_queue_shards{queue}               asynq queues the logical queue is
//	cioq_dead_letters                      size of cioq's dead letter store
//	cioq_queue_collector_up{source}        queues|dead_letters: 1 read, 0 failed
//
// These numbers are global: they come from Redis, not from the process. Let
// exactly one kind of process register the collector (cmd registers it in
// `serve`, or on workers only behind a flag) or several replicas will report
// the same queues and sums over instances will double count; aggregate it
// with max, not sum, if it is scraped from more than one place. The
// per-process Metrics, on the other hand, belong on every replica.
type QueueCollector struct {
	inspector       *asynq.Inspector
	deadLetterCount func(context.Context) (int64, error)
}

// NewQueueCollector returns a collector reading queues through inspector
// (which the caller owns and closes). deadLetterCount, when not nil, reports
// the size of cioq's dead letter store; it gets a context that expires after
// 5 seconds.
func NewQueueCollector(inspector *asynq.Inspector, deadLetterCount func(ctx context.Context) (int64, error)) *QueueCollector {
	return &QueueCollector{inspector: inspector, deadLetterCount: deadLetterCount}
}

// Describe sends the descriptors of every metric the collector reports.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueueTasks, descQueueLatency, descQueueProcessedToday,
		descQueueFailedToday, descQueueProcessed, descQueueFailed, descQueuePaused, descQueueMemory,
		descDeadLetters, descQueueShards, descCollectorUp} {
		ch <- d
	}
}

// Collect reads the queues and the dead letter count from Redis. A source
// that cannot be read is reported by cioq_queue_collector_up=0 and its
// metrics are left out; the scrape itself does not fail.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	up := 1.0
	infos, err := c.queueInfos()
	if err != nil {
		up = 0
	}
	for _, q := range LogicalQueues(infos) {
		counts := []int{q.Pending, q.Active, q.Scheduled, q.Retry, q.Archived, q.Completed, q.Aggregating}
		for i, state := range QueueStates {
			gauge(descQueueTasks, float64(counts[i]), q.Queue, state)
		}
		gauge(descQueueLatency, q.Latency.Seconds(), q.Queue)
		gauge(descQueueProcessedToday, float64(q.Processed), q.Queue)
		gauge(descQueueFailedToday, float64(q.Failed), q.Queue)
		ch <- prometheus.MustNewConstMetric(descQueueProcessed, prometheus.CounterValue, float64(q.ProcessedTotal), q.Queue)
		ch <- prometheus.MustNewConstMetric(descQueueFailed, prometheus.CounterValue, float64(q.FailedTotal), q.Queue)
		gauge(descQueuePaused, boolFloat(q.Paused), q.Queue)
		gauge(descQueueMemory, float64(q.MemoryUsage), q.Queue)
		gauge(descQueueShards, float64(q.Shards), q.Queue)
	}
	gauge(descCollectorUp, up, "queues")

	if c.deadLetterCount != nil {
		ctx, cancel := context.WithTimeout(context.Background(), deadLetterTimeout)
		defer cancel()
		n, err := c.deadLetterCount(ctx)
		if err != nil {
			gauge(descCollectorUp, 0, "dead_letters")
		} else {
			gauge(descDeadLetters, float64(n))
			gauge(descCollectorUp, 1, "dead_letters")
		}
	}
}

// queueInfos reads every queue; on an error it returns nothing, so a scrape
// never reports half the queues.
func (c *QueueCollector) queueInfos() ([]*asynq.QueueInfo, error) {
	names, err := c.inspector.Queues()
	if err != nil {
		return nil, err
	}
	infos := make([]*asynq.QueueInfo, 0, len(names))
	for _, name := range names {
		info, err := c.inspector.GetQueueInfo(name)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// LogicalQueue is the state of one logical queue: the asynq queues it is
// made of summed (Queue is the logical name), Latency the oldest pending
// task's age among them, Paused set when any is paused; Shards counts
// them.
type LogicalQueue struct {
	asynq.QueueInfo
	Shards int
}

// LogicalQueues sums the asynq queues of each logical queue
// (shard.Logical), sorted by logical name.
func LogicalQueues(infos []*asynq.QueueInfo) []*LogicalQueue {
	by := map[string]*LogicalQueue{}
	var names []string
	for _, q := range infos {
		name := shard.Logical(q.Queue)
		l := by[name]
		if l == nil {
			l = &LogicalQueue{QueueInfo: asynq.QueueInfo{Queue: name}}
			by[name] = l
			names = append(names, name)
		}
		l.Shards++
		l.MemoryUsage += q.MemoryUsage
		l.Latency = max(l.Latency, q.Latency)
		l.Size += q.Size
		l.Groups += q.Groups
		l.Pending += q.Pending
		l.Active += q.Active
		l.Scheduled += q.Scheduled
		l.Retry += q.Retry
		l.Archived += q.Archived
		l.Completed += q.Completed
		l.Aggregating += q.Aggregating
		l.Processed += q.Processed
		l.Failed += q.Failed
		l.ProcessedTotal += q.ProcessedTotal
		l.FailedTotal += q.FailedTotal
		l.Paused = l.Paused || q.Paused
		if q.Timestamp.After(l.Timestamp) {
			l.Timestamp = q.Timestamp
		}
	}
	sort.Strings(names)
	out := make([]*LogicalQueue, len(names))
	for i, n := range names {
		out[i] = by[n]
	}
	return out
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
