package peer

import (
	"crypto/ecdsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/deskgate/deskgate/appliance/store"
)

// sendRaw writes one frame on a raw link and reports whether the peer
// then closed the link (within a second).
func sendRaw(t *testing.T, conn *websocket.Conn, m Message) bool {
	t.Helper()
	if err := conn.WriteMessage(websocket.TextMessage, mustJSON(m)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			return !strings.Contains(err.Error(), "timeout")
		}
		if m, err := Decode(raw); err == nil && m.Type == TypeVV {
			return false // the batch was answered
		}
	}
}

func pwEntry(origin string, seq uint64, now time.Time, key *ecdsa.PrivateKey) Entry {
	e := Entry{Origin: origin, Seq: seq, Time: HLC{Wall: now.UnixNano()}, Kind: KindPassword, Key: "m-" + origin, Value: json.RawMessage(`{"nt":"AAAAAAAAAAAAAAAAAAAAAA=="}`)}
	if key != nil {
		if err := signEntry(key, &e); err != nil {
			panic(err)
		}
	}
	return e
}

// TestFleetSignedEntries: every entry is signed by its origin box and
// verified on apply. Box-b (a fleet member with a valid certificate)
// writing as box-c, an unsigned entry, a tampered value and a
// certificate of another CA are each refused with a log line, the link
// is closed and nothing is applied; a correctly signed entry is applied;
// entries of a removed box are refused (not applied) with a log line.
func TestFleetSignedEntries(t *testing.T) {
	a, b, c := fleet3(t)
	bk, _ := b.current()
	ck, _ := c.current()
	b.stop() // b's own links would race with the raw ones
	c.stop()
	seqAt := func(origin string) uint64 {
		var s uint64
		_ = a.st.View(func(tx *store.Tx) error { s, _ = seqOf(tx, origin); return nil })
		return s
	}
	now := a.now()
	forged := pwEntry("box-c", seqAt("box-c")+1, now, bk.boxKey)
	tampered := pwEntry("box-b", seqAt("box-b")+1, now, bk.boxKey)
	tampered.Value = json.RawMessage(`{"nt":"AQEBAQEBAQEBAQEBAQEBAQ=="}`)
	other := startNode(t, a.now)
	if _, err := other.Init("box-c"); err != nil {
		t.Fatal(err)
	}
	ok, _ := other.current()
	for _, tc := range []struct {
		name, log string
		m         Message
	}{
		{"forged origin", "bad signature", Message{Type: TypeEntries, Entries: []Entry{forged}}},
		{"no signature", "no signature", Message{Type: TypeEntries, Entries: []Entry{pwEntry("box-b", seqAt("box-b")+1, now, nil)}}},
		{"tampered value", "bad signature", Message{Type: TypeEntries, Entries: []Entry{tampered}}},
		{"foreign certificate", "not from this fleet's CA", Message{Type: TypeEntries, Certs: [][]byte{ok.boxCert.Raw}, Entries: []Entry{pwEntry("box-c", seqAt("box-c")+1, now, ok.boxKey)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := [2]uint64{seqAt("box-b"), seqAt("box-c")}
			conn := rawLink(t, a, b)
			waitFor(t, 2*time.Second, "link up", func() bool { return a.linkUp("box-b") })
			if !sendRaw(t, conn, tc.m) {
				t.Error("link not closed")
			}
			waitFor(t, time.Second, "log line "+tc.log, func() bool { return a.logs.has(tc.log) })
			if after := [2]uint64{seqAt("box-b"), seqAt("box-c")}; after != before {
				t.Errorf("applied: vv %v -> %v", before, after)
			}
		})
	}
	// The control: the same link with b's own signed entry works.
	conn := rawLink(t, a, b)
	waitFor(t, 2*time.Second, "link up", func() bool { return a.linkUp("box-b") })
	good := pwEntry("box-b", seqAt("box-b")+1, now, bk.boxKey)
	if sendRaw(t, conn, Message{Type: TypeEntries, Entries: []Entry{good}}) || seqAt("box-b") != good.Seq {
		t.Fatal("a correctly signed entry was not applied")
	}
	// box-c is removed; its own, correctly signed entries relayed by b
	// are refused from then on.
	if err := a.Remove("box-c"); err != nil {
		t.Fatal(err)
	}
	fromC := pwEntry("box-c", seqAt("box-c")+1, now, ck.boxKey)
	if sendRaw(t, conn, Message{Type: TypeEntries, Entries: []Entry{fromC}}) {
		t.Error("link closed over a removed box's entry (it is skipped, not an attack by the relay)")
	}
	waitFor(t, time.Second, "log line", func() bool { return a.logs.has("entries of a removed box refused") })
	if s := seqAt("box-c"); s == fromC.Seq {
		t.Error("an entry of the removed box was applied")
	}
}

// BenchmarkEntrySignature: the cost of per-origin signing, per entry
// (a password entry): sign at the origin, verify at every receiver.
func BenchmarkEntrySignature(b *testing.B) {
	key, err := newKey()
	if err != nil {
		b.Fatal(err)
	}
	e := pwEntry("box-a", 1, time.Unix(1_800_000_000, 0), nil)
	book := newCertBook()
	book.keys["box-a"] = &key.PublicKey
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			if err := signEntry(key, &e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if err := book.verify(e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
}
