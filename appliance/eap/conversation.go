package eap

import (
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// EAP-TLS/PEAP/TTLS flags (RFC 5216 section 3.1).
const (
	flagLength = 0x80
	flagMore   = 0x40
	flagStart  = 0x20
)

const (
	minFragment   = 64
	maxTLSMessage = 64 << 10 // reassembled TLS message cap
	// mtuOverhead is what Framed-MTU must leave room for around TLS data: EAPOL header (4), EAP header
	// with type (5), flags (1) and TLS Message Length (4).
	mtuOverhead = 14
	// maxFramedMTU caps the Framed-MTU a NAS announces (an Ethernet
	// frame's payload).
	maxFramedMTU = 1500
)

type stage int

const (
	stageStart stage = iota // method Start sent, waiting for the first TLS message or a NAK
	stageTLS                // TLS exchange running
)

// conversation is one EAP authentication in progress.
type conversation struct {
	state  []byte
	nasKey string

	// guarded by Server.mu
	elem     *list.Element
	lastSeen time.Time

	closed   atomic.Bool
	shutOnce sync.Once
	eng      atomic.Pointer[engine]

	mu    sync.Mutex // serialises Handle calls for this conversation; guards the fields below
	outer string
	id    uint8  // identifier of the last request sent
	last  []byte // last request sent, for retransmissions
	typ   uint8  // current method type
	tried []uint8
	stage stage

	in      []byte // inbound TLS message being reassembled
	out     []byte // outbound TLS message remaining
	outLen  int    // length of the whole outbound message (for the L field)
	outSent bool   // a fragment of out was sent
}

// shutdown stops the conversation's TLS engine, if any.
func (c *conversation) shutdown() {
	c.shutOnce.Do(func() {
		c.closed.Store(true)
		if e := c.eng.Load(); e != nil {
			e.close(&c.mu)
		}
	})
}

// fragmentSize is the TLS data per EAP request. Without a Framed-MTU it is
// the configured size; with one, what the NAS's link carries (up to an
// Ethernet MTU), so the server's first flight (an RSA-2048 certificate
// and key exchange come to about 1.3 KB) fits one round trip instead of two.
func (s *Server) fragmentSize(mtu int) int {
	f := s.cfg.FragmentSize
	if mtu > 0 {
		f = min(mtu, maxFramedMTU) - mtuOverhead
	}
	return max(f, minFragment)
}

func (c *conversation) reject(id uint8, format string, args ...any) Result {
	return Result{Action: Reject, EAPMessage: buildFinal(codeFailure, id), Reason: fmt.Sprintf(format, args...)}
}

func (c *conversation) request(data ...[]byte) Result {
	c.id++
	return Result{Action: Challenge, EAPMessage: buildRequest(c.id, c.typ, data...)}
}

// step advances the conversation by one peer response. Called with c.mu held.
func (s *Server) step(ctx context.Context, c *conversation, p packet, req Request) Result {
	if c.last == nil {
		// New conversation: p is the EAP-Response/Identity.
		c.outer = string(p.data)
		return s.startMethod(c, s.methods[0])
	}
	if p.id != c.id {
		// A retransmitted response to an earlier request: repeat our last request.
		return Result{Action: Challenge, EAPMessage: c.last}
	}
	if c.typ == typeIdentity {
		// The answer to our EAP-Request/Identity after an EAP-Start.
		if p.typ != typeIdentity {
			return c.reject(p.id, "peer answered the identity request with type %d", p.typ)
		}
		c.outer = string(p.data)
		return s.startMethod(c, s.methods[0])
	}
	if p.typ == typeNak {
		if c.stage != stageStart {
			return c.reject(p.id, "peer sent a NAK after the method started")
		}
		for _, t := range s.methods {
			if !slices.Contains(c.tried, t) && slices.Contains(p.data, t) {
				return s.startMethod(c, t)
			}
		}
		why := "which this server does not offer"
		if slices.Contains(p.data, typeMD5) || slices.Contains(p.data, typeGTC) {
			why = "which cannot be verified from the stored NT hash (EAP-MD5, and EAP-GTC outside a tunnel, need the cleartext password)"
		}
		r := c.reject(p.id, "unsupported_method: peer refused every offered method (%s) and asked for %s, %s",
			typeNames(s.methods), typeNames(p.data), why)
		r.Unsupported = true
		return r
	}
	if p.typ != c.typ {
		return c.reject(p.id, "peer answered type %d to a type %d request", p.typ, c.typ)
	}
	return s.tlsStep(ctx, c, p, req)
}

func (s *Server) startMethod(c *conversation, t uint8) Result {
	c.typ = t
	c.tried = append(c.tried, t)
	c.stage = stageStart
	return c.request([]byte{flagStart}) // PEAP and TTLS version 0
}

// tlsStep handles one EAP-TLS-framed response: fragment acknowledgements both ways, reassembly, and
// feeding complete messages to the TLS engine.
func (s *Server) tlsStep(ctx context.Context, c *conversation, p packet, req Request) Result {
	if len(p.data) < 1 {
		return c.reject(p.id, "empty %s response", typeName(c.typ))
	}
	flags, data := p.data[0], p.data[1:]
	if flags&flagLength != 0 {
		if len(data) < 4 {
			return c.reject(p.id, "truncated TLS Message Length")
		}
		if n := binary.BigEndian.Uint32(data); n > maxTLSMessage {
			return c.reject(p.id, "peer announced a %d-byte TLS message", n)
		}
		data = data[4:]
	}
	frag := s.fragmentSize(req.FramedMTU)
	if len(c.out) > 0 {
		if len(data) != 0 || flags&flagMore != 0 {
			return c.reject(p.id, "peer sent data instead of acknowledging our fragment")
		}
		return c.sendOut(frag)
	}
	c.in = append(c.in, data...)
	if len(c.in) > maxTLSMessage {
		return c.reject(p.id, "peer's TLS message exceeds %d bytes", maxTLSMessage)
	}
	if flags&flagMore != 0 {
		return c.request([]byte{0}) // acknowledge the fragment
	}
	msg := c.in
	c.in = nil
	e := c.eng.Load()
	if e == nil {
		if len(msg) == 0 {
			return c.reject(p.id, "peer sent no TLS data after Start")
		}
		e = newEngine()
		e.start(ctx, msg, s.runner(c))
		c.eng.Store(e)
		if c.closed.Load() {
			e.close(&c.mu)
			return c.reject(p.id, "conversation evicted")
		}
		c.stage = stageTLS
	} else if err := e.feed(ctx, msg); err != nil {
		return c.reject(p.id, "%s: feed TLS engine: %v", typeName(c.typ), err)
	}
	st, err := e.wait(ctx)
	if err != nil {
		return c.reject(p.id, "%s: wait for TLS engine: %v", typeName(c.typ), err)
	}
	if st.done {
		r := st.res
		if !r.ok {
			res := c.reject(p.id, "%s", r.reason)
			res.Unsupported, res.Identity = r.unsupported, r.identity
			return res
		}
		return Result{Action: Accept, EAPMessage: buildFinal(codeSuccess, p.id), Identity: r.identity,
			Method: r.method, MSK: r.msk, Resumed: r.resumed}
	}
	if len(st.out) == 0 {
		return c.request([]byte{0})
	}
	c.out, c.outLen, c.outSent = st.out, len(st.out), false
	return c.sendOut(frag)
}

// sendOut sends the next fragment of the pending outbound TLS message.
func (c *conversation) sendOut(frag int) Result {
	n := min(frag, len(c.out))
	var hdr []byte
	switch {
	case n < len(c.out) && !c.outSent:
		hdr = binary.BigEndian.AppendUint32([]byte{flagLength | flagMore}, uint32(c.outLen))
	case n < len(c.out):
		hdr = []byte{flagMore}
	default:
		hdr = []byte{0}
	}
	chunk := c.out[:n]
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
	}
	c.outSent = true
	return c.request(hdr, chunk)
}

func typeName(t uint8) string {
	switch t {
	case typePEAP:
		return "peap"
	case typeTTLS:
		return "ttls"
	case typeTLS:
		return "tls"
	}
	return fmt.Sprintf("type %d", t)
}
