package sequence_test

import (
	"context"
	"testing"
	"time"

	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/internal/sequence"
	"github.com/cioq/cioq/internal/testredis"
)

const orderKey = "3f9c2a7d0b1e4c6a8d2f5b7e"

// TestStamp: numbers count up from 1, each recorded with the task holding
// it; Void leaves a number held by no task; a counter that is gone while
// the state lives restarts above every number the state knows.
func TestStamp(t *testing.T) {
	db := testredis.New(t)
	ctx := context.Background()
	rdb := db.Client
	for i, id := range []string{"t-1", "t-2", "t-3"} {
		n, err := sequence.Stamp(ctx, rdb, "", orderKey, "default", id)
		if err != nil || n != int64(i+1) {
			t.Fatalf("stamp %d = %d, %v", i+1, n, err)
		}
	}
	if err := sequence.Void(ctx, rdb, "", orderKey, 2); err != nil {
		t.Fatal(err)
	}
	state, err := rdb.HGetAll(ctx, keys.SeqState("", orderKey)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]sequence.Holder{"1": {Queue: "default", TaskID: "t-1"}, "2": {Void: true}, "3": {Queue: "default", TaskID: "t-3"}} {
		h, ok := sequence.ParseHolder(state[f])
		if !ok || h.Void != want.Void || h.Queue != want.Queue || h.TaskID != want.TaskID {
			t.Errorf("number %s is held by %+v (%v), want %+v", f, h, ok, want)
		}
		if !want.Void && time.Since(h.Stamped).Abs() > time.Minute {
			t.Errorf("number %s stamped at %v", f, h.Stamped)
		}
	}
	for _, k := range []string{keys.Seq("", orderKey), keys.SeqState("", orderKey)} {
		if ttl := rdb.TTL(ctx, k).Val(); ttl < sequence.TTL-time.Minute {
			t.Errorf("%s expires in %v", k, ttl)
		}
	}

	// The counter is lost; the state says 5 finished (and 1..3 are held).
	rdb.Del(ctx, keys.Seq("", orderKey))
	rdb.HSet(ctx, keys.SeqState("", orderKey), "done", 5)
	if n, err := sequence.Stamp(ctx, rdb, "", orderKey, "default", "t-6"); err != nil || n != 6 {
		t.Errorf("after a lost counter, done 5: stamp = %d, %v; want 6", n, err)
	}
	// Lost again, and a number above done is still held.
	rdb.Del(ctx, keys.Seq("", orderKey))
	if n, err := sequence.Stamp(ctx, rdb, "", orderKey, "default", "t-7"); err != nil || n != 7 {
		t.Errorf("after a lost counter, number 6 held: stamp = %d, %v; want 7", n, err)
	}
	// Void of a person whose state is gone writes nothing.
	if err := sequence.Void(ctx, rdb, "", "00aa", 1); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, keys.SeqState("", "00aa")).Val(); n != 0 {
		t.Error("Void created a state without expiry")
	}
}

func TestParseHolder(t *testing.T) {
	for s, ok := range map[string]bool{
		"":                          true, // void
		"default 1700000000123 t-1": true,
		"default 1700000000123 a b": true, // the id is the rest
		"default":                   false,
		"default x t-1":             false,
		" 1700000000123 t-1":        false,
		"default 1700000000123 ":    false,
	} {
		if _, got := sequence.ParseHolder(s); got != ok {
			t.Errorf("ParseHolder(%q) ok = %v, want %v", s, got, ok)
		}
	}
	h, _ := sequence.ParseHolder("bulk 1700000000123 a b")
	if h.Queue != "bulk" || h.TaskID != "a b" || h.Stamped.UnixMilli() != 1700000000123 {
		t.Errorf("ParseHolder = %+v", h)
	}
}
