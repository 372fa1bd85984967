package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/internal/testredis"
)

// BenchmarkE2E delivers 5,000 cio:track tasks per iteration (cioq-multi:
// 200,000 operations in cio:batch tasks), at
// concurrency 50, through `cioq bench`'s e2e contenders, one at a time, so
// a profile shows one contender's cost only:
//
//	go test -run X -bench 'BenchmarkE2E/cioq-unbatched' -benchtime 4x -cpuprofile cpu.prof ./cmd/cioq/internal/bench
//
// Each iteration's enqueue (fill) is in the profile too, under fill. Its
// ops/s is a rate on a shared machine: compare contenders within a run
// (`cioq bench --only e2e` does, interleaved).
func BenchmarkE2E(b *testing.B) {
	db := testredis.New(b)
	conn, err := redisconf.Parse(db.URL())
	if err != nil {
		b.Fatal(err)
	}
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1, MaxRecorded: -1, MaxRecordedBody: -1})
	hs := httptest.NewServer(sb)
	b.Cleanup(func() { hs.Close(); sb.Close() })
	e := &env{opts: Options{RedisURL: db.URL()}.withDefaults(), rdb: db.Client, conn: conn, sb: sb, hs: hs,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const n, conc = 5000, 50
	for _, c := range []struct {
		name string
		run  func(ctx context.Context) (e2eRun, error)
	}{
		{"cioq-unbatched", func(ctx context.Context) (e2eRun, error) { return runCioq(ctx, e, n, conc, mkTrack, nil) }},
		{"handwritten", func(ctx context.Context) (e2eRun, error) { return runNaive(ctx, e, n, conc, mkTrack) }},
		// 40× the operations, in cio:batch tasks of 500 (as `cioq bench
		// --only multi` without a rate limit).
		{"cioq-multi", func(ctx context.Context) (e2eRun, error) { return runMulti(ctx, e, 40*n, conc, mkTrack, nil) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var rate float64
			for b.Loop() {
				r, err := c.run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				rate += r.rate
			}
			b.ReportMetric(rate/float64(b.N), "ops/s")
		})
	}
}
