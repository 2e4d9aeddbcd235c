package guests

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/store"
)

func TestCodes(t *testing.T) {
	if bits := CodeLen * math.Log2(float64(len(Alphabet))); bits < 40 {
		t.Fatalf("codes carry %.1f bits, want >= 40", bits)
	}
	if strings.ContainsAny(Alphabet, "0O1IL") || strings.ToUpper(Alphabet) != Alphabet {
		t.Fatalf("alphabet %q has look-alikes or lower case", Alphabet)
	}
	seen := map[string]bool{}
	counts := map[rune]int{}
	const n = 3000
	for range n {
		c, err := newCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != CodeLen || seen[c] {
			t.Fatalf("code %q: bad length or repeated", c)
		}
		seen[c] = true
		for _, r := range c {
			counts[r]++
		}
		f := FormatCode(c)
		if !codeRE.MatchString(f) {
			t.Fatalf("formatted %q", f)
		}
		for _, typed := range []string{f, strings.ToLower(f), " " + f[:3] + " " + f[4:7] + "." + f[8:] + " ", c} {
			if got, ok := NormalizeCode(typed); !ok || got != c {
				t.Fatalf("NormalizeCode(%q) = %q, %v, want %q", typed, got, ok, c)
			}
		}
	}
	// Every symbol shows up about equally often (no modulo bias).
	want := float64(n*CodeLen) / float64(len(Alphabet))
	for _, r := range Alphabet {
		if got := float64(counts[r]); got < want*0.75 || got > want*1.25 {
			t.Errorf("symbol %c: %v times, want about %v", r, got, want)
		}
	}
	for _, bad := range []string{"", "ABC-DEF", "ABC-DEF-GH0", "ABC-DEF-GHI", "ABCDEFGHJK", "ÄBC-DEF-GHJ"} {
		if _, ok := NormalizeCode(bad); ok {
			t.Errorf("NormalizeCode(%q) accepted", bad)
		}
	}
}

// Codes are unique among live codes even when the generator repeats.
func TestCodesUniqueAmongLive(t *testing.T) {
	e := newEnv(t, t0, Config{})
	vs := make([]string, 40)
	for i := range vs {
		vs[i] = "v" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	meeting(e, vs...)
	e.reconcile()
	seen := map[string]bool{}
	for _, c := range e.codes() {
		if seen[c.Hint] {
			t.Fatalf("duplicate code %s", c.Hint)
		}
		seen[c.Hint] = true
	}
	if len(seen) != 40 {
		t.Fatalf("%d codes, want 40", len(seen))
	}
}

func TestRestartKeepsGuestsLoggedIn(t *testing.T) {
	e := newEnv(t, t0, Config{})
	meeting(e, "v1")
	e.reconcile()
	code := codesFromMail(t, e, notifytest.Start(t))["v1@guest.test"]
	ctx := context.Background()
	e.clk.Set(t0.Add(2 * time.Hour))
	s, err := e.m.LoginCode(ctx, code, client(1), "loc1")
	if err != nil {
		t.Fatal(err)
	}
	// Restart: close the store, reopen it, new Manager and Network.
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	e.st = openStore(t, e.dir, e.clk)
	net2 := newFakeNet()
	m2 := New(e.cfg, e.st, net2, nil, nil, e.clk.Now)
	if err := m2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if got := net2.Allows(); !slices.Equal(got, []string{mac(1) + "@" + s.Until.UTC().Format(time.RFC3339)}) {
		t.Fatalf("Allow after restart = %v", got)
	}
	got, ok, err := m2.SessionFor(ctx, client(1))
	if err != nil || !ok || got != s {
		t.Fatalf("SessionFor after restart = %+v %v %v, want %+v", got, ok, err, s)
	}
	// The code survives too, with its device list.
	if _, err := m2.LoginCode(ctx, code, client(2), "loc1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.LoginCode(ctx, code, client(3), "loc1"); !errors.Is(err, ErrDeviceLimit) {
		t.Fatalf("third device after restart: %v", err)
	}
}

// Run revokes a session within a second of its end, on the real clock.
func TestRunExpiresOnTime(t *testing.T) {
	now := time.Now()
	e := newEnv(t, now, Config{})
	e.m = New(Config{SealKey: testKey, BufferBefore: time.Minute, BufferAfter: time.Millisecond}, e.st, e.net, nil, nil, time.Now)
	end := now.Add(1500 * time.Millisecond)
	e.put(func(tx *store.Tx) error {
		if err := seedRoom(tx, "loc1", "UTC", "r1", "meeting_room"); err != nil {
			return err
		}
		if err := tx.PutVisitor(model.Visitor{ID: "v1", Email: "v1@guest.test"}); err != nil {
			return err
		}
		return tx.PutBooking(model.Booking{ID: "b1", Resource: "r1", Location: "loc1", Start: now, End: end, Visitors: []string{"v1"}})
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}()
	var code string
	for deadline := time.Now().Add(5 * time.Second); code == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, em := range e.outbox() {
			code = em.Secret["code"]
		}
	}
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(end.Add(3 * time.Second)) {
		if len(e.net.Revokes()) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	late := time.Since(end.Add(time.Millisecond))
	if len(e.net.Revokes()) != 1 || late > time.Second {
		t.Fatalf("revokes %v, %v after the end; want one within 1s", e.net.Revokes(), late)
	}
	// A booking change reaches Run through the store's change feed.
	e.put(func(tx *store.Tx) error {
		return tx.PutBooking(model.Booking{ID: "b2", Resource: "r1", Location: "loc1", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour), Visitors: []string{"v1"}})
	})
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cs := e.codes(); len(cs) == 2 {
			return
		}
	}
	t.Fatalf("booking b2 not picked up from the change feed: %+v", e.codes())
}

