//go:build linux && (amd64 || arm64)

package radius

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP is an authentication socket served by one reader goroutine with
// recvmmsg(2) and sendmmsg(2): one system call per batch instead of two
// per request, which is most of the server's CPU at load.
//
// Both calls are non-blocking raw system calls, and the reader waits for
// the next datagram in the runtime's network poller. A Go system call (net.UDPConn's, or a blocking recvmmsg)
// enters the scheduler's syscall state: each one wakes the runtime's
// monitor thread (sysmon) from its idle sleep, and a thread blocked in a
// system call keeps that monitor polling every 20 µs; on a small virtual
// machine, where each wake-up costs some 10 µs, that polling was most of
// an idle server's CPU per request and a quarter of a busy one's. Raw
// calls do not involve the scheduler, and a reader parked in the poller
// lets the monitor sleep.
//
// The socket itself is not in the runtime's poller: an epoll instance of
// its own watches it (ep), and that is in the poller. So the reader can
// stop hearing of each datagram: at a steady rate, where every datagram
// would otherwise wake a sleeping thread of its own (a context switch,
// the poller, two system calls: most of the CPU per request at half
// load), it takes the socket out of ep's interest list, sleeps for
// coalesceWindow and reads what came meanwhile in batches, like a busy
// server. Below coalesceRate, and as soon as a window brings nothing,
// it waits in the poller again: an idle server answers a lone request at
// once, with a single wake-up.
type rawUDP struct {
	fd    int             // the socket (closed once the reader has left)
	ep    *os.File        // an epoll instance watching fd; it is in the poller
	rc    syscall.RawConn // ep's, for the reader's waits
	armed bool            // the reader's: fd is in ep's interest list
	laddr *net.UDPAddr
	// wakes counts the reader's wake-ups: from the poller, and at the
	// end of each coalescing window (windows counts those).
	wakes, windows atomic.Uint64

	mu      sync.Mutex
	closed  atomic.Bool
	readers sync.WaitGroup
}

// listenAuth binds an authentication socket. An address without a host
// binds IPv4 and IPv6, like net.ListenPacket.
func listenAuth(ctx context.Context, addr string) (authSocket, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, "udp", portStr)
	if err != nil {
		return nil, err
	}
	var ip net.IP
	if host != "" {
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		ip = ips[0]
		for _, a := range ips { // prefer IPv4, like the net package
			if a.To4() != nil {
				ip = a
				break
			}
		}
	}
	fd, sa, err := rawSocket(ip, port)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	r := &rawUDP{fd: fd}
	bound, err := unix.Getsockname(fd)
	switch a := bound.(type) {
	case *unix.SockaddrInet4:
		r.laddr = &net.UDPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		r.laddr = &net.UDPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("getsockname: %v", err)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(epfd)
		unix.Close(fd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	r.armed = true
	// A non-blocking descriptor: os.NewFile registers it with the poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: nonblock: %w", err)
	}
	r.ep = os.NewFile(uintptr(epfd), "radius-auth-poll")
	if r.rc, err = r.ep.SyscallConn(); err != nil {
		r.ep.Close()
		unix.Close(fd)
		return nil, fmt.Errorf("raw conn: %w", err)
	}
	return r, nil
}

// arm puts the socket in ep's interest list (on) or takes it out (off).
// Only the reader calls it; ep's RawConn holds ep open meanwhile.
func (r *rawUDP) arm(on bool) error {
	if r.armed == on {
		return nil
	}
	ev := unix.EpollEvent{Fd: int32(r.fd)}
	if on {
		ev.Events = unix.EPOLLIN
	}
	var errno error
	if err := r.rc.Control(func(ep uintptr) { errno = unix.EpollCtl(int(ep), unix.EPOLL_CTL_MOD, r.fd, &ev) }); err != nil {
		return err // closed
	}
	if errno != nil {
		return fmt.Errorf("epoll_ctl: %w", errno)
	}
	r.armed = on
	return nil
}

