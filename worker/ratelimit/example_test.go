package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/worker/ratelimit"
)

// A handler waits up to a second for a slot; further away, it reschedules
// its task instead of holding a worker. On a 429 it tells the limiter, and
// every process slows down.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	lim := ratelimit.New(rdb, ratelimit.Config{})
	ctx := context.Background()
	key := ratelimit.Key("default", ratelimit.APIApp)

	err := lim.Wait(ctx, key, ratelimit.DefaultApp, time.Second)
	var tooLong *ratelimit.WaitTooLongError
	switch {
	case errors.As(err, &tooLong):
		fmt.Println("reschedule in", tooLong.RetryAfter) // no slot consumed
		return
	case err != nil:
		fmt.Println("redis:", err)
		return
	}
	// ... call Customer.io; on a 429:
	_ = lim.Throttled(ctx, key)
}
