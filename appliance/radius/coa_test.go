package radius

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/model"
)

// testNAS is a small RFC 5176 listener: it checks each request's
// signature, records it and answers with the code answer returns (0: stay
// silent).
type testNAS struct {
	conn   *net.UDPConn
	got    chan *radius.Packet
	answer func(n int, p *radius.Packet) radius.Code
	n      atomic.Int32
	t      *testing.T
}

func newTestNAS(t *testing.T, answer func(int, *radius.Packet) radius.Code) *testNAS {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNAS{conn: c, got: make(chan *radius.Packet, 16), answer: answer, t: t}
	t.Cleanup(func() { c.Close() })
	go n.serve()
	return n
}

func (n *testNAS) port() int { return n.conn.LocalAddr().(*net.UDPAddr).Port }

func (n *testNAS) serve() {
	secret := []byte(testSecret)
	buf := make([]byte, 4096)
	for {
		k, src, err := n.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:k]...)
		if !radius.IsAuthenticRequest(b, secret) {
			n.t.Errorf("test NAS: request authenticator invalid")
			continue
		}
		if !validRequestMA(b, secret) {
			n.t.Errorf("test NAS: Message-Authenticator missing or invalid")
			continue
		}
		p, err := radius.Parse(b, secret)
		if err != nil {
			n.t.Errorf("test NAS: parse: %v", err)
			continue
		}
		i := int(n.n.Add(1))
		n.got <- p
		code := n.answer(i, p)
		if code == 0 {
			continue
		}
		out := must(p.Response(code).Encode())
		_, _ = n.conn.WriteToUDP(out, src)
	}
}

// validRequestMA checks Message-Authenticator of a Disconnect/CoA request
// (computed with a zero authenticator, RFC 5176 3.3).
func validRequestMA(b, secret []byte) bool {
	for i := 20; i+2 <= len(b); i += int(b[i+1]) {
		if b[i] == 80 && b[i+1] == 18 {
			tmp := append([]byte(nil), b...)
			clear(tmp[4:20])
			clear(tmp[i+2 : i+18])
			m := hmac.New(md5.New, secret)
			m.Write(tmp)
			return hmac.Equal(m.Sum(nil), b[i+2:i+18])
		}
	}
	return false
}

func startWithNAS(t *testing.T, coa string, answer func(int, *radius.Packet) radius.Code) (*testEnv, *testNAS) {
	nas := newTestNAS(t, answer)
	cs := defaultClients()
	cs[0].CoA = coa
	cs[0].CoAPort = nas.port()
	e := startServer(t, cs, func(c *Config) {})
	e.srv.coaTries = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	// A live session for alice from 127.0.0.1.
	if r := radclient(t, e.acct, "acct", testSecret, acctAttrs("Start", "sess-42", "AA-BB-CC-00-00-01")...); r.Code != "Accounting-Response" {
		t.Fatalf("start: %q", r.Code)
	}
	return e, nas
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	e, nas := startWithNAS(t, CoADisconnect, func(int, *radius.Packet) radius.Code { return radius.CodeDisconnectACK })
	start := time.Now()
	if err := e.srv.Reauthorize(WithChangeTime(context.Background(), start), "m-alice"); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if elapsed > time.Second {
		t.Errorf("Reauthorize took %v, want < 1s", elapsed)
	}
	t.Logf("disconnect acknowledged in %v", elapsed)
	p := <-nas.got
	if p.Code != radius.CodeDisconnectRequest {
		t.Fatalf("code %v", p.Code)
	}
	if u := rfc2865.UserName_GetString(p); u != "alice" {
		t.Errorf("User-Name = %q", u)
	}
	if s := rfc2866.AcctSessionID_GetString(p); s != "sess-42" {
		t.Errorf("Acct-Session-Id = %q", s)
	}
	if c := rfc2865.CallingStationID_GetString(p); c != "AA-BB-CC-00-00-01" {
		t.Errorf("Calling-Station-Id = %q", c)
	}
	ent, ok := e.audit.find("radius.disconnect.ack")
	if !ok || ent.Member != "m-alice" || !strings.Contains(ent.Cause, "sess-42") || !strings.Contains(ent.Cause, "after the change arrived") {
		t.Fatalf("audit = %+v, %v", ent, ok)
	}
	if n := len(e.srv.Sessions("m-alice")); n != 0 {
		t.Errorf("session still live after ACK")
	}
}

