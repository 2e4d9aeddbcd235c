package guests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/store"
)

// sha256Hex is what deskgate stored for a code before codes were keyed.
func sha256Hex(norm string) string {
	h := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(h[:])
}

// storedCodes returns the raw code records by their store key.
func storedCodes(t *testing.T, st *store.Store) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	if err := st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketCodes, "", func(key string, raw []byte) error {
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			out[key] = v
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// oneCode creates a meeting with one visitor and returns the code the
// visitor got by email (through a real SMTP server), normalised.
func oneCode(t *testing.T, e *env) string {
	t.Helper()
	meeting(e, "v1")
	e.reconcile()
	code := codesFromMail(t, e, notifytest.Start(t))["v1@guest.test"]
	norm, ok := NormalizeCode(code)
	if !ok {
		t.Fatalf("mailed code %q does not normalise", code)
	}
	return norm
}

// TestCodeStoredUnderKeyedHash: the stored key of a code is not its
// SHA-256 (nor is that anywhere in the database), and a copy of the
// database opened with another code key (a box without the key file)
// cannot verify the code, while the same copy with the key can.
func TestCodeStoredUnderKeyedHash(t *testing.T) {
	e := newEnv(t, t0, Config{})
	norm := oneCode(t, e)

	recs := storedCodes(t, e.st)
	if len(recs) != 1 {
		t.Fatalf("stored codes = %d, want 1", len(recs))
	}
	for key, rec := range recs {
		if key == sha256Hex(norm) {
			t.Errorf("code stored under its unkeyed SHA-256")
		}
		if rec["hv"] != float64(hashKeyed) {
			t.Errorf("hash version = %v, want %d", rec["hv"], hashKeyed)
		}
	}
	db, err := os.ReadFile(filepath.Join(e.dir, "deskgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(sha256Hex(norm))) || bytes.Contains(db, []byte(sha256Hex(norm)[:16])) {
		t.Errorf("the database holds the code's SHA-256")
	}
	if bytes.Contains(db, testCodeKey) {
		t.Errorf("the database holds the code key")
	}

	// Another box: the database file copied, its own code key.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "deskgate.db"), db, 0o600); err != nil {
		t.Fatal(err)
	}
	st2 := openStore(t, other, e.clk)
	defer st2.Close()
	ctx := context.Background()
	e.clk.Set(t0.Add(2 * time.Hour))
	cfg := e.cfg
	cfg.CodeKey = bytes.Repeat([]byte{0x5a}, 32)
	thief := New(cfg, st2, newFakeNet(), nil, nil, e.clk.Now)
	if _, err := thief.LoginCode(ctx, norm, client(1), "loc1"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("login on a copy without the key: %v, want ErrBadCode", err)
	}
	// The copy is sound: with the key the same code works.
	owner := New(e.cfg, st2, newFakeNet(), nil, nil, e.clk.Now)
	if _, err := owner.LoginCode(ctx, norm, client(1), "loc1"); err != nil {
		t.Fatalf("login on the copy with the key: %v", err)
	}
}

// makeLegacy rewrites the code's record as deskgate wrote it before codes
// were keyed: under its SHA-256, without a hash version, sealed with
// sealKey and bound to that hash; its source, sessions and SMS jobs point
// at the SHA-256.
func makeLegacy(t *testing.T, e *env, norm string, sealKey []byte) {
	t.Helper()
	e.put(func(tx *store.Tx) error {
		var rec codeRecord
		var keyed string
		if err := tx.ForEachKV(bucketCodes, "", func(k string, raw []byte) error {
			keyed = k
			return json.Unmarshal(raw, &rec)
		}); err != nil {
			return err
		}
		old := sha256Hex(norm)
		s, _, err := newSealer(sealKey)
		if err != nil {
			return err
		}
		if rec.Sealed, err = s.seal(norm, old); err != nil {
			return err
		}
		rec.Hash, rec.HashV = old, hashLegacy
		if err := tx.DeleteKV(bucketCodes, keyed); err != nil {
			return err
		}
		if err := tx.PutKV(bucketCodes, old, rec); err != nil {
			return err
		}
		if err := tx.PutKV(bucketSources, rec.Source, old); err != nil {
			return err
		}
		sessions, err := sessionsOf(tx, keyed)
		if err != nil {
			return err
		}
		for _, s := range sessions {
			s.CodeHash = old
			if err := tx.PutKV(bucketSessions, s.Key, s); err != nil {
				return err
			}
		}
		return nil
	})
	recs := storedCodes(t, e.st)
	if _, ok := recs[sha256Hex(norm)]; !ok || len(recs) != 1 {
		t.Fatalf("legacy fixture: stored %v", recs)
	}
	if _, ok := recs[sha256Hex(norm)]["hv"]; ok {
		t.Fatal("legacy fixture has a hash version")
	}
}

// TestLegacyCodeWorksUntilItsEnd: a code stored before codes were keyed,
// whose sealed copy cannot be opened (so startup cannot re-key it), still
// works inside its window, is re-keyed at its first login, and answers
// ErrExpired after its end.
func TestLegacyCodeWorksUntilItsEnd(t *testing.T) {
	e := newEnv(t, t0, Config{})
	norm := oneCode(t, e)
	makeLegacy(t, e, norm, bytes.Repeat([]byte{0x33}, 32)) // sealed under a lost key
	ctx := context.Background()

	rekeyed, left, err := e.m.RekeyLegacy(ctx)
	if err != nil || rekeyed != 0 || left != 1 {
		t.Fatalf("RekeyLegacy = %d, %d, %v; want 0 re-keyed, 1 left", rekeyed, left, err)
	}
	if _, ok := storedCodes(t, e.st)[sha256Hex(norm)]; !ok {
		t.Fatal("legacy record moved without its plaintext")
	}
	// Before the window: refused, still legacy.
	if _, err := e.m.LoginCode(ctx, norm, client(1), "loc1"); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("legacy code before window: %v, want ErrNotYetValid", err)
	}
	e.clk.Set(t0.Add(2 * time.Hour))
	if _, err := e.m.LoginCode(ctx, FormatCode(norm), client(1), "loc1"); err != nil {
		t.Fatalf("legacy code inside window: %v", err)
	}
	recs := storedCodes(t, e.st)
	if _, ok := recs[sha256Hex(norm)]; ok || len(recs) != 1 {
		t.Fatalf("after first login the code is still stored under its SHA-256 (%d records)", len(recs))
	}
	if n := len(e.audit("guest.code_rekeyed")); n != 1 {
		t.Errorf("audit guest.code_rekeyed = %d, want 1", n)
	}
	// Found by its keyed hash now; its device list and session came along.
	if _, err := e.m.LoginCode(ctx, norm, client(2), "loc1"); err != nil {
		t.Fatalf("second device after re-key: %v", err)
	}
	if cs := e.codes(); len(cs) != 1 || cs[0].Sessions != 2 || cs[0].Devices != 2 {
		t.Fatalf("codes after re-key = %+v, want 1 code with 2 devices and 2 sessions", cs)
	}
	e.clk.Set(t0.Add(195 * time.Minute))
	if _, err := e.m.LoginCode(ctx, norm, client(3), "loc1"); !errors.Is(err, ErrExpired) {
		t.Fatalf("after its end: %v, want ErrExpired", err)
	}
}

