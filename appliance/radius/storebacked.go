package radius

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Extension buckets in the store.
const (
	sessionsBucket = "radius_sessions" // session key -> JSON Session
	poolBucket     = "radius_ippool"   // location \x00 member -> JSON poolRecord
)

// StoreSessions is the SessionStore on the appliance database. Live
// sessions are stored; a stopped session is deleted (its stop is in the
// log). Writes go through Store.Batch, so a burst of accounting packets
// shares one commit and one fsync. The Seq of every key written is kept in
// memory, so ordering needs no read of the old record and a late Interim
// cannot resurrect a stopped session.
//
// With an interim cadence (SetInterimCadence), an Interim-Update that
// changes nothing but the counters and the time of the last update is
// written only when the stored copy's last update is at least that old:
// the counters of a session live in memory in between (a crash loses at
// most that much of them, and the stale-session check after a restart
// sees a last update at most that much older). Starts, Stops, and any
// change of member, user, MAC, address, location or Class are written
// before the answer, always.
type StoreSessions struct {
	st *store.Store

	mu      sync.Mutex
	seqs    map[string]seqMark
	cadence time.Duration
}

type seqMark struct {
	seq     uint64
	stopped time.Time
	written time.Time  // LastUpdate of the stored copy
	ident   sessionKey // what the stored copy says about who and where
}

// sessionKey is a session's durable identity: everything but the
// counters, the last update and the ordering.
type sessionKey struct {
	nas, acctSessionID, member, user, mac, location, class string
	nasAddr, ip                                            netip.Addr
	start                                                  time.Time
}

func identOf(x *Session) sessionKey {
	return sessionKey{nas: x.NAS, acctSessionID: x.AcctSessionID, member: x.MemberID, user: x.Username, mac: x.MAC,
		location: x.Location, class: x.Class, nasAddr: x.NASAddr, ip: x.IP, start: x.Start}
}

// SetInterimCadence sets how old the stored copy of a live session may
// grow before a counters-only Interim-Update is written; 0 writes every
// one. The appliance uses half the interim interval it asks NAS for.
func (s *StoreSessions) SetInterimCadence(d time.Duration) {
	s.mu.Lock()
	s.cadence = d
	s.mu.Unlock()
}

// NewStoreSessions returns a SessionStore backed by st.
func NewStoreSessions(st *store.Store) *StoreSessions {
	return &StoreSessions{st: st, seqs: map[string]seqMark{}}
}