// smsHook is an httptest SMS endpoint that fails the first fail requests.
type smsHook struct {
	mu   sync.Mutex
	fail int
	got  []map[string]string
	auth []string
}

func (h *smsHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	if h.fail > 0 {
		h.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var m map[string]string
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.got = append(h.got, m)
}

func TestSMSHookDurableRetry(t *testing.T) {
	hook := &smsHook{fail: 2}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "sms.token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{SMS: SMSConfig{URL: srv.URL, TokenFile: tok, From: "Space"}}
	e := newEnv(t, t0, cfg)
	meeting(e, "v1")
	e.put(func(tx *store.Tx) error {
		return tx.PutVisitor(model.Visitor{ID: "v1", Name: "Vee", Phone: "+4915112345678"})
	})
	e.reconcile()
	if len(e.outbox()) != 0 {
		t.Fatalf("email queued for a visitor without address")
	}
	ctx := context.Background()
	next := e.m.flushSMS(ctx) // fails: 503
	if !next.Equal(t0.Add(smsMinBackoff)) {
		t.Fatalf("retry at %v, want %v", next, t0.Add(smsMinBackoff))
	}
	// The queue survives a restart.
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	e.st = openStore(t, e.dir, e.clk)
	e.m = New(e.cfg, e.st, e.net, nil, nil, e.clk.Now)
	if got := e.m.flushSMS(ctx); !got.Equal(next) {
		t.Fatalf("not yet due: next %v", got)
	}
	e.clk.Set(next)
	next = e.m.flushSMS(ctx) // fails again; backoff doubles
	if !next.Equal(e.clk.Now().Add(2 * smsMinBackoff)) {
		t.Fatalf("second retry at %v", next)
	}
	e.clk.Set(next)
	if next := e.m.flushSMS(ctx); !next.IsZero() {
		t.Fatalf("queue not empty after success: %v", next)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.got) != 1 || len(hook.auth) != 3 {
		t.Fatalf("hook got %d messages in %d requests", len(hook.got), len(hook.auth))
	}
	m := hook.got[0]
	code := codeRE.FindString(m["text"])
	if m["to"] != "+4915112345678" || m["from"] != "Space" || code == "" || hook.auth[2] != "Bearer s3cret" {
		t.Fatalf("sms = %v, auth %q", m, hook.auth[2])
	}
	e.clk.Set(t0.Add(2 * time.Hour))
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); err != nil {
		t.Fatalf("code from SMS: %v", err)
	}
	if len(e.audit("guest.sms_queued")) != 1 || len(e.audit("guest.sms_sent")) != 1 {
		t.Errorf("sms not audited")
	}
}