// rawSocket opens a blocking UDP socket for ip (nil: the wildcard,
// dual stack where the host has IPv6).
func rawSocket(ip net.IP, port int) (int, unix.Sockaddr, error) {
	const typ = unix.SOCK_DGRAM | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK
	if ip4 := ip.To4(); ip4 != nil {
		fd, err := unix.Socket(unix.AF_INET, typ, 0)
		if err != nil {
			return -1, nil, fmt.Errorf("socket: %w", err)
		}
		return fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte(ip4)}, nil
	}
	fd, err := unix.Socket(unix.AF_INET6, typ, 0)
	if err == unix.EAFNOSUPPORT && ip == nil {
		// No IPv6 on this host: the IPv4 wildcard.
		if fd, err = unix.Socket(unix.AF_INET, typ, 0); err != nil {
			return -1, nil, fmt.Errorf("socket: %w", err)
		}
		return fd, &unix.SockaddrInet4{Port: port}, nil
	}
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	v6only := 1
	if ip == nil || ip.IsUnspecified() {
		v6only = 0 // dual stack
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("socket: IPV6_V6ONLY: %w", err)
	}
	sa := &unix.SockaddrInet6{Port: port}
	if ip != nil {
		sa.Addr = [16]byte(ip.To16())
	}
	return fd, sa, nil
}

func (r *rawUDP) LocalAddr() net.Addr { return r.laddr }

// Close stops the reader, waits for it to leave, and closes the socket.
func (r *rawUDP) Close() error {
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return nil
	}
	r.closed.Store(true)
	r.mu.Unlock()
	// Closing ep wakes a reader waiting in the poller; the socket is
	// closed once that reader has left.
	err := r.ep.Close()
	r.readers.Wait()
	if cerr := unix.Close(r.fd); err == nil {
		err = cerr
	}
	return err
}

// enter registers a reader; false once closed.
func (r *rawUDP) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return false
	}
	r.readers.Add(1)
	return true
}

// mmsgConn is the reader's batch state.
type mmsgConn struct {
	r     *rawUDP
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet6

	out      []unix.Mmsghdr
	outIovs  []unix.Iovec
	nOut     int
	sendErrs int

	// RawConn callbacks and their results, built once.
	readFn func(fd uintptr) bool
	nIn    int
	inErr  syscall.Errno
	sent   int
}

const mmsgBatch = 16

func newMmsgConn(r *rawUDP) *mmsgConn {
	m := &mmsgConn{
		r:       r,
		msgs:    make([]unix.Mmsghdr, mmsgBatch),
		iovs:    make([]unix.Iovec, mmsgBatch),
		bufs:    make([][]byte, mmsgBatch),
		names:   make([]unix.RawSockaddrInet6, mmsgBatch),
		out:     make([]unix.Mmsghdr, mmsgBatch),
		outIovs: make([]unix.Iovec, mmsgBatch),
	}
	m.readFn = m.recvmmsg
	for i := range m.msgs {
		m.bufs[i] = make([]byte, maxPacketLen+1)
		m.iovs[i].Base = &m.bufs[i][0]
		m.msgs[i].Hdr.Iov = &m.iovs[i]
		m.msgs[i].Hdr.Iovlen = 1
		m.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	}
	return m
}

// errStopped ends the read loop once the socket is closed.
var errStopped = errors.New("radius: socket closed")

// read waits for at least one datagram and returns how many it got, up
// to a batch, from non-blocking recvmmsg(2) calls; between datagrams the
// reader waits in the poller. A busy server reads a batch per call; an
// idle one spends a poller wake-up and three raw system calls per
// datagram (the read, the reply's sendmmsg, the read that finds the
// queue empty).
func (m *mmsgConn) read() (int, error) {
	m.nIn, m.inErr = 0, 0
	if err := m.r.arm(true); err != nil {
		if m.r.closed.Load() {
			return 0, errStopped
		}
		return 0, err
	}
	err := m.r.rc.Read(m.readFn)
	switch {
	case m.r.closed.Load():
		return 0, errStopped
	case err != nil:
		return 0, fmt.Errorf("recvmmsg: %w", err)
	case m.inErr != 0:
		return 0, fmt.Errorf("recvmmsg: %w", m.inErr)
	}
	return m.nIn, nil
}

// tryRead is read without the wait: what is queued, up to a batch (0:
// nothing).
func (m *mmsgConn) tryRead() (int, error) {
	m.nIn, m.inErr = 0, 0
	if m.r.closed.Load() {
		return 0, errStopped
	}
	m.recvmmsg(0)
	if m.inErr != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", m.inErr)
	}
	return m.nIn, nil
}

// recvmmsg is read's RawConn callback (built once: no allocation per
// call); false means nothing is queued, wait in the poller. It reads the
// socket (the RawConn's descriptor is ep's).
func (m *mmsgConn) recvmmsg(uintptr) bool {
	fd := uintptr(m.r.fd)
	for {
		for i := range m.msgs {
			m.iovs[i].SetLen(len(m.bufs[i]))
			m.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			m.msgs[i].Hdr.Flags = 0
			m.msgs[i].Len = 0
		}
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.msgs[0])), uintptr(len(m.msgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		m.nIn, m.inErr = int(r), e
		return true
	}
}

