package radius

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// Server is the RADIUS authentication and accounting server.
type Server struct {
	cfg      Config
	dir      Directory
	sessions SessionStore
	pool     IPPool
	audit    Auditor
	log      *slog.Logger
	now      func() time.Time

	clients atomic.Pointer[clientTable]

	mu        sync.Mutex
	authConns []authSocket
	acctConns []*net.UDPConn

	unknown  sourceLimiter // unknown sources, logged once a minute each
	badAuth  sourceLimiter // bad authenticators, logged once a minute per source
	authDup  *dedupCache
	acctDup  *dedupCache
	idx      *sessionIndex
	audits   chan model.AuditEntry
	acctQ    chan acctPacket
	stats    Stats
	loaded   atomic.Bool
	coaTries []time.Duration
	// panicOnBug lets a panic on the packet path propagate (tests, fuzzing)
	// instead of dropping the packet.
	panicOnBug bool
}

// authSocket is an authentication socket: on Linux one the server owns
// outside the runtime's poller (see rawUDP), elsewhere a *net.UDPConn.
type authSocket interface {
	LocalAddr() net.Addr
	Close() error
}

// acctWorkers bounds concurrent accounting requests, and so the size of a
// bbolt batch.
const acctWorkers = 1024

// worker is per-goroutine scratch state for the packet path.
type worker struct {
	buf   []byte
	out   []byte
	pw    []byte
	req   request
	c     *crypt
	w     replyWriter
	attrs []attr
	arena []byte
}

func newWorker() *worker {
	return &worker{
		buf:   make([]byte, maxPacketLen+1),
		out:   make([]byte, 0, maxPacketLen),
		pw:    make([]byte, 0, 128),
		c:     newCrypt(),
		attrs: make([]attr, 0, 32),
		arena: make([]byte, 0, 1024),
	}
}

// New builds a server. dir is required; sessions, pool and audit may be nil
// (in-memory sessions and pool, no audit trail). log gets component=radius
// added. now defaults to time.Now.
func New(cfg Config, dir Directory, sessions SessionStore, pool IPPool, audit Auditor, log *slog.Logger, now func() time.Time) (*Server, error) {
	if dir == nil {
		return nil, errors.New("new radius server: nil directory")
	}
	if len(cfg.AuthAddrs) == 0 {
		cfg.AuthAddrs = []string{":1812"}
	}
	if len(cfg.AcctAddrs) == 0 {
		cfg.AcctAddrs = []string{":1813"}
	}
	if cfg.InterimInterval <= 0 {
		cfg.InterimInterval = 5 * time.Minute
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	for loc, p := range cfg.StaticPools {
		if !p.IsValid() || !p.Addr().Is4() || p.Bits() > 30 {
			return nil, fmt.Errorf("new radius server: static pool for location %s: want an IPv4 prefix of /30 or larger", loc)
		}
	}
	if sessions == nil {
		sessions = NewMemSessionStore()
	}
	if pool == nil {
		pool = NewMemIPPool()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	s := &Server{
		cfg:      cfg,
		dir:      dir,
		sessions: sessions,
		pool:     pool,
		audit:    audit,
		log:      log.With("component", "radius"),
		now:      now,
		unknown:  sourceLimiter{every: time.Minute},
		badAuth:  sourceLimiter{every: time.Minute},
		authDup:  newDedupCache(cfg.DedupWindow),
		acctDup:  newDedupCache(cfg.DedupWindow),
		idx:      newSessionIndex(),
		audits:   make(chan model.AuditEntry, 1024),
		acctQ:    make(chan acctPacket, 8192),
		coaTries: []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond, 2400 * time.Millisecond},
	}
	t, err := newClientTable(cfg.Clients, nil)
	if err != nil {
		return nil, fmt.Errorf("new radius server: %w", err)
	}
	s.clients.Store(t)
	return s, nil
}

// Stats returns the live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// SetClients replaces the NAS list without a restart (SIGHUP, CLI). An
// invalid list is rejected whole and the old one stays.
func (s *Server) SetClients(cs []Client) error {
	t, err := newClientTable(cs, s.clients.Load())
	if err != nil {
		return fmt.Errorf("set radius clients: %w", err)
	}
	s.clients.Store(t)
	s.log.Info("clients reloaded", "count", len(cs))
	return nil
}

// Listen binds the authentication and accounting sockets. An address
// without a host (":1812") binds IPv4 and IPv6.
func (s *Server) Listen(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.authConns)+len(s.acctConns) > 0 {
		return errors.New("radius listen: already listening")
	}
	var lc net.ListenConfig
	open := func(addrs []string) ([]*net.UDPConn, error) {
		var out []*net.UDPConn
		for _, a := range addrs {
			pc, err := lc.ListenPacket(ctx, "udp", a)
			if err != nil {
				for _, c := range out {
					c.Close()
				}
				return nil, fmt.Errorf("radius listen %s: %w", a, err)
			}
			c := pc.(*net.UDPConn)
			_ = c.SetReadBuffer(4 << 20)
			_ = c.SetWriteBuffer(4 << 20)
			out = append(out, c)
		}
		return out, nil
	}
	var auth []authSocket
	for _, a := range s.cfg.AuthAddrs {
		c, err := listenAuth(ctx, a)
		if err != nil {
			for _, c := range auth {
				c.Close()
			}
			return fmt.Errorf("radius listen %s: %w", a, err)
		}
		auth = append(auth, c)
	}
	acct, err := open(s.cfg.AcctAddrs)
	if err != nil {
		for _, c := range auth {
			c.Close()
		}
		return err
	}
	s.authConns, s.acctConns = auth, acct
	return nil
}

