package radius

import (
	"context"
	"errors"
	"strconv"
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

	mu       sync.RWMutex
	m        map[cacheKey]cached // username, location -> subject
	members  map[string]cached   // username -> member only (MemberOf)
	shapes   map[string]*model.Decision
	shapeKey []byte
}

type cacheKey struct{ user, loc string }

// cached is one answer in compact form: what the RADIUS server reads of
// the account, the member's own part of the decision, and a pointer to
// the part members on the same plan at the same place share (interned).
// A decision's explanation is kept only for a denial (its first line,
// the verdict); with 50,000 members cached that is a few hundred bytes
// each instead of a kilobyte.
type cached struct {
	shape          *model.Decision // shared: no MembershipID, ValidUntil, SessionTimeout or Reasons
	membershipID   string
	validUntil     time.Time
	sessionTimeout time.Duration
	reasons        []string // the verdict of a denial; nil when allowed
	user, member   string
	group, reason  string // the account's group and disabled reason
	nt             []byte
	disabled       bool
	err            error
	from, expires  int64  // valid for from <= now < expires (Unix ns)
	ver            uint64 // the version it was read at
}

// subject rebuilds the Subject (no allocation).
func (e *cached) subject() Subject {
	var s Subject
	if e.shape != nil {
		s.Decision = *e.shape
	}
	s.Decision.MembershipID, s.Decision.ValidUntil, s.Decision.SessionTimeout, s.Decision.Reasons =
		e.membershipID, e.validUntil, e.sessionTimeout, e.reasons
	s.Account = model.Account{Username: e.user, MemberID: e.member, Group: e.group, DisabledReason: e.reason, NTHash: e.nt, Disabled: e.disabled}
	return s
}

// compact makes the cached form of subj (under c.mu).
func (c *CachingDirectory) compact(subj Subject, err error) cached {
	d := subj.Decision
	e := cached{membershipID: d.MembershipID, validUntil: d.ValidUntil, sessionTimeout: d.SessionTimeout,
		user: subj.Account.Username, member: subj.Account.MemberID, group: subj.Account.Group,
		reason: subj.Account.DisabledReason, nt: subj.Account.NTHash, disabled: subj.Account.Disabled, err: err}
	if !d.Allowed && len(d.Reasons) > 0 {
		e.reasons = []string{d.Reasons[0]}
	}
	d.MembershipID, d.ValidUntil, d.SessionTimeout, d.Reasons = "", time.Time{}, 0, nil
	e.shape = c.intern(d)
	return e
}

// intern returns the shared copy of shape (under c.mu).
func (c *CachingDirectory) intern(d model.Decision) *model.Decision {
	b := c.shapeKey[:0]
	b = strconv.AppendBool(b, d.Allowed)
	for _, s := range []string{d.Deny, d.PlanID, d.PlanName, d.Group} {
		b = append(strconv.AppendInt(b, int64(len(s)), 10), ':')
		b = append(b, s...)
	}
	b = strconv.AppendInt(b, int64(d.Bandwidth.DownKbps), 10)
	b = strconv.AppendInt(append(b, '/'), int64(d.Bandwidth.UpKbps), 10)
	b = strconv.AppendBool(append(b, ' '), d.StaticIP)
	b = strconv.AppendInt(append(b, ' '), int64(d.MaxDevices), 10)
	for _, l := range d.Locations {
		for _, s := range []string{l.LocationID, l.Name, l.Network} {
			b = append(strconv.AppendInt(b, int64(len(s)), 10), ':')
			b = append(b, s...)
		}
		b = strconv.AppendInt(b, int64(l.VLAN), 10)
	}
	c.shapeKey = b
	if p, ok := c.shapes[string(b)]; ok {
		return p
	}
	if len(c.shapes) >= maxShapes {
		clear(c.shapes) // entries keep theirs
	}
	p := &d
	c.shapes[string(b)] = p
	return p
}

// The conversions below stop compiling when model.Decision,
// LocationAccess or Bandwidth gains a field: intern's key must then name
// it too, or two different decisions would share one interned shape.
type (
	decisionFields struct {
		Allowed        bool
		Deny           string
		Reasons        []string
		MembershipID   string
		PlanID         string
		PlanName       string
		Group          string
		Bandwidth      model.Bandwidth
		Locations      []model.LocationAccess
		ValidUntil     time.Time
		SessionTimeout time.Duration
		StaticIP       bool
		MaxDevices     int
	}
	locationFields struct {
		LocationID, Name, Network string
		VLAN                      int
	}
	bandwidthFields struct{ DownKbps, UpKbps int }
)

var (
	_ = decisionFields(model.Decision{})
	_ = locationFields(model.LocationAccess{})
	_ = bandwidthFields(model.Bandwidth{})
)

// maxCached bounds the cache: past it, the cache starts over (some 400
// bytes an entry). maxShapes bounds the interned decision shapes (a few
// per plan and location).
const (
	maxCached = 100000
	maxShapes = 4096
)

// NewCachingDirectory caches inner's answers (including ErrUnknownUser)
// for at most ttl. now defaults to time.Now.
func NewCachingDirectory(inner Directory, ttl time.Duration, now func() time.Time) *CachingDirectory {
	if now == nil {
		now = time.Now
	}
	return &CachingDirectory{inner: inner, ttl: ttl, now: now, m: map[cacheKey]cached{}, members: map[string]cached{},
		shapes: map[string]*model.Decision{}}
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
func (c *CachingDirectory) fresh(e *cached, now int64) bool {
	return e.from <= now && now < e.expires && e.ver == c.ver()
}

// Lookup implements Directory.
func (c *CachingDirectory) Lookup(ctx context.Context, username string) (Subject, error) {
	// Decisions depend on the NAS's location (the best membership there).
	key := cacheKey{strings.ToLower(username), LocationFromContext(ctx)}
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if ok && c.fresh(&e, now.UnixNano()) {
		return e.subject(), e.err
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
		e := c.compact(subj, err)
		e.from, e.expires, e.ver = now.UnixNano(), expires.UnixNano(), ver
		c.m[key] = e
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
	if !ok || !c.fresh(&e, now.UnixNano()) {
		e, ok = c.members[user]
	}
	c.mu.RUnlock()
	if ok && c.fresh(&e, now.UnixNano()) {
		return e.member, e.err
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
		c.members[user] = cached{member: member, err: err, from: now.UnixNano(), expires: now.Add(c.ttl).UnixNano(), ver: ver}
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
	clear(c.shapes)
	c.mu.Unlock()
}

// Len returns how many answers are cached (decisions and members).
func (c *CachingDirectory) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m) + len(c.members)
}
