package eap

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/deskgate/deskgate/appliance/creds"
)

// Key-derivation labels.
const (
	labelClientEAP   = "client EAP encryption"         // EAP-TLS (RFC 5216) and PEAPv0
	labelTTLSKeys    = "ttls keying material"          // RFC 5281 section 8
	labelTTLSChall   = "ttls challenge"                // RFC 5281 section 11.2.4 (MS-CHAP challenge)
	labelEAPTLS13    = "EXPORTER_EAP_TLS_Key_Material" // RFC 9190 section 2.3
	serverName       = "deskgate"                      // MS-CHAPv2 authenticator name
	maxInnerMessage  = 4096
	peapResultOK     = 1
	peapResultFailed = 2
)

// tlsRun is one TLS-based method running on an engine goroutine.
type tlsRun struct {
	s  *Server
	e  *engine
	tc *tls.Conn

	ticketID  []byte // id placed in the newest ticket issued in this handshake
	resumedID []byte // id read from the ticket the peer resumed with
	certID    string // EAP-TLS identity from the client certificate
	certErr   error
	innerID   uint8
}

func (s *Server) newTLSRun(e *engine, base *tls.Config) *tlsRun {
	r := &tlsRun{s: s, e: e}
	cfg := base.Clone()
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, fmt.Errorf("wrap session ticket: %w", err)
		}
		r.ticketID = id
		ss.Extra = [][]byte{id}
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(ticket []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(ticket, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		if len(ss.Extra) == 1 {
			r.resumedID = ss.Extra[0]
		}
		return ss, nil
	}
	if base.ClientAuth == tls.RequireAndVerifyClientCert {
		// Revocation and identity are decided during the handshake, so a revoked certificate ends
		// the TLS handshake with an alert the client understands.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			r.certID, r.certErr = s.auth.CertIdentity(e.ctx, cs.PeerCertificates[0])
			return r.certErr
		}
	}
	r.tc = tls.Server(e.pipe, cfg)
	return r
}

func (s *Server) runner(c *conversation) func(*engine) outcome {
	switch c.typ {
	case typePEAP:
		return s.runPEAP
	case typeTTLS:
		return s.runTTLS
	default:
		return s.runEAPTLS
	}
}

func fail(format string, args ...any) outcome {
	return outcome{reason: fmt.Sprintf(format, args...)}
}

// handshake runs the TLS 1.2 handshake; after a full handshake it sends the server's final flight and
// waits for the peer's reply (an acknowledgement, or tunnelled data).
func (r *tlsRun) handshake() error {
	if err := r.tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	if len(r.e.outbuf) > 0 {
		if _, err := r.e.exchange(); err != nil {
			return fmt.Errorf("tls handshake: final flight: %w", err)
		}
	}
	return nil
}

func (r *tlsRun) export(label string, context []byte, n int) ([]byte, error) {
	cs := r.tc.ConnectionState()
	k, err := cs.ExportKeyingMaterial(label, context, n)
	if err != nil {
		return nil, fmt.Errorf("export keying material %q: %w", label, err)
	}
	return k, nil
}

func (r *tlsRun) readInner() ([]byte, error) {
	buf := make([]byte, maxInnerMessage)
	n, err := r.tc.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("read tunnelled data: %w", err)
	}
	return buf[:n], nil
}

// ---- EAP-TLS (RFC 5216, RFC 9190) ----

func (s *Server) runEAPTLS(e *engine) outcome {
	r := s.newTLSRun(e, s.eaptls)
	if err := r.tc.Handshake(); err != nil {
		if r.certErr != nil {
			return fail("tls: client certificate refused: %v", r.certErr)
		}
		return fail("tls: tls handshake: %v", err)
	}
	cs := r.tc.ConnectionState()
	var msk []byte
	var err error
	if cs.Version == tls.VersionTLS13 {
		// RFC 9190 section 2.5: the commitment message, one byte 0x00 of application data.
		if _, err := r.tc.Write([]byte{0}); err != nil {
			return fail("tls: write commitment message: %v", err)
		}
		if _, err := e.exchange(); err != nil {
			return fail("tls: wait for final acknowledgement: %v", err)
		}
		msk, err = r.export(labelEAPTLS13, []byte{typeTLS}, 128)
	} else {
		if len(e.outbuf) > 0 {
			if _, err := e.exchange(); err != nil {
				return fail("tls: wait for final acknowledgement: %v", err)
			}
		}
		msk, err = r.export(labelClientEAP, nil, 128)
	}
	if err != nil {
		return fail("tls: %v", err)
	}
	if len(e.inbuf) > 0 {
		return fail("tls: peer sent data instead of acknowledging the handshake")
	}
	return outcome{ok: true, identity: r.certID, method: "tls", msk: msk[:64], resumed: cs.DidResume}
}