func (m *mmsgConn) packet(i int) []byte {
	n := int(m.msgs[i].Len)
	if m.msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
		n = len(m.bufs[i]) // oversized: caller drops it
	}
	return m.bufs[i][:n]
}

func (m *mmsgConn) addr(i int) netip.AddrPort { return sockaddrAddrPort(&m.names[i]) }

// sockaddrAddrPort reads a received IPv4 or IPv6 source address.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), portOf(sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), portOf(sa.Port))
	}
	return netip.AddrPort{}
}

// portOf reads the network-order port field.
func portOf(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return binary.BigEndian.Uint16(b[:])
}

// queue adds a reply to received message i, sent by flush.
func (m *mmsgConn) queue(i int, b []byte) {
	k := m.nOut
	m.outIovs[k].Base = &b[0]
	m.outIovs[k].SetLen(len(b))
	m.out[k].Hdr = unix.Msghdr{Name: m.msgs[i].Hdr.Name, Namelen: m.msgs[i].Hdr.Namelen, Iov: &m.outIovs[k], Iovlen: 1}
	m.nOut++
}

// flush sends the queued replies. The socket stays open while the
// reader is in (Close waits for it). A full send buffer (a 4 MiB one,
// rarely full) is waited out in short sleeps, for at most sendWait.
func (m *mmsgConn) flush() {
	if m.nOut == 0 {
		return
	}
	m.sent = 0
	for waited := time.Duration(0); !m.sendmmsg(0); waited += 100 * time.Microsecond {
		if waited >= sendWait || m.r.closed.Load() {
			m.sendErrs += m.nOut - m.sent
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	m.nOut = 0
}

// sendWait bounds how long replies wait for room in the send buffer.
const sendWait = 100 * time.Millisecond

// sendmmsg sends what flush queued; false means the send buffer is full.
func (m *mmsgConn) sendmmsg(uintptr) bool {
	fd := uintptr(m.r.fd)
	for m.sent < m.nOut {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[m.sent])), uintptr(m.nOut-m.sent), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			m.sent += int(r)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			// The first unsent message failed (e.g. unreachable): skip it.
			m.sent++
			m.sendErrs++
		}
	}
	return true
}

// batchAuthLoop serves an authentication socket in batches until it is
// closed.
func (s *Server) batchAuthLoop(r *rawUDP, handle func(w *worker, b []byte, src netip.AddrPort) []byte) {
	if !r.enter() {
		return
	}
	defer r.readers.Done()
	m := newMmsgConn(r)
	w := newWorker()
	outs := make([][]byte, mmsgBatch)
	for i := range outs {
		outs[i] = make([]byte, 0, maxPacketLen)
	}
	serve := func(n int) {
		for i := range n {
			b := m.packet(i)
			if len(b) > maxPacketLen {
				s.stats.drop(DropMalformed)
				continue
			}
			w.out = outs[i]
			if out := handle(w, b, m.addr(i)); out != nil {
				outs[i] = out[:0]
				m.queue(i, out)
			}
		}
		m.flush()
	}
	// drain serves what is queued, batch after batch, and reports how
	// many datagrams that was.
	drain := func() (int, error) {
		total := 0
		for {
			n, err := m.tryRead()
			if err != nil || n == 0 {
				return total, err
			}
			serve(n)
			total += n
			if n < mmsgBatch {
				return total, nil
			}
		}
	}
	// A window pays when it brings coalescePays datagrams or more; one
	// that brings fewer saved little and delayed what it brought (a few
	// clients whose next request waits for the last answer, as EAP's round
	// trips): it ends the coalescing, and if it was the first, doubles the
	// run of wake-ups closer together than a window that it takes to
	// coalesce again; a useful first window resets that.
	var lastWake time.Time
	short, need := 0, 1
	for {
		n, err := m.read()
		if err == nil {
			r.wakes.Add(1)
			serve(n)
			if n == mmsgBatch {
				_, err = drain()
			}
		}
		// Datagrams closer together than the window: coalesce. (The
		// monotonic clock paces the reader; it decides nothing.)
		now := time.Now()
		if now.Sub(lastWake) < coalesceWindow {
			short++
		} else {
			short = 0
		}
		lastWake = now
		for first := true; err == nil && short >= need; first = false {
			if err = m.r.arm(false); err != nil {
				break
			}
			time.Sleep(coalesceWindow)
			r.wakes.Add(1)
			r.windows.Add(1)
			var got int
			got, err = drain()
			paid := got >= coalescePays
			if first {
				if paid {
					need = 1
				} else {
					need = min(2*need, maxCoalesceNeed)
				}
			}
			if !paid {
				short = 0
				break // quiet again: wait in the poller
			}
		}
		if errors.Is(err, errStopped) || m.r.closed.Load() {
			return
		}
		if err != nil {
			s.log.Warn("read", "err", err)
			time.Sleep(10 * time.Millisecond) // no tight loop on a lasting error
		}
	}
}

