package radius

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
)

// Attribute and vendor numbers used on the packet path. The names come
// from layeh.com/radius where it has them.
const (
	attrUserName         = byte(rfc2865.UserName_Type)
	attrUserPassword     = byte(rfc2865.UserPassword_Type)
	attrCHAPPassword     = byte(rfc2865.CHAPPassword_Type)
	attrNASIPAddress     = byte(rfc2865.NASIPAddress_Type)
	attrFramedIPAddress  = byte(rfc2865.FramedIPAddress_Type)
	attrFilterID         = byte(rfc2865.FilterID_Type)
	attrReplyMessage     = byte(rfc2865.ReplyMessage_Type)
	attrClass            = byte(rfc2865.Class_Type)
	attrVendorSpecific   = byte(rfc2865.VendorSpecific_Type)
	attrSessionTimeout   = byte(rfc2865.SessionTimeout_Type)
	attrCalledStationID  = byte(rfc2865.CalledStationID_Type)
	attrCallingStationID = byte(rfc2865.CallingStationID_Type)
	attrNASIdentifier    = byte(rfc2865.NASIdentifier_Type)
	attrProxyState       = byte(rfc2865.ProxyState_Type)
	attrAcctStatusType   = byte(rfc2866.AcctStatusType_Type)
	attrAcctInputOctets  = byte(rfc2866.AcctInputOctets_Type)
	attrAcctOutputOctets = byte(rfc2866.AcctOutputOctets_Type)
	attrAcctSessionID    = byte(rfc2866.AcctSessionID_Type)
	attrAcctSessionTime  = byte(rfc2866.AcctSessionTime_Type)
	attrAcctTermCause    = byte(rfc2866.AcctTerminateCause_Type)
	attrAcctInputGiga    = byte(rfc2869.AcctInputGigawords_Type)
	attrAcctOutputGiga   = byte(rfc2869.AcctOutputGigawords_Type)
	attrEAPMessage       = byte(rfc2869.EAPMessage_Type)
	attrState            = byte(rfc2865.State_Type)
	attrFramedMTU        = byte(rfc2865.FramedMTU_Type)
	attrMessageAuth      = byte(rfc2869.MessageAuthenticator_Type)
	attrAcctInterim      = byte(rfc2869.AcctInterimInterval_Type)
	attrTunnelType       = 64
	attrTunnelMediumType = 65
	attrTunnelPrivGroup  = 81
	attrErrorCause       = 101

	vendorMicrosoft = 311
	vendorCisco     = 9
	vendorWISPr     = 14122
	vendorMikroTik  = 14988

	msCHAPResponse  = 1 // MS-CHAPv1 (RFC 2548 2.1.3)
	msCHAPChallenge = 11
	msCHAP2Response = 25
	msCHAP2Success  = 26
	msCHAPError     = 2
	msMPPESendKey   = 16
	msMPPERecvKey   = 17
	msMPPEEncPolicy = 7
	msMPPEEncTypes  = 8

	codeAccessRequest   = byte(radius.CodeAccessRequest)
	codeAccessAccept    = byte(radius.CodeAccessAccept)
	codeAccessReject    = byte(radius.CodeAccessReject)
	codeAccessChallenge = byte(radius.CodeAccessChallenge)
	codeAcctRequest     = byte(radius.CodeAccountingRequest)
	codeAcctResponse    = byte(radius.CodeAccountingResponse)
	codeStatusServer    = byte(radius.CodeStatusServer)
	codeDisconnectReq   = byte(radius.CodeDisconnectRequest)
	codeDisconnectACK   = byte(radius.CodeDisconnectACK)
	codeDisconnectNAK   = byte(radius.CodeDisconnectNAK)
	codeCoARequest      = byte(radius.CodeCoARequest)
	codeCoAACK          = byte(radius.CodeCoAACK)
	codeCoANAK          = byte(radius.CodeCoANAK)
	maxProxyStates      = 8
	maxEAPParts         = 24 // 24 × 253 bytes: more than any EAP packet a 4096-byte RADIUS packet holds
	maxPacketLen        = radius.MaxPacketLength
	acctStatusStart     = 1
	acctStatusStop      = 2
	acctStatusInterim   = 3
	acctStatusOn        = 7
	acctStatusOff       = 8
)

