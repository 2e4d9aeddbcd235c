//go:build linux && (amd64 || arm64)

package radius

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// voluntarySwitches sums the voluntary context switches of this
// process's threads: every time one of them slept (a blocking system
// call, a futex wait, the runtime monitor's sleep between rounds).
func voluntarySwitches(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err != nil {
			continue // the thread exited
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.Atoi(strings.TrimSpace(v))
				n += k
			}
		}
	}
	return n
}

// rawExchange sends pkt to addr and waits for the answer with raw system
// calls: the measuring client must not wake the runtime itself (a Go
// system call wakes its monitor thread). It waits in slices of 2 ms and
// yields in between: a raw call blocks its thread without the scheduler
// knowing, and a stop-the-world (the garbage collector) would wait for it.
func rawExchange(t *testing.T, fd int, pkt []byte) []byte {
	t.Helper()
	if _, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)), 0, 0, 0); e != 0 {
		t.Fatalf("sendto: %v", e)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(2 * time.Second); ; runtime.Gosched() {
		ts := unix.Timespec{Nsec: int64(2 * time.Millisecond)}
		n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd[0])), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e == 0 && n == 1 {
			break
		}
		if e != 0 && e != unix.EINTR { // EINTR: a signal from the runtime (preemption)
			t.Fatalf("ppoll: %v", e)
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer within 2s")
		}
	}
	buf := make([]byte, 4096)
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
	if e != 0 {
		t.Fatalf("recvfrom: %v", e)
	}
	return buf[:n]
}

// An idle server answers a request without a wake-up storm: the reader
// waits in the network poller, and its recvmmsg/sendmmsg are raw system
// calls. Blocked in a Go system call instead (a blocking recvmmsg), it
// kept the runtime's monitor thread (sysmon) polling every 20 µs after
// each request: some 50 wake-ups per request to an idle server, each
// about 10 µs of CPU on a small virtual machine.
func TestAuthSocketIdleRequestCostsFewWakeups(t *testing.T) {
	e := startServer(t, defaultClients(), nil)
	ra, err := net.ResolveUDPAddr("udp", e.auth)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: ra.Port, Addr: [4]byte(ra.IP.To4())}); err != nil {
		t.Fatal(err)
	}
	reqs := make([][]byte, 20)
	for i := range reqs {
		reqs[i] = buildAccessRequest(t, []byte(testSecret), byte(i), "alice", "correct horse", true, nil)
	}
	if resp := rawExchange(t, fd, reqs[0]); resp[0] != 2 {
		t.Fatalf("alice: want Access-Accept, got code %d", resp[0])
	}
	// Requests 15 ms apart: each reaches a server that has gone idle
	// (the runtime retakes a processor from a system call after 10 ms).
	const gap = 15 * time.Millisecond
	time.Sleep(gap)
	before := voluntarySwitches(t)
	for _, req := range reqs[1:] {
		if resp := rawExchange(t, fd, req); resp[0] != 2 {
			t.Fatalf("alice: want Access-Accept, got code %d", resp[0])
		}
		time.Sleep(gap) // a timer: the runtime (and its monitor) wake once for it
	}
	n := len(reqs) - 1
	switches := voluntarySwitches(t) - before
	t.Logf("%d idle requests: %d voluntary context switches (%.1f per request, the client's own two included)", n, switches, float64(switches)/float64(n))
	// Lone requests are answered at once: one wake-up each, no coalescing.
	if w := e.srv.authConns[0].(*rawUDP).wakes.Load(); w != uint64(len(reqs)) {
		t.Errorf("%d reader wake-ups for %d lone requests, want one each", w, len(reqs))
	}
	// The client sleeps twice per request (ppoll, the timer), the
	// server's thread once in the poller, the monitor once for the
	// timer; a few more for the garbage collector (7–10 measured).
	if per := float64(switches) / float64(n); per > 20 {
		t.Errorf("%.1f voluntary context switches per request to an idle server, want at most 20 (a blocking reader: 45–63)", per)
	}
}