// TestLegacyCodeRekeyedAtStartup: Run's first step re-keys a legacy code
// whose sealed copy opens; its live session follows, and the code keeps
// working.
func TestLegacyCodeRekeyedAtStartup(t *testing.T) {
	e := newEnv(t, t0, Config{})
	norm := oneCode(t, e)
	ctx := context.Background()
	e.clk.Set(t0.Add(2 * time.Hour))
	if _, err := e.m.LoginCode(ctx, norm, client(1), "loc1"); err != nil {
		t.Fatal(err)
	}
	makeLegacy(t, e, norm, testKey)
	if cs := e.codes(); len(cs) != 1 || cs[0].Sessions != 1 {
		t.Fatalf("legacy fixture: %+v, want its session attached", cs)
	}

	rekeyed, left, err := e.m.RekeyLegacy(ctx)
	if err != nil || rekeyed != 1 || left != 0 {
		t.Fatalf("RekeyLegacy = %d, %d, %v; want 1 re-keyed, 0 left", rekeyed, left, err)
	}
	recs := storedCodes(t, e.st)
	for key, rec := range recs {
		if key == sha256Hex(norm) || rec["hv"] != float64(hashKeyed) {
			t.Fatalf("after startup re-key: key SHA-256 %v, hv %v", key == sha256Hex(norm), rec["hv"])
		}
	}
	if cs := e.codes(); len(cs) != 1 || cs[0].Sessions != 1 {
		t.Fatalf("after re-key: %+v, want the session to follow the code", cs)
	}
	var src string
	if err := e.st.View(func(tx *store.Tx) error { return tx.GetKV(bucketSources, "b/b1/v1", &src) }); err != nil {
		t.Fatal(err)
	}
	if _, ok := recs[src]; !ok {
		t.Errorf("source index points at %s…, not at the re-keyed record", src[:8])
	}
	// The plaintext was sealed again, bound to the new hash (re-sends work).
	if err := e.st.View(func(tx *store.Tx) error {
		rec, err := getCode(tx, src)
		if err != nil {
			return err
		}
		got, err := e.m.seal.open(rec.Sealed, rec.Hash)
		if err == nil && got != norm {
			t.Errorf("re-sealed plaintext differs")
		}
		return err
	}); err != nil {
		t.Fatalf("open re-sealed code: %v", err)
	}
	if _, err := e.m.LoginCode(ctx, strings.ToLower(norm), client(2), "loc1"); err != nil {
		t.Fatalf("login after startup re-key: %v", err)
	}
	if again, left, err := e.m.RekeyLegacy(ctx); err != nil || again != 0 || left != 0 {
		t.Errorf("second RekeyLegacy = %d, %d, %v; want nothing to do", again, left, err)
	}
}
