package radius

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/deskgate/deskgate/appliance/eap"
	"net/netip"
	"runtime/debug"
	"time"

	//lint:ignore SA1019 the NT hash is MD4 by definition (MS-CHAPv2, RFC 2759)
	"golang.org/x/crypto/md4"

	"layeh.com/radius"

	"github.com/deskgate/deskgate/appliance/model"
)

// replyMessages are the operator-readable texts sent in Access-Reject. An
// unknown user and a wrong password read the same, so the reply does not
// reveal which usernames exist; the log and audit trail tell them apart.
var replyMessages = map[string]string{
	model.DenyUnknownUser:     "Invalid username or password",
	model.DenyWrongPassword:   "Invalid username or password",
	model.DenyAccountDisabled: "Account disabled",
	model.DenyMemberInactive:  "Membership is not active",
	model.DenyNoMembership:    "No active membership",
	model.DenyNotStarted:      "Membership has not started yet",
	model.DenyEnded:           "Membership has ended",
	model.DenyNotApproved:     "Membership is not approved",
	model.DenyUnpaid:          "Membership first invoice is unpaid",
	model.DenyUnmappedPlan:    "Plan is not mapped to WiFi access",
	model.DenyPlanNoWiFi:      "Plan does not include WiFi",
	model.DenyWrongLocation:   "No WiFi access at this location",
	model.DenyPassExpired:     "Pass has expired",
	model.DenyDeviceLimit:     "Device limit reached: disconnect another device first",
	denyUnsupported:           "Authentication method not supported",
}

const denyUnsupported = "unsupported_method"

func replyMessage(deny string) string {
	if m, ok := replyMessages[deny]; ok {
		return m
	}
	return "Access denied (" + deny + ")"
}

// handleAuth answers one packet from the authentication socket; nil means
// no reply.
func (s *Server) handleAuth(ctx context.Context, w *worker, b []byte, src netip.AddrPort) (out []byte) {
	defer s.finishPacket(src, &out)
	s.stats.AuthRequests.Add(1)
	r := &w.req
	if err := r.parse(b); err != nil {
		s.dropf(DropMalformed, src, "", "malformed packet dropped", "err", err)
		return nil
	}
	s.stats.requests[PortAuth][r.code].Add(1)
	if r.code != codeAccessRequest && r.code != codeStatusServer {
		s.dropf(DropUnexpectedCode, src, "", "unexpected packet code on auth port dropped", "code", r.code)
		return nil
	}
	nas := s.clients.Load().match(src.Addr(), r)
	if nas == nil {
		s.unknownSource(src)
		return nil
	}
	now := s.now()
	// Authenticity before the duplicate cache: a copy of a request (same
	// source, identifier and authenticator) with a bad or missing
	// Message-Authenticator is a forgery, not a retransmission, and never
	// gets the cached reply.
	if !s.authAuthentic(w, nas, r, src, now) {
		return nil
	}
	key := dedupKey{src: src, id: r.id}
	auth := r.authenticator()
	out, st := s.authDup.begin(key, auth, now, w.out)
	switch st {
	case dedupReplay:
		s.stats.Duplicates.Add(1)
		return out
	case dedupInFlight:
		s.stats.Duplicates.Add(1)
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			s.authDup.finish(key, auth, nil, now) // not stuck in flight
			panic(r)
		}
	}()
	out = s.authenticate(ctx, w, nas, r, src, now)
	s.authDup.finish(key, auth, out, now)
	return out
}

