package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/worker/ratelimit"
)

// exampleRedis is a client on the database reserved for this package's
// examples on the test Redis (CIOQ_TEST_REDIS, default 127.0.0.1:6399,
// started by `make test`; testredis.RateLimitExampleDB), emptied first.
func exampleRedis() *redis.Client {
	addr := os.Getenv("CIOQ_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6399"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: 252})
	rdb.FlushDB(context.Background())
	return rdb
}

// A handler waits up to a second for a slot; further away, it reschedules
// its task instead of holding a worker. On a 429 it tells the limiter, and
// every process slows down.
func Example() {
	rdb := exampleRedis()
	defer rdb.Close()
	lim := ratelimit.New(rdb, ratelimit.Config{})
	ctx := context.Background()
	key := ratelimit.Key("default", ratelimit.APIApp)
	hourly := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}

	for i := 1; i <= 2; i++ {
		err := lim.Wait(ctx, key, hourly, time.Second)
		var tooLong *ratelimit.WaitTooLongError
		switch {
		case errors.As(err, &tooLong):
			// No slot consumed: the task goes back to Redis for later.
			fmt.Println(i, "reschedule in", tooLong.RetryAfter.Round(time.Minute))
		case err != nil:
			fmt.Println(i, "redis:", err)
		default:
			fmt.Println(i, "call Customer.io now")
		}
	}
	// ... and on a 429 from Customer.io:
	_ = lim.Throttled(ctx, key)
	// Output:
	// 1 call Customer.io now
	// 2 reschedule in 1h0m0s
}