func TestDisconnectRetriesAndNAK(t *testing.T) {
	t.Parallel()
	e, nas := startWithNAS(t, CoADisconnect, func(n int, _ *radius.Packet) radius.Code {
		if n == 1 {
			return 0 // lose the first request
		}
		return radius.CodeDisconnectNAK
	})
	err := e.srv.Reauthorize(context.Background(), "m-alice")
	if err == nil {
		t.Fatal("NAK: want an error")
	}
	if got := nas.n.Load(); got != 2 {
		t.Errorf("NAS saw %d requests, want 2 (one retry)", got)
	}
	if _, ok := e.audit.find("radius.disconnect.nak"); !ok {
		t.Error("NAK not audited")
	}
	if n := len(e.srv.Sessions("m-alice")); n != 1 {
		t.Errorf("session closed despite NAK")
	}
}

func TestDisconnectTimeout(t *testing.T) {
	t.Parallel()
	e, nas := startWithNAS(t, CoADisconnect, func(int, *radius.Packet) radius.Code { return 0 })
	err := e.srv.Reauthorize(context.Background(), "m-alice")
	if err == nil || !strings.Contains(err.Error(), ErrNoAnswer.Error()) {
		t.Fatalf("err = %v, want no answer", err)
	}
	if got := nas.n.Load(); got != 3 {
		t.Errorf("NAS saw %d requests, want 3", got)
	}
	if _, ok := e.audit.find("radius.disconnect.timeout"); !ok {
		t.Error("timeout not audited")
	}
}

func TestCoA(t *testing.T) {
	t.Parallel()
	var ended atomic.Bool
	e, nas := startWithNAS(t, CoAChange, func(_ int, p *radius.Packet) radius.Code {
		if ended.Load() {
			return radius.CodeDisconnectACK
		}
		return radius.CodeCoAACK
	})
	// The plan changed: new bandwidth.
	s := hotDesk("alice", "m-alice", "correct horse")
	s.Decision.Bandwidth = model.Bandwidth{DownKbps: 1000, UpKbps: 500}
	e.dir.Put(s)
	if err := e.srv.Reauthorize(context.Background(), "m-alice"); err != nil {
		t.Fatal(err)
	}
	p := <-nas.got
	if p.Code != radius.CodeCoARequest {
		t.Fatalf("code %v, want CoA-Request", p.Code)
	}
	if v := vendorAttr(must(p.Encode()), 14122, 8); len(v) != 4 || binary.BigEndian.Uint32(v) != 1000000 {
		t.Errorf("WISPr-Bandwidth-Max-Down = %x, want 1000000", v)
	}
	if f := rfc2865.FilterID_GetString(p); f != "hotdesk" {
		t.Errorf("Filter-Id = %q", f)
	}
	if _, ok := e.audit.find("radius.coa.ack"); !ok {
		t.Error("CoA ACK not audited")
	}
	if n := len(e.srv.Sessions("m-alice")); n != 1 {
		t.Error("CoA closed the session")
	}

	// Membership ended: CoA mode still disconnects.
	s.Decision = model.Decision{Allowed: false, Deny: model.DenyEnded}
	e.dir.Put(s)
	ended.Store(true)
	if err := e.srv.Reauthorize(context.Background(), "m-alice"); err != nil {
		t.Fatal(err)
	}
	if p := <-nas.got; p.Code != radius.CodeDisconnectRequest {
		t.Errorf("code %v, want Disconnect-Request for an ended membership", p.Code)
	}
}