// ---- PEAPv0 with EAP-MSCHAPv2 ----

// peapWrite sends a tunnelled EAP-Request; PEAPv0 strips the EAP header except for the
// Extensions (result TLV) method.
func (r *tlsRun) peapWrite(typ uint8, data ...[]byte) error {
	r.innerID++
	var b []byte
	if typ == typeExtensions {
		b = buildRequest(r.innerID, typ, data...)
	} else {
		b = append([]byte{typ}, bytes.Join(data, nil)...)
	}
	if _, err := r.tc.Write(b); err != nil {
		return fmt.Errorf("write tunnelled request: %w", err)
	}
	return nil
}

// peapRead reads a tunnelled EAP-Response, with or without its header, returning type and data.
func (r *tlsRun) peapRead() (uint8, []byte, error) {
	b, err := r.readInner()
	if err != nil {
		return 0, nil, err
	}
	if len(b) >= 5 && b[0] == codeResponse && int(binary.BigEndian.Uint16(b[2:4])) == len(b) {
		return b[4], b[5:], nil
	}
	if len(b) == 0 {
		return 0, nil, errors.New("empty tunnelled response")
	}
	return b[0], b[1:], nil
}

// peapResult sends the Result TLV and reads the peer's; it returns an error unless both say success.
func (r *tlsRun) peapResult(ok bool) error {
	status := byte(peapResultFailed)
	if ok {
		status = peapResultOK
	}
	if err := r.peapWrite(typeExtensions, []byte{0x80, 0x03, 0x00, 0x02, 0x00, status}); err != nil {
		return err
	}
	typ, data, err := r.peapRead()
	if err != nil {
		return err
	}
	if typ != typeExtensions {
		return fmt.Errorf("peer answered the result TLV with type %d", typ)
	}
	for len(data) >= 4 {
		t := binary.BigEndian.Uint16(data) & 0x3fff
		l := int(binary.BigEndian.Uint16(data[2:]))
		if 4+l > len(data) {
			break
		}
		if t == 3 && l == 2 {
			if data[5] != peapResultOK {
				return errors.New("peer's result TLV says failure")
			}
			if !ok {
				return errors.New("result TLV failure sent")
			}
			return nil
		}
		data = data[4+l:]
	}
	return errors.New("peer's extensions response has no result TLV")
}

func (s *Server) runPEAP(e *engine) outcome {
	r := s.newTLSRun(e, s.tunnel)
	if err := r.handshake(); err != nil {
		return fail("peap: %v", err)
	}
	msk, err := r.export(labelClientEAP, nil, 128)
	if err != nil {
		return fail("peap: %v", err)
	}
	msk = msk[:64]
	cs := r.tc.ConnectionState()
	if cs.DidResume {
		if ent, ok := s.sessions.get(r.resumedID); ok && ent.method == "peap" {
			// Fast reconnect: skip phase 2, but the member must still be allowed.
			if _, err := s.auth.NTHash(e.ctx, ent.identity); err != nil {
				_ = r.peapResult(false)
				return fail("peap: resumed session for %q: %v", ent.identity, err)
			}
			if err := r.peapResult(true); err != nil {
				return fail("peap: resumed session for %q: %v", ent.identity, err)
			}
			s.sessions.put(r.ticketID, ent.identity, "peap")
			return outcome{ok: true, identity: ent.identity, method: "peap", msk: msk, resumed: true}
		}
	}
	if err := r.peapWrite(typeIdentity); err != nil {
		return fail("peap: %v", err)
	}
	typ, data, err := r.peapRead()
	if err != nil {
		return fail("peap: inner identity: %v", err)
	}
	if typ != typeIdentity {
		return fail("peap: peer answered the inner identity request with type %d", typ)
	}
	identity := string(data)
	ok, reason := r.peapMSCHAPv2(identity)
	if !ok {
		_ = r.peapResult(false)
		return fail("peap: %q: %s", identity, reason)
	}
	if err := r.peapResult(true); err != nil {
		return fail("peap: %q: %v", identity, err)
	}
	s.sessions.put(r.ticketID, identity, "peap")
	return outcome{ok: true, identity: identity, method: "peap", msk: msk, resumed: cs.DidResume}
}

