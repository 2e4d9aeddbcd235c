package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/internal/testepoch"
)

// logBuf collects a node's log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  testing.TB
}

// quietLogs keeps node logs out of the test output (benchmarks print
// every b.Log line).
var quietLogs bool

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !quietLogs {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return l.b.Write(p)
}

func (l *logBuf) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

type testNode struct {
	*Node
	dir  string
	st   *store.Store
	logs *logBuf
	stop func()
}

// testClock starts at the test epoch and advances with wall time.
func testClock() func() time.Time {
	base, epoch := time.Now(), testepoch.Epoch()
	return func() time.Time { return epoch.Add(time.Since(base)) }
}

func startNode(t testing.TB, now func() time.Time, locations ...string) *testNode {
	t.Helper()
	return startNodeIn(t, t.TempDir(), "127.0.0.1:0", now, locations...)
}

// startNodeIn runs a node on the store and fleet files in dir (a restart
// when dir held a node before), listening on listen.
func startNodeIn(t testing.TB, dir, listen string, now func() time.Time, locations ...string) *testNode {
	t.Helper()
	return startNodeVersion(t, dir, listen, "", now, locations...)
}

// startNodeVersion is startNodeIn for a box running software version.
func startNodeVersion(t testing.TB, dir, listen, version string, now func() time.Time, locations ...string) *testNode {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "deskgate.db"), store.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{t: t}
	n, err := New(Options{
		Store: st, DataDir: dir, Listen: listen, Locations: locations, Version: version, Now: now,
		Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), PingInterval: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	tn := &testNode{Node: n, st: st, logs: lb, dir: dir}
	var once sync.Once
	tn.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("node run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("node did not stop")
			}
			st.Close()
		})
	}
	t.Cleanup(tn.stop)
	waitFor(t, 2*time.Second, "listener", func() bool { return n.advertise() != "127.0.0.1:0" })
	return tn
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func (n *testNode) linkUp(peer string) bool {
	st, err := n.Status()
	if err != nil {
		return false
	}
	for _, p := range st.Peers {
		if p.Box == peer && p.Link == "up" {
			return true
		}
	}
	return false
}

// fleet3 makes a fleet of a (init, serves Downtown), b (Downtown) and c
// (Uptown), all linked.
func fleet3(t testing.TB) (a, b, c *testNode) {
	now := testClock()
	a, b, c = startNode(t, now, "Downtown"), startNode(t, now, "Downtown"), startNode(t, now, "Uptown")
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	for _, j := range []struct {
		n  *testNode
		id string
	}{{b, "box-b"}, {c, "box-c"}} {
		tok, _, err := a.Invite(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.n.Join(context.Background(), tok, j.id); err != nil {
			t.Fatalf("join %s: %v", j.id, err)
		}
	}
	waitFor(t, 5*time.Second, "full mesh", func() bool {
		return a.linkUp("box-b") && a.linkUp("box-c") && b.linkUp("box-c") && b.linkUp("box-a") && c.linkUp("box-a") && c.linkUp("box-b")
	})
	return a, b, c
}

func putAccount(t testing.TB, st *store.Store, acct model.Account) {
	t.Helper()
	if err := st.Update(func(tx *store.Tx) error { return tx.PutAccount(acct) }); err != nil {
		t.Fatal(err)
	}
}

func accountHash(st *store.Store, member string) []byte {
	var h []byte
	_ = st.View(func(tx *store.Tx) error {
		a, err := tx.AccountOfMember(member)
		h = a.NTHash
		return err
	})
	return h
}

// TestFleetJoinAndReplicate: init, two joins over pinned TLS, a full mesh
// of links (one per pair), and a member-chosen password set at C reaches
// A and B's accounts within a second, as an NT hash.
func TestFleetJoinAndReplicate(t *testing.T) {
	a, b, c := fleet3(t)
	for _, n := range []*testNode{a, b, c} {
		n.mu.Lock()
		links := len(n.links)
		n.mu.Unlock()
		if links != 2 {
			t.Errorf("%s has %d links, want 2 (one per pair)", n.BoxID(), links)
		}
	}
	now := a.now()
	for _, n := range []*testNode{a, b} {
		putAccount(t, n.st, model.Account{Username: "ada@example.com", MemberID: "m1", NTHash: creds.NTHash("derived-one"), PasswordSource: model.PasswordGenerated, CreatedAt: now})
	}
	putAccount(t, c.st, model.Account{Username: "ada@example.com", MemberID: "m1", NTHash: creds.NTHash("my own choice 42"), PasswordSource: model.PasswordMember, CreatedAt: now})
	want := creds.NTHash("my own choice 42")
	took := waitFor(t, time.Second, "password at A and B", func() bool {
		return bytes.Equal(accountHash(a.st, "m1"), want) && bytes.Equal(accountHash(b.st, "m1"), want)
	})
	t.Logf("member-chosen password C → A and B in %s", took)
	// The register holds the hash, the log never a plaintext.
	_ = a.st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketLog, "", func(k string, raw []byte) error {
			if strings.Contains(string(raw), "my own choice") {
				t.Errorf("plaintext password in log entry %q", k)
			}
			return nil
		})
	})
	st, _ := a.Status()
	if len(st.Peers) != 2 || st.VV["box-c"] == 0 {
		t.Errorf("status %+v", st)
	}
}

