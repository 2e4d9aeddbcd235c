package radius

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// MemSessionStore is a SessionStore in memory, for tests and for running
// without persistence.
type MemSessionStore struct {
	mu sync.Mutex
	m  map[string]Session
}

// NewMemSessionStore returns an empty in-memory session store.
func NewMemSessionStore() *MemSessionStore { return &MemSessionStore{m: map[string]Session{}} }

// LoadSessions implements SessionStore.
func (m *MemSessionStore) LoadSessions(context.Context) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Session
	for _, s := range m.m {
		if s.Live() {
			out = append(out, s)
		}
	}
	return out, nil
}

// SaveSessions implements SessionStore.
func (m *MemSessionStore) SaveSessions(_ context.Context, ss []Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range ss {
		if old, ok := m.m[s.Key]; ok && old.Seq >= s.Seq {
			continue
		}
		m.m[s.Key] = s
	}
	return nil
}

// PruneSessions implements SessionStore.
func (m *MemSessionStore) PruneSessions(_ context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, s := range m.m {
		if !s.Live() && s.Stopped.Before(before) {
			delete(m.m, k)
			n++
		}
	}
	return n, nil
}

// All returns every stored session, live and stopped.
func (m *MemSessionStore) All() []Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Session, 0, len(m.m))
	for _, s := range m.m {
		out = append(out, s)
	}
	return out
}

// ErrPoolExhausted is returned when a static pool has no free address.
var ErrPoolExhausted = errors.New("static ip pool exhausted")

// poolState is the assignment table both IPPool implementations keep in
// memory.
type poolState struct {
	mu    sync.RWMutex
	byKey map[string]netip.Addr // location \x00 member -> addr
	inUse map[string]string     // location \x00 addr -> member
}

func (p *poolState) init() {
	if p.byKey == nil {
		p.byKey = map[string]netip.Addr{}
		p.inUse = map[string]string{}
	}
}

func poolKey(loc, member string) string { return loc + "\x00" + member }

func (p *poolState) lookup(loc, member string) (netip.Addr, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	a, ok := p.byKey[poolKey(loc, member)]
	return a, ok
}

// pick chooses the lowest free host address of pool, skipping the network
// and broadcast addresses and the first host (the gateway). Caller holds mu.
func (p *poolState) pick(loc string, pool netip.Prefix) (netip.Addr, error) {
	pool = pool.Masked()
	a := pool.Addr().Next().Next()
	for ; pool.Contains(a); a = a.Next() {
		if !pool.Contains(a.Next()) {
			break // broadcast
		}
		if _, used := p.inUse[poolKey(loc, a.String())]; !used {
			return a, nil
		}
	}
	return netip.Addr{}, ErrPoolExhausted
}

func (p *poolState) set(loc, member string, a netip.Addr) {
	p.byKey[poolKey(loc, member)] = a
	p.inUse[poolKey(loc, a.String())] = member
}

func (p *poolState) unset(loc, member string) (netip.Addr, bool) {
	a, ok := p.byKey[poolKey(loc, member)]
	if ok {
		delete(p.byKey, poolKey(loc, member))
		delete(p.inUse, poolKey(loc, a.String()))
	}
	return a, ok
}

// MemIPPool is an IPPool in memory, for tests.
type MemIPPool struct{ st poolState }

// NewMemIPPool returns an empty in-memory pool.
func NewMemIPPool() *MemIPPool {
	p := &MemIPPool{}
	p.st.init()
	return p
}

// Lookup implements IPPool.
func (p *MemIPPool) Lookup(loc, member string) (netip.Addr, bool) { return p.st.lookup(loc, member) }

// Assign implements IPPool.
func (p *MemIPPool) Assign(_ context.Context, loc, member string, pool netip.Prefix) (netip.Addr, error) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	if a, ok := p.st.byKey[poolKey(loc, member)]; ok {
		return a, nil
	}
	a, err := p.st.pick(loc, pool)
	if err != nil {
		return a, err
	}
	p.st.set(loc, member, a)
	return a, nil
}

// Release implements IPPool.
func (p *MemIPPool) Release(_ context.Context, loc, member string) error {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.unset(loc, member)
	return nil
}

// MapDirectory is a Directory over a map, for tests and the load
// generator. Keys are lower-cased usernames.
type MapDirectory struct {
	mu      sync.RWMutex
	m       map[string]Subject
	devices map[string]mapDevice // MAC -> device and its member's username
}

type mapDevice struct {
	dev  Device
	user string
}

// NewMapDirectory returns an empty MapDirectory.
func NewMapDirectory() *MapDirectory {
	return &MapDirectory{m: map[string]Subject{}, devices: map[string]mapDevice{}}
}

// PutDevice registers a device (d.MAC as aa:bb:cc:dd:ee:ff) to the
// account username.
func (d *MapDirectory) PutDevice(username string, dev Device) {
	d.mu.Lock()
	d.devices[dev.MAC] = mapDevice{dev: dev, user: strings.ToLower(username)}
	d.mu.Unlock()
}

// LookupDevice implements DeviceDirectory.
func (d *MapDirectory) LookupDevice(_ context.Context, mac string) (Device, Subject, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	md, ok := d.devices[mac]
	if !ok {
		return Device{}, Subject{}, ErrUnknownDevice
	}
	s, ok := d.m[md.user]
	if !ok {
		return Device{}, Subject{}, ErrUnknownDevice
	}
	return md.dev, s, nil
}

// Put adds or replaces a subject under its account's username.
func (d *MapDirectory) Put(s Subject) {
	d.mu.Lock()
	d.m[strings.ToLower(s.Account.Username)] = s
	d.mu.Unlock()
}

// Delete removes a username.
func (d *MapDirectory) Delete(username string) {
	d.mu.Lock()
	delete(d.m, strings.ToLower(username))
	d.mu.Unlock()
}

// Lookup implements Directory.
func (d *MapDirectory) Lookup(_ context.Context, username string) (Subject, error) {
	d.mu.RLock()
	s, ok := d.m[strings.ToLower(username)]
	d.mu.RUnlock()
	if !ok {
		return Subject{}, ErrUnknownUser
	}
	return s, nil
}