// mschapHeader builds OpCode, MS-CHAPv2-ID and MS-Length.
func mschapHeader(op, id uint8, rest int) []byte {
	return []byte{op, id, byte((4 + rest) >> 8), byte(4 + rest)}
}

// peapMSCHAPv2 runs inner EAP-MSCHAPv2; on failure it has already sent the MS-CHAPv2 failure.
func (r *tlsRun) peapMSCHAPv2(identity string) (bool, string) {
	var chal [17]byte // 16-byte challenge, then the MS-CHAPv2-ID
	if _, err := rand.Read(chal[:]); err != nil {
		return false, fmt.Sprintf("challenge: %v", err)
	}
	auth, msid := chal[:16], chal[16]
	body := append([]byte{16}, auth...)
	body = append(body, serverName...)
	if err := r.peapWrite(typeMSCHAPv2, mschapHeader(1, msid, len(body)), body); err != nil {
		return false, err.Error()
	}
	typ, data, err := r.peapRead()
	if err != nil {
		return false, "mschapv2 response: " + err.Error()
	}
	if typ == typeNak {
		return false, fmt.Sprintf("peer refused inner EAP-MSCHAPv2 (asked for %v)", data)
	}
	if typ != typeMSCHAPv2 || len(data) < 4+1+49 || data[0] != 2 || data[4] != 49 {
		return false, "malformed MS-CHAPv2 response"
	}
	resp := data[5 : 5+49]
	name := string(data[5+49:])
	peerChal, nt := resp[:16], resp[24:48]
	hash, err := r.s.auth.NTHash(r.e.ctx, identity)
	var authResp string
	ok := false
	reason := ""
	if err != nil {
		reason = err.Error()
	} else if authResp, ok = verifyMSCHAPv2(auth, peerChal, nt, name, hash); !ok {
		reason = "wrong password"
	}
	if !ok {
		msg := fmt.Sprintf("E=691 R=0 C=%X V=3 M=Authentication failed", auth)
		if err := r.peapWrite(typeMSCHAPv2, mschapHeader(4, msid, len(msg)), []byte(msg)); err != nil {
			return false, reason
		}
		_, _, _ = r.peapRead() // the peer's failure acknowledgement
		return false, reason
	}
	msg := authResp + " M=OK"
	if err := r.peapWrite(typeMSCHAPv2, mschapHeader(3, msid, len(msg)), []byte(msg)); err != nil {
		return false, err.Error()
	}
	typ, data, err = r.peapRead()
	if err != nil {
		return false, "mschapv2 success acknowledgement: " + err.Error()
	}
	if typ != typeMSCHAPv2 || len(data) < 1 || data[0] != 3 {
		return false, "peer did not acknowledge MS-CHAPv2 success"
	}
	return true, ""
}

// ---- EAP-TTLS (RFC 5281) ----

const (
	avpUserName      = 1
	avpUserPassword  = 2
	vendorMicrosoft  = 311
	avpMSCHAPChall   = 11
	avpMSCHAP2Resp   = 25
	avpMSCHAP2Succ   = 26
	avpFlagVendor    = 0x80
	avpFlagMandatory = 0x40
)

type avpKey struct {
	vendor uint32
	code   uint32
}

func parseAVPs(b []byte) (map[avpKey][]byte, error) {
	m := map[avpKey][]byte{}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errors.New("truncated AVP header")
		}
		code := binary.BigEndian.Uint32(b)
		flags := b[4]
		l := int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		hdr := 8
		var vendor uint32
		if flags&avpFlagVendor != 0 {
			if len(b) < 12 {
				return nil, errors.New("truncated vendor AVP header")
			}
			vendor = binary.BigEndian.Uint32(b[8:])
			hdr = 12
		}
		if l < hdr || l > len(b) {
			return nil, fmt.Errorf("AVP %d length %d out of range", code, l)
		}
		m[avpKey{vendor, code}] = b[hdr:l]
		l = (l + 3) &^ 3
		if l > len(b) {
			l = len(b)
		}
		b = b[l:]
	}
	return m, nil
}