// finishPacket counts the reply by code, and turns a panic on one packet
// into a dropped packet and an error log, so one bad packet cannot take
// the daemon down. Tests and the fuzzer set panicOnBug to see the panic.
func (s *Server) finishPacket(src netip.AddrPort, out *[]byte) {
	if !s.panicOnBug {
		if r := recover(); r != nil {
			*out = nil
			s.stats.drop(DropError)
			s.log.Error("bug: panic while handling a packet, dropped", "src", src.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}
	if len(*out) > 0 {
		s.stats.responses[(*out)[0]].Add(1)
	}
}

func (s *Server) unknownSource(src netip.AddrPort) {
	s.stats.drop(DropUnknownClient)
	if s.unknown.allow(src.Addr(), s.now()) {
		s.log.Warn("request from unknown client dropped", "src", src.String())
	}
}

// authAuthentic checks an Access-Request's or Status-Server's
// Message-Authenticator (required unless the NAS is legacy, and always on
// Status-Server, RFC 5997 3) and the Proxy-State count; it counts and logs
// a drop.
func (s *Server) authAuthentic(w *worker, nas *nasState, r *request, src netip.AddrPort, now time.Time) bool {
	if r.maOff < 0 {
		if r.code == codeStatusServer {
			s.dropf(DropNoMessageAuthenticator, src, nas.Name, "status-server without message-authenticator dropped (rfc 5997)")
			return false
		}
		nas.noMessageAuthenticator(src, now, !nas.Legacy)
		if !nas.Legacy {
			s.dropf(DropNoMessageAuthenticator, src, nas.Name, "access-request without message-authenticator dropped (blastradius)")
			return false
		}
		if r.nProxy > 0 {
			// FreeRADIUS 3.2.5 limit_proxy_state: a NAS is not a proxy; a
			// Proxy-State without Message-Authenticator is an attack shape.
			s.dropf(DropNoMessageAuthenticator, src, nas.Name, "access-request with proxy-state but no message-authenticator dropped (blastradius)")
			return false
		}
	} else if !w.c.validMA(r, nas.Secret) {
		s.dropf(DropBadAuthenticator, src, nas.Name, "access-request with invalid message-authenticator dropped (wrong shared secret?)")
		return false
	}
	if r.nProxy > maxProxyStates {
		s.dropf(DropMalformed, src, nas.Name, "too many proxy-state attributes, dropped", "count", r.nProxy)
		return false
	}
	return true
}

// authenticate checks the credentials and the decision of an authentic
// request and returns the signed reply (nil: drop).
func (s *Server) authenticate(ctx context.Context, w *worker, nas *nasState, r *request, src netip.AddrPort, now time.Time) []byte {
	if r.code == codeStatusServer {
		w.w.reset(w.out, codeAccessAccept, r.id, r.authenticator())
		return w.w.sign(w.c, nas.Secret, signReply)
	}

	if r.eap && s.cfg.EAP != nil {
		return s.authenticateEAP(ctx, w, nas, r, src, now)
	}
	if dd, ok := s.dir.(DeviceDirectory); ok {
		if mac, ok := s.macAuth(w, nas, r); ok {
			return s.authenticateDevice(ctx, w, nas, r, src, now, dd, mac)
		}
	}
	username := string(r.userName)
	ev := evaluation{nas: nas, username: username, now: now}
	s.evaluate(ctx, w, r, &ev)
	if ev.drop {
		s.stats.drop(DropError)
		return nil
	}
	if ev.deny != "" {
		s.stats.Rejects.Add(1)
		s.logReject(&ev, src)
		return s.encodeReject(w, nas, r, &ev)
	}
	s.stats.Accepts.Add(1)
	if s.log.Enabled(ctx, -4) {
		s.log.Debug("access-accept", "user", username, "nas", nas.Name, "member", ev.subj.Account.MemberID, "method", ev.method, "location", ev.location)
	}
	return s.encodeAccept(ctx, w, nas, r, &ev)
}

// evaluation is one authentication's working state.
type evaluation struct {
	nas      *nasState
	username string
	now      time.Time
	method   string
	subj     Subject
	location string
	access   model.LocationAccess
	mac      string
	deny     string
	detail   string
	drop     bool
	ntResp   []byte // MS-CHAPv2 NT-Response, for the success attributes
	mschapID byte
	peerChal []byte
	eapRes   *eap.Result // an EAP login's result, for the Accept's EAP-Message and keys
	device   *Device     // a registered device's MAC authentication (PPSK)
}

func (s *Server) evaluate(ctx context.Context, w *worker, r *request, ev *evaluation) {
	ev.location = ev.nas.LocationID
	if m, ok := normalizeMAC(r.callingStation); ok {
		ev.mac = m
	}
	switch {
	case r.userPassword != nil:
		ev.method = "pap"
	case r.msCHAP2Resp != nil:
		ev.method = "mschapv2"
	case r.msCHAP1Resp != nil:
		// radtest -t mschap sends this. It could be checked against the
		// NT hash, but is not implemented: say so rather than answer
		// "wrong password" to a right one.
		ev.method = "mschapv1"
		ev.deny, ev.detail = denyUnsupported, "MS-CHAPv1 is not supported; use PAP, MS-CHAPv2 or EAP (PEAP, EAP-TTLS, EAP-TLS)"
		return
	case r.eap:
		ev.method = "eap"
		ev.deny, ev.detail = denyUnsupported, "EAP is not supported by this server"
		return
	case r.chapPassword != nil:
		ev.method = "chap"
		ev.deny, ev.detail = denyUnsupported, "CHAP needs a cleartext password, which is not stored"
		return
	case r.msChallenge != nil:
		ev.method = "mschap"
		ev.deny, ev.detail = denyUnsupported, "MS-CHAP-Challenge without MS-CHAP-Response or MS-CHAP2-Response"
		return
	default:
		ev.deny, ev.detail = denyUnsupported, "no credentials in request"
		return
	}
	if ev.username == "" {
		ev.deny = model.DenyUnknownUser
		return
	}
	subj, err := s.dir.Lookup(WithLocation(ctx, ev.location), ev.username)
	if errors.Is(err, ErrUnknownUser) {
		ev.deny = model.DenyUnknownUser
		return
	}
	if err != nil {
		// No answer: the NAS retries or fails over, rather than telling a
		// member they are denied because the database hiccupped.
		s.log.Error("directory lookup failed, request dropped", "user", ev.username, "err", err)
		ev.drop = true
		return
	}
	ev.subj = subj
	if !s.checkCredentials(w, r, ev) {
		ev.deny = model.DenyWrongPassword
		return
	}
	if subj.Account.Disabled {
		ev.deny, ev.detail = model.DenyAccountDisabled, subj.Account.DisabledReason
		return
	}
	s.decide(ev)
}

// decide applies the decision at the NAS's location, the validity end and
// the device limit.
func (s *Server) decide(ev *evaluation) {
	d := ev.subj.Decision
	if !d.Allowed {
		ev.deny = d.Deny
		if ev.deny == "" {
			ev.deny = model.DenyNoMembership
		}
		if len(d.Reasons) > 0 {
			ev.detail = d.Reasons[0]
		}
		return
	}
	if !d.ValidUntil.IsZero() && !ev.now.Before(d.ValidUntil.Add(-time.Second)) {
		ev.deny, ev.detail = model.DenyEnded, "access ended "+d.ValidUntil.UTC().Format(time.RFC3339)
		return
	}
	la, ok := d.At(ev.location)
	if !ok {
		ev.deny, ev.detail = model.DenyWrongLocation, "plan gives no access at location "+ev.location
		return
	}
	ev.access = la
	if d.MaxDevices > 0 && !s.idx.admits(ev.subj.Account.MemberID, ev.mac, d.MaxDevices, s.remoteDevices(ev.subj.Account.MemberID)) {
		ev.deny, ev.detail = model.DenyDeviceLimit, "member already has the maximum number of devices online"
		return
	}
}

func (s *Server) checkCredentials(w *worker, r *request, ev *evaluation) bool {
	nt := ev.subj.Account.NTHash
	if len(nt) != 16 {
		return false
	}
	switch ev.method {
	case "pap":
		pw, ok := w.c.papPassword(w.pw, r.userPassword, ev.nas.Secret, r.authenticator())
		if !ok {
			return false
		}
		w.pw = pw
		var sum [16]byte
		ntHashInto(&sum, pw)
		return subtle.ConstantTimeCompare(sum[:], nt) == 1
	case "mschapv2":
		if len(r.msChallenge) != 16 || len(r.msCHAP2Resp) != 50 {
			return false
		}
		ev.mschapID = r.msCHAP2Resp[0]
		ev.peerChal = r.msCHAP2Resp[2:18]
		ev.ntResp = r.msCHAP2Resp[26:50]
		want := mschapNTResponse(r.msChallenge, ev.peerChal, mschapUser(r.userName), nt)
		return subtle.ConstantTimeCompare(want[:], ev.ntResp) == 1
	}
	return false
}

// ntHashInto computes MD4(UTF-16LE(password)) without allocating, for
// PAP on the hot path; it must agree with creds.NTHash (tested).
func ntHashInto(dst *[16]byte, pw []byte) {
	h := md4.New()
	var u [256]byte
	n := 0
	for _, c := range string(pw) {
		if c > 0xffff {
			// Surrogate pair.
			c -= 0x10000
			hi, lo := 0xd800+(c>>10), 0xdc00+(c&0x3ff)
			if n+4 > len(u) {
				h.Write(u[:n])
				n = 0
			}
			u[n], u[n+1], u[n+2], u[n+3] = byte(hi), byte(hi>>8), byte(lo), byte(lo>>8)
			n += 4
			continue
		}
		if n+2 > len(u) {
			h.Write(u[:n])
			n = 0
		}
		u[n], u[n+1] = byte(c), byte(c>>8)
		n += 2
	}
	h.Write(u[:n])
	h.Sum(dst[:0])
}

// mschapUser strips a Windows domain ("DOMAIN\user") as RFC 2759 asks.
func mschapUser(u []byte) []byte {
	if i := bytes.LastIndexByte(u, '\\'); i >= 0 {
		return u[i+1:]
	}
	return u
}

func (s *Server) logReject(ev *evaluation, src netip.AddrPort) {
	s.log.Info("access-reject", "user", ev.username, "nas", ev.nas.Name, "src", src.String(), "method", ev.method, "reason", ev.deny, "detail", ev.detail, "location", ev.location, "mac", ev.mac)
	cause := ev.deny + " at " + ev.nas.Name
	if ev.detail != "" {
		cause += ": " + ev.detail
	}
	s.auditAsync(model.AuditEntry{
		Action:  "radius.reject",
		Member:  ev.subj.Account.MemberID,
		Subject: ev.username,
		Cause:   cause,
	})
}

func (s *Server) encodeReject(w *worker, nas *nasState, r *request, ev *evaluation) []byte {
	w.w.reset(w.out, codeAccessReject, r.id, r.authenticator())
	w.w.str(attrReplyMessage, replyMessage(ev.deny))
	if ev.method == "mschapv2" && len(r.msCHAP2Resp) == 50 && len(r.msChallenge) == 16 {
		// RFC 2759 failure packet: E=691 authentication failure, no retry.
		msg := make([]byte, 0, 64)
		msg = append(msg, r.msCHAP2Resp[0])
		msg = append(msg, "E=691 R=0 C="...)
		msg = appendHexUpper(msg, r.msChallenge)
		msg = append(msg, " V=3 M=Authentication failed"...)
		w.w.vendor(vendorMicrosoft, msCHAPError, msg)
	}
	for i := range min(r.nProxy, maxProxyStates) {
		w.w.attr(attrProxyState, r.proxyStates[i])
	}
	return w.w.sign(w.c, nas.Secret, signReply)
}

func appendHexUpper(dst, b []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

func (s *Server) encodeAccept(ctx context.Context, w *worker, nas *nasState, r *request, ev *evaluation) []byte {
	w.attrs = w.attrs[:0]
	w.arena = w.arena[:0]
	ip, err := s.staticIP(ctx, ev, true)
	if err != nil {
		s.log.Error("static ip assignment failed, request dropped", "user", ev.username, "location", ev.location, "err", err)
		s.stats.drop(DropError)
		return nil
	}
	w.attrs, w.arena = appendDecisionAttrs(w.attrs, w.arena, nas.Vendor, ev.subj, ev.access, ev.location, ip, s.cfg.InterimInterval, ev.now)
	w.w.reset(w.out, codeAccessAccept, r.id, r.authenticator())
	for _, a := range w.attrs {
		a.encode(&w.w)
	}
	if ev.method == "mschapv2" {
		s.mschapSuccess(w, nas, r, ev)
	}
	if ev.eapRes != nil {
		s.eapSuccess(w, nas, r, ev.eapRes)
	}
	if ev.device != nil {
		s.ppskAttrs(w, nas, r, ev.device)
	}
	for i := range min(r.nProxy, maxProxyStates) {
		w.w.attr(attrProxyState, r.proxyStates[i])
	}
	if w.w.err {
		s.log.Error("reply too large, request dropped", "user", ev.username)
		s.stats.drop(DropError)
		return nil
	}
	return w.w.sign(w.c, nas.Secret, signReply)
}

// staticIP returns the member's address for plans with a static IP.
func (s *Server) staticIP(ctx context.Context, ev *evaluation, assign bool) (netip.Addr, error) {
	if !ev.subj.Decision.StaticIP {
		return netip.Addr{}, nil
	}
	pool, ok := s.cfg.StaticPools[ev.location]
	if !ok {
		return netip.Addr{}, nil
	}
	member := ev.subj.Account.MemberID
	if a, ok := s.pool.Lookup(ev.location, member); ok {
		return a, nil
	}
	if !assign {
		return netip.Addr{}, nil
	}
	return s.pool.Assign(ctx, ev.location, member, pool)
}

func (s *Server) mschapSuccess(w *worker, nas *nasState, r *request, ev *evaluation) {
	nt := ev.subj.Account.NTHash
	authResp := mschapAuthenticatorResponse(nt, ev.ntResp, ev.peerChal, r.msChallenge, mschapUser(r.userName))
	succ := make([]byte, 0, 43)
	succ = append(succ, ev.mschapID)
	succ = append(succ, authResp...)
	w.w.vendor(vendorMicrosoft, msCHAP2Success, succ)
	send, recv := mppeKeys(nt, ev.ntResp)
	for _, k := range []struct {
		t   byte
		key []byte
	}{{msMPPERecvKey, recv[:]}, {msMPPESendKey, send[:]}} {
		var salt [2]byte
		_, _ = rand.Read(salt[:])
		salt[0] |= 0x80
		enc, err := radius.NewTunnelPassword(k.key, salt[:], nas.Secret, r.authenticator())
		if err != nil {
			w.w.err = true
			return
		}
		w.w.vendor(vendorMicrosoft, k.t, enc)
	}
	w.w.vendor(vendorMicrosoft, msMPPEEncPolicy, []byte{0, 0, 0, 1}) // encryption allowed
	w.w.vendor(vendorMicrosoft, msMPPEEncTypes, []byte{0, 0, 0, 6})  // RC4 40 or 128 bit allowed
}

// noMessageAuthenticator records a request without Message-Authenticator
// for `deskgate nas check`.
func (n *nasState) noMessageAuthenticator(src netip.AddrPort, now time.Time, dropped bool) {
	n.mu.Lock()
	n.noMA++
	if dropped {
		n.dropped++
	}
	n.lastNoMA = now
	n.lastSource = src
	n.mu.Unlock()
}

// NASWithoutMessageAuthenticator lists the NAS that sent Access-Requests
// without Message-Authenticator since start, for `deskgate nas check`.
func (s *Server) NASWithoutMessageAuthenticator() []NASReport {
	var out []NASReport
	for _, n := range s.clients.Load().all {
		n.mu.Lock()
		if n.noMA > 0 {
			out = append(out, NASReport{
				Name: n.Name, Prefix: n.Prefix.String(), Legacy: n.Legacy,
				Count: n.noMA, Dropped: n.dropped, LastSource: n.lastSource.String(), Last: n.lastNoMA,
			})
		}
		n.mu.Unlock()
	}
	return out
}

// remoteDevices asks the fleet for the member's devices at other boxes.
func (s *Server) remoteDevices(member string) []string {
	if s.cfg.RemoteDevices == nil {
		return nil
	}
	return s.cfg.RemoteDevices(member)
}
