package radius

import (
	"context"
	"errors"
	"testing"
	"time"
)

type countingDir struct {
	Directory
	n   int
	err error
}

func (d *countingDir) Lookup(ctx context.Context, u string) (Subject, error) {
	d.n++
	if d.err != nil {
		return Subject{}, d.err
	}
	return d.Directory.Lookup(ctx, u)
}

func TestCachingDirectory(t *testing.T) {
	t.Parallel()
	m := NewMapDirectory()
	m.Put(hotDesk("alice", "m-alice", "pw"))
	inner := &countingDir{Directory: m}
	clock := &fakeClock{t: t0}
	c := NewCachingDirectory(inner, 5*time.Second, clock.Now)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Lookup(ctx, "Alice"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Lookup(ctx, "nobody"); !errors.Is(err, ErrUnknownUser) {
		t.Fatal(err)
	}
	_, _ = c.Lookup(ctx, "nobody")
	if inner.n != 2 {
		t.Errorf("inner lookups = %d, want 2 (one per user)", inner.n)
	}
	c.Invalidate("ALICE")
	_, _ = c.Lookup(ctx, "alice")
	clock.Add(6 * time.Second)
	_, _ = c.Lookup(ctx, "nobody")
	if inner.n != 4 {
		t.Errorf("inner lookups = %d, want 4 after invalidate and expiry", inner.n)
	}
	inner.err = errors.New("disk on fire")
	c.InvalidateAll()
	if _, err := c.Lookup(ctx, "alice"); err == nil {
		t.Error("transient error swallowed")
	}
	inner.err = nil
	if _, err := c.Lookup(ctx, "alice"); err != nil {
		t.Errorf("transient error was cached: %v", err)
	}
}
