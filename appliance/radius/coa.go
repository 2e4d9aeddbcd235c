package radius

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"layeh.com/radius"

	"github.com/deskgate/deskgate/appliance/model"
)

// ErrNoAnswer is returned when a NAS never answered a Disconnect or CoA
// request.
var ErrNoAnswer = errors.New("no answer from nas")

type changeTimeKey struct{}

// WithChangeTime marks ctx with when the access change arrived (the
// webhook, the poll), so Reauthorize logs and audits the end-to-end time
// from it to each Disconnect/CoA answer.
func WithChangeTime(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, changeTimeKey{}, t)
}

// Reauthorize acts on a change of the member's access: every live session
// of the member gets a Disconnect-Request, or a CoA-Request with the new
// attributes where the NAS supports CoA and the member still has access
// there. Requests go out in parallel, each retried with backoff; the ACK or
// NAK and the latency go to the audit trail. A member without live sessions
// is a no-op.
func (s *Server) Reauthorize(ctx context.Context, memberID string) error {
	sessions := s.idx.memberSessions(memberID)
	if len(sessions) == 0 {
		return nil
	}
	t := s.clients.Load()
	errs := make([]error, len(sessions))
	var wg sync.WaitGroup
	for i, sess := range sessions {
		wg.Go(func() { errs[i] = s.reauthSession(ctx, t, sess) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reauthorize member %s: %w", memberID, err)
	}
	return nil
}

// DisconnectMAC sends a Disconnect-Request for each live session of
// member's device mac (aa:bb:cc:dd:ee:ff), as when a PPSK device is
// removed; the member's other devices stay online.
func (s *Server) DisconnectMAC(ctx context.Context, memberID, mac string) error {
	t := s.clients.Load()
	var errs []error
	for _, sess := range s.idx.memberSessions(memberID) {
		if sess.MAC != mac {
			continue
		}
		nas := t.byName[sess.NAS]
		if nas == nil || nas.CoA == CoANone {
			continue
		}
		code, err := s.sendDynamic(ctx, nas, sess, codeDisconnectReq, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if code == codeDisconnectACK {
			if err := s.closeWhere(ctx, s.now(), causeAdmin, func(x *Session) bool { return x.Key == sess.Key }); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Server) reauthSession(ctx context.Context, t *clientTable, sess Session) error {
	nas := t.byName[sess.NAS]
	if nas == nil {
		return fmt.Errorf("session %s: nas %s no longer configured", sess.Key, sess.NAS)
	}
	if nas.CoA == CoANone {
		s.log.Warn("access changed but nas does not take disconnect requests", "nas", nas.Name, "member", sess.MemberID, "session", sess.Key)
		s.auditSync(ctx, model.AuditEntry{Action: "radius.disconnect.unsupported", Member: sess.MemberID, Subject: sess.Username,
			Cause: "nas " + nas.Name + " has coa=none; session " + sess.AcctSessionID + " left to expire"})
		return nil
	}
	if nas.CoA == CoAChange {
		if attrs := s.coaAttrs(ctx, nas, sess); attrs != nil {
			code, err := s.sendDynamic(ctx, nas, sess, codeCoARequest, attrs)
			if err == nil && code == codeCoAACK {
				return nil
			}
			// NAK or no answer: fall back to disconnecting.
		}
	}
	code, err := s.sendDynamic(ctx, nas, sess, codeDisconnectReq, nil)
	if err != nil {
		return err
	}
	if code == codeDisconnectACK {
		now := s.now()
		if err := s.closeWhere(ctx, now, causeAdmin, func(x *Session) bool { return x.Key == sess.Key }); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("session %s: disconnect refused by nas %s", sess.Key, nas.Name)
}

// coaAttrs returns the new authorization for a CoA, nil when the member no
// longer has access at the session's location (then: disconnect).
func (s *Server) coaAttrs(ctx context.Context, nas *nasState, sess Session) []attr {
	loc := sess.Location
	if loc == "" {
		loc = nas.LocationID
	}
	subj, err := s.dir.Lookup(WithLocation(ctx, loc), sess.Username)
	if err != nil || subj.Account.Disabled {
		return nil
	}
	ev := evaluation{nas: nas, username: sess.Username, now: s.now(), subj: subj, location: sess.Location, mac: sess.MAC}
	if ev.location == "" {
		ev.location = nas.LocationID
	}
	s.decide(&ev)
	if ev.deny != "" {
		return nil
	}
	ip, _ := s.staticIP(ctx, &ev, false)
	attrs, _ := appendDecisionAttrs(nil, nil, nas.Vendor, subj, ev.access, ev.location, ip, s.cfg.InterimInterval, ev.now)
	return attrs
}

// macUser reports whether a session's User-Name is its station's MAC (a
// MAC-authenticated PPSK device). Its Disconnect-Request leaves User-Name
// out and names the session by Acct-Session-Id and Calling-Station-Id:
// hostapd's DAS matches User-Name only against an 802.1X identity, which
// a PSK station does not have ("DAS: Session not found"; the radio test
// under qemu shows it).
func macUser(sess Session) bool {
	m, ok := normalizeMAC([]byte(sess.Username))
	return ok && sess.MAC != "" && m == sess.MAC
}

// macRFC3580 spells a MAC the way RFC 3580 asks for Calling-Station-Id.
func macRFC3580(m string) string {
	return strings.ToUpper(strings.ReplaceAll(m, ":", "-"))
}

// sendDynamic sends one Disconnect-Request or CoA-Request (RFC 5176) for
// the session and waits for the answer, retrying with backoff. It returns
// the answer's code.
func (s *Server) sendDynamic(ctx context.Context, nas *nasState, sess Session, code byte, extra []attr) (byte, error) {
	kind := "disconnect"
	if code == codeCoARequest {
		kind = "coa"
	}
	dst := netip.AddrPortFrom(sess.NASAddr, uint16(nas.CoAPort))
	if !sess.NASAddr.IsValid() {
		return 0, fmt.Errorf("%s session %s: nas address unknown", kind, sess.Key)
	}
	var lc net.Dialer
	conn, err := lc.DialContext(ctx, "udp", dst.String())
	if err != nil {
		return 0, fmt.Errorf("%s session %s: dial %s: %w", kind, sess.Key, dst, err)
	}
	defer conn.Close()

	var idb [1]byte
	_, _ = rand.Read(idb[:])
	c := newCrypt()
	var w replyWriter
	w.reset(make([]byte, 0, 512), code, idb[0], zero16[:])
	if sess.Username != "" && !macUser(sess) {
		w.str(attrUserName, sess.Username)
	}
	w.str(attrAcctSessionID, sess.AcctSessionID)
	if sess.MAC != "" {
		w.str(attrCallingStationID, macRFC3580(sess.MAC))
	}
	// Event-Timestamp (RFC 5176 3.3 replay protection): the one clock of
	// the daemon, which the NAS's own clock must agree with (NTP).
	w.integer(55, uint32(s.now().Unix()))
	for _, a := range extra {
		a.encode(&w)
	}
	if w.err {
		return 0, fmt.Errorf("%s session %s: request too large", kind, sess.Key)
	}
	pkt := w.sign(c, nas.Secret, signRequest)

	start := time.Now()
	buf := make([]byte, maxPacketLen)
	for attempt, wait := range s.coaTries {
		if _, err := conn.Write(pkt); err != nil {
			return 0, fmt.Errorf("%s session %s: send to %s: %w", kind, sess.Key, dst, err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = conn.SetReadDeadline(deadline)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return 0, fmt.Errorf("%s session %s: %w", kind, sess.Key, ctx.Err())
				}
				break // timeout: retransmit
			}
			ans, ok := s.checkDynamicAnswer(c, buf[:n], pkt, nas.Secret)
			if !ok {
				continue
			}
			latency := time.Since(start)
			s.recordDynamic(ctx, nas, sess, kind, ans, attempt+1, latency)
			return ans.code, nil
		}
	}
	latency := time.Since(start)
	s.log.Warn(kind+" request unanswered", "nas", nas.Name, "dst", dst.String(), "member", sess.MemberID, "session", sess.Key, "attempts", len(s.coaTries), "elapsed", latency)
	s.auditSync(ctx, model.AuditEntry{Action: "radius." + kind + ".timeout", Member: sess.MemberID, Subject: sess.Username,
		Cause: fmt.Sprintf("no answer from nas %s (%s) after %d attempts, %s", nas.Name, dst, len(s.coaTries), latency.Round(time.Millisecond))})
	return 0, fmt.Errorf("%s session %s: %w %s", kind, sess.Key, ErrNoAnswer, nas.Name)
}

type dynamicAnswer struct {
	code       byte
	errorCause uint32
}

// checkDynamicAnswer validates an answer to our request: identifier,
// Response Authenticator and, when present, Message-Authenticator.
func (s *Server) checkDynamicAnswer(c *crypt, b, req, secret []byte) (dynamicAnswer, bool) {
	var r request
	if err := r.parse(b); err != nil || r.id != req[1] {
		return dynamicAnswer{}, false
	}
	switch {
	case req[0] == codeDisconnectReq && (r.code == codeDisconnectACK || r.code == codeDisconnectNAK):
	case req[0] == codeCoARequest && (r.code == codeCoAACK || r.code == codeCoANAK):
	default:
		return dynamicAnswer{}, false
	}
	if !radius.IsAuthenticResponse(r.raw, req, secret) {
		return dynamicAnswer{}, false
	}
	if r.maOff >= 0 {
		tmp := append([]byte(nil), r.raw...)
		copy(tmp[4:20], req[4:20])
		clear(tmp[r.maOff : r.maOff+16])
		c.mac.start(secret)
		c.mac.write(tmp)
		if string(c.mac.finish()) != string(r.raw[r.maOff:r.maOff+16]) {
			return dynamicAnswer{}, false
		}
	}
	ans := dynamicAnswer{code: r.code}
	for i := 20; i+2 <= len(r.raw); i += int(r.raw[i+1]) {
		if r.raw[i] == attrErrorCause && r.raw[i+1] == 6 {
			ans.errorCause = binary.BigEndian.Uint32(r.raw[i+2 : i+6])
		}
	}
	return ans, true
}

func (s *Server) recordDynamic(ctx context.Context, nas *nasState, sess Session, kind string, ans dynamicAnswer, attempts int, latency time.Duration) {
	verdict := "ack"
	if ans.code == codeDisconnectNAK || ans.code == codeCoANAK {
		verdict = "nak"
	}
	cause := fmt.Sprintf("%s %s from nas %s for session %s (mac %s) in %s after %d attempt(s)", kind, strings.ToUpper(verdict), nas.Name, sess.AcctSessionID, sess.MAC, latency.Round(10*time.Microsecond), attempts)
	if ans.errorCause != 0 {
		cause += fmt.Sprintf(", error-cause %d", ans.errorCause)
	}
	var sinceChange time.Duration
	if t, ok := ctx.Value(changeTimeKey{}).(time.Time); ok {
		sinceChange = time.Since(t)
		cause += fmt.Sprintf(", %s after the change arrived", sinceChange.Round(10*time.Microsecond))
	}
	s.log.Info(kind+" answered", "verdict", verdict, "nas", nas.Name, "member", sess.MemberID, "session", sess.Key, "latency", latency, "since_change", sinceChange, "attempts", attempts, "error_cause", ans.errorCause)
	s.auditSync(ctx, model.AuditEntry{Action: "radius." + kind + "." + verdict, Member: sess.MemberID, Subject: sess.Username, Cause: cause})
}

// auditSync records an entry directly (Reauthorize is not on the packet
// path).
func (s *Server) auditSync(ctx context.Context, e model.AuditEntry) {
	if s.audit == nil {
		return
	}
	e.Actor = "radius"
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if err := s.audit.Audit(ctx, e); err != nil {
		s.log.Warn("audit", "action", e.Action, "err", err)
	}
}
