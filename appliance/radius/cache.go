package radius

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// CachingDirectory fronts a slower Directory (a store read plus a policy
// evaluation per lookup) with a short-lived cache, so a burst of logins
// costs one evaluation per user. The owner calls Invalidate or
// InvalidateAll when the store changes (its change feed); the TTL bounds
// staleness if a notification is missed. Validity ends are re-checked on
// every request from Decision.ValidUntil, so a cached decision never
// extends access past its recorded end.
type CachingDirectory struct {
	inner Directory
	ttl   time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	m       map[string]cached // username NUL location -> subject
	members map[string]cached // username -> member only (MemberOf)
}

type cached struct {
	subj    Subject
	err     error
	expires time.Time
}

// NewCachingDirectory caches inner's answers (including ErrUnknownUser)
// for ttl. now defaults to time.Now.
func NewCachingDirectory(inner Directory, ttl time.Duration, now func() time.Time) *CachingDirectory {
	if now == nil {
		now = time.Now
	}
	return &CachingDirectory{inner: inner, ttl: ttl, now: now, m: map[string]cached{}, members: map[string]cached{}}
}

// Lookup implements Directory.
func (c *CachingDirectory) Lookup(ctx context.Context, username string) (Subject, error) {
	// Decisions depend on the NAS's location (the best membership there).
	key := strings.ToLower(username) + "\x00" + LocationFromContext(ctx)
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.subj, e.err
	}
	subj, err := c.inner.Lookup(ctx, username)
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		return subj, err // transient: not cached
	}
	c.mu.Lock()
	if len(c.m) > 100000 {
		clear(c.m)
	}
	c.m[key] = cached{subj: subj, err: err, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return subj, err
}

// MemberOf implements MemberFinder: a cached decision's member, else the
// inner Directory's MemberOf (cached too), else a full Lookup.
func (c *CachingDirectory) MemberOf(ctx context.Context, username string) (string, error) {
	user := strings.ToLower(username)
	key := user + "\x00" + LocationFromContext(ctx)
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.expires) {
		e, ok = c.members[user]
	}
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.subj.Account.MemberID, e.err
	}
	mf, isFinder := c.inner.(MemberFinder)
	if !isFinder {
		subj, err := c.Lookup(ctx, username)
		return subj.Account.MemberID, err
	}
	member, err := mf.MemberOf(ctx, username)
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		return "", err // transient: not cached
	}
	c.mu.Lock()
	if len(c.members) > 100000 {
		clear(c.members)
	}
	c.members[user] = cached{subj: Subject{Account: model.Account{MemberID: member}}, err: err, expires: now.Add(c.ttl)}
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
	prefix := strings.ToLower(username) + "\x00"
	c.mu.Lock()
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			delete(c.m, k)
		}
	}
	delete(c.members, strings.ToLower(username))
	c.mu.Unlock()
}

// InvalidateAll forgets everything.
func (c *CachingDirectory) InvalidateAll() {
	c.mu.Lock()
	clear(c.m)
	clear(c.members)
	c.mu.Unlock()
}