// Stopping the server wakes the reader waiting in the poller at once,
// and the port is free again afterwards.
func TestAuthSocketStopsPromptly(t *testing.T) {
	e := startServer(t, defaultClients(), nil)
	req := buildAccessRequest(t, []byte(testSecret), 7, "alice", "correct horse", true, nil)
	if resp := sendRaw(t, e.auth, req, 2*time.Second); len(resp) == 0 {
		t.Fatal("no answer before stopping")
	}
	start := time.Now()
	e.cancel()
	err := <-e.done
	e.done <- err // for the cleanup
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("Serve took %v to return after cancel, want well under 500ms", took)
	}
	c, err := net.ListenPacket("udp", e.auth)
	if err != nil {
		t.Fatalf("auth port not released: %v", err)
	}
	c.Close()
}

// ":port" binds IPv4 and IPv6 like net.ListenPacket; a NAS on either
// family gets its answer from the port it sent to.
func TestAuthSocketDualStack(t *testing.T) {
	clients := []Client{
		{Name: "v4", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret), LocationID: "loc-a", Vendor: VendorWISPr},
		{Name: "v6", Prefix: netip.MustParsePrefix("::1/128"), Secret: []byte(testSecret), LocationID: "loc-a", Vendor: VendorWISPr},
	}
	e := startServer(t, clients, func(c *Config) { c.AuthAddrs = []string{":0"} })
	_, port, _ := net.SplitHostPort(e.auth)
	for i, host := range []string{"127.0.0.1", "::1"} {
		req := buildAccessRequest(t, []byte(testSecret), byte(10+i), "alice", "correct horse", true, nil)
		resp := sendRawFrom(t, host, net.JoinHostPort(host, port), req, 2*time.Second)
		if len(resp) == 0 || resp[0] != 2 {
			t.Errorf("from %s: want Access-Accept, got %v", host, resp)
		}
	}
	if a, _ := e.srv.Addrs(); fmt.Sprint(a) == "" || !strings.Contains(a[0].String(), "::") {
		t.Errorf("auth address %v: want the IPv6 wildcard (dual stack)", a)
	}
}

// The accounting socket's raw reads and writes answer both families on a
// dual-stack wildcard (an IPv4 NAS is written back as v4-mapped) and an
// IPv4-only socket.
func TestAcctSocketRawIO(t *testing.T) {
	clients := []Client{
		{Name: "v4", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret), LocationID: "loc-a", Vendor: VendorWISPr},
		{Name: "v6", Prefix: netip.MustParsePrefix("::1/128"), Secret: []byte(testSecret), LocationID: "loc-a", Vendor: VendorWISPr},
	}
	for _, tc := range []struct {
		listen string
		from   []string
	}{{":0", []string{"127.0.0.1", "::1"}}, {"127.0.0.1:0", []string{"127.0.0.1"}}} {
		e := startServer(t, clients, func(c *Config) { c.AcctAddrs = []string{tc.listen} })
		_, acct := e.srv.Addrs()
		_, port, _ := net.SplitHostPort(acct[0].String())
		for i, host := range tc.from {
			req := acctReq(t, byte(20+i), "Start", fmt.Sprintf("raw-%s-%d", tc.listen, i), "02:00:00:00:00:0"+strconv.Itoa(i))
			resp := sendRawFrom(t, host, net.JoinHostPort(host, port), req, 2*time.Second)
			if len(resp) < 20 || resp[0] != 5 || resp[1] != byte(20+i) {
				t.Errorf("listen %s, from %s: want Accounting-Response id %d, got %v", tc.listen, host, 20+i, resp)
			}
		}
	}
}

