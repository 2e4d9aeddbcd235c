// Package eap is deskgate's EAP server for RADIUS (RFC 3579): EAP framing, conversations bound to the
// RADIUS State attribute, and the TLS-based methods PEAPv0 (inner EAP-MSCHAPv2 or EAP-GTC, with MS-PEAP
// crypto binding), EAP-TTLS (inner PAP, MS-CHAP, MS-CHAP-V2, or EAP-MSCHAPv2 and EAP-GTC) and EAP-TLS,
// over TLS 1.2 or TLS 1.3 (RFC 9427), with the MSK exported for MS-MPPE keys and TLS session resumption
// by tickets. Every inner method is verified from the NT hash; ones that need the cleartext password
// (CHAP, EAP-MD5) are refused as unsupported.
//
// The caller (the RADIUS server) reassembles EAP-Message attributes into Request.EAPMessage, calls
// Handle, and turns the Result into an Access-Challenge, Access-Accept or Access-Reject.
package eap

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/deskgate/deskgate/internal/rsasign"
)

// Action is what the RADIUS server answers.
type Action int

// The three RADIUS answers to an EAP request.
const (
	Challenge Action = iota + 1
	Accept
	Reject
)

func (a Action) String() string {
	switch a {
	case Challenge:
		return "Challenge"
	case Accept:
		return "Accept"
	case Reject:
		return "Reject"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	Methods          []string        // offered order, default ["peap","ttls","tls"] ("tls" only with ClientCAs)
	Certificate      tls.Certificate // server cert + chain + key
	ClientCAs        *x509.CertPool  // for EAP-TLS client certificates (deskgate's own CA)
	MaxConversations int             // default 4096; oldest evicted beyond it
	ConversationTTL  time.Duration   // default 30s idle
	FragmentSize     int             // default 1020, without a Framed-MTU; the caller passes Framed-MTU per request
	SessionTicketKey [32]byte        // TLS session resumption (tickets) for fast roaming; zero: random per process
	Now              func() time.Time
}

// Authenticator supplies credentials and access decisions to the EAP methods.
type Authenticator interface {
	// NTHash returns the NT hash for the inner identity, or an error when the identity is unknown or not
	// allowed (the error's text is the reason; the caller logs it). Called inside the tunnel before inner
	// success is sent, so a denied member fails cleanly inside PEAP/TTLS.
	NTHash(ctx context.Context, identity string) ([]byte, error)
	// CertIdentity maps a verified EAP-TLS client certificate to an identity, rejecting revoked ones.
	// chains are the chains the TLS stack verified it with against Config.ClientCAs (leaf first), so an
	// implementation need not check the issuer's signature again (certs.Authority.VerifiedCertIdentity).
	CertIdentity(ctx context.Context, cert *x509.Certificate, chains [][]*x509.Certificate) (string, error)
}

// Request is one Access-Request's EAP content. Handle keeps none of its slices after it returns, so
// they may alias the caller's packet buffer.
type Request struct {
	EAPMessage []byte // reassembled from the EAP-Message attributes
	State      []byte
	FramedMTU  int
	UserName   string
	NASKey     string // e.g. NAS name + Calling-Station-Id, scopes State
}

// Result is the answer to one Request.
type Result struct {
	Action     Action // Challenge | Accept | Reject
	EAPMessage []byte // the EAP packet to send (the caller splits into 253-byte EAP-Message attributes)
	State      []byte // State attribute for a Challenge
	// Identity is the inner identity on Accept (the one that decides access). On a PEAP or TTLS Reject
	// it is the inner identity the peer claimed, when the tunnel got that far: unauthenticated, for
	// logs and the audit trail only.
	Identity string
	// Method is "peap" (PEAP/EAP-MSCHAPv2), "peap-gtc", "ttls-pap", "ttls-mschap", "ttls-mschapv2",
	// "ttls-eap-mschapv2", "ttls-eap-gtc" or "tls".
	Method string
	MSK    []byte // 64 bytes on Accept: MS-MPPE-Recv-Key = MSK[0:32], MS-MPPE-Send-Key = MSK[32:64]
	Reason string // on Reject, for logs/audit
	// Unsupported is set on a Reject because the peer insisted on a method deskgate cannot verify from
	// the NT hash (EAP-MD5, TTLS/CHAP, inner EAP-MD5); Reason names it (audit: unsupported_method).
	Unsupported bool
	Resumed     bool // on Accept: the TLS session was resumed from a ticket
}

// Stats are the server's counters.
type Stats struct {
	Live      int               // conversations in memory
	Evicted   uint64            // dropped because MaxConversations was reached
	Expired   uint64            // dropped after ConversationTTL idle
	Completed map[string]uint64 // successful authentications per Result.Method
	Rejected  uint64
	Resumed   uint64 // successful authentications on a resumed TLS session
}

// Server is the EAP server. It is safe for concurrent use.
type Server struct {
	cfg     Config
	auth    Authenticator
	log     *slog.Logger
	tunnel  *tls.Config // PEAP and TTLS: TLS 1.2 or 1.3
	eaptls  *tls.Config // EAP-TLS: client certificate required, TLS 1.2 or 1.3
	methods []uint8

	mu        sync.Mutex
	convs     map[string]*conversation
	lru       list.List // front = most recently used
	evicted   uint64
	expired   uint64
	completed map[string]uint64
	rejected  uint64
	resumed   uint64

	sessions *sessionCache
}

var methodTypes = map[string]uint8{"peap": typePEAP, "ttls": typeTTLS, "tls": typeTLS}

// New validates cfg and returns a Server.
func New(cfg Config, auth Authenticator, log *slog.Logger) (*Server, error) {
	if auth == nil {
		return nil, errors.New("eap: new server: nil Authenticator")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Methods) == 0 {
		cfg.Methods = []string{"peap", "ttls", "tls"}
		if cfg.ClientCAs == nil {
			cfg.Methods = cfg.Methods[:2] // EAP-TLS needs a CA for client certificates
		}
	}
	if cfg.MaxConversations <= 0 {
		cfg.MaxConversations = 4096
	}
	if cfg.ConversationTTL <= 0 {
		cfg.ConversationTTL = 30 * time.Second
	}
	if cfg.FragmentSize <= 0 {
		cfg.FragmentSize = 1020
	}
	if cfg.FragmentSize < minFragment {
		return nil, fmt.Errorf("eap: new server: FragmentSize %d below %d", cfg.FragmentSize, minFragment)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTicketKey == ([32]byte{}) {
		// A zero key would be public: anyone could mint tickets (for EAP-TLS, with a member's public
		// certificate). Use a random key; tickets then survive only this process.
		if _, err := rand.Read(cfg.SessionTicketKey[:]); err != nil {
			return nil, fmt.Errorf("eap: new server: session ticket key: %w", err)
		}
	}
	if len(cfg.Certificate.Certificate) == 0 || cfg.Certificate.PrivateKey == nil {
		return nil, errors.New("eap: new server: no server certificate")
	}
	s := &Server{
		cfg:       cfg,
		auth:      auth,
		log:       log,
		convs:     make(map[string]*conversation),
		completed: make(map[string]uint64),
		sessions:  newSessionCache(65536, 24*time.Hour, cfg.Now),
	}
	seen := map[uint8]bool{}
	for _, m := range cfg.Methods {
		t, ok := methodTypes[m]
		if !ok {
			return nil, fmt.Errorf("eap: new server: unknown method %q (want peap, ttls or tls)", m)
		}
		if seen[t] {
			return nil, fmt.Errorf("eap: new server: method %q listed twice", m)
		}
		seen[t] = true
		if t == typeTLS && cfg.ClientCAs == nil {
			return nil, errors.New("eap: new server: method tls needs ClientCAs")
		}
		s.methods = append(s.methods, t)
	}
	// The one private-key operation per full handshake: through OpenSSL
	// in the shipped build (internal/rsasign), for RSA keys.
	signer, err := rsasign.Wrap(cfg.Certificate.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("eap: new server: server key: %w", err)
	}
	serverCert := cfg.Certificate
	serverCert.PrivateKey = signer
	s.tunnel = &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS13,
		Time:         cfg.Now,
	}
	s.tunnel.SetSessionTicketKeys([][32]byte{sha256.Sum256(append([]byte("deskgate eap tunnel ticket"), cfg.SessionTicketKey[:]...))})
	s.eaptls = &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    cfg.ClientCAs,
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS13,
		Time:         cfg.Now,
	}
	s.eaptls.SetSessionTicketKeys([][32]byte{sha256.Sum256(append([]byte("deskgate eap-tls ticket"), cfg.SessionTicketKey[:]...))})
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Live:      len(s.convs),
		Evicted:   s.evicted,
		Expired:   s.expired,
		Completed: make(map[string]uint64, len(s.completed)),
		Rejected:  s.rejected,
		Resumed:   s.resumed,
	}
	for k, v := range s.completed {
		st.Completed[k] = v
	}
	return st
}

