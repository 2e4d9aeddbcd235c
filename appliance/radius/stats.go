package radius

import (
	"sync/atomic"

	"layeh.com/radius"
)

// Stats are the server's packet counters. They are atomics bumped on the
// packet path (no allocation, no lock); Counters reads them for /metrics
// and the status.
type Stats struct {
	AuthRequests  atomic.Uint64 // datagrams read on the authentication port
	Accepts       atomic.Uint64
	Rejects       atomic.Uint64
	AcctRequests  atomic.Uint64 // datagrams read on the accounting port
	AcctResponses atomic.Uint64
	Duplicates    atomic.Uint64 // retransmissions answered from, or waiting on, the duplicate cache
	// Dropped counts datagrams dropped for any reason but an unknown
	// source, which UnknownSources counts.
	Dropped        atomic.Uint64
	UnknownSources atomic.Uint64
	AuditsDropped  atomic.Uint64

	requests  [numPorts][256]atomic.Uint64 // well-formed requests by port and code
	responses [256]atomic.Uint64           // replies sent (including duplicates answered) by code
	drops     [numDropReasons]atomic.Uint64
}

// Port is the server socket a request arrived on.
type Port uint8

// The server's ports.
const (
	PortAuth Port = iota
	PortAcct
	numPorts
)

func (p Port) String() string {
	if p == PortAcct {
		return "acct"
	}
	return "auth"
}

// DropReason is why a datagram got no answer.
type DropReason uint8

// Drop reasons. A datagram is counted under exactly one.
const (
	// DropMalformed: bad framing (short, bad length, attribute overrun,
	// repeated single attribute), oversized, or too many Proxy-State or
	// EAP-Message attributes.
	DropMalformed DropReason = iota
	// DropUnexpectedCode: a well-formed packet of a code the port does not
	// serve (an Access-Accept sent to the server, say).
	DropUnexpectedCode
	// DropUnknownClient: the source address (and NAS-Identifier) matches
	// no configured NAS.
	DropUnknownClient
	// DropBadAuthenticator: the Message-Authenticator, or an
	// Accounting-Request's Request Authenticator, does not verify under
	// the NAS's secret (wrong secret, or forged).
	DropBadAuthenticator
	// DropNoMessageAuthenticator: an Access-Request or Status-Server
	// without Message-Authenticator where one is required (BlastRADIUS).
	DropNoMessageAuthenticator
	// DropOverloaded: the accounting queue was full; the NAS retransmits.
	DropOverloaded
	// DropError: the answer could not be computed (directory or store
	// failure, reply too large, a bug); the NAS retransmits.
	DropError
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"malformed", "unexpected_code", "unknown_client", "bad_authenticator",
	"missing_message_authenticator", "overloaded", "error",
}

func (d DropReason) String() string {
	if d < numDropReasons {
		return dropReasonNames[d]
	}
	return "unknown"
}

// DropReasons lists every reason, in a fixed order.
func DropReasons() []DropReason {
	out := make([]DropReason, numDropReasons)
	for i := range out {
		out[i] = DropReason(i)
	}
	return out
}

func (s *Stats) drop(r DropReason) {
	s.drops[r].Add(1)
	if r != DropUnknownClient {
		s.Dropped.Add(1)
	} else {
		s.UnknownSources.Add(1)
	}
}

// Drops returns the number of datagrams dropped for reason r.
func (s *Stats) Drops(r DropReason) uint64 {
	if r >= numDropReasons {
		return 0
	}
	return s.drops[r].Load()
}

// Requests returns the number of well-formed requests of code read on port.
func (s *Stats) Requests(p Port, code byte) uint64 {
	if p >= numPorts {
		return 0
	}
	return s.requests[p][code].Load()
}

// CodeCount is one counter by RADIUS packet code.
type CodeCount struct {
	Port  string `json:"port,omitempty"`
	Code  string `json:"code"`
	Count uint64 `json:"count"`
}

// Counters is a snapshot of the counters for export.
type Counters struct {
	// Requests are the well-formed requests by port and code, codes with
	// none left out. Malformed datagrams have no trustworthy code: they
	// are under Drops["malformed"].
	Requests []CodeCount `json:"requests"`
	// Responses are the replies sent by code, duplicates answered
	// from the cache included.
	Responses []CodeCount `json:"responses"`
	// Drops has every reason, zeros included.
	Drops      map[string]uint64 `json:"drops"`
	Duplicates uint64            `json:"duplicates"`
}

// Counters reads the counters.
func (s *Stats) Counters() Counters {
	c := Counters{Drops: make(map[string]uint64, numDropReasons), Duplicates: s.Duplicates.Load()}
	for p := range numPorts {
		for code := range 256 {
			if n := s.requests[p][code].Load(); n > 0 {
				c.Requests = append(c.Requests, CodeCount{Port: p.String(), Code: codeName(byte(code)), Count: n})
			}
		}
	}
	for code := range 256 {
		if n := s.responses[code].Load(); n > 0 {
			c.Responses = append(c.Responses, CodeCount{Code: codeName(byte(code)), Count: n})
		}
	}
	for r := range numDropReasons {
		c.Drops[r.String()] = s.drops[r].Load()
	}
	return c
}

func codeName(c byte) string { return radius.Code(c).String() }
