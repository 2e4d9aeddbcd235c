package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/netcfg"
)

// netLeasesBucket holds the device MAC learned for each static-IP member
// at each location (key: location id \x00 member id), so the gateway's
// dnsmasq hands that device its address by DHCP. A learned MAC outlives the
// accounting session it came from: the device asks for its lease on its
// next visit before any accounting arrives.
const netLeasesBucket = "net_static_leases"

// staticLease is one learned MAC.
type staticLease struct {
	Location string    `json:"location"`
	Member   string    `json:"member"`
	MAC      string    `json:"mac"` // aa:bb:cc:dd:ee:ff
	Seen     time.Time `json:"seen"`
}

func leaseKey(loc, member string) string { return loc + "\x00" + member }

// loadLeases reads the learned MACs into memory (at start).
func (a *App) loadLeases() error {
	m := map[string]staticLease{}
	err := a.store.View(func(tx *store.Tx) error {
		return tx.ForEachKV(netLeasesBucket, "", func(key string, raw []byte) error {
			var l staticLease
			if err := json.Unmarshal(raw, &l); err != nil {
				return fmt.Errorf("decode static lease %q: %w", key, err)
			}
			m[key] = l
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load static leases: %w", err)
	}
	a.net.leasesMu.Lock()
	a.net.leases = m
	a.net.leasesMu.Unlock()
	return nil
}

// learnMACs records the device MAC of live accounting sessions of members
// that hold a static address at the session's location, and asks the net
// loop to re-derive the leases when one is new or changed. Sessions of
// other members cost one map lookup.
func (a *App) learnMACs(ss []radius.Session) {
	pool := a.radius.pool
	if pool == nil {
		return
	}
	var learned []staticLease
	a.net.leasesMu.Lock()
	for _, s := range ss {
		if !s.Live() || s.MemberID == "" || s.Location == "" || s.MAC == "" {
			continue
		}
		if _, ok := pool.Lookup(s.Location, s.MemberID); !ok {
			continue
		}
		k := leaseKey(s.Location, s.MemberID)
		if old, ok := a.net.leases[k]; ok && old.MAC == s.MAC {
			continue
		}
		l := staticLease{Location: s.Location, Member: s.MemberID, MAC: s.MAC, Seen: a.now()}
		learned = append(learned, l)
	}
	a.net.leasesMu.Unlock()
	if len(learned) == 0 {
		return
	}
	err := a.store.Update(func(tx *store.Tx) error {
		for _, l := range learned {
			if err := tx.PutKV(netLeasesBucket, leaseKey(l.Location, l.Member), l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.log.Error("record static lease MACs", "err", err)
		return
	}
	a.net.leasesMu.Lock()
	if a.net.leases == nil {
		a.net.leases = map[string]staticLease{}
	}
	for _, l := range learned {
		a.net.leases[leaseKey(l.Location, l.Member)] = l
		a.log.Info("static lease: device learned", "member", l.Member, "location", l.Location, "mac", l.MAC)
	}
	a.net.leasesMu.Unlock()
	a.kickNet()
}

// staticLeases returns the static DHCP leases by location id: each learned
// MAC with its member's assigned address, while the member's decision at
// that location still grants a static IP.
func (a *App) staticLeases() (map[string][]netcfg.Lease, error) {
	pool := a.radius.pool
	if pool == nil {
		return nil, nil
	}
	a.net.leasesMu.Lock()
	ls := make([]staticLease, 0, len(a.net.leases))
	for _, l := range a.net.leases {
		ls = append(ls, l)
	}
	a.net.leasesMu.Unlock()
	slices.SortFunc(ls, func(x, y staticLease) int {
		return strings.Compare(leaseKey(x.Location, x.Member), leaseKey(y.Location, y.Member))
	})
	out := map[string][]netcfg.Lease{}
	now := a.now()
	err := a.store.View(func(tx *store.Tx) error {
		for _, l := range ls {
			ip, ok := pool.Lookup(l.Location, l.Member)
			if !ok {
				continue
			}
			mac, err := net.ParseMAC(l.MAC)
			if err != nil || len(mac) != 6 {
				continue
			}
			_, dec, err := a.res.DecideMemberAt(tx, l.Member, l.Location, now)
			if err != nil || !dec.Allowed || !dec.StaticIP {
				continue
			}
			if _, at := dec.At(l.Location); !at {
				continue
			}
			out[l.Location] = append(out[l.Location], netcfg.Lease{MAC: mac, IP: ip, Name: "member-" + l.Member})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static leases: %w", err)
	}
	return out, nil
}

// leaseLearner is the RADIUS session store that also learns static-IP
// members' device MACs from accounting (Calling-Station-Id).
type leaseLearner struct {
	radius.SessionStore
	a *App
}

func (l leaseLearner) SaveSessions(ctx context.Context, ss []radius.Session) error {
	if err := l.SessionStore.SaveSessions(ctx, ss); err != nil {
		return err
	}
	l.a.learnMACs(ss)
	return nil
}