// Addrs returns the bound addresses (after Listen).
func (s *Server) Addrs() (auth, acct []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.authConns {
		auth = append(auth, c.LocalAddr())
	}
	for _, c := range s.acctConns {
		acct = append(acct, c.LocalAddr())
	}
	return auth, acct
}

// ListenAndServe binds and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.Listen(ctx); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// LoadSessions rebuilds the live-session index from the store. Serve calls
// it; call it earlier to use Sessions or Explain before serving.
func (s *Server) LoadSessions(ctx context.Context) error {
	if s.loaded.Load() {
		return nil
	}
	ss, err := s.sessions.LoadSessions(ctx)
	if err != nil {
		return fmt.Errorf("load radius sessions: %w", err)
	}
	s.idx.load(ss)
	s.loaded.Store(true)
	s.log.Info("sessions loaded", "live", len(ss))
	return nil
}

// Serve answers requests on the sockets bound by Listen until ctx is done,
// then closes them. It returns nil on cancellation.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.LoadSessions(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	auth, acct := s.authConns, s.acctConns
	s.mu.Unlock()
	if len(auth)+len(acct) == 0 {
		return errors.New("radius serve: not listening")
	}
	for _, c := range auth {
		s.log.Info("listening", "service", "auth", "addr", c.LocalAddr().String())
	}
	for _, c := range acct {
		s.log.Info("listening", "service", "acct", "addr", c.LocalAddr().String())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range auth {
		wg.Go(func() { s.serveAuth(ctx, c) })
	}
	for _, c := range acct {
		for range s.cfg.Workers {
			wg.Go(func() { s.readLoop(ctx, c, true) })
		}
	}
	var bg sync.WaitGroup
	// Accounting workers outlive the sockets so queued packets finish
	// their durable write; they stop with the background context.
	bgctx, bgcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer bgcancel()
	var aw sync.WaitGroup
	for range acctWorkers {
		aw.Go(func() { s.acctWorker(bgctx) })
	}
	bg.Go(func() { s.auditLoop(ctx) })
	bg.Go(func() { s.maintain(ctx) })
	<-ctx.Done()
	s.mu.Lock()
	for _, c := range auth {
		c.Close()
	}
	for _, c := range acct {
		c.Close()
	}
	s.authConns, s.acctConns = nil, nil
	s.mu.Unlock()
	wg.Wait()
	// Let queued accounting finish its durable write (replies to closed
	// sockets fail quietly; the NAS retransmits to the next server).
	for len(s.acctQ) > 0 {
		time.Sleep(time.Millisecond)
	}
	bgcancel()
	aw.Wait()
	bg.Wait()
	return nil
}

// udpIO reads and writes a UDP socket: on Linux with raw system calls
// (rawConnIO), elsewhere through the net package.
type udpIO interface {
	readFrom(b []byte) (int, netip.AddrPort, error)
	writeTo(b []byte, dst netip.AddrPort) error
}

type netIO struct{ c *net.UDPConn }

func (n netIO) readFrom(b []byte) (int, netip.AddrPort, error) { return n.c.ReadFromUDPAddrPort(b) }

func (n netIO) writeTo(b []byte, dst netip.AddrPort) error {
	_, err := n.c.WriteToUDPAddrPort(b, dst)
	return err
}

func (s *Server) readLoop(ctx context.Context, c *net.UDPConn, acct bool) {
	w := newWorker()
	io := newUDPIO(c)
	for {
		n, src, err := io.readFrom(w.buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("read", "err", err)
			continue
		}
		if n > maxPacketLen {
			s.stats.drop(DropMalformed)
			continue
		}
		if !acct {
			if out := s.handleAuth(ctx, w, w.buf[:n], src); out != nil {
				s.write(io, out, src)
			}
			continue
		}
		// Accounting waits for a durable write: hand the packet to the
		// accounting workers so concurrent requests share one bbolt batch.
		pkt := acctPacket{b: make([]byte, n), src: src, conn: io}
		copy(pkt.b, w.buf[:n])
		select {
		case s.acctQ <- pkt:
		default:
			s.stats.drop(DropOverloaded) // the NAS retransmits
		}
	}
}