var (
	errShort      = errors.New("packet shorter than 20 bytes")
	errLength     = errors.New("bad length field")
	errAttrLength = errors.New("attribute overruns packet")
	errDupAttr    = errors.New("repeated single-valued attribute")
	errMALength   = errors.New("message-authenticator not 16 bytes")
)

// request is a parsed RADIUS request. Byte slices alias the receive
// buffer; it allocates nothing, so the hot path stays cheap and a fuzzer
// can hammer it.
type request struct {
	raw  []byte // exactly the packet, per its length field
	code byte
	id   byte

	userName       []byte
	userPassword   []byte
	chapPassword   []byte
	msChallenge    []byte
	msCHAP2Resp    []byte
	msCHAP1Resp    []byte
	nasIdentifier  []byte
	calledStation  []byte
	callingStation []byte
	acctSessionID  []byte
	class          []byte
	nasIP          netip.Addr
	framedIP       netip.Addr
	eap            bool
	// eapParts are the EAP-Message attributes in order (reassembled by
	// the EAP path); state and framedMTU go with them.
	eapParts  [maxEAPParts][]byte
	nEAPParts int
	state     []byte
	framedMTU uint32
	maOff     int // offset of the Message-Authenticator value in raw, or -1

	proxyStates [maxProxyStates][]byte
	nProxy      int

	statusType   uint32
	inOctets     uint32
	outOctets    uint32
	inGiga       uint32
	outGiga      uint32
	sessionTime  uint32
	termCause    uint32
	haveTermCaus bool
}

func (r *request) authenticator() []byte { return r.raw[4:20] }

