package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/google/go-cmp/cmp"
)

func TestOutboxSealsSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s, err := Open(path, Options{Now: func() time.Time { return now }}) // key file created
	if err != nil {
		t.Fatal(err)
	}
	const password = "correct-horse-battery-staple-4711"
	const token = "onboard-token-Zq8xV3pL0"
	want := model.Email{
		Kind: "welcome", To: "ada@example.com", Member: "m1", Username: "ada",
		Data:   map[string]string{"name": "Ada"},
		Secret: map[string]string{"password": password, "token": token},
	}
	var id string
	update(t, s, func(tx *Tx) error {
		var err error
		id, err = tx.EnqueueEmail(want)
		return err
	})
	if len(id) != 32 {
		t.Errorf("id %q: want 32 hex digits", id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{password, token} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("secret %q found in plaintext in the DB file", secret)
		}
	}
	if !bytes.Contains(raw, []byte("ada@example.com")) {
		t.Error("non-secret field not found in DB file; is the grep meaningful?")
	}

	// Reopen: the key is loaded from seal.key and the secret unseals.
	s = openAt(t, path, Options{Now: func() time.Time { return now }})
	got, err := s.PendingEmails(now, 10)
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.CreatedAt = id, now
	if diff := cmp.Diff([]model.Email{want}, got); diff != "" {
		t.Errorf("PendingEmails (-want +got):\n%s", diff)
	}
}

func TestOutboxWrongKeyFailsToUnseal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{SealKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Tx) error {
		_, err := tx.EnqueueEmail(model.Email{ID: "e1", To: "a@b", Secret: map[string]string{"p": "x"}})
		return err
	})
	s.Close()
	s, err = Open(path, Options{SealKey: bytes.Repeat([]byte{8}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	update(t, s, func(tx *Tx) error {
		_, err := tx.EnqueueEmail(model.Email{ID: "e2", To: "c@d", Secret: map[string]string{"p": "y"}})
		return err
	})
	es, err := s.PendingEmails(time.Now(), 0)
	if err != nil || len(es) != 1 || es[0].ID != "e2" {
		t.Errorf("PendingEmails with a changed key: %+v, %v; want only e2", es, err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), `email "e1": secret sealed with another key`) {
		t.Errorf("Check: %v", err)
	}
}

func TestOutboxLifecycle(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := openAt(t, filepath.Join(t.TempDir(), "db"), Options{SealKey: testKey, Now: clock})
	update(t, s, func(tx *Tx) error {
		for i, id := range []string{"c", "a", "b"} {
			e := model.Email{ID: id, To: id + "@x", CreatedAt: now.Add(time.Duration(i) * time.Minute),
				Secret: map[string]string{"k": id}}
			if id == "b" {
				e.NextTry = now.Add(time.Hour)
			}
			if _, err := tx.EnqueueEmail(e); err != nil {
				return err
			}
		}
		return nil
	})
	pendingIDs := func(at time.Time, limit int) []string {
		t.Helper()
		es, err := s.PendingEmails(at, limit)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, e := range es {
			if e.Secret["k"] != e.ID {
				t.Errorf("email %s: secret %v", e.ID, e.Secret)
			}
			out = append(out, e.ID)
		}
		return out
	}
	if diff := cmp.Diff([]string{"c", "a"}, pendingIDs(now, 0)); diff != "" {
		t.Errorf("pending now, oldest first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c"}, pendingIDs(now, 1)); diff != "" {
		t.Errorf("pending limit 1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c", "a", "b"}, pendingIDs(now.Add(time.Hour), 0)); diff != "" {
		t.Errorf("pending in an hour (-want +got):\n%s", diff)
	}
	// Order is by creation, not by next try: a retried email keeps its place.
	if err := s.MarkEmailFailed("c", "421 try later", now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c", "a", "b"}, pendingIDs(now.Add(time.Hour), 0)); diff != "" {
		t.Errorf("pending in an hour (-want +got):\n%s", diff)
	}
	if n, _ := s.OutboxLen(); n != 3 {
		t.Errorf("OutboxLen: %d", n)
	}

	if err := s.MarkEmailFailed("c", "550 mailbox full", now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a"}, pendingIDs(now, 0)); diff != "" {
		t.Errorf("pending after failure (-want +got):\n%s", diff)
	}
	es, _ := s.PendingEmails(now.Add(3*time.Hour), 0)
	if len(es) != 3 || es[0].ID != "c" || es[0].Attempts != 2 || es[0].LastError != "550 mailbox full" ||
		!es[0].NextTry.Equal(now.Add(2*time.Hour)) {
		t.Errorf("after MarkEmailFailed: %+v", es)
	}
	if err := s.MarkEmailFailed("nope", "x", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkEmailFailed unknown: %v", err)
	}

	if err := s.MarkEmailSent("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkEmailSent("a"); err != nil {
		t.Errorf("MarkEmailSent twice: %v", err)
	}
	if err := s.MarkEmailSent("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkEmailSent unknown: %v", err)
	}
	if sent, _ := s.EmailSent("a"); !sent {
		t.Error("EmailSent(a) = false")
	}
	if sent, _ := s.EmailSent("b"); sent {
		t.Error("EmailSent(b) = true")
	}
	if n, _ := s.OutboxLen(); n != 2 {
		t.Errorf("OutboxLen after send: %d", n)
	}
	if diff := cmp.Diff([]string{}, pendingIDs(now, 0)); diff != "" {
		t.Errorf("pending after send (-want +got):\n%s", diff)
	}

	// 31 days later, sending another email prunes the old sent record.
	now = now.Add(31 * 24 * time.Hour)
	if err := s.MarkEmailSent("b"); err != nil {
		t.Fatal(err)
	}
	if sent, _ := s.EmailSent("a"); sent {
		t.Error("sent record for a not pruned after 30 days")
	}
	if sent, _ := s.EmailSent("b"); !sent {
		t.Error("EmailSent(b) = false")
	}
}

func TestSealKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	s := openAt(t, path, Options{})
	keyPath := filepath.Join(dir, "seal.key")
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Errorf("seal.key: mode %04o size %d, want 0600 and 32", fi.Mode().Perm(), fi.Size())
	}
	key1, _ := os.ReadFile(keyPath)
	if bytes.Equal(key1, make([]byte, 32)) {
		t.Error("seal.key is all zero")
	}
	_ = s

	// A second store in the same directory reuses the key.
	if _, err := loadSealKey(keyPath); err != nil {
		t.Errorf("reload: %v", err)
	}
	if key2, _ := loadSealKey(keyPath); !bytes.Equal(key1, key2) {
		t.Error("reload returned a different key")
	}

	// A world-readable or short key is refused.
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSealKey(keyPath); err == nil {
		t.Error("world-readable seal.key accepted")
	}
	short := filepath.Join(t.TempDir(), "seal.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := loadSealKey(short); err == nil {
		t.Error("short seal.key accepted")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "db"), Options{SealKey: []byte("short")}); err == nil {
		t.Error("Open with a short SealKey succeeded")
	}
}