// newConversation registers a conversation, first dropping expired ones and evicting the least recently
// used ones beyond MaxConversations.
func (s *Server) newConversation(nasKey string) (*conversation, error) {
	state := make([]byte, 18)
	if _, err := rand.Read(state); err != nil {
		return nil, fmt.Errorf("eap: new conversation: state: %w", err)
	}
	state[0], state[1] = 'D', 'G'
	id := make([]byte, 1)
	_, _ = rand.Read(id)
	c := &conversation{state: state, nasKey: nasKey, id: id[0]}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	for len(s.convs) >= s.cfg.MaxConversations {
		old := s.lru.Back().Value.(*conversation)
		s.removeLocked(old)
		s.evicted++
	}
	c.lastSeen = now
	c.elem = s.lru.PushFront(c)
	s.convs[string(state)] = c
	return c, nil
}

// sweepLocked drops conversations idle longer than the TTL, oldest first.
func (s *Server) sweepLocked(now time.Time) {
	for e := s.lru.Back(); e != nil; {
		c := e.Value.(*conversation)
		if now.Sub(c.lastSeen) < s.cfg.ConversationTTL {
			return
		}
		prev := e.Prev()
		s.removeLocked(c)
		s.expired++
		e = prev
	}
}

func (s *Server) removeLocked(c *conversation) {
	if c.elem == nil {
		return
	}
	s.lru.Remove(c.elem)
	c.elem = nil
	delete(s.convs, string(c.state))
	c.shutdown()
}

