package peer

import (
	"fmt"
	"sync"
	"time"
)

// HLC is a hybrid logical clock timestamp (Kulkarni et al., "Logical
// Physical Clocks"): wall-clock nanoseconds and a logical counter that
// orders events within one wall value.
type HLC struct {
	Wall    int64  `json:"w"`
	Logical uint32 `json:"l"`
}

// Less orders timestamps.
func (h HLC) Less(o HLC) bool {
	if h.Wall != o.Wall {
		return h.Wall < o.Wall
	}
	return h.Logical < o.Logical
}

func (h HLC) String() string { return fmt.Sprintf("%d.%d", h.Wall, h.Logical) }

// clock issues HLC timestamps from a physical clock.
type clock struct {
	mu   sync.Mutex
	now  func() time.Time
	last HLC
}

// Now returns a timestamp for a local event.
func (c *clock) Now() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.now().UnixNano()
	if pt > c.last.Wall {
		c.last = HLC{Wall: pt}
	} else {
		c.last.Logical++
	}
	return c.last
}

// Observe merges a received timestamp, so later local events stamp
// higher than anything seen.
func (c *clock) Observe(m HLC) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.now().UnixNano()
	l := max(c.last.Wall, m.Wall, pt)
	switch {
	case l == c.last.Wall && l == m.Wall:
		c.last.Logical = max(c.last.Logical, m.Logical) + 1
	case l == c.last.Wall:
		c.last.Logical++
	case l == m.Wall:
		c.last = HLC{Wall: l, Logical: m.Logical + 1}
	default:
		c.last = HLC{Wall: l}
	}
}
