package radius

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// sessionIndex is the in-memory view of live sessions: auth checks the
// device limit here and never scans the store.
type sessionIndex struct {
	mu       sync.RWMutex
	live     map[string]*Session            // key -> session
	byMember map[string]map[string]struct{} // member -> keys
	seq      uint64
}

func newSessionIndex() *sessionIndex {
	return &sessionIndex{live: map[string]*Session{}, byMember: map[string]map[string]struct{}{}}
}

func (x *sessionIndex) load(ss []Session) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range ss {
		if !s.Live() {
			continue
		}
		c := s
		x.put(&c)
		x.seq = max(x.seq, s.Seq)
	}
}

// nextSeq orders writes; it follows the clock so it survives restarts.
func (x *sessionIndex) nextSeq(now time.Time) uint64 {
	x.seq = max(x.seq+1, uint64(now.UnixNano()))
	return x.seq
}

func (x *sessionIndex) put(s *Session) {
	x.live[s.Key] = s
	if s.MemberID != "" {
		m := x.byMember[s.MemberID]
		if m == nil {
			m = map[string]struct{}{}
			x.byMember[s.MemberID] = m
		}
		m[s.Key] = struct{}{}
	}
}

func (x *sessionIndex) remove(s *Session) {
	delete(x.live, s.Key)
	if m := x.byMember[s.MemberID]; m != nil {
		delete(m, s.Key)
		if len(m) == 0 {
			delete(x.byMember, s.MemberID)
		}
	}
}

// admits reports whether the member may bring mac online: it is already
// online (roaming between access points is the same device), or the member
// has fewer than max distinct devices online.
// admits reports whether device mac may join member's devices under
// limit; remote are the member's device MACs live at other boxes of the
// fleet (each counts once, and a device already counted is admitted).
func (x *sessionIndex) admits(member, mac string, limit int, remote []string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	keys := x.byMember[member]
	if len(keys)+len(remote) < limit {
		return true
	}
	var seen [16]string
	macs := seen[:0]
	for _, m := range remote {
		if m == mac {
			return true
		}
		if !slices.Contains(macs, m) {
			macs = append(macs, m)
		}
	}
	for k := range keys {
		m := x.live[k].MAC
		if m != "" && m == mac {
			return true
		}
		if m == "" {
			m = "?" + k // unknown MAC: count each session as a device
		}
		if !slices.Contains(macs, m) {
			macs = append(macs, m)
		}
	}
	return len(macs) < limit
}

func (x *sessionIndex) devices(member string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var macs []string
	for k := range x.byMember[member] {
		if m := x.live[k].MAC; m != "" && !slices.Contains(macs, m) {
			macs = append(macs, m)
		}
	}
	slices.Sort(macs)
	return macs
}

func (x *sessionIndex) memberSessions(member string) []Session {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Session
	for k := range x.byMember[member] {
		out = append(out, *x.live[k])
	}
	return out
}

