package eap

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

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
	tls13     bool                   // the tunnel runs TLS 1.3 (RFC 9427 key derivation)
	rbuf      *[maxInnerMessage]byte // readInner's buffer, reused for every tunnelled message of the login
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
			r.certID, r.certErr = s.auth.CertIdentity(e.ctx, cs.PeerCertificates[0], cs.VerifiedChains)
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

// unsupported fails a method the peer insists on that deskgate cannot verify from the NT hash.
func unsupported(format string, args ...any) outcome {
	return outcome{reason: fmt.Sprintf(format, args...), unsupported: true}
}

// handshake runs the TLS handshake of PEAP or TTLS. With TLS 1.2 after a full handshake it sends the
// server's final flight and waits for the peer's reply (an acknowledgement, or tunnelled data). With
// TLS 1.3 the server's flight went out before the peer's Finished, and the first tunnelled request
// that follows tells the peer the handshake is over: RFC 9427 uses no commitment message for these
// methods (the 0x00 byte is EAP-TLS's, RFC 9190 section 2.5).
func (r *tlsRun) handshake() error {
	if err := r.tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	r.tls13 = r.tc.ConnectionState().Version == tls.VersionTLS13
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

// keyMaterial exports the method's key material: with TLS 1.3 128 bytes of
// TLS-Exporter("EXPORTER_EAP_TLS_Key_Material", Type-Code, 128) (RFC 9427 section 2.1), with TLS 1.2 n
// bytes of the method's own PRF label (RFC 5216, RFC 5281). The MSK is its first 64 bytes.
func (r *tlsRun) keyMaterial(typ uint8, label12 string, n int) ([]byte, error) {
	if r.tls13 {
		return r.export(labelEAPTLS13, []byte{typ}, 128)
	}
	return r.export(label12, nil, n)
}

// readBufs are the runs' tunnelled-message buffers, shared between logins.
var readBufs = sync.Pool{New: func() any { return new([maxInnerMessage]byte) }}

// readInner reads the peer's next tunnelled message into the run's one read buffer: the bytes it
// returns (and slices of them) are valid until the next readInner, and not after the run's release.
func (r *tlsRun) readInner() ([]byte, error) {
	if r.rbuf == nil {
		r.rbuf = readBufs.Get().(*[maxInnerMessage]byte)
	}
	n, err := r.tc.Read(r.rbuf[:])
	if err != nil {
		return nil, fmt.Errorf("read tunnelled data: %w", err)
	}
	return r.rbuf[:n], nil
}

// release returns the read buffer; nothing of the run may use what readInner returned after it.
func (r *tlsRun) release() {
	if r.rbuf != nil {
		readBufs.Put(r.rbuf)
		r.rbuf = nil
	}
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

// ---- inner EAP methods (PEAP phase 2, TTLS EAP-Message) ----

// innerIO carries the tunnelled EAP conversation: PEAPv0 (EAP headers stripped) or TTLS (whole EAP
// packets in EAP-Message AVPs). read returns the response's type and type data.
type innerIO struct {
	write func(typ uint8, data ...[]byte) error
	read  func() (uint8, []byte, error)
}

// innerResult is the end of an inner EAP method.
type innerResult struct {
	ok          bool
	method      string // "mschapv2" | "gtc"
	reason      string
	unsupported bool
	isk         []byte // inner session key for PEAP's crypto binding (32 bytes; zero for GTC)
}

// innerAuth runs inner EAP-MSCHAPv2, or EAP-GTC when the peer NAKs MS-CHAPv2 and asks for GTC. Both
// are verified from the NT hash; a peer that asks only for other methods (EAP-MD5) is refused as
// unsupported.
func (r *tlsRun) innerAuth(io innerIO, identity string) innerResult {
	res, nak := r.innerMSCHAPv2(io, identity)
	if nak == nil {
		return res
	}
	if slices.Contains(nak, typeGTC) {
		return r.innerGTC(io, identity)
	}
	return innerUnsupported(nak)
}

func innerUnsupported(nak []byte) innerResult {
	return innerResult{unsupported: true, reason: fmt.Sprintf("unsupported_method: peer refused inner "+
		"EAP-MSCHAPv2 and EAP-GTC and asked for %s, which cannot be verified from the stored NT hash "+
		"(inner methods: MSCHAPV2, GTC)", typeNames(nak))}
}

// mschapHeader builds OpCode, MS-CHAPv2-ID and MS-Length.
func mschapHeader(op, id uint8, rest int) []byte {
	return []byte{op, id, byte((4 + rest) >> 8), byte(4 + rest)}
}

// innerMSCHAPv2 runs inner EAP-MSCHAPv2; on failure it has already sent the MS-CHAPv2 failure. A NAK
// returns the types the peer asked for instead.
func (r *tlsRun) innerMSCHAPv2(io innerIO, identity string) (innerResult, []byte) {
	var chal [17]byte // 16-byte challenge, then the MS-CHAPv2-ID
	if _, err := rand.Read(chal[:]); err != nil {
		return innerResult{reason: fmt.Sprintf("challenge: %v", err)}, nil
	}
	auth, msid := chal[:16], chal[16]
	body := append([]byte{16}, auth...)
	body = append(body, serverName...)
	if err := io.write(typeMSCHAPv2, mschapHeader(1, msid, len(body)), body); err != nil {
		return innerResult{reason: err.Error()}, nil
	}
	typ, data, err := io.read()
	if err != nil {
		return innerResult{reason: "mschapv2 response: " + err.Error()}, nil
	}
	if typ == typeNak {
		return innerResult{}, append([]byte{}, data...)
	}
	if typ != typeMSCHAPv2 || len(data) < 4+1+49 || data[0] != 2 || data[4] != 49 {
		return innerResult{reason: "malformed MS-CHAPv2 response"}, nil
	}
	resp := data[5 : 5+49]
	name := string(data[5+49:])
	peerChal, nt := resp[:16], resp[24:48]
	hash, err := r.s.auth.NTHash(r.e.ctx, identity)
	var authResp string
	var isk []byte
	ok := false
	reason := ""
	if err != nil {
		reason = err.Error()
	} else if authResp, ok = verifyMSCHAPv2(auth, peerChal, nt, name, hash); !ok {
		reason = "wrong password"
	}
	if ok {
		// The inner session key, now: nt points into the read buffer, which the next read reuses.
		isk = mschapv2MSK(hash, nt)
	} else {
		msg := fmt.Sprintf("E=691 R=0 C=%X V=3 M=Authentication failed", auth)
		if err := io.write(typeMSCHAPv2, mschapHeader(4, msid, len(msg)), []byte(msg)); err != nil {
			return innerResult{reason: reason}, nil
		}
		_, _, _ = io.read() // the peer's failure acknowledgement
		return innerResult{reason: reason}, nil
	}
	msg := authResp + " M=OK"
	if err := io.write(typeMSCHAPv2, mschapHeader(3, msid, len(msg)), []byte(msg)); err != nil {
		return innerResult{reason: err.Error()}, nil
	}
	typ, data, err = io.read()
	if err != nil {
		return innerResult{reason: "mschapv2 success acknowledgement: " + err.Error()}, nil
	}
	if typ != typeMSCHAPv2 || len(data) < 1 || data[0] != 3 {
		return innerResult{reason: "peer did not acknowledge MS-CHAPv2 success"}, nil
	}
	return innerResult{ok: true, method: "mschapv2", isk: isk}, nil
}

// innerGTC runs inner EAP-GTC (RFC 3748 section 5.6): the peer answers with its password (or, as some
// supplicants do, "RESPONSE=identity\0password"), checked against the NT hash.
func (r *tlsRun) innerGTC(io innerIO, identity string) innerResult {
	if err := io.write(typeGTC, []byte("Password: ")); err != nil {
		return innerResult{reason: err.Error()}
	}
	typ, data, err := io.read()
	if err != nil {
		return innerResult{reason: "gtc response: " + err.Error()}
	}
	if typ == typeNak {
		return innerUnsupported(data)
	}
	if typ != typeGTC {
		return innerResult{reason: fmt.Sprintf("peer answered the GTC request with type %d", typ)}
	}
	pw := data
	if rest, ok := bytes.CutPrefix(pw, []byte("RESPONSE=")); ok {
		if i := bytes.IndexByte(rest, 0); i >= 0 {
			pw = rest[i+1:]
		}
	}
	hash, err := r.s.auth.NTHash(r.e.ctx, identity)
	if err != nil {
		return innerResult{reason: err.Error()}
	}
	if !creds.VerifyPassword(hash, string(pw)) {
		return innerResult{reason: "wrong password"}
	}
	return innerResult{ok: true, method: "gtc", isk: make([]byte, 32)}
}

func typeNames(ts []byte) string {
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		switch t {
		case typeMD5:
			names = append(names, "EAP-MD5")
		case typeGTC:
			names = append(names, "EAP-GTC")
		case typeMSCHAPv2:
			names = append(names, "EAP-MSCHAPv2")
		case typeTLS:
			names = append(names, "EAP-TLS")
		case typeTTLS:
			names = append(names, "EAP-TTLS")
		case typePEAP:
			names = append(names, "PEAP")
		default:
			names = append(names, fmt.Sprintf("EAP type %d", t))
		}
	}
	if len(names) == 0 {
		return "no method"
	}
	return strings.Join(names, ", ")
}

// ---- PEAPv0 (MS-PEAP) with EAP-MSCHAPv2 or EAP-GTC, and crypto binding ----

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

// cryptoBinding is PEAP's compound key state (MS-PEAP 3.1.5.5): IPMK and CMK from the tunnel key TK
// (the first 60 bytes of the TLS key material) and the inner method's session key ISK.
type cryptoBinding struct {
	ipmk  []byte // 40 bytes
	cmk   []byte // 20 bytes
	nonce [32]byte
}

// newCryptoBinding derives IPMK|CMK = PRF+(TK[:40], "Inner Methods Compound Keys" | ISK, 60); on a
// fast reconnect (no inner method) IPMK|CMK = TK[:60], as Windows and wpa_supplicant do.
func newCryptoBinding(tk, isk []byte) (*cryptoBinding, error) {
	var imck []byte
	if isk == nil {
		imck = tk[:60]
	} else {
		imck = peapPRF(tk[:40], "Inner Methods Compound Keys", isk, 60)
	}
	cb := &cryptoBinding{ipmk: imck[:40], cmk: imck[40:60]}
	if _, err := rand.Read(cb.nonce[:]); err != nil {
		return nil, fmt.Errorf("crypto binding nonce: %w", err)
	}
	cb.nonce[31] &^= 1 // a request's nonce has its least significant bit clear
	return cb, nil
}

const (
	tlvResult        = 3
	tlvCryptoBinding = 12
	cbTLVLen         = 4 + 56
)

// mac is the Compound MAC: HMAC-SHA1(CMK, Crypto-Binding TLV with the MAC zeroed | EAP type 25).
func (cb *cryptoBinding) mac(tlv []byte) []byte {
	m := hmac.New(sha1.New, cb.cmk)
	m.Write(tlv[:cbTLVLen-20])
	m.Write(make([]byte, 20))
	m.Write([]byte{typePEAP})
	return m.Sum(nil)
}

// request builds the server's Crypto-Binding TLV (version 0, SubType 0 = request).
func (cb *cryptoBinding) request() []byte {
	b := []byte{0, tlvCryptoBinding, 0, 56, 0, 0, 0, 0}
	b = append(b, cb.nonce[:]...)
	b = append(b, make([]byte, 20)...)
	copy(b[cbTLVLen-20:], cb.mac(b))
	return b
}

// verify checks the peer's Crypto-Binding TLV response (the whole TLV, header included).
func (cb *cryptoBinding) verify(tlv []byte) error {
	if len(tlv) != cbTLVLen {
		return fmt.Errorf("crypto binding TLV of %d bytes", len(tlv))
	}
	if tlv[5] != 0 || tlv[7] != 1 {
		return fmt.Errorf("crypto binding version %d subtype %d, want 0 and 1 (response)", tlv[5], tlv[7])
	}
	nonce := tlv[8:40]
	if !bytes.Equal(nonce[:31], cb.nonce[:31]) || nonce[31]|1 != cb.nonce[31]|1 {
		return errors.New("crypto binding nonce is not ours")
	}
	if !hmac.Equal(tlv[40:60], cb.mac(tlv)) {
		return errors.New("crypto binding compound MAC does not verify (tunnel and inner method are not bound)")
	}
	return nil
}

// msk is the first 64 bytes of the compound session key CSK = PRF+(IPMK, "Session Key Generating
// Function" | 0x00, 128): the MSK once the peer has answered the crypto binding (MS-PEAP 3.1.5.7).
func (cb *cryptoBinding) msk() []byte {
	return peapPRF(cb.ipmk, "Session Key Generating Function", []byte{0}, 128)[:64]
}

// peapResult sends the Result TLV, with the Crypto-Binding TLV when cb is set, and reads the peer's
// answer; it returns an error unless both say success. bound reports that the peer answered the crypto
// binding (and its compound MAC verified), so the MSK is the compound one.
func (r *tlsRun) peapResult(ok bool, cb *cryptoBinding) (bound bool, err error) {
	status := byte(peapResultFailed)
	if ok {
		status = peapResultOK
	}
	tlvs := []byte{0x80, tlvResult, 0x00, 0x02, 0x00, status}
	if ok && cb != nil {
		tlvs = append(tlvs, cb.request()...)
	}
	if err := r.peapWrite(typeExtensions, tlvs); err != nil {
		return false, err
	}
	typ, data, err := r.peapRead()
	if err != nil {
		return false, err
	}
	if typ != typeExtensions {
		return false, fmt.Errorf("peer answered the result TLV with type %d", typ)
	}
	var result, binding []byte
	for len(data) >= 4 {
		t := binary.BigEndian.Uint16(data) & 0x3fff
		l := int(binary.BigEndian.Uint16(data[2:]))
		if 4+l > len(data) {
			break
		}
		switch t {
		case tlvResult:
			result = data[4 : 4+l]
		case tlvCryptoBinding:
			binding = data[:4+l]
		}
		data = data[4+l:]
	}
	if len(result) != 2 {
		return false, errors.New("peer's extensions response has no result TLV")
	}
	if result[1] != peapResultOK {
		return false, errors.New("peer's result TLV says failure")
	}
	if !ok {
		return false, errors.New("result TLV failure sent")
	}
	if binding != nil && cb != nil {
		if err := cb.verify(binding); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

func (s *Server) runPEAP(e *engine) (o outcome) {
	var identity string // the inner identity, once known: a failure names it for the audit trail
	defer func() {
		if !o.ok {
			o.identity = identity
		}
	}()
	r := s.newTLSRun(e, s.tunnel)
	defer r.release()
	if err := r.handshake(); err != nil {
		return fail("peap: %v", err)
	}
	keys, err := r.keyMaterial(typePEAP, labelClientEAP, 128)
	if err != nil {
		return fail("peap: %v", err)
	}
	tk, msk := keys[:60], keys[:64]
	cs := r.tc.ConnectionState()
	if cs.DidResume {
		if ent, ok := s.sessions.get(r.resumedID); ok && strings.HasPrefix(ent.method, "peap") {
			identity = ent.identity
			// Fast reconnect: skip phase 2, but the member must still be allowed.
			if _, err := s.auth.NTHash(e.ctx, ent.identity); err != nil {
				_, _ = r.peapResult(false, nil)
				return fail("peap: resumed session for %q: %v", ent.identity, err)
			}
			cb, err := newCryptoBinding(tk, nil)
			if err != nil {
				return fail("peap: %v", err)
			}
			bound, err := r.peapResult(true, cb)
			if err != nil {
				return fail("peap: resumed session for %q: %v", ent.identity, err)
			}
			if bound {
				msk = cb.msk()
			}
			s.sessions.put(r.ticketID, ent.identity, ent.method)
			return outcome{ok: true, identity: ent.identity, method: ent.method, msk: msk, resumed: true}
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
	identity = string(data)
	in := r.innerAuth(innerIO{write: r.peapWrite, read: r.peapRead}, identity)
	if !in.ok {
		_, _ = r.peapResult(false, nil)
		return outcome{reason: fmt.Sprintf("peap: %q: %s", identity, in.reason), unsupported: in.unsupported}
	}
	cb, err := newCryptoBinding(tk, in.isk)
	if err != nil {
		return fail("peap: %v", err)
	}
	bound, err := r.peapResult(true, cb)
	if err != nil {
		return fail("peap: %q: %v", identity, err)
	}
	if bound {
		msk = cb.msk()
	}
	method := "peap" // PEAP/EAP-MSCHAPv2 keeps its historical name
	if in.method != "mschapv2" {
		method = "peap-" + in.method
	}
	s.sessions.put(r.ticketID, identity, method)
	return outcome{ok: true, identity: identity, method: method, msk: msk, resumed: cs.DidResume}
}

// ---- EAP-TTLS (RFC 5281) ----

const (
	avpUserName      = 1
	avpUserPassword  = 2
	avpCHAPPassword  = 3
	avpEAPMessage    = 79
	vendorMicrosoft  = 311
	avpMSCHAPResp    = 1
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

// parseAVPs parses Diameter AVPs (RFC 5281 section 10); EAP-Message AVPs are concatenated.
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
		k := avpKey{vendor, code}
		if k == (avpKey{0, avpEAPMessage}) {
			m[k] = append(m[k], b[hdr:l]...)
		} else {
			m[k] = b[hdr:l]
		}
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

// ttlsWriteEAP sends a tunnelled EAP-Request in an EAP-Message AVP.
func (r *tlsRun) ttlsWriteEAP(typ uint8, data ...[]byte) error {
	r.innerID++
	if _, err := r.tc.Write(appendAVP(nil, 0, avpEAPMessage, buildRequest(r.innerID, typ, data...))); err != nil {
		return fmt.Errorf("write tunnelled EAP request: %w", err)
	}
	return nil
}

// ttlsReadEAP reads the peer's AVPs and returns the EAP-Response in their EAP-Message.
func (r *tlsRun) ttlsReadEAP() (uint8, []byte, error) {
	b, err := r.readInner()
	if err != nil {
		return 0, nil, err
	}
	avps, err := parseAVPs(b)
	if err != nil {
		return 0, nil, fmt.Errorf("parse AVPs: %w", err)
	}
	return innerEAPResponse(avps[avpKey{0, avpEAPMessage}])
}

func innerEAPResponse(msg []byte) (uint8, []byte, error) {
	if msg == nil {
		return 0, nil, errors.New("no EAP-Message AVP")
	}
	p, err := parsePacket(msg)
	if err != nil {
		return 0, nil, fmt.Errorf("tunnelled EAP: %w", err)
	}
	if p.code != codeResponse {
		return 0, nil, fmt.Errorf("tunnelled EAP code %d, want a response", p.code)
	}
	return p.typ, p.data, nil
}

func (s *Server) runTTLS(e *engine) (o outcome) {
	var identity string // the inner identity, once known: a failure names it for the audit trail
	defer func() {
		if !o.ok {
			o.identity = identity
		}
	}()
	r := s.newTLSRun(e, s.tunnel)
	defer r.release()
	if err := r.handshake(); err != nil {
		return fail("ttls: %v", err)
	}
	keys, err := r.keyMaterial(typeTTLS, labelTTLSKeys, 64)
	if err != nil {
		return fail("ttls: %v", err)
	}
	msk := keys[:64]
	cs := r.tc.ConnectionState()
	if cs.DidResume && len(e.inbuf) == 0 {
		// The peer skipped phase 2 on resumption (RFC 5281 section 10.1).
		ent, ok := s.sessions.get(r.resumedID)
		if !ok || !strings.HasPrefix(ent.method, "ttls-") {
			return fail("ttls: resumed session without a remembered inner identity")
		}
		identity = ent.identity
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
	identity = string(avps[avpKey{0, avpUserName}])
	method := ""
	switch {
	case avps[avpKey{0, avpEAPMessage}] != nil:
		// Inner EAP (RFC 5281 section 11.1): Identity, then EAP-MSCHAPv2 or EAP-GTC.
		typ, data, err := innerEAPResponse(avps[avpKey{0, avpEAPMessage}])
		if err != nil {
			return fail("ttls: inner EAP: %v", err)
		}
		if typ != typeIdentity {
			return fail("ttls: inner EAP starts with type %d, want Identity", typ)
		}
		identity = string(data)
		in := r.innerAuth(innerIO{write: r.ttlsWriteEAP, read: r.ttlsReadEAP}, identity)
		if !in.ok {
			return outcome{reason: fmt.Sprintf("ttls: %q: inner EAP: %s", identity, in.reason), unsupported: in.unsupported}
		}
		method = "ttls-eap-" + in.method
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
	case avps[avpKey{vendorMicrosoft, avpMSCHAPResp}] != nil:
		// MS-CHAPv1 (RFC 5281 section 11.2.3, RFC 2433): 8-byte implicit challenge, NT-Response from the
		// NT hash. Like PAP there is no tunnelled success message.
		method = "ttls-mschap"
		ch := avps[avpKey{vendorMicrosoft, avpMSCHAPChall}]
		resp := avps[avpKey{vendorMicrosoft, avpMSCHAPResp}]
		want, err := r.export(labelTTLSChall, nil, 9)
		if err != nil {
			return fail("ttls: %v", err)
		}
		if len(resp) != 50 || subtle.ConstantTimeCompare(ch, want[:8]) != 1 || resp[0] != want[8] {
			return fail("ttls: %q: MS-CHAP challenge or response malformed", identity)
		}
		if resp[1]&1 == 0 {
			return unsupported("ttls: %q: unsupported_method: MS-CHAP response without an NT-Response (LAN Manager only)", identity)
		}
		hash, err := s.auth.NTHash(e.ctx, identity)
		if err != nil {
			return fail("ttls: %q: %v", identity, err)
		}
		if !verifyMSCHAPv1(want[:8], resp[26:50], hash) {
			return fail("ttls: %q: wrong password", identity)
		}
	case avps[avpKey{0, avpCHAPPassword}] != nil:
		return unsupported("ttls: %q: unsupported_method: inner CHAP needs the cleartext password, which is "+
			"not stored (inner methods: PAP, MSCHAP, MSCHAPV2, EAP-MSCHAPV2, EAP-GTC)", identity)
	default:
		return unsupported("ttls: %q: unsupported_method: no inner authentication deskgate can verify "+
			"(inner methods: PAP, MSCHAP, MSCHAPV2, EAP-MSCHAPV2, EAP-GTC)", identity)
	}
	s.sessions.put(r.ticketID, identity, method)
	return outcome{ok: true, identity: identity, method: method, msk: msk, resumed: cs.DidResume}
}
