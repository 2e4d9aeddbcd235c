package notify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMailbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	b := NewMailbox(dir)
	ctx := context.Background()
	m := testMessage()
	m.ID = "b"
	for range 3 {
		if err := b.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	m2 := testMessage()
	m2.ID = "a-b" // a name that ends like the first one's
	if err := b.Send(ctx, m2); err != nil {
		t.Fatal(err)
	}
	files, err := b.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files = %q, want 2", files)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("dir has %d entries (temp files left?)", len(ents))
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
		if !strings.HasSuffix(f, "-b.eml") && !strings.HasSuffix(f, "-a-b.eml") {
			t.Errorf("file name %s", f)
		}
	}
	p, err := b.Path("b")
	if err != nil || p == "" || !strings.HasSuffix(p, "Z-b.eml") {
		t.Fatalf("Path(b) = %q, %v", p, err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := parseMessage(t, raw)
	if got.header.Get("Message-Id") != "<b@deskgate>" || got.text != "plain body\r\n" {
		t.Errorf("eml = %v %q", got.header, got.text)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}

	odd := testMessage()
	odd.ID = "../welcome:m1"
	for range 2 {
		if err := b.Send(ctx, odd); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ := b.Path(odd.ID); filepath.Dir(p) != dir || !strings.HasSuffix(p, "-=2E=2E=2Fwelcome=3Am1.eml") {
		t.Errorf("Path(%q) = %q", odd.ID, p)
	}
	if files, _ := b.Files(); len(files) != 3 {
		t.Errorf("files = %q, want 3", files)
	}

	bad := testMessage()
	bad.Subject = "x\nBcc: y@example.com"
	if err := b.Send(ctx, bad); !errors.Is(err, ErrHeaderInjection) {
		t.Errorf("header injection: %v", err)
	}
}
