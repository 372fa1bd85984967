package testredis

import (
	"context"
	"testing"
)

func TestNewGivesDistinctEmptyDatabases(t *testing.T) {
	a, b := New(t), New(t)
	if a.Index == b.Index {
		t.Fatalf("two tests share database %d", a.Index)
	}
	ctx := context.Background()
	if err := a.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Client.Exists(ctx, "k").Result(); n != 0 {
		t.Fatalf("key written in db %d is visible in db %d", a.Index, b.Index)
	}
}
