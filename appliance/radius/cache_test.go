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

type finderDir struct {
	countingDir
	members map[string]string
	finds   int
}

func (d *finderDir) MemberOf(_ context.Context, u string) (string, error) {
	d.finds++
	m, ok := d.members[u]
	if !ok {
		return "", ErrUnknownUser
	}
	return m, nil
}

// Accounting asks only for a username's member: MemberOf answers from a
// cached decision, else from the inner Directory's MemberOf (no policy
// evaluation), cached and invalidated like decisions.
func TestCachingDirectoryMemberOf(t *testing.T) {
	t.Parallel()
	m := NewMapDirectory()
	m.Put(hotDesk("alice", "m-alice", "pw"))
	m.Put(hotDesk("bob", "m-bob", "pw"))
	inner := &finderDir{countingDir: countingDir{Directory: m}, members: map[string]string{"alice": "m-alice", "bob": "m-bob"}}
	clock := &fakeClock{t: t0}
	c := NewCachingDirectory(inner, 5*time.Second, clock.Now)
	ctx := context.Background()
	for range 3 {
		if got, err := c.MemberOf(ctx, "alice"); err != nil || got != "m-alice" {
			t.Fatalf("MemberOf(alice) = %q, %v", got, err)
		}
	}
	if _, err := c.MemberOf(ctx, "nobody"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("MemberOf(nobody): %v, want ErrUnknownUser", err)
	}
	_, _ = c.MemberOf(ctx, "nobody")
	if inner.finds != 2 || inner.n != 0 {
		t.Errorf("inner MemberOf %d, Lookup %d; want 2 (one per user) and 0", inner.finds, inner.n)
	}
	if _, err := c.Lookup(ctx, "bob"); err != nil { // a decision cached for bob
		t.Fatal(err)
	}
	if got, _ := c.MemberOf(ctx, "BOB"); got != "m-bob" || inner.finds != 2 {
		t.Errorf("MemberOf(BOB) = %q with %d inner finds: want m-bob from the cached decision", got, inner.finds)
	}
	inner.members["alice"] = "m-alice-2"
	c.InvalidateAll()
	if got, _ := c.MemberOf(ctx, "alice"); got != "m-alice-2" {
		t.Errorf("after InvalidateAll: MemberOf(alice) = %q, want m-alice-2", got)
	}
	inner.members["alice"] = "m-alice-3"
	clock.Add(6 * time.Second)
	if got, _ := c.MemberOf(ctx, "alice"); got != "m-alice-3" {
		t.Errorf("after expiry: MemberOf(alice) = %q, want m-alice-3", got)
	}
}
