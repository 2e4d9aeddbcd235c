package keyfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.key")
	k1, err := LoadOrCreate(p, "test key")
	if err != nil || len(k1) != Size {
		t.Fatalf("create: %d bytes, %v", len(k1), err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if k2, err := LoadOrCreate(p, "test key"); err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v, same %v", err, bytes.Equal(k1, k2))
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("abc"), 0o600)
	if _, err := LoadOrCreate(short, "test key"); err == nil || !strings.Contains(err.Error(), "want 32") {
		t.Fatalf("short key: %v", err)
	}
	if b, _ := os.ReadFile(short); string(b) != "abc" {
		t.Fatal("a short key was replaced")
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreate(p, "test key"); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("readable key: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("left temporary files: %v", ents)
	}
}