// LoadSessions implements SessionStore.
func (s *StoreSessions) LoadSessions(ctx context.Context) ([]Session, error) {
	var out []Session
	err := s.st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(sessionsBucket, "", func(key string, raw []byte) error {
			var x Session
			if err := json.Unmarshal(raw, &x); err != nil {
				return fmt.Errorf("decode session %s: %w", key, err)
			}
			if x.Live() {
				out = append(out, x)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	s.mu.Lock()
	for i := range out {
		x := &out[i]
		s.seqs[x.Key] = seqMark{seq: x.Seq, written: x.LastUpdate, ident: identOf(x)}
	}
	s.mu.Unlock()
	return out, nil
}

// SaveSessions implements SessionStore: per key, the highest Seq wins.
func (s *StoreSessions) SaveSessions(ctx context.Context, ss []Session) error {
	if len(ss) == 0 {
		return nil
	}
	// Counters-only Interim-Updates within the cadence: remembered, not
	// written (their Seq is, so an older write cannot follow them).
	s.mu.Lock()
	var write []int
	for i := range ss {
		x := &ss[i]
		m, seen := s.seqs[x.Key]
		if s.cadence > 0 && seen && m.stopped.IsZero() && x.Live() && m.seq < x.Seq &&
			m.ident == identOf(x) && x.LastUpdate.Sub(m.written) < s.cadence {
			m.seq = x.Seq
			s.seqs[x.Key] = m
			continue
		}
		write = append(write, i)
	}
	s.mu.Unlock()
	if len(write) == 0 {
		return nil
	}
	if len(write) < len(ss) {
		kept := make([]Session, 0, len(write))
		for _, i := range write {
			kept = append(kept, ss[i])
		}
		ss = kept
	}
	raws := make([]json.RawMessage, len(ss))
	for i := range ss {
		raw, err := json.Marshal(&ss[i])
		if err != nil {
			return fmt.Errorf("save session %s: %w", ss[i].Key, err)
		}
		raws[i] = raw
	}
	err := s.st.Batch(func(tx *store.Tx) error {
		for i := range ss {
			x := &ss[i]
			s.mu.Lock()
			m, seen := s.seqs[x.Key]
			if seen && m.seq > x.Seq {
				s.mu.Unlock()
				continue // a newer state is already written
			}
			s.seqs[x.Key] = seqMark{seq: x.Seq, stopped: x.Stopped, written: x.LastUpdate, ident: identOf(x)}
			s.mu.Unlock()
			var err error
			if x.Live() {
				err = tx.PutKV(sessionsBucket, x.Key, raws[i])
			} else {
				err = tx.DeleteKV(sessionsBucket, x.Key)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %d sessions: %w", len(ss), err)
	}
	return nil
}

// PruneSessions implements SessionStore: stopped sessions are already
// deleted; this forgets their ordering marks.
func (s *StoreSessions) PruneSessions(ctx context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, m := range s.seqs {
		if !m.stopped.IsZero() && m.stopped.Before(before) {
			delete(s.seqs, k)
			n++
		}
	}
	return n, nil
}

// StorePool is the IPPool on the appliance database. Assignments are read
// once at start and kept in memory; only a new assignment writes.
type StorePool struct {
	st  *store.Store
	mem poolState
}

type poolRecord struct {
	Location string     `json:"location"`
	Member   string     `json:"member"`
	Addr     netip.Addr `json:"addr"`
}

// NewStorePool loads the assignments from st.
func NewStorePool(st *store.Store) (*StorePool, error) {
	p := &StorePool{st: st}
	p.mem.init()
	err := st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(poolBucket, "", func(key string, raw []byte) error {
			var r poolRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode pool entry %q: %w", key, err)
			}
			p.mem.set(r.Location, r.Member, r.Addr)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load static ip pool: %w", err)
	}
	return p, nil
}

// Lookup implements IPPool.
func (p *StorePool) Lookup(loc, member string) (netip.Addr, bool) { return p.mem.lookup(loc, member) }

// Assign implements IPPool.
func (p *StorePool) Assign(ctx context.Context, loc, member string, pool netip.Prefix) (netip.Addr, error) {
	p.mem.mu.Lock()
	defer p.mem.mu.Unlock()
	if a, ok := p.mem.byKey[poolKey(loc, member)]; ok {
		return a, nil
	}
	a, err := p.mem.pick(loc, pool)
	if err != nil {
		return a, fmt.Errorf("assign static ip at %s: %w", loc, err)
	}
	rec := poolRecord{Location: loc, Member: member, Addr: a}
	if err := p.st.Update(func(tx *store.Tx) error { return tx.PutKV(poolBucket, poolKey(loc, member), rec) }); err != nil {
		return netip.Addr{}, fmt.Errorf("assign static ip at %s: %w", loc, err)
	}
	p.mem.set(loc, member, a)
	return a, nil
}

// Release implements IPPool.
func (p *StorePool) Release(ctx context.Context, loc, member string) error {
	p.mem.mu.Lock()
	defer p.mem.mu.Unlock()
	if _, ok := p.mem.byKey[poolKey(loc, member)]; !ok {
		return nil
	}
	if err := p.st.Update(func(tx *store.Tx) error { return tx.DeleteKV(poolBucket, poolKey(loc, member)) }); err != nil {
		return fmt.Errorf("release static ip at %s: %w", loc, err)
	}
	p.mem.unset(loc, member)
	return nil
}

// StoreAuditor writes audit entries to the appliance database.
type StoreAuditor struct{ st *store.Store }

// NewStoreAuditor returns an Auditor backed by st.
func NewStoreAuditor(st *store.Store) *StoreAuditor { return &StoreAuditor{st: st} }

// Audit implements Auditor; concurrent entries share a commit.
func (a *StoreAuditor) Audit(ctx context.Context, e model.AuditEntry) error {
	if err := a.st.Batch(func(tx *store.Tx) error { return tx.Audit(e) }); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}