type acctPacket struct {
	b    []byte
	src  netip.AddrPort
	conn udpIO
}

// acctWorker answers accounting packets; many run at once so their
// durable writes share commits.
//
// They share scratch state through a pool: a worker holds it only while
// answering, so 1,024 idle workers cost their stacks, not 1,024 × 10 KB of
// buffers.
func (s *Server) acctWorker(ctx context.Context) {
	for {
		select {
		case p := <-s.acctQ:
			w := acctScratch.Get().(*worker)
			if out := s.handleAcct(ctx, w, p.b, p.src); out != nil {
				s.write(p.conn, out, p.src)
			}
			acctScratch.Put(w)
		case <-ctx.Done():
			return
		}
	}
}

var acctScratch = sync.Pool{New: func() any { return newWorker() }}

func (s *Server) write(c udpIO, b []byte, dst netip.AddrPort) {
	if err := c.writeTo(b, dst); err != nil {
		s.log.Warn("write reply", "dst", dst.String(), "err", err)
	}
}

// auditLoop writes audit entries off the packet path.
func (s *Server) auditLoop(ctx context.Context) {
	for {
		select {
		case e := <-s.audits:
			if s.audit == nil {
				continue
			}
			if err := s.audit.Audit(context.WithoutCancel(ctx), e); err != nil {
				s.log.Warn("audit", "action", e.Action, "err", err)
			}
		case <-ctx.Done():
			for {
				select {
				case e := <-s.audits:
					if s.audit != nil {
						_ = s.audit.Audit(context.WithoutCancel(ctx), e)
					}
				default:
					return
				}
			}
		}
	}
}

func (s *Server) auditAsync(e model.AuditEntry) {
	if s.audit == nil {
		return
	}
	e.Actor = "radius"
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	select {
	case s.audits <- e:
	default:
		s.stats.AuditsDropped.Add(1)
	}
}

// maintain expires the dedup caches and closes stale sessions.
func (s *Server) maintain(ctx context.Context) {
	tick := time.NewTicker(min(s.cfg.DedupWindow, s.cfg.InterimInterval/2, 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			now := s.now()
			s.authDup.sweep(now)
			s.acctDup.sweep(now)
			if n, err := s.CloseStale(ctx); err != nil {
				s.log.Warn("close stale sessions", "err", err)
			} else if n > 0 {
				s.log.Info("closed stale sessions", "count", n)
			}
		}
	}
}

// dedupCache remembers the reply to each (source, identifier) for the
// window. A RADIUS client has one outstanding request per identifier and
// source port, so the cache is bounded by clients × ports × 256.
type dedupCache struct {
	mu     sync.Mutex
	m      map[dedupKey]*dedupEntry
	window time.Duration
}

type dedupKey struct {
	src netip.AddrPort
	id  byte
}

type dedupEntry struct {
	auth    [16]byte
	reply   []byte
	expires time.Time
	pending bool
}

const dedupMax = 1 << 18

type dedupState int

const (
	dedupNew dedupState = iota
	dedupReplay
	dedupInFlight
)

func newDedupCache(window time.Duration) *dedupCache {
	return &dedupCache{m: map[dedupKey]*dedupEntry{}, window: window}
}

// begin looks a request up. dedupReplay returns the cached reply copied
// into dst; dedupInFlight means the first copy is still being answered.
func (c *dedupCache) begin(k dedupKey, auth []byte, now time.Time, dst []byte) ([]byte, dedupState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e != nil && [16]byte(auth) == e.auth && (e.pending || now.Before(e.expires)) {
		if e.pending {
			return nil, dedupInFlight
		}
		return append(dst[:0], e.reply...), dedupReplay
	}
	if e == nil {
		if len(c.m) >= dedupMax {
			return nil, dedupNew
		}
		e = &dedupEntry{}
		c.m[k] = e
	}
	e.auth = [16]byte(auth)
	e.pending = true
	e.reply = e.reply[:0]
	return nil, dedupNew
}

// finish stores the reply; a nil reply forgets the request (it was
// dropped, so a retransmission is evaluated again).
func (c *dedupCache) finish(k dedupKey, auth []byte, reply []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil || e.auth != [16]byte(auth) {
		return
	}
	if reply == nil {
		delete(c.m, k)
		return
	}
	e.reply = append(e.reply[:0], reply...)
	e.pending = false
	e.expires = now.Add(c.window)
}

func (c *dedupCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if !e.pending && !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
}

// dropf counts a dropped packet under reason and logs it once per source
// per minute.
func (s *Server) dropf(reason DropReason, src netip.AddrPort, nas string, msg string, args ...any) {
	s.stats.drop(reason)
	if s.badAuth.allow(src.Addr(), s.now()) {
		s.log.Warn(msg, append([]any{"src", src.String(), "nas", nas}, args...)...)
	}
}