// TestAuthSocketCoalescesSteadyLoad sends requests at a steady 10,000 a
// second, each alone on the wire, as a NAS-heavy site at half load does:
// the reader must not wake once per request (which, on a small VM, was
// most of the CPU per request at half load) but collect what a
// coalescing window brings, and still answer every request within a few
// windows.
func TestAuthSocketCoalescesSteadyLoad(t *testing.T) {
	e := startServer(t, defaultClients(), nil)
	c, err := net.Dial("udp", e.auth)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n, gap = 1000, 100 * time.Microsecond
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = buildAccessRequest(t, []byte(testSecret), byte(i), "alice", "correct horse", true, nil)
	}
	base := time.Now()
	sent := make([]atomic.Int64, n) // ns after base; 0: answered
	var slowest time.Duration
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 4096)
		k := 0
		for k < n {
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			m, err := c.Read(buf)
			if err != nil {
				break
			}
			if m >= 20 && buf[0] == 2 {
				i := int(buf[1])
				for j := i; j < n; j += 256 { // the oldest unanswered with this id
					if at := sent[j].Swap(0); at != 0 {
						slowest = max(slowest, time.Since(base)-time.Duration(at))
						break
					}
				}
				k++
			}
		}
		got <- k
	}()
	w0 := e.srv.authConns[0].(*rawUDP).wakes.Load()
	func() {
		runtime.LockOSThread() // pace in the kernel: Go timers this short come late, in bursts
		defer runtime.UnlockOSThread()
		start := time.Now()
		for i, req := range reqs {
			if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
				ts := unix.NsecToTimespec(int64(d))
				_ = unix.Nanosleep(&ts, nil)
			}
			sent[i].Store(int64(time.Since(base)))
			if _, err := c.Write(req); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	answered := <-got
	wakes := e.srv.authConns[0].(*rawUDP).wakes.Load() - w0
	t.Logf("%d requests %v apart: %d answered, %d reader wake-ups (%.2f per request), slowest answer %v", n, gap, answered, wakes, float64(wakes)/n, slowest)
	if answered != n {
		t.Fatalf("%d of %d requests answered", answered, n)
	}
	if per := float64(wakes) / n; per > 0.5 {
		t.Errorf("%.2f reader wake-ups per request at a steady %v gap, want at most 0.5 (one per request without coalescing)", per, gap)
	}
	if slowest > 250*time.Millisecond {
		t.Errorf("slowest answer took %v", slowest)
	}
}

// TestAuthSocketLockstepNotDelayed plays a client that sends its next
// request only once the last one is answered (EAP's round trips): the
// requests are close together, but a coalescing window would find
// nothing (the client waits for the answer) and only add a wake-up and a
// millisecond per round trip: a window brings one request at most. After
// a few such windows the reader stops coalescing: the client is not held
// to one round trip per window.
func TestAuthSocketLockstepNotDelayed(t *testing.T) {
	e := startServer(t, defaultClients(), nil)
	c, err := net.Dial("udp", e.auth)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	const n = 400
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = buildAccessRequest(t, []byte(testSecret), byte(i), "alice", "correct horse", true, nil)
	}
	w0, win0 := e.srv.authConns[0].(*rawUDP).wakes.Load(), e.srv.authConns[0].(*rawUDP).windows.Load()
	start := time.Now()
	rtts := make([]time.Duration, 0, n)
	for _, req := range reqs {
		sent := time.Now()
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if m, err := c.Read(buf); err != nil || m < 20 || buf[0] != 2 {
			t.Fatalf("want Access-Accept, got %d bytes (code %d), %v", m, buf[0], err)
		}
		rtts = append(rtts, time.Since(sent))
	}
	slices.Sort(rtts)
	took := time.Since(start)
	wakes := e.srv.authConns[0].(*rawUDP).wakes.Load() - w0
	windows := e.srv.authConns[0].(*rawUDP).windows.Load() - win0
	t.Logf("%d round trips in %v (median %v): %d reader wake-ups, %d of them coalescing windows", n, took, rtts[n/2], wakes, windows)
	if windows > n/10 {
		t.Errorf("%d of %d round trips waited out a coalescing window, want at most %d", windows, n, n/10)
	}
	if per := float64(wakes) / n; per > 1.15 {
		t.Errorf("%.2f reader wake-ups per round trip, want at most 1.15", per)
	}
}