func appendAVP(b []byte, vendor, code uint32, data []byte) []byte {
	hdr := 8
	flags := byte(avpFlagMandatory)
	if vendor != 0 {
		hdr = 12
		flags |= avpFlagVendor
	}
	l := hdr + len(data)
	b = binary.BigEndian.AppendUint32(b, code)
	b = append(b, flags, byte(l>>16), byte(l>>8), byte(l))
	if vendor != 0 {
		b = binary.BigEndian.AppendUint32(b, vendor)
	}
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (s *Server) runTTLS(e *engine) outcome {
	r := s.newTLSRun(e, s.tunnel)
	if err := r.handshake(); err != nil {
		return fail("ttls: %v", err)
	}
	msk, err := r.export(labelTTLSKeys, nil, 64)
	if err != nil {
		return fail("ttls: %v", err)
	}
	cs := r.tc.ConnectionState()
	if cs.DidResume && len(e.inbuf) == 0 {
		// The peer skipped phase 2 on resumption (RFC 5281 section 10.1).
		ent, ok := s.sessions.get(r.resumedID)
		if !ok || (ent.method != "ttls-pap" && ent.method != "ttls-mschapv2") {
			return fail("ttls: resumed session without a remembered inner identity")
		}
		if _, err := s.auth.NTHash(e.ctx, ent.identity); err != nil {
			return fail("ttls: resumed session for %q: %v", ent.identity, err)
		}
		s.sessions.put(r.ticketID, ent.identity, ent.method)
		return outcome{ok: true, identity: ent.identity, method: ent.method, msk: msk, resumed: true}
	}
	b, err := r.readInner()
	if err != nil {
		return fail("ttls: %v", err)
	}
	avps, err := parseAVPs(b)
	if err != nil {
		return fail("ttls: parse AVPs: %v", err)
	}
	identity := string(avps[avpKey{0, avpUserName}])
	method := ""
	switch {
	case avps[avpKey{0, avpUserPassword}] != nil:
		method = "ttls-pap"
		pw := bytes.TrimRight(avps[avpKey{0, avpUserPassword}], "\x00")
		hash, err := s.auth.NTHash(e.ctx, identity)
		if err != nil {
			return fail("ttls: %q: %v", identity, err)
		}
		if !creds.VerifyPassword(hash, string(pw)) {
			return fail("ttls: %q: wrong password", identity)
		}
	case avps[avpKey{vendorMicrosoft, avpMSCHAP2Resp}] != nil:
		method = "ttls-mschapv2"
		ch := avps[avpKey{vendorMicrosoft, avpMSCHAPChall}]
		resp := avps[avpKey{vendorMicrosoft, avpMSCHAP2Resp}]
		want, err := r.export(labelTTLSChall, nil, 17)
		if err != nil {
			return fail("ttls: %v", err)
		}
		if len(resp) != 50 || subtle.ConstantTimeCompare(ch, want[:16]) != 1 || resp[0] != want[16] {
			return fail("ttls: %q: MS-CHAP challenge or response malformed", identity)
		}
		hash, err := s.auth.NTHash(e.ctx, identity)
		if err != nil {
			return fail("ttls: %q: %v", identity, err)
		}
		authResp, ok := verifyMSCHAPv2(want[:16], resp[2:18], resp[26:50], identity, hash)
		if !ok {
			return fail("ttls: %q: wrong password", identity)
		}
		out := appendAVP(nil, vendorMicrosoft, avpMSCHAP2Succ, append([]byte{resp[0]}, authResp...))
		if _, err := r.tc.Write(out); err != nil {
			return fail("ttls: write MS-CHAP2-Success: %v", err)
		}
		if _, err := e.exchange(); err != nil {
			return fail("ttls: wait for acknowledgement: %v", err)
		}
	default:
		return fail("ttls: %q: unsupported inner authentication (want PAP or MS-CHAP-V2)", identity)
	}
	s.sessions.put(r.ticketID, identity, method)
	return outcome{ok: true, identity: identity, method: method, msk: msk, resumed: cs.DidResume}
}
