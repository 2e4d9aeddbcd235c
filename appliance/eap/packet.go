package eap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EAP codes (RFC 3748 section 4).
const (
	codeRequest  = 1
	codeResponse = 2
	codeSuccess  = 3
	codeFailure  = 4
)

// EAP method types.
const (
	typeIdentity     = 1
	typeNotification = 2
	typeNak          = 3
	typeMD5          = 4 // EAP-MD5: needs the cleartext password, never offered
	typeGTC          = 6
	typeTLS          = 13
	typeTTLS         = 21
	typePEAP         = 25
	typeMSCHAPv2     = 26
	typeExtensions   = 33 // PEAP's EAP-TLV / extensions method
)

// packet is one parsed EAP packet.
type packet struct {
	code uint8
	id   uint8
	typ  uint8  // only for Request/Response
	data []byte // type data, after the type byte
}

var errShortPacket = errors.New("eap: packet too short")

// parsePacket parses one EAP packet; trailing bytes beyond the EAP length are ignored (RFC 3748 4.1).
func parsePacket(b []byte) (packet, error) {
	if len(b) < 4 {
		return packet{}, errShortPacket
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 4 || n > len(b) {
		return packet{}, fmt.Errorf("eap: length field %d does not fit %d bytes", n, len(b))
	}
	p := packet{code: b[0], id: b[1]}
	switch p.code {
	case codeRequest, codeResponse:
		if n < 5 {
			return packet{}, errShortPacket
		}
		p.typ = b[4]
		p.data = b[5:n]
	case codeSuccess, codeFailure:
	default:
		return packet{}, fmt.Errorf("eap: unknown code %d", p.code)
	}
	return p, nil
}

// buildRequest builds an EAP-Request of the given type.
func buildRequest(id, typ uint8, data ...[]byte) []byte {
	n := 5
	for _, d := range data {
		n += len(d)
	}
	b := make([]byte, 5, n)
	b[0], b[1] = codeRequest, id
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	b[4] = typ
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// buildFinal builds an EAP-Success or EAP-Failure.
func buildFinal(code, id uint8) []byte {
	return []byte{code, id, 0, 4}
}

// SplitEAPMessage splits an EAP packet into chunks of at most 253 bytes, one per RADIUS EAP-Message
// attribute (RFC 3579 section 3.1). The chunks share p's backing array.
func SplitEAPMessage(p []byte) [][]byte {
	const max = 253
	out := make([][]byte, 0, (len(p)+max-1)/max)
	for len(p) > max {
		out = append(out, p[:max:max])
		p = p[max:]
	}
	if len(p) > 0 {
		out = append(out, p)
	}
	return out
}