// Sessions lists live sessions, those of one member when member is not
// empty, oldest first.
func (s *Server) Sessions(member string) []Session {
	var out []Session
	if member != "" {
		out = s.idx.memberSessions(member)
	} else {
		s.idx.mu.RLock()
		for _, v := range s.idx.live {
			out = append(out, *v)
		}
		s.idx.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// Termination causes we set (RFC 2866 Acct-Terminate-Cause names).
const (
	causeNASReboot = "NAS-Reboot"
	causeStale     = "Stale"
	causeAdmin     = "Admin-Reset"
)

var termCauses = map[uint32]string{
	1: "User-Request", 2: "Lost-Carrier", 3: "Lost-Service", 4: "Idle-Timeout", 5: "Session-Timeout",
	6: "Admin-Reset", 7: "Admin-Reboot", 8: "Port-Error", 9: "NAS-Error", 10: "NAS-Request",
	11: "NAS-Reboot", 12: "Port-Unneeded", 13: "Port-Preempted", 14: "Port-Suspended",
	15: "Service-Unavailable", 16: "Callback", 17: "User-Error", 18: "Host-Request",
}

// handleAcct answers one packet from the accounting socket after the
// session change is durable; nil means no reply.
func (s *Server) handleAcct(ctx context.Context, w *worker, b []byte, src netip.AddrPort) (out []byte) {
	defer s.finishPacket(src, &out)
	s.stats.AcctRequests.Add(1)
	r := &w.req
	if err := r.parse(b); err != nil {
		s.dropf(DropMalformed, src, "", "malformed packet dropped", "err", err)
		return nil
	}
	s.stats.requests[PortAcct][r.code].Add(1)
	if r.code != codeAcctRequest && r.code != codeStatusServer {
		s.dropf(DropUnexpectedCode, src, "", "unexpected packet code on accounting port dropped", "code", r.code)
		return nil
	}
	nas := s.clients.Load().match(src.Addr(), r)
	if nas == nil {
		s.unknownSource(src)
		return nil
	}
	if r.code == codeStatusServer {
		return s.acctStatusServer(w, nas, r, src)
	}
	if !w.c.validAcctAuthenticator(r.raw, nas.Secret) {
		s.dropf(DropBadAuthenticator, src, nas.Name, "accounting-request with invalid authenticator dropped (wrong shared secret?)")
		return nil
	}
	if r.maOff >= 0 && !w.c.validMA(r, nas.Secret) {
		s.dropf(DropBadAuthenticator, src, nas.Name, "accounting-request with invalid message-authenticator dropped")
		return nil
	}
	now := s.now()
	key := dedupKey{src: src, id: r.id}
	auth := r.authenticator()
	out, st := s.acctDup.begin(key, auth, now, w.out)
	defer func() {
		if r := recover(); r != nil {
			s.acctDup.finish(key, auth, nil, now)
			panic(r)
		}
	}()
	switch st {
	case dedupReplay:
		s.stats.Duplicates.Add(1)
		return out
	case dedupInFlight:
		s.stats.Duplicates.Add(1)
		return nil
	}
	if err := s.account(ctx, nas, r, src, now); err != nil {
		// No response: the NAS retransmits and we try again.
		s.acctDup.finish(key, auth, nil, now)
		s.log.Error("accounting not recorded", "nas", nas.Name, "src", src.String(), "err", err)
		s.stats.drop(DropError)
		return nil
	}
	w.w.reset(w.out, codeAcctResponse, r.id, auth)
	for i := range min(r.nProxy, maxProxyStates) {
		w.w.attr(attrProxyState, r.proxyStates[i])
	}
	out = w.w.sign(w.c, nas.Secret, signAcctReply)
	s.acctDup.finish(key, auth, out, now)
	s.stats.AcctResponses.Add(1)
	return out
}

// acctStatusServer answers a Status-Server on the accounting port with an
// Accounting-Response (RFC 5997 3), as FreeRADIUS does: the request must
// carry a valid Message-Authenticator, and the reply carries one,
// computed over the request's authenticator as for an Access-Accept.
// Nothing is recorded and nothing is cached.
func (s *Server) acctStatusServer(w *worker, nas *nasState, r *request, src netip.AddrPort) []byte {
	if r.maOff < 0 {
		s.dropf(DropNoMessageAuthenticator, src, nas.Name, "status-server without message-authenticator dropped (rfc 5997)")
		return nil
	}
	if !w.c.validMA(r, nas.Secret) {
		s.dropf(DropBadAuthenticator, src, nas.Name, "status-server with invalid message-authenticator dropped (wrong shared secret?)")
		return nil
	}
	w.w.reset(w.out, codeAcctResponse, r.id, r.authenticator())
	for i := range min(r.nProxy, maxProxyStates) {
		w.w.attr(attrProxyState, r.proxyStates[i])
	}
	return w.w.sign(w.c, nas.Secret, signReply)
}

// account applies one Accounting-Request to the index and the store.
func (s *Server) account(ctx context.Context, nas *nasState, r *request, src netip.AddrPort, now time.Time) error {
	switch r.statusType {
	case acctStatusOn, acctStatusOff:
		return s.closeWhere(ctx, now, causeNASReboot, func(x *Session) bool { return x.NAS == nas.Name })
	case acctStatusStart, acctStatusStop, acctStatusInterim:
	default:
		return nil // other types (Failed, tunnel ones) are acknowledged, not recorded
	}
	if len(r.acctSessionID) == 0 {
		return errors.New("accounting request without acct-session-id")
	}
	key := nas.Name + "/" + string(r.acctSessionID)
	username := string(r.userName)
	member, location := "", nas.LocationID
	if m, loc, ok := parseClass(r.class); ok {
		member, location = m, loc
	}
	s.idx.mu.RLock()
	cur, known := s.idx.live[key]
	if known && member == "" {
		member = cur.MemberID
	}
	s.idx.mu.RUnlock()
	if member == "" && username != "" {
		// No class from us (NAS restarted, or a session from before): ask
		// the directory.
		var m string
		var err error
		if mf, ok := s.dir.(MemberFinder); ok {
			m, err = mf.MemberOf(ctx, username)
		} else {
			var subj Subject
			subj, err = s.dir.Lookup(ctx, username)
			m = subj.Account.MemberID
		}
		if err == nil {
			member = m
		} else if dd, ok := s.dir.(DeviceDirectory); ok {
			// A registered device (PPSK) accounts under its MAC.
			if mac, ok := normalizeMAC([]byte(username)); ok {
				if _, subj, err := dd.LookupDevice(ctx, mac); err == nil {
					member = subj.Account.MemberID
				}
			}
		}
	}

	s.idx.mu.Lock()
	cur, known = s.idx.live[key]
	var sess Session
	if known {
		sess = *cur
	} else {
		sess = Session{Key: key, NAS: nas.Name, AcctSessionID: string(r.acctSessionID), Start: now}
		if r.sessionTime > 0 && r.statusType != acctStatusStart {
			sess.Start = now.Add(-time.Duration(r.sessionTime) * time.Second)
		}
	}
	sess.NASAddr = src.Addr().Unmap()
	if member != "" {
		sess.MemberID = member
	}
	if username != "" {
		sess.Username = username
	}
	if m, ok := normalizeMAC(r.callingStation); ok {
		sess.MAC = m
	}
	if r.framedIP.IsValid() {
		sess.IP = r.framedIP
	}
	if location != "" {
		sess.Location = location
	}
	if len(r.class) > 0 {
		sess.Class = string(r.class)
	}
	if r.statusType != acctStatusStart {
		sess.InputOctets = uint64(r.inGiga)<<32 | uint64(r.inOctets)
		sess.OutputOctets = uint64(r.outGiga)<<32 | uint64(r.outOctets)
		sess.SessionTime = r.sessionTime
	}
	sess.LastUpdate = now
	sess.Seq = s.idx.nextSeq(now)
	if known {
		s.idx.remove(cur)
	}
	if r.statusType == acctStatusStop {
		sess.Stopped = now
		sess.StopCause = "Stop"
		if c, ok := termCauses[r.termCause]; ok {
			sess.StopCause = c
		}
	} else {
		c := sess
		s.idx.put(&c)
	}
	s.idx.mu.Unlock()

	if err := s.sessions.SaveSessions(ctx, []Session{sess}); err != nil {
		return fmt.Errorf("save session %s: %w", key, err)
	}
	if s.log.Enabled(ctx, -4) {
		s.log.Debug("accounting", "nas", nas.Name, "status", statusName(r.statusType), "session", key, "user", username, "mac", sess.MAC)
	}
	if r.statusType == acctStatusStart && macUser(sess) {
		s.checkDeviceSession(sess, now)
	}
	return nil
}

// checkDeviceSession disconnects a MAC-authenticated device's new session
// that deskgate would not admit now. An access point may let a device back
// in without asking: hostapd answers a re-association within 30 s from its
// MAC ACL cache, so a device disconnected because its member's access
// ended would otherwise stay on (the radio test under qemu shows it).
func (s *Server) checkDeviceSession(sess Session, now time.Time) {
	dd, ok := s.dir.(DeviceDirectory)
	if !ok {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		t := s.clients.Load()
		nas := t.byName[sess.NAS]
		if nas == nil {
			return
		}
		ev := evaluation{nas: nas, username: sess.MAC, now: now, method: "mac", mac: sess.MAC, location: nas.LocationID}
		_, subj, err := dd.LookupDevice(WithLocation(ctx, ev.location), sess.MAC)
		switch {
		case errors.Is(err, ErrUnknownDevice):
			ev.deny = denyUnknownDevice
		case err != nil:
			return // the directory hiccupped: no verdict
		case subj.Account.Disabled:
			ev.deny = model.DenyAccountDisabled
		default:
			ev.subj = subj
			if d := subj.Decision; !d.Allowed {
				ev.deny = d.Deny
			} else if _, ok := d.At(ev.location); !ok {
				ev.deny = model.DenyWrongLocation
			} else if !d.ValidUntil.IsZero() && !now.Before(d.ValidUntil) {
				ev.deny = model.DenyEnded
			}
		}
		if ev.deny == "" {
			return
		}
		s.log.Info("device online without access, disconnecting", "mac", sess.MAC, "nas", nas.Name, "reason", ev.deny, "session", sess.Key)
		if err := s.reauthSession(ctx, t, sess); err != nil {
			s.log.Warn("disconnect a device online without access", "mac", sess.MAC, "err", err)
		}
	}()
}

func statusName(t uint32) string {
	switch t {
	case acctStatusStart:
		return "Start"
	case acctStatusStop:
		return "Stop"
	case acctStatusInterim:
		return "Interim-Update"
	case acctStatusOn:
		return "Accounting-On"
	case acctStatusOff:
		return "Accounting-Off"
	}
	return strconv.Itoa(int(t))
}

// closeWhere stops every live session matching fn and persists them.
func (s *Server) closeWhere(ctx context.Context, now time.Time, cause string, fn func(*Session) bool) error {
	var closed []Session
	s.idx.mu.Lock()
	for _, x := range s.idx.live {
		if fn(x) {
			c := *x
			c.Stopped, c.StopCause, c.Seq = now, cause, s.idx.nextSeq(now)
			closed = append(closed, c)
		}
	}
	for i := range closed {
		s.idx.remove(s.idx.live[closed[i].Key])
	}
	s.idx.mu.Unlock()
	if len(closed) == 0 {
		return nil
	}
	if err := s.sessions.SaveSessions(ctx, closed); err != nil {
		return fmt.Errorf("close %d sessions: %w", len(closed), err)
	}
	s.log.Info("sessions closed", "count", len(closed), "cause", cause)
	return nil
}

// CloseStale closes sessions with no accounting for twice the interim
// interval and prunes stopped sessions older than a day.
func (s *Server) CloseStale(ctx context.Context) (int, error) {
	now := s.now()
	limit := now.Add(-2 * s.cfg.InterimInterval)
	n := 0
	err := s.closeWhere(ctx, now, causeStale, func(x *Session) bool {
		if x.LastUpdate.Before(limit) {
			n++
			return true
		}
		return false
	})
	if err != nil {
		return 0, err
	}
	if _, err := s.sessions.PruneSessions(ctx, now.Add(-24*time.Hour)); err != nil {
		return n, fmt.Errorf("prune sessions: %w", err)
	}
	return n, nil
}
