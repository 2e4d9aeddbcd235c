package peer

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// Live sessions across the fleet, for device limits (docs/fleet.md): each
// box originates a KindSession register when a device comes online, renews
// its lease while the session lasts (at most every sessionRenew) and marks
// it not live when it stops. Other boxes count the live, unexpired
// sessions of other origins as the member's devices.
const (
	sessionLease = 30 * time.Minute
	sessionRenew = 10 * time.Minute
)

// LocalSession is what a box reports of one of its RADIUS sessions.
type LocalSession struct {
	Key    string // unique at this box (NAS + Acct-Session-Id)
	Member string
	MAC    string
	Live   bool
}

type sessionMark struct {
	at   time.Time
	live bool
}

// RecordSessions originates the changes among ss that other boxes need:
// a new live session, a lease to renew, a stop. Outside a fleet it does
// nothing.
func (n *Node) RecordSessions(ss []LocalSession) error {
	k, rep := n.current()
	if k == nil || len(ss) == 0 {
		return nil
	}
	now := n.now()
	var todo []LocalSession
	n.mu.Lock()
	if n.sessMarks == nil {
		n.sessMarks = map[string]sessionMark{}
	}
	for _, s := range ss {
		if s.Member == "" || s.Key == "" {
			continue
		}
		m, seen := n.sessMarks[s.Key]
		switch {
		case s.Live && (!seen || !m.live || now.Sub(m.at) >= sessionRenew):
		case !s.Live && (!seen || m.live): // also a stop of a session from before a restart
		default:
			continue
		}
		todo = append(todo, s)
		if s.Live {
			n.sessMarks[s.Key] = sessionMark{at: now, live: true}
		} else {
			delete(n.sessMarks, s.Key)
		}
	}
	n.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	err := n.st.Update(func(tx *store.Tx) error {
		for _, s := range todo {
			v := SessionValue{Member: s.Member, MAC: s.MAC, Live: s.Live, Until: now.Add(sessionLease)}
			if _, err := rep.originate(tx, KindSession, k.id.BoxID+"/"+s.Key, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fleet: record %d sessions: %w", len(todo), err)
	}
	n.nudgeAll()
	return nil
}

// RemoteDevices returns the MACs of member's devices live at other boxes
// (unexpired leases; a session without a MAC counts as one device).
func (n *Node) RemoteDevices(member string) []string {
	k, _ := n.current()
	if k == nil {
		return nil
	}
	now := n.now()
	var out []string
	_ = n.st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketReg, KindSession+"/", func(key string, raw []byte) error {
			if strings.HasPrefix(key, KindSession+"/"+k.id.BoxID+"/") {
				return nil
			}
			var e Entry
			var v SessionValue
			if json.Unmarshal(raw, &e) != nil || json.Unmarshal(e.Value, &v) != nil {
				return nil
			}
			if v.Member == member && v.Live && now.Before(v.Until) {
				mac := v.MAC
				if mac == "" {
					mac = "?" + e.Key
				}
				out = append(out, mac)
			}
			return nil
		})
	})
	return out
}

// pruneSessions forgets session registers whose lease ended over an hour
// ago (an older entry arriving later has an even older lease, so it can
// not bring a device back). Compaction then drops their log entries.
func (n *Node) pruneSessions() {
	now := n.now()
	var old []string
	err := n.st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketReg, KindSession+"/", func(key string, raw []byte) error {
			var e Entry
			var v SessionValue
			if json.Unmarshal(raw, &e) == nil && json.Unmarshal(e.Value, &v) == nil && v.Until.Before(now.Add(-time.Hour)) {
				old = append(old, key)
			}
			return nil
		})
	})
	if err == nil && len(old) > 0 {
		err = n.st.Update(func(tx *store.Tx) error {
			for _, key := range old {
				if err := tx.DeleteKV(bucketReg, key); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		n.log.Error("fleet: prune expired sessions", "err", err)
	}
}