// parse fills r from b. It checks the framing only; authenticity is
// checked by the caller with the client's secret.
func (r *request) parse(b []byte) error {
	*r = request{maOff: -1}
	if len(b) < 20 {
		return errShort
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 20 || n > maxPacketLen || n > len(b) {
		return errLength
	}
	r.raw = b[:n]
	r.code = b[0]
	r.id = b[1]
	for i := 20; i < n; {
		if n-i < 2 {
			return errAttrLength
		}
		t, l := b[i], int(b[i+1])
		if l < 2 || i+l > n {
			return errAttrLength
		}
		v := b[i+2 : i+l]
		switch t {
		case attrUserName:
			if r.userName != nil {
				return errDupAttr
			}
			r.userName = v
		case attrUserPassword:
			if r.userPassword != nil {
				return errDupAttr
			}
			r.userPassword = v
		case attrCHAPPassword:
			r.chapPassword = v
		case attrNASIPAddress:
			if len(v) == 4 {
				r.nasIP = netip.AddrFrom4([4]byte(v))
			}
		case attrFramedIPAddress:
			if len(v) == 4 {
				r.framedIP = netip.AddrFrom4([4]byte(v))
			}
		case attrNASIdentifier:
			r.nasIdentifier = v
		case attrCalledStationID:
			r.calledStation = v
		case attrCallingStationID:
			r.callingStation = v
		case attrAcctSessionID:
			r.acctSessionID = v
		case attrClass:
			if r.class == nil {
				r.class = v
			}
		case attrProxyState:
			if r.nProxy < maxProxyStates {
				r.proxyStates[r.nProxy] = v
			}
			r.nProxy++
		case attrEAPMessage:
			r.eap = true
			if r.nEAPParts < maxEAPParts {
				r.eapParts[r.nEAPParts] = v
			}
			r.nEAPParts++
		case attrState:
			r.state = v
		case attrFramedMTU:
			r.framedMTU = u32(v)
		case attrMessageAuth:
			if r.maOff >= 0 {
				return errDupAttr
			}
			if len(v) != 16 {
				return errMALength
			}
			r.maOff = i + 2
		case attrAcctStatusType:
			r.statusType = u32(v)
		case attrAcctInputOctets:
			r.inOctets = u32(v)
		case attrAcctOutputOctets:
			r.outOctets = u32(v)
		case attrAcctInputGiga:
			r.inGiga = u32(v)
		case attrAcctOutputGiga:
			r.outGiga = u32(v)
		case attrAcctSessionTime:
			r.sessionTime = u32(v)
		case attrAcctTermCause:
			r.termCause = u32(v)
			r.haveTermCaus = true
		case attrVendorSpecific:
			if len(v) >= 6 && binary.BigEndian.Uint32(v[:4]) == vendorMicrosoft {
				if err := r.parseMicrosoft(v[4:]); err != nil {
					return err
				}
			}
		}
		i += l
	}
	return nil
}

func (r *request) parseMicrosoft(v []byte) error {
	for len(v) > 0 {
		if len(v) < 2 || int(v[1]) < 2 || int(v[1]) > len(v) {
			return errAttrLength
		}
		t, val := v[0], v[2:v[1]]
		switch t {
		case msCHAPChallenge:
			r.msChallenge = val
		case msCHAP2Response:
			r.msCHAP2Resp = val
		case msCHAPResponse:
			r.msCHAP1Resp = val
		}
		v = v[v[1]:]
	}
	return nil
}

func u32(v []byte) uint32 {
	if len(v) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

var zero16 [16]byte

// hmacMD5 is a reusable HMAC-MD5 keyed per call (RFC 2104), so the packet
// path allocates nothing.
type hmacMD5 struct {
	inner, outer hash.Hash
	ipad, opad   [64]byte
	sum          [16]byte
}

func newHMACMD5() *hmacMD5 { return &hmacMD5{inner: md5.New(), outer: md5.New()} }

func (h *hmacMD5) start(key []byte) {
	var k [64]byte
	if len(key) > 64 {
		s := md5.Sum(key)
		copy(k[:], s[:])
	} else {
		copy(k[:], key)
	}
	for i := range k {
		h.ipad[i] = k[i] ^ 0x36
		h.opad[i] = k[i] ^ 0x5c
	}
	h.inner.Reset()
	h.inner.Write(h.ipad[:])
}

func (h *hmacMD5) write(b []byte) { h.inner.Write(b) }

func (h *hmacMD5) finish() []byte {
	in := h.inner.Sum(h.sum[:0])
	h.outer.Reset()
	h.outer.Write(h.opad[:])
	h.outer.Write(in)
	return h.outer.Sum(h.sum[:0])
}

// crypt holds per-worker hash state.
type crypt struct {
	mac *hmacMD5
	md5 hash.Hash
	sum [16]byte
}

func newCrypt() *crypt { return &crypt{mac: newHMACMD5(), md5: md5.New()} }

// validMA checks the request's Message-Authenticator (RFC 3579 3.2). For
// accounting and CoA requests the authenticator field counts as zero
// (RFC 5080 2.2.2).
func (c *crypt) validMA(r *request, secret []byte) bool {
	if r.maOff < 0 {
		return false
	}
	c.mac.start(secret)
	if r.code == codeAccessRequest || r.code == codeStatusServer {
		c.mac.write(r.raw[:r.maOff])
	} else {
		c.mac.write(r.raw[:4])
		c.mac.write(zero16[:])
		c.mac.write(r.raw[20:r.maOff])
	}
	c.mac.write(zero16[:])
	c.mac.write(r.raw[r.maOff+16:])
	return subtle.ConstantTimeCompare(c.mac.finish(), r.raw[r.maOff:r.maOff+16]) == 1
}

// validAcctAuthenticator checks an Accounting-Request's Request
// Authenticator (RFC 2866 3).
func (c *crypt) validAcctAuthenticator(raw, secret []byte) bool {
	c.md5.Reset()
	c.md5.Write(raw[:4])
	c.md5.Write(zero16[:])
	c.md5.Write(raw[20:])
	c.md5.Write(secret)
	return subtle.ConstantTimeCompare(c.md5.Sum(c.sum[:0]), raw[4:20]) == 1
}

// papPassword decrypts User-Password (RFC 2865 5.2) into dst.
func (c *crypt) papPassword(dst, enc, secret, reqAuth []byte) ([]byte, bool) {
	if len(enc) < 16 || len(enc) > 128 || len(enc)%16 != 0 {
		return nil, false
	}
	dst = dst[:0]
	prev := reqAuth
	for i := 0; i < len(enc); i += 16 {
		c.md5.Reset()
		c.md5.Write(secret)
		c.md5.Write(prev)
		b := c.md5.Sum(c.sum[:0])
		for j := 0; j < 16; j++ {
			dst = append(dst, enc[i+j]^b[j])
		}
		prev = enc[i : i+16]
	}
	for len(dst) > 0 && dst[len(dst)-1] == 0 {
		dst = dst[:len(dst)-1]
	}
	return dst, true
}

// replyWriter builds a reply in place: header, Message-Authenticator
// first, then attributes; sign fills both authenticators.
type replyWriter struct {
	b   []byte
	err bool
}

func (w *replyWriter) reset(buf []byte, code, id byte, reqAuth []byte) {
	w.err = false
	w.b = append(buf[:0], code, id, 0, 0)
	w.b = append(w.b, reqAuth...)
	w.b = append(w.b, attrMessageAuth, 18)
	w.b = append(w.b, zero16[:]...)
}

func (w *replyWriter) attr(t byte, v []byte) {
	if len(v) > 253 || len(w.b)+2+len(v) > maxPacketLen {
		w.err = true
		return
	}
	w.b = append(w.b, t, byte(2+len(v)))
	w.b = append(w.b, v...)
}

func (w *replyWriter) str(t byte, s string) {
	if len(s) > 253 || len(w.b)+2+len(s) > maxPacketLen {
		w.err = true
		return
	}
	w.b = append(w.b, t, byte(2+len(s)))
	w.b = append(w.b, s...)
}

func (w *replyWriter) integer(t byte, v uint32) {
	w.b = append(w.b, t, 6)
	w.b = binary.BigEndian.AppendUint32(w.b, v)
}

func (w *replyWriter) vendor(vendor uint32, t byte, v []byte) {
	if len(v) > 247 || len(w.b)+8+len(v) > maxPacketLen {
		w.err = true
		return
	}
	w.b = append(w.b, attrVendorSpecific, byte(8+len(v)))
	w.b = binary.BigEndian.AppendUint32(w.b, vendor)
	w.b = append(w.b, t, byte(2+len(v)))
	w.b = append(w.b, v...)
}

// How sign fills the authenticators.
type signMode int

const (
	// signReply: Access-Accept/Reject/Challenge, Disconnect and CoA
	// ACK/NAK. Message-Authenticator over the packet with the request's
	// authenticator in place (RFC 3579 3.2), then the Response Authenticator.
	signReply signMode = iota
	// signAcctReply: Accounting-Response. Message-Authenticator over the
	// packet with a zero authenticator, as FreeRADIUS computes and checks it.
	signAcctReply
	// signRequest: Accounting, Disconnect and CoA requests we originate:
	// zero authenticator for Message-Authenticator, then the Request
	// Authenticator (RFC 5176 3.3).
	signRequest
)

// sign computes Message-Authenticator (the first attribute) and then the
// packet's authenticator. w.b must hold the request authenticator (zero
// for signRequest).
func (w *replyWriter) sign(c *crypt, secret []byte, mode signMode) []byte {
	b := w.b
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	var reqAuth [16]byte
	copy(reqAuth[:], b[4:20])
	if mode == signAcctReply {
		clear(b[4:20])
	}
	c.mac.start(secret)
	c.mac.write(b)
	copy(b[22:38], c.mac.finish())
	copy(b[4:20], reqAuth[:])
	c.md5.Reset()
	c.md5.Write(b[:4])
	c.md5.Write(b[4:20])
	c.md5.Write(b[20:])
	c.md5.Write(secret)
	copy(b[4:20], c.md5.Sum(c.sum[:0]))
	return b
}