// coalesceWindow is how long the reader of a socket that gets requests
// more often than once a window sleeps before reading what came
// meanwhile (at most this much added latency; the runtime's timers wake
// no sooner than a millisecond anyway). Requests more than a window
// apart are answered at once.
const coalesceWindow = time.Millisecond

// coalescePays is how many datagrams a window must bring for the reader
// to go on coalescing: at 5,000 requests a second or more (measured: four
// eapol_test clients in lockstep, a window bringing two to four of their
// round trips, cost more CPU per PEAP login than waking for each).
const coalescePays = 5

// maxCoalesceNeed bounds how many close wake-ups in a row coalescing may
// come to need after wasted windows.
const maxCoalesceNeed = 64

// serveAuth serves one authentication socket until it is closed.
func (s *Server) serveAuth(ctx context.Context, c authSocket) {
	if r, ok := c.(*rawUDP); ok {
		s.batchAuthLoop(r, func(w *worker, b []byte, src netip.AddrPort) []byte { return s.handleAuth(ctx, w, b, src) })
		return
	}
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.readLoop(ctx, c.(*net.UDPConn), false) })
	}
	wg.Wait()
}

// rawConnIO reads and writes an accounting socket (a *net.UDPConn, which
// its readers and workers share) with raw non-blocking recvfrom(2) and
// sendto(2), waiting in the poller through the socket's RawConn: like the
// authentication reader, nothing on the packet path enters the
// scheduler's syscall state and wakes its monitor thread.
type rawConnIO struct {
	c  *net.UDPConn
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket: IPv4 peers are written as v4-mapped
}

func newUDPIO(c *net.UDPConn) udpIO {
	rc, err := c.SyscallConn()
	if err != nil {
		return netIO{c}
	}
	r := &rawConnIO{c: c, rc: rc}
	var family int
	if err := rc.Control(func(fd uintptr) {
		if sa, err := unix.Getsockname(int(fd)); err == nil {
			if _, ok := sa.(*unix.SockaddrInet6); ok {
				family = unix.AF_INET6
			} else {
				family = unix.AF_INET
			}
		}
	}); err != nil || family == 0 {
		return netIO{c}
	}
	r.v6 = family == unix.AF_INET6
	return r
}

func (r *rawConnIO) readFrom(b []byte) (int, netip.AddrPort, error) {
	var sa unix.RawSockaddrInet6
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			salen := uint32(unix.SizeofSockaddrInet6)
			m, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT,
				uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, errno = int(m), e
			return true
		}
	})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if errno != 0 {
		return 0, netip.AddrPort{}, fmt.Errorf("recvfrom: %w", errno)
	}
	return n, sockaddrAddrPort(&sa), nil
}

func (r *rawConnIO) writeTo(b []byte, dst netip.AddrPort) error {
	if dst.Addr().Zone() != "" {
		_, err := r.c.WriteToUDPAddrPort(b, dst) // a scoped (link-local) peer: the net package's sockaddr
		return err
	}
	var sa unix.RawSockaddrInet6
	salen := uintptr(unix.SizeofSockaddrInet6)
	if r.v6 {
		sa.Family = unix.AF_INET6
		sa.Addr = dst.Addr().As16() // an IPv4 peer as v4-mapped
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
	} else {
		a := dst.Addr().Unmap()
		if !a.Is4() {
			return fmt.Errorf("sendto %s: IPv6 peer on an IPv4 socket", dst)
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = a.As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], dst.Port())
		salen = unix.SizeofSockaddrInet4
	}
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for {
			_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT,
				uintptr(unsafe.Pointer(&sa)), salen)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the send buffer is full: wait until it drains
			}
			errno = e
			return true
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return fmt.Errorf("sendto %s: %w", dst, errno)
	}
	return nil
}
