package eap

import (
	"sync"
	"time"
)

// sessionCache remembers, per TLS session ticket, who authenticated inside the tunnel, so that a resumed
// PEAP or TTLS session can skip the inner authentication (the member's access is still re-checked).
// Tickets carry a random id (SessionState.Extra); the cache is bounded in size and age.
type sessionCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	m     map[string]sessionEntry
	order []string // insertion order, for eviction
}

type sessionEntry struct {
	identity string
	method   string // Result.Method of the original authentication
	created  time.Time
}

func newSessionCache(max int, ttl time.Duration, now func() time.Time) *sessionCache {
	return &sessionCache{max: max, ttl: ttl, now: now, m: make(map[string]sessionEntry)}
}

func (c *sessionCache) put(id []byte, identity, method string) {
	if len(id) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.m) >= c.max && len(c.order) > 0 {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	if len(c.order) > 2*c.max { // compact after deletions left stale keys behind
		c.order = append([]string(nil), c.order...)
	}
	c.m[string(id)] = sessionEntry{identity: identity, method: method, created: c.now()}
	c.order = append(c.order, string(id))
}

func (c *sessionCache) get(id []byte) (sessionEntry, bool) {
	if len(id) == 0 {
		return sessionEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[string(id)]
	if !ok || c.now().Sub(e.created) > c.ttl {
		return sessionEntry{}, false
	}
	return e, true
}