// TestFleetPeerVersions: each box advertises its software version in its
// box register; the other sees it in Status, and sees the new one after
// the box restarts on another version (an update).
func TestFleetPeerVersions(t *testing.T) {
	now := testClock()
	a := startNodeVersion(t, t.TempDir(), "127.0.0.1:0", "1.4.0", now, "Downtown")
	b := startNodeVersion(t, t.TempDir(), "127.0.0.1:0", "1.5.0-rc1", now, "Uptown")
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.Invite(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(context.Background(), tok, "box-b"); err != nil {
		t.Fatal(err)
	}
	peerVersion := func(n *testNode, box string) string {
		st, err := n.Status()
		if err != nil {
			return ""
		}
		for _, p := range st.Peers {
			if p.Box == box {
				return p.Version
			}
		}
		return ""
	}
	waitFor(t, 5*time.Second, "each box sees the other's version", func() bool {
		return peerVersion(a, "box-b") == "1.5.0-rc1" && peerVersion(b, "box-a") == "1.4.0"
	})
	// Box A is updated: it restarts on its store and files with a new version.
	dir, addr := a.dir, a.advertise()
	a.stop()
	a = startNodeVersion(t, dir, addr, "1.5.0", now, "Downtown")
	waitFor(t, 5*time.Second, "box B sees A's new version", func() bool { return peerVersion(b, "box-a") == "1.5.0" })
	if v := peerVersion(a, "box-b"); v != "1.5.0-rc1" {
		t.Errorf("after the restart box A sees B at %q, want 1.5.0-rc1", v)
	}
	if err := checkValue(KindBox, []byte(`{"version":"`+strings.Repeat("9", 129)+`"}`)); err == nil {
		t.Error("a 129-byte version was accepted")
	}
}

// TestFleetJoinTokenRefusals: a replayed, a forged and an expired token
// are refused with a clear log line, and nothing is signed or stored.
func TestFleetJoinTokenRefusals(t *testing.T) {
	now := testClock()
	a, b := startNode(t, now), startNode(t, now)
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.Invite(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(context.Background(), tok, "box-b"); err != nil {
		t.Fatal(err)
	}
	// Replay by another box.
	x := startNode(t, now)
	if _, err := x.Join(context.Background(), tok, "box-x"); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("replayed token: %v", err)
	}
	waitFor(t, time.Second, "log line", func() bool { return a.logs.has("fleet join refused") && a.logs.has("join token already used") })
	// Forged: right id and fingerprint, wrong secret.
	tok2, _, _ := a.Invite(time.Hour)
	p, _ := ParseToken(tok2)
	p.Secret = bytes.Repeat([]byte{7}, 32)
	if _, err := x.Join(context.Background(), p.Encode(), "box-x"); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("forged token: %v", err)
	}
	// A token pinned to another CA: the TLS handshake fails at the joiner.
	q, _ := ParseToken(tok2)
	q.CAFingerprint = strings.Repeat("ab", 32)
	if _, err := x.Join(context.Background(), q.Encode(), "box-x"); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("wrong pin: %v", err)
	}
	// Expired (ttl 1ms, the clock moves on).
	tok3, _, _ := a.Invite(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, err := x.Join(context.Background(), tok3, "box-x"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	if x.BoxID() != "" {
		t.Errorf("refused box has an identity %q", x.BoxID())
	}
	// The forged token's real secret still works once: nothing was spent.
	if _, err := x.Join(context.Background(), tok2, "box-x"); err != nil {
		t.Errorf("genuine token after a forged attempt: %v", err)
	}
}

// TestFleetForeignCARefused: a box of another fleet presenting its own
// certificate is refused at the TLS handshake, with a log line, and
// nothing of it is applied.
func TestFleetForeignCARefused(t *testing.T) {
	now := testClock()
	a, d := startNode(t, now), startNode(t, now)
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Init("box-d"); err != nil {
		t.Fatal(err)
	}
	dk, _ := d.current()
	dial := websocket.Dialer{TLSClientConfig: d.clientTLS(dk)}
	// d verifies a's certificate against its own CA: it refuses too; skip
	// that side to see a's refusal.
	dial.TLSClientConfig.VerifyConnection = nil
	_, _, err := dial.Dial("wss://"+a.advertise()+"/fleet/v1/link", nil)
	if err == nil {
		t.Fatal("a box of another fleet got a link")
	}
	waitFor(t, time.Second, "refusal logged", func() bool { return a.logs.has("certificate signed by unknown authority") })
	// d's own dialer, with verification on, refuses a's certificate.
	d2 := websocket.Dialer{TLSClientConfig: d.clientTLS(dk)}
	_, _, err = d2.Dial("wss://"+a.advertise()+"/fleet/v1/link", nil)
	if err == nil || !strings.Contains(err.Error(), "not from this fleet's CA") {
		t.Errorf("d dialing a: %v", err)
	}
	st, _ := a.Status()
	if st.VV["box-d"] != 0 || len(st.Peers) != 0 {
		t.Errorf("a learned something from a foreign box: %+v", st)
	}
}

// TestFleetRemovedBoxRefused: after fleet remove, every box closes its
// link to the removed box and refuses it from then on.
func TestFleetRemovedBoxRefused(t *testing.T) {
	a, b, c := fleet3(t)
	if err := b.Remove("box-c"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "links to c closed", func() bool { return !a.linkUp("box-c") && !b.linkUp("box-c") })
	waitFor(t, 2*time.Second, "a logs", func() bool { return a.logs.has("box was removed from the fleet") })
	// c keeps dialing; its writes never reach a or b.
	now := c.now()
	putAccount(t, c.st, model.Account{Username: "eve@example.com", MemberID: "m9", NTHash: creds.NTHash("from the removed box"), PasswordSource: model.PasswordMember, CreatedAt: now})
	time.Sleep(1500 * time.Millisecond)
	if a.linkUp("box-c") || b.linkUp("box-c") {
		t.Fatal("removed box linked again")
	}
	_ = a.st.View(func(tx *store.Tx) error {
		if _, ok, _ := register(tx, KindPassword, "m9"); ok {
			t.Error("a applied an entry of the removed box")
		}
		return nil
	})
	if err := a.Remove("box-c"); err == nil {
		t.Error("removing twice succeeded")
	}
}

// rawLink dials a as box b (with b's real certificate) and says hello.
func rawLink(t *testing.T, a, b *testNode) *websocket.Conn {
	t.Helper()
	bk, _ := b.current()
	bd := websocket.Dialer{TLSClientConfig: b.clientTLS(bk)}
	conn, _, err := bd.Dial("wss://"+a.advertise()+"/fleet/v1/link", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hello, _ := json.Marshal(Message{Type: TypeHello, Box: "box-b", VV: map[string]uint64{}})
	if err := conn.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestFleetBadMessagesCloseLink: a malformed batch (one good entry, one
// bad) and an oversized frame each close the link with a log line, and
// nothing of them is applied.
func TestFleetBadMessagesCloseLink(t *testing.T) {
	now := testClock()
	a, b := startNode(t, now), startNode(t, now)
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	tok, _, _ := a.Invite(time.Hour)
	if _, err := b.Join(context.Background(), tok, "box-b"); err != nil {
		t.Fatal(err)
	}
	b.stop() // b's own links would race with the raw ones
	good := Entry{Origin: "box-b", Seq: 1, Time: HLC{Wall: now().UnixNano()}, Kind: KindPassword, Key: "m1", Value: json.RawMessage(`{"nt":"AAAAAAAAAAAAAAAAAAAAAA=="}`)}
	bad := good
	bad.Seq, bad.Value = 2, json.RawMessage(`{"nt":"AAAA"}`) // not 16 bytes
	for _, tc := range []struct {
		name, log string
		frame     []byte
	}{
		{"bad value", "malformed message", mustJSON(Message{Type: TypeEntries, Entries: []Entry{good, bad}})},
		{"not json", "malformed message", []byte(`{"type":"entries",`)},
		{"unknown type", "malformed message", []byte(`{"type":"gossip"}`)},
		{"hint not an object", "malformed message", []byte(`{"type":"hint","hint":[1,2]}`)},
		{"oversized", "oversized message", bytes.Repeat([]byte("x"), MaxMessageBytes+10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawLink(t, a, b)
			waitFor(t, 2*time.Second, "link up", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				return a.links["box-b"] != nil && a.links["box-b"].up()
			})
			if err := conn.WriteMessage(websocket.TextMessage, tc.frame); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					if !websocket.IsCloseError(err, websocket.ClosePolicyViolation, websocket.CloseMessageTooBig) && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "EOF") {
						t.Errorf("link ended with %v, want a close", err)
					}
					break
				}
			}
			waitFor(t, time.Second, "log line", func() bool { return a.logs.has(tc.log) })
			_ = a.st.View(func(tx *store.Tx) error {
				if s, _ := seqOf(tx, "box-b"); s != 0 {
					t.Errorf("applied %d entries of a rejected frame", s)
				}
				return nil
			})
		})
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestLWWConverges: the same entries applied in different orders give
// every replica the same registers.
func TestLWWConverges(t *testing.T) {
	now := testClock()
	t0 := now().UnixNano()
	es := []Entry{
		{Origin: "box-a", Seq: 1, Time: HLC{t0, 0}, Kind: KindPassword, Key: "m1", Value: json.RawMessage(`{"nt":"AQEBAQEBAQEBAQEBAQEBAQ=="}`)},
		{Origin: "box-b", Seq: 1, Time: HLC{t0, 0}, Kind: KindPassword, Key: "m1", Value: json.RawMessage(`{"nt":"AgICAgICAgICAgICAgICAg=="}`)},
		{Origin: "box-a", Seq: 2, Time: HLC{t0, 1}, Kind: KindWelcome, Key: "m1", Value: json.RawMessage(`{"box":"box-a"}`)},
		{Origin: "box-c", Seq: 1, Time: HLC{t0 - 5, 9}, Kind: KindPassword, Key: "m1", Value: json.RawMessage(`{"nt":"AwMDAwMDAwMDAwMDAwMDAw=="}`)},
	}
	orders := [][]int{{0, 1, 2, 3}, {3, 1, 0, 2}, {1, 3, 0, 2}}
	var got []string
	for _, ord := range orders {
		st, err := store.Open(filepath.Join(t.TempDir(), "d.db"), store.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{self: "box-z", clk: &clock{now: now}, now: now}
		if err := st.Update(func(tx *store.Tx) error {
			for _, i := range ord {
				if _, err := r.apply(tx, es[i]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var dump strings.Builder
		_ = st.View(func(tx *store.Tx) error {
			return tx.ForEachKV(bucketReg, "", func(k string, raw []byte) error { fmt.Fprintf(&dump, "%s=%s\n", k, raw); return nil })
		})
		st.Close()
		got = append(got, dump.String())
	}
	for i := range got {
		if got[i] != got[0] {
			t.Errorf("order %v gives\n%s\nwant\n%s", orders[i], got[i], got[0])
		}
	}
	if !strings.Contains(got[0], `"o":"box-b"`) {
		t.Errorf("tie on HLC not won by the higher origin: %s", got[0])
	}
}

// TestHLC: local events are strictly increasing also when the wall clock
// stands still or goes back, and a received stamp pushes the clock past it.
func TestHLC(t *testing.T) {
	wall := testepoch.Epoch()
	c := &clock{now: func() time.Time { return wall }}
	a := c.Now()
	b := c.Now()
	if !a.Less(b) {
		t.Errorf("%v !< %v with a frozen wall clock", a, b)
	}
	wall = wall.Add(-time.Minute)
	d := c.Now()
	if !b.Less(d) {
		t.Errorf("%v !< %v after the wall clock went back", b, d)
	}
	far := HLC{Wall: wall.Add(time.Hour).UnixNano(), Logical: 3}
	c.Observe(far)
	if e := c.Now(); !far.Less(e) {
		t.Errorf("%v !< %v after observing it", far, e)
	}
}

// TestTLSConfigs: links demand TLS 1.3 and a verified client certificate
// with the daemon's clock.
func TestTLSConfigs(t *testing.T) {
	now := testClock()
	a := startNode(t, now)
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	k, _ := a.current()
	cfg, err := a.serverTLS(k).GetConfigForClient(&tls.ClientHelloInfo{ServerName: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.MinVersion != tls.VersionTLS13 || cfg.Time == nil || cfg.VerifyPeerCertificate == nil {
		t.Errorf("link TLS config: %+v", cfg)
	}
}

func FuzzDecode(f *testing.F) {
	t0 := testepoch.Epoch().UnixNano()
	f.Add(mustJSON(Message{Type: TypeHello, Box: "box-a", VV: map[string]uint64{"box-a": 3}}))
	f.Add(mustJSON(Message{Type: TypeVV, VV: map[string]uint64{"box-b": 1}}))
	f.Add(mustJSON(Message{Type: TypeEntries, Entries: []Entry{{Origin: "box-a", Seq: 1, Time: HLC{t0, 0}, Kind: KindBox, Key: "box-a", Value: json.RawMessage(`{"url":"wss://127.0.0.1:1"}`)}}}))
	f.Add(mustJSON(Message{Type: TypeEntries, Entries: []Entry{{Origin: "box-a", Seq: 1, Time: HLC{t0, 0}, Kind: KindPassword, Key: "m", Value: json.RawMessage(`{"nt":"AAAAAAAAAAAAAAAAAAAAAA=="}`)}}}))
	f.Add([]byte(`{"type":"entries","entries":[{"o":"x","s":1}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"type":"hint","hint":{"event":"member.created","data":{}}}`))
	f.Add([]byte(`{"type":"hint","hint":"x"}`))
	f.Add(mustJSON(Message{Type: TypeEntries, Entries: []Entry{{Origin: "box-a", Seq: 2, Time: HLC{t0, 1}, Kind: KindAudit, Key: auditKey(HLC{t0, 1}, "box-a"), Value: json.RawMessage(`{"time":"2026-01-01T00:00:00Z","actor":"cli","action":"x"}`)}}}))
	f.Add(mustJSON(Message{Type: TypeEntries, Entries: []Entry{{Origin: "box-a", Seq: 3, Time: HLC{t0, 2}, Kind: KindSent, Key: "welcome/m1", Value: json.RawMessage(`{"box":"box-a","kind":"welcome"}`)}}}))
	f.Add(mustJSON(Message{Type: TypeEntries, Entries: []Entry{{Origin: "box-a", Seq: 4, Time: HLC{t0, 3}, Kind: KindConfig, Key: configKey, Value: json.RawMessage(`{"ver":1,"doc":"groups: []","by":"box-a"}`)}}}))
	f.Add(mustJSON(Message{Type: TypeConfigCheck, Check: &ConfigCheck{ID: "0a1b", Doc: "groups: []"}}))
	f.Add(mustJSON(Message{Type: TypeConfigVote, Vote: &ConfigVote{ID: "0a1b", OK: false, Reason: "no"}}))
	f.Add([]byte(`{"type":"vv","vote":{"id":"00","ok":true}}`))
	f.Add([]byte(`{"type":"entries","certs":["AAAA"],"entries":[{"o":"box-a","s":5,"skip":3,"t":{"w":1,"l":0},"k":"pw","key":"m","v":{"nt":"AAAAAAAAAAAAAAAAAAAAAA=="},"sig":"MEUCIQ=="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever Decode accepts is well-formed and survives a round trip.
		if err := m.check(); err != nil {
			t.Fatalf("accepted message fails check: %v", err)
		}
		for _, e := range m.Entries {
			if err := checkValue(e.Kind, e.Value); err != nil {
				t.Fatalf("accepted entry with bad value: %v", err)
			}
		}
		again, err := Decode(mustJSON(m))
		if err != nil {
			t.Fatalf("re-encoded message rejected: %v", err)
		}
		if again.Type != m.Type || len(again.Entries) != len(m.Entries) {
			t.Fatalf("round trip changed the message")
		}
	})
}

// regDump renders a node's merged registers and version vector.
func regDump(t testing.TB, st *store.Store) string {
	t.Helper()
	var b strings.Builder
	err := st.View(func(tx *store.Tx) error {
		if err := tx.ForEachKV(bucketReg, "", func(k string, raw []byte) error { fmt.Fprintf(&b, "%s=%s\n", k, raw); return nil }); err != nil {
			return err
		}
		vv, err := readVV(tx)
		fmt.Fprintf(&b, "vv=%v\n", vv)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestFleetPartitionHeals: box-c is cut off (stopped) while box-a takes
// 300 member-chosen passwords and box-b changes one that box-c changes
// too; box-c restarts from its own store (as after kill -9 and reboot),
// and within 5 s every box holds the same registers, the same version
// vector and the same account hashes; nothing acknowledged is lost.
func TestFleetPartitionHeals(t *testing.T) {
	a, b, c := fleet3(t)
	now := a.now()
	for _, n := range []*testNode{a, b, c} {
		putAccount(t, n.st, model.Account{Username: "both@example.com", MemberID: "m-both", NTHash: creds.NTHash("start-pass-1"), PasswordSource: model.PasswordGenerated, CreatedAt: now})
	}
	c.stop()
	const many = 300
	if err := a.st.Update(func(tx *store.Tx) error {
		for i := range many {
			if err := tx.PutAccount(model.Account{Username: fmt.Sprintf("u%d@example.com", i), MemberID: fmt.Sprintf("m%d", i), NTHash: creds.NTHash(fmt.Sprintf("pw-%d", i)), PasswordSource: model.PasswordMember, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	acct := model.Account{Username: "both@example.com", MemberID: "m-both", NTHash: creds.NTHash("set at b"), PasswordSource: model.PasswordMember, CreatedAt: now}
	putAccount(t, b.st, acct)
	waitFor(t, 3*time.Second, "a and b agree while c is away", func() bool {
		return regDump(t, a.st) == regDump(t, b.st) && strings.Contains(regDump(t, a.st), "pw/m299")
	})
	// While cut off, c's own member sets a password on c (written to its
	// store before the node runs again).
	st, err := store.Open(filepath.Join(c.dir, "deskgate.db"), store.Options{Now: a.now})
	if err != nil {
		t.Fatal(err)
	}
	acct.NTHash = creds.NTHash("set at c")
	putAccount(t, st, acct)
	st.Close()
	c2 := startNodeIn(t, c.dir, "127.0.0.1:0", a.now, "Uptown")
	took := waitFor(t, 5*time.Second, "convergence", func() bool {
		da := regDump(t, a.st)
		return da == regDump(t, b.st) && da == regDump(t, c2.st) && strings.Contains(da, "pw/m299") && strings.Contains(da, `"o":"box-c","s":`)
	})
	t.Logf("healed: %d entries caught up by box-c, all boxes identical after %s", many+1, took)
	want := accountHash(a.st, "m-both")
	for _, n := range []*testNode{b, c2} {
		if !bytes.Equal(accountHash(n.st, "m-both"), want) {
			t.Errorf("%s holds another password for m-both", n.BoxID())
		}
	}
	if !bytes.Equal(want, creds.NTHash("set at c")) {
		t.Errorf("the later write (box-c, after box-b) did not win")
	}
	for i := range many {
		if !bytes.Equal(accountHash(a.st, fmt.Sprintf("m%d", i)), creds.NTHash(fmt.Sprintf("pw-%d", i))) {
			t.Fatalf("m%d lost its password at a", i)
		}
	}
}

// setPassword is what the onboarding page does: store the account and
// originate the password in one transaction.
func setPassword(t testing.TB, n *testNode, member, pw string) {
	t.Helper()
	err := n.st.Update(func(tx *store.Tx) error {
		a := model.Account{Username: member + "@example.com", MemberID: member, NTHash: creds.NTHash(pw), PasswordSource: model.PasswordMember, CreatedAt: n.now()}
		if err := tx.PutAccount(a); err != nil {
			return err
		}
		return n.RecordPassword(tx, member, a.NTHash)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// allEntries returns every log entry a node holds.
func allEntries(t testing.TB, st *store.Store) []Entry {
	t.Helper()
	var out []Entry
	err := st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketLog, "", func(_ string, raw []byte) error {
			var e Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFleetRandomized is a small Jepsen-style test: 1,000 random
// operations (member-chosen passwords set at random boxes, partitions
// between random boxes, heals and restarts of random boxes from their own
// store) and then a heal. Afterwards every box holds the same log, vector
// and registers; every acknowledged write is in the log; and each
// member's password is, at every box that has the account, the last
// writer by (HLC, origin) among all writes. The seed is printed;
// DESKGATE_FLEET_SEED=<seed> replays it.
func TestFleetRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DESKGATE_FLEET_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DESKGATE_FLEET_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with DESKGATE_FLEET_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	a, b, c := fleet3(t)
	nodes := []*testNode{a, b, c}
	ids := []string{"box-a", "box-b", "box-c"}
	locs := []string{"Downtown", "Downtown", "Uptown"}
	cut := map[[2]int]bool{}
	applyCuts := func() {
		for i, n := range nodes {
			var off []string
			for j := range nodes {
				if cut[[2]int{min(i, j), max(i, j)}] {
					off = append(off, ids[j])
				}
			}
			n.setCut(off...)
		}
	}
	acked := 0
	counts := map[string]int{}
	winner := map[string]Entry{} // per member, the last writer among the acknowledged writes
	audits := 0
	claimedBy := map[string]map[string]bool{} // message name -> boxes whose claim was granted
	var parts, heals, restarts, compactions int
	for i := range 1000 {
		switch r := rng.IntN(100); {
		case r < 80:
			k := rng.IntN(3)
			member := fmt.Sprintf("m%d", rng.IntN(120))
			setPassword(t, nodes[k], member, fmt.Sprintf("op-%d-%s", i, member))
			acked++
			counts[member]++
			// The acknowledged write: its origin's newest entry for member
			// with this hash.
			want := creds.NTHash(fmt.Sprintf("op-%d-%s", i, member))
			var e Entry
			_ = nodes[k].st.View(func(tx *store.Tx) error {
				return tx.ForEachKV(bucketLog, ids[k]+"\x00", func(_ string, raw []byte) error {
					var x Entry
					var v PasswordValue
					if json.Unmarshal(raw, &x) == nil && x.Kind == KindPassword && x.Key == member && json.Unmarshal(x.Value, &v) == nil && bytes.Equal(v.NTHash, want) {
						e = x
					}
					return nil
				})
			})
			if e.Seq == 0 {
				t.Fatalf("op %d: the write at %s is not in its log", i, ids[k])
			}
			if cur, ok := winner[member]; !ok || wins(e, cur) {
				winner[member] = e
			}
		case r < 84:
			auditAt(t, nodes[rng.IntN(3)], fmt.Sprintf("op.%d", i), "")
			audits++
		case r < 87:
			k := rng.IntN(3)
			name := fmt.Sprintf("welcome/r%d", rng.IntN(20))
			ok, by, err := nodes[k].ClaimSend(model.Email{Kind: "welcome", Once: name})
			if err != nil {
				t.Fatal(err)
			}
			if ok != (by == ids[k]) {
				t.Fatalf("claim at %s: ok=%v by %s", ids[k], ok, by)
			}
			if ok {
				if claimedBy[name] == nil {
					claimedBy[name] = map[string]bool{}
				}
				claimedBy[name][ids[k]] = true
			}
		case r < 88:
			if _, err := nodes[rng.IntN(3)].Compact(); err != nil {
				t.Fatal(err)
			}
			compactions++
		case r < 94:
			x, y := rng.IntN(3), rng.IntN(3)
			if x != y {
				cut[[2]int{min(x, y), max(x, y)}] = true
				applyCuts()
				parts++
			}
		case r < 98:
			clear(cut)
			applyCuts()
			heals++
		default:
			k := rng.IntN(3)
			addr := nodes[k].advertise() // a box keeps its address across restarts
			nodes[k].stop()
			nodes[k] = startNodeIn(t, nodes[k].dir, addr, a.now, locs[k])
			applyCuts()
			restarts++
		}
	}
	clear(cut)
	applyCuts()
	took := waitFor(t, 10*time.Second, "convergence after healing", func() bool {
		d := regDump(t, nodes[0].st)
		return d == regDump(t, nodes[1].st) && d == regDump(t, nodes[2].st)
	})
	t.Logf("%d writes, %d audit events, %d claims, %d compactions, %d partitions, %d heals, %d restarts; identical %s after the last heal",
		acked, audits, len(claimedBy), compactions, parts, heals, restarts, took)
	// The last acknowledged write of every member won everywhere (so
	// none was lost; the others may be compacted away, never resurrected).
	for m, w := range winner {
		for _, n := range nodes {
			var reg Entry
			_ = n.st.View(func(tx *store.Tx) error { reg, _, _ = register(tx, KindPassword, m); return nil })
			if reg.Origin != w.Origin || reg.Seq != w.Seq {
				t.Errorf("%s: register of %s is %s/%d, want the last acknowledged write %s/%d", n.BoxID(), m, reg.Origin, reg.Seq, w.Origin, w.Seq)
			}
		}
	}
	if compactions == 0 {
		// Without compaction every acknowledged write is in the log.
		got := map[string]int{}
		for _, e := range allEntries(t, nodes[0].st) {
			if e.Kind == KindPassword {
				got[e.Key]++
			}
		}
		for m, n := range counts {
			if got[m] != n {
				t.Errorf("member %s: %d writes acknowledged, %d in the log", m, n, got[m])
			}
		}
	}
	// Every audit event is at every box; every message has one sender,
	// the same everywhere, among the boxes whose claim was granted.
	for _, n := range nodes {
		if es, _, _ := n.Audit("", 0); len(es) != audits {
			t.Errorf("%s holds %d audit events, want %d", n.BoxID(), len(es), audits)
		}
	}
	for name, granted := range claimedBy {
		by, _ := nodes[0].SentBy(name)
		if !granted[by] {
			t.Errorf("message %s marked sent by %q, which was never granted it (granted: %v)", name, by, granted)
		}
	}
	last := winner
	// Each account holds the last writer's hash.
	for _, n := range nodes {
		for m, e := range last {
			var v PasswordValue
			_ = json.Unmarshal(e.Value, &v)
			if h := accountHash(n.st, m); h != nil && !bytes.Equal(h, v.NTHash) {
				t.Errorf("%s: account of %s does not hold the last write (%s by %s)", n.BoxID(), m, e.Time, e.Origin)
			}
		}
	}
}

// TestDialBackoffHealsWithin5s: however long a peer was unreachable, the
// longest wait before the next dial (jitter up to +50%) plus a second for
// the TLS handshake and anti-entropy stays within the 5 s in which a healed
// fleet must converge (with the former 30 s cap a long partition healed
// only after up to 45 s).
func TestDialBackoffHealsWithin5s(t *testing.T) {
	b, longest := dialBackoffMin, time.Duration(0)
	for range 100 { // 100 failed dials in a row
		longest = max(longest, b*3/2)
		b = min(2*b, dialBackoffMax)
	}
	if longest+time.Second > 5*time.Second {
		t.Fatalf("after a long partition a dialer may wait %s before it notices the heal", longest)
	}
}
