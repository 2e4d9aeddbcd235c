package radius

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
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

// subjDir answers every username with its own copy of a realistic
// subject (its own member, membership and password hash, as a store read
// would decode them).
type subjDir struct{ allowed bool }

func (d subjDir) Lookup(_ context.Context, u string) (Subject, error) {
	s := hotDesk(u, "m-"+u+"-0123456789abcdef", "pw-"+u)
	s.Account.PropertyDigest = make([]byte, 32)
	s.Account.PasswordSource = "property"
	s.Decision.MembershipID = "ms-" + u + "-0123456789abcdef"
	s.Decision.Reasons = []string{"allowed: Hot Desk (hotdesk) via " + s.Decision.MembershipID + " at Alpha, open-ended",
		"membership " + s.Decision.MembershipID + " (Hot Desk, Alpha) active 2026-01-01 → open-ended: grants hotdesk", "best plan: Hot Desk (hotdesk)"}
	s.Decision.Locations = []model.LocationAccess{{LocationID: "loc-a", Name: "Alpha", Network: "alpha-secure", VLAN: 100}}
	if !d.allowed {
		s.Decision.Allowed, s.Decision.Deny = false, model.DenyEnded
		s.Decision.Reasons[0] = "denied (membership_ended): membership " + s.Decision.MembershipID + " ended 2026-01-31"
	}
	return s, nil
}

// TestCachingDirectoryCompact checks that a cached answer reads back as
// the RADIUS server needs it (the account's credentials and state, the
// whole decision but its explanation, a denial's verdict line), and that
// 50,000 cached members stay far below the daemon's 64 MiB target.
func TestCachingDirectoryCompact(t *testing.T) {
	ctx := WithLocation(context.Background(), "loc-a")
	for _, allowed := range []bool{true, false} {
		c := NewCachingDirectory(subjDir{allowed}, time.Hour, (&fakeClock{t: t0}).Now)
		want, _ := subjDir{allowed}.Lookup(ctx, "ada")
		_, _ = c.Lookup(ctx, "ada")
		got, err := c.Lookup(ctx, "ada") // from the cache
		if err != nil {
			t.Fatal(err)
		}
		w := want
		w.Account = model.Account{Username: w.Account.Username, MemberID: w.Account.MemberID, NTHash: w.Account.NTHash, Group: w.Account.Group}
		w.Decision.Reasons = nil
		if !allowed {
			w.Decision.Reasons = want.Decision.Reasons[:1]
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", w) {
			t.Errorf("allowed=%v: cached subject\n%+v\nwant\n%+v", allowed, got, w)
		}
	}

	c := NewCachingDirectory(subjDir{true}, time.Hour, (&fakeClock{t: t0}).Now)
	names := make([]string, 50000)
	for i := range names {
		names[i] = fmt.Sprintf("user%05d", i)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for _, u := range names {
		_, _ = c.Lookup(ctx, u)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	heap := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
	t.Logf("50,000 cached members: %.1f MiB of heap, %.0f bytes each", heap/(1<<20), heap/50000)
	if c.Len() != 50000 || heap > 24<<20 {
		t.Errorf("50,000 cached members: %d entries, %.1f MiB of heap, want 50000 and at most 24 MiB", c.Len(), heap/(1<<20))
	}
	runtime.KeepAlive(c)
}
