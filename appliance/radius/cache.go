package radius

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// CachingDirectory fronts a slower Directory (a store read plus a policy
// evaluation per lookup) with a cache, so a login costs no evaluation
// while nothing changed. An answer is kept until the earliest of:
//   - the instant its decision stops holding by itself (Subject.Holds:
//     a membership starting or ending, a day pass running out, a local
//     midnight), as the inner Directory computed it;
//   - the TTL, a safety cap (and the whole lifetime of answers without
//     Holds: unknown users, other Directories);
//   - a change of the data behind it: the owner's version function
//     (SetVersion, the store's change count) is compared on every hit,
//     and Invalidate/InvalidateAll drop entries (the change feed, a
//     reload). A lookup that an invalidation overtook is not kept.
//
// Validity ends are also re-checked on every request from
// Decision.ValidUntil, so a cached decision never extends access past its
// recorded end.
type CachingDirectory struct {
	inner Directory
	ttl   time.Duration
	now   func() time.Time

	version func() uint64 // nil: none
	gen     atomic.Uint64 // bumped by every invalidation

	mu      sync.RWMutex
	m       map[cacheKey]cached // username, location -> subject
	members map[string]cached   // username -> member only (MemberOf)
}

type cacheKey struct{ user, loc string }

type cached struct {
	subj          Subject
	err           error
	from, expires time.Time // valid for from <= now < expires
	ver           uint64    // the version it was read at
}

// maxCached bounds each map: past it, the map starts over (a few hundred
// bytes an entry, so 100,000 entries are some tens of MB at most).
const maxCached = 100000

// NewCachingDirectory caches inner's answers (including ErrUnknownUser)
// for at most ttl. now defaults to time.Now.
func NewCachingDirectory(inner Directory, ttl time.Duration, now func() time.Time) *CachingDirectory {
	if now == nil {
		now = time.Now
	}
	return &CachingDirectory{inner: inner, ttl: ttl, now: now, m: map[cacheKey]cached{}, members: map[string]cached{}}
}

// SetVersion makes every hit compare version() with its value when the
// entry was read: an entry from another version is looked up again. Set
// it before use. The appliance passes the store's change count, so a
// change is seen by the very next lookup, not only once the change feed
// has delivered it.
func (c *CachingDirectory) SetVersion(version func() uint64) { c.version = version }

func (c *CachingDirectory) ver() uint64 {
	if c.version == nil {
		return 0
	}
	return c.version()
}

// fresh reports whether e answers at now.
func (c *CachingDirectory) fresh(e cached, now time.Time) bool {
	return !now.Before(e.from) && now.Before(e.expires) && e.ver == c.ver()
}

// Lookup implements Directory.
func (c *CachingDirectory) Lookup(ctx context.Context, username string) (Subject, error) {
	// Decisions depend on the NAS's location (the best membership there).
	key := cacheKey{strings.ToLower(username), LocationFromContext(ctx)}
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if ok && c.fresh(e, now) {
		return e.subj, e.err
	}
	gen, ver := c.gen.Load(), c.ver()
	subj, err := c.inner.Lookup(ctx, username)
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		return subj, err // transient: not cached
	}
	expires := now.Add(c.ttl)
	if !subj.Holds.IsZero() && subj.Holds.Before(expires) {
		expires = subj.Holds
	}
	if !expires.After(now) {
		return subj, err // changes continuously: not cached
	}
	c.mu.Lock()
	if c.gen.Load() == gen { // no invalidation overtook the lookup
		if len(c.m) >= maxCached {
			clear(c.m)
		}
		c.m[key] = cached{subj: subj, err: err, from: now, expires: expires, ver: ver}
	}
	c.mu.Unlock()
	return subj, err
}

// MemberOf implements MemberFinder: a cached decision's member, else the
// inner Directory's MemberOf (cached too), else a full Lookup.
func (c *CachingDirectory) MemberOf(ctx context.Context, username string) (string, error) {
	user := strings.ToLower(username)
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[cacheKey{user, LocationFromContext(ctx)}]
	if !ok || !c.fresh(e, now) {
		e, ok = c.members[user]
	}
	c.mu.RUnlock()
	if ok && c.fresh(e, now) {
		return e.subj.Account.MemberID, e.err
	}
	mf, isFinder := c.inner.(MemberFinder)
	if !isFinder {
		subj, err := c.Lookup(ctx, username)
		return subj.Account.MemberID, err
	}
	gen, ver := c.gen.Load(), c.ver()
	member, err := mf.MemberOf(ctx, username)
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		return "", err // transient: not cached
	}
	c.mu.Lock()
	if c.gen.Load() == gen {
		if len(c.members) >= maxCached {
			clear(c.members)
		}
		c.members[user] = cached{subj: Subject{Account: model.Account{MemberID: member}}, err: err, from: now, expires: now.Add(c.ttl), ver: ver}
	}
	c.mu.Unlock()
	return member, err
}

// LookupDevice implements DeviceDirectory when the inner Directory does;
// device lookups are not cached (MAC authentication happens once per
// association, not per EAP round).
func (c *CachingDirectory) LookupDevice(ctx context.Context, mac string) (Device, Subject, error) {
	dd, ok := c.inner.(DeviceDirectory)
	if !ok {
		return Device{}, Subject{}, ErrUnknownDevice
	}
	return dd.LookupDevice(ctx, mac)
}

// Invalidate forgets one username (at every location).
func (c *CachingDirectory) Invalidate(username string) {
	user := strings.ToLower(username)
	c.mu.Lock()
	c.gen.Add(1)
	for k := range c.m {
		if k.user == user {
			delete(c.m, k)
		}
	}
	delete(c.members, user)
	c.mu.Unlock()
}

// InvalidateAll forgets everything.
func (c *CachingDirectory) InvalidateAll() {
	c.mu.Lock()
	c.gen.Add(1)
	clear(c.m)
	clear(c.members)
	c.mu.Unlock()
}

// Len returns how many answers are cached (decisions and members).
func (c *CachingDirectory) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m) + len(c.members)
}
