package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/deskgate/deskgate/appliance/model"
)

// TestPPSKPassphraseSealed: a PPSK passphrase is returned as generated,
// stays the same for its scope, and is not in the database file in
// plaintext; with another seal key it cannot be opened.
func TestPPSKPassphraseSealed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deskgate.db")
	key := bytes.Repeat([]byte{7}, 32)
	s, err := Open(path, Options{SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	var p1, p2 string
	err = s.Update(func(tx *Tx) error {
		var err error
		if p1, err = tx.EnsurePPSKPassphrase("member:m1"); err != nil {
			return err
		}
		if err := tx.PutDevice(model.Device{MAC: "aa:bb:cc:00:11:22", Name: "printer", MemberID: "m1"}); err != nil {
			return err
		}
		p2, err = tx.EnsurePPSKPassphrase("member:m1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 || !regexp.MustCompile(`^[2-9a-hjkmnp-z]{4}(-[2-9a-hjkmnp-z]{4}){3}$`).MatchString(p1) {
		t.Fatalf("passphrases %q, %q", p1, p2)
	}
	// Another member cannot take the MAC.
	err = s.Update(func(tx *Tx) error {
		return tx.PutDevice(model.Device{MAC: "aa:bb:cc:00:11:22", Name: "x", MemberID: "m2"})
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second registration of a MAC: %v, want ErrConflict", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(p1)) {
		t.Fatal("the passphrase is in the database file in plaintext")
	}
	s = openAt(t, path, Options{SealKey: bytes.Repeat([]byte{8}, 32)})
	_ = s.View(func(tx *Tx) error {
		if _, err := tx.PPSKPassphrase("member:m1"); err == nil {
			t.Error("opened the passphrase with another seal key")
		}
		return nil
	})
}
