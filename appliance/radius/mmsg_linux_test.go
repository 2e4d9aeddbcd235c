//go:build linux && (amd64 || arm64)

package radius

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// epollTargets lists the descriptors registered in this process's epoll
// instances (the runtime's network poller among them).
func epollTargets(t *testing.T) map[int]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(info), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "tfd:" {
				n, _ := strconv.Atoi(f[1])
				out[n] = true
			}
		}
	}
	return out
}

// An idle server answers a request with one wake-up of its reader and two
// system calls: the authentication socket is served by its own thread in
// a blocking recvmmsg, not through the runtime's epoll poller, where each
// datagram (and each reply sent) also woke a poller thread.
func TestAuthSocketOutsideRuntimePoller(t *testing.T) {
	e := startServer(t, defaultClients(), nil)
	req := buildAccessRequest(t, []byte(testSecret), 1, "alice", "correct horse", true, nil)
	if resp := sendRaw(t, e.auth, req, 2*time.Second); len(resp) == 0 || resp[0] != 2 {
		t.Fatalf("alice: want Access-Accept, got %v", resp)
	}
	e.srv.mu.Lock()
	socks := append([]authSocket(nil), e.srv.authConns...)
	e.srv.mu.Unlock()
	polled := epollTargets(t)
	if len(polled) == 0 {
		t.Fatal("found no epoll registrations at all: the check would prove nothing")
	}
	for _, s := range socks {
		r, ok := s.(*rawUDP)
		if !ok {
			t.Fatalf("auth socket %v is a %T, want the batch reader's own socket", s.LocalAddr(), s)
		}
		if polled[r.fd] {
			t.Errorf("auth socket fd %d is registered with the runtime's poller", r.fd)
		}
	}
	// The accounting socket still goes through the poller: the check
	// sees registrations when they exist.
	e.srv.mu.Lock()
	acct := e.srv.acctConns[0]
	e.srv.mu.Unlock()
	rc, err := acct.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var acctFD int
	_ = rc.Control(func(fd uintptr) { acctFD = int(fd) })
	if !polled[acctFD] {
		t.Errorf("accounting fd %d not among epoll targets %v: the check is blind", acctFD, polled)
	}
}

// Stopping the server wakes the blocked reader at once (shutdown(2)), not
// after the receive timeout, and the port is free again afterwards.
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
		t.Errorf("Serve took %v to return after cancel, want well under the 1s receive timeout", took)
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
