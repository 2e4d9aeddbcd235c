package radius

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"time"

	"layeh.com/radius"

	"github.com/deskgate/deskgate/appliance/eap"
	"github.com/deskgate/deskgate/appliance/model"
)

// EAPHandler runs EAP conversations; appliance/eap's Server implements it.
type EAPHandler interface {
	Handle(ctx context.Context, req eap.Request) eap.Result
}

type locationKey struct{}

// WithLocation marks ctx with the location of the NAS a request comes
// through, for the Directory and the EAP inner authentication.
func WithLocation(ctx context.Context, locationID string) context.Context {
	return context.WithValue(ctx, locationKey{}, locationID)
}

// LocationFromContext returns the location of the NAS a lookup is for, so
// the decision can be taken there (with several memberships, the best one
// that grants access at this location) and a denied member fails inside
// an EAP tunnel.
func LocationFromContext(ctx context.Context) string {
	l, _ := ctx.Value(locationKey{}).(string)
	return l
}

// authenticateEAP feeds one Access-Request's EAP-Message to the EAP
// server and answers with an Access-Challenge, or, when the conversation
// ends, with the same decision, attributes and checks as PAP and
// MS-CHAPv2 plus the EAP-Success and the MPPE keys from the MSK.
func (s *Server) authenticateEAP(ctx context.Context, w *worker, nas *nasState, r *request, src netip.AddrPort, now time.Time) []byte {
	if r.nEAPParts > maxEAPParts {
		s.dropf(DropMalformed, src, nas.Name, "too many eap-message attributes, dropped", "count", r.nEAPParts)
		return nil
	}
	// Handle keeps neither the message nor the State: both may alias the
	// request buffer, and a message in several attributes is joined in
	// the worker's arena (which encodeAccept resets after Handle).
	var msg []byte
	if r.nEAPParts == 1 {
		msg = r.eapParts[0]
	} else {
		msg = w.arena[:0]
		for _, p := range r.eapParts[:r.nEAPParts] {
			msg = append(msg, p...)
		}
		w.arena = msg[:0]
	}
	req := eap.Request{
		EAPMessage: msg, State: r.state, FramedMTU: int(r.framedMTU),
		UserName: string(r.userName), NASKey: nas.Name + "|" + string(r.callingStation),
	}
	res := s.cfg.EAP.Handle(WithLocation(ctx, nas.LocationID), req)
	ev := evaluation{nas: nas, username: string(r.userName), now: now, location: nas.LocationID, method: "eap"}
	if m, ok := normalizeMAC(r.callingStation); ok {
		ev.mac = m
	}
	switch res.Action {
	case eap.Challenge:
		w.w.reset(w.out, codeAccessChallenge, r.id, r.authenticator())
		for _, part := range eap.SplitEAPMessage(res.EAPMessage) {
			w.w.attr(attrEAPMessage, part)
		}
		w.w.attr(attrState, res.State)
		for i := range min(r.nProxy, maxProxyStates) {
			w.w.attr(attrProxyState, r.proxyStates[i])
		}
		if w.w.err {
			s.log.Error("eap challenge too large, request dropped", "nas", nas.Name)
			s.stats.drop(DropError)
			return nil
		}
		return w.w.sign(w.c, nas.Secret, signReply)
	case eap.Accept:
		ev.username, ev.method = res.Identity, "eap-"+res.Method
		subj, err := s.dir.Lookup(WithLocation(ctx, nas.LocationID), res.Identity)
		switch {
		case errors.Is(err, ErrUnknownUser):
			ev.deny = model.DenyUnknownUser
		case err != nil:
			s.log.Error("directory lookup failed, request dropped", "user", res.Identity, "err", err)
			s.stats.drop(DropError)
			return nil
		default:
			ev.subj = subj
			if subj.Account.Disabled {
				ev.deny, ev.detail = model.DenyAccountDisabled, subj.Account.DisabledReason
			} else {
				s.decide(&ev)
			}
		}
		if ev.deny == "" {
			ev.eapRes = &res
			s.stats.Accepts.Add(1)
			return s.encodeAccept(ctx, w, nas, r, &ev)
		}
		// The tunnel said yes but the decision says no (EAP-TLS with a
		// certificate of a member whose access ended): EAP-Failure.
		fail := []byte{4, 0, 0, 4}
		if len(res.EAPMessage) > 1 {
			fail[1] = res.EAPMessage[1]
		}
		res.EAPMessage = fail
	default:
		ev.deny, ev.detail = model.DenyWrongPassword, res.Reason
		if res.Unsupported {
			// The peer insisted on a method the NT hash cannot verify
			// (EAP-MD5, TTLS/CHAP): say so, as for MS-CHAPv1 and CHAP.
			ev.deny = denyUnsupported
		}
		if res.Identity != "" {
			// The inner identity the peer claimed (not authenticated):
			// log and audit the reject under it, so explain shows it.
			ev.username = res.Identity
			if subj, err := s.dir.Lookup(WithLocation(ctx, nas.LocationID), res.Identity); err == nil {
				ev.subj = subj
			}
		}
	}
	s.stats.Rejects.Add(1)
	s.logReject(&ev, src)
	w.w.reset(w.out, codeAccessReject, r.id, r.authenticator())
	w.w.str(attrReplyMessage, replyMessage(ev.deny))
	for _, part := range eap.SplitEAPMessage(res.EAPMessage) {
		w.w.attr(attrEAPMessage, part)
	}
	for i := range min(r.nProxy, maxProxyStates) {
		w.w.attr(attrProxyState, r.proxyStates[i])
	}
	return w.w.sign(w.c, nas.Secret, signReply)
}

// eapSuccess adds the EAP-Success and the MPPE keys (RFC 2548, from the
// MSK: Recv = MSK[0:32], Send = MSK[32:64]) to an Access-Accept.
func (s *Server) eapSuccess(w *worker, nas *nasState, r *request, res *eap.Result) {
	for _, part := range eap.SplitEAPMessage(res.EAPMessage) {
		w.w.attr(attrEAPMessage, part)
	}
	// The inner identity, so the NAS accounts (and answers Disconnect
	// requests) under the member's username, not the anonymous outer one.
	if res.Identity != "" {
		w.w.str(attrUserName, res.Identity)
	}
	if len(res.MSK) < 64 {
		return
	}
	for _, k := range []struct {
		t   byte
		key []byte
	}{{msMPPERecvKey, res.MSK[0:32]}, {msMPPESendKey, res.MSK[32:64]}} {
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
}