// lookup finds the live conversation for a State and marks it used.
func (s *Server) lookup(state []byte, nasKey string) *conversation {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convs[string(state)]
	if c == nil || c.nasKey != nasKey {
		return nil
	}
	if now.Sub(c.lastSeen) >= s.cfg.ConversationTTL {
		s.removeLocked(c)
		s.expired++
		return nil
	}
	c.lastSeen = now
	s.lru.MoveToFront(c.elem)
	return c
}

func (s *Server) finish(c *conversation, r Result) Result {
	s.mu.Lock()
	s.removeLocked(c)
	switch r.Action {
	case Accept:
		s.completed[r.Method]++
		if r.Resumed {
			s.resumed++
		}
	case Reject:
		s.rejected++
	}
	s.mu.Unlock()
	return r
}

// Handle processes one Access-Request's EAP message and returns the answer: a Challenge carrying the
// next EAP request and the State to echo, or the final Accept (inner identity, method, MSK) or Reject
// (with its Reason; the caller logs it). An empty EAPMessage without State is an EAP-Start. A State is
// only valid with the NASKey it was issued to. Handle is safe for concurrent use; calls for one
// conversation are serialised.
func (s *Server) Handle(ctx context.Context, req Request) Result {
	if len(req.EAPMessage) == 0 && len(req.State) == 0 {
		// EAP-Start (RFC 3579 section 2.6.1): the NAS asks us to send the EAP-Request/Identity.
		c, err := s.newConversation(req.NASKey)
		if err != nil {
			return s.reject(ctx, 0, err.Error())
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.typ = typeIdentity
		r := c.request()
		c.last = r.EAPMessage
		r.State = c.state
		return r
	}
	p, err := parsePacket(req.EAPMessage)
	if err != nil {
		return s.reject(ctx, 0, fmt.Sprintf("malformed EAP-Message: %v", err))
	}
	if p.code != codeResponse {
		return s.reject(ctx, p.id, fmt.Sprintf("unexpected EAP code %d from peer", p.code))
	}
	var c *conversation
	if len(req.State) > 0 {
		c = s.lookup(req.State, req.NASKey)
	}
	if c == nil {
		if p.typ != typeIdentity {
			if len(req.State) > 0 {
				return s.reject(ctx, p.id, "unknown or expired State")
			}
			return s.reject(ctx, p.id, fmt.Sprintf("conversation must start with EAP-Response/Identity, got type %d", p.typ))
		}
		c, err = s.newConversation(req.NASKey)
		if err != nil {
			return s.reject(ctx, p.id, err.Error())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return s.reject(ctx, p.id, "conversation evicted")
	}
	r := s.step(ctx, c, p, req)
	switch r.Action {
	case Challenge:
		c.last = r.EAPMessage
		r.State = c.state
		return r
	case Accept:
		s.log.LogAttrs(ctx, slog.LevelDebug, "eap accept", slog.String("identity", r.Identity),
			slog.String("method", r.Method), slog.Bool("resumed", r.Resumed), slog.String("outer", c.outer),
			slog.String("user_name", req.UserName))
	default:
		s.log.LogAttrs(ctx, slog.LevelDebug, "eap reject", slog.String("reason", r.Reason),
			slog.Bool("unsupported", r.Unsupported), slog.String("outer", c.outer),
			slog.String("user_name", req.UserName))
	}
	return s.finish(c, r)
}

func (s *Server) reject(ctx context.Context, id uint8, reason string) Result {
	s.log.LogAttrs(ctx, slog.LevelDebug, "eap reject", slog.String("reason", reason))
	s.mu.Lock()
	s.rejected++
	s.mu.Unlock()
	return Result{Action: Reject, EAPMessage: buildFinal(codeFailure, id), Reason: reason}
}
