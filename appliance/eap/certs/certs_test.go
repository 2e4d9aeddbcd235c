package certs

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFirstStartAndReload(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{Dir: dir, ServerName: "radius.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{caCertFile, caKeyFile, serverCertFile, serverKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	leaf, _ := x509.ParseCertificate(a.ServerCertificate().Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(a.TrustAnchor())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "radius.example.com"}); err != nil {
		t.Fatalf("server certificate does not verify for its name: %v", err)
	}
	cp, _, err := a.IssueClient("alice@example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(cp)
	cert, _ := x509.ParseCertificate(blk.Bytes)
	if id, err := a.CertIdentity(cert); err != nil || id != "alice@example.com" {
		t.Fatalf("CertIdentity = %q, %v", id, err)
	}
	if err := a.Revoke(cert); err != nil {
		t.Fatal(err)
	}
	// Reopen: same CA, same server certificate, revocation remembered.
	b, err := Open(Config{Dir: dir, ServerName: "radius.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !b.CA().Equal(a.CA()) || string(b.ServerCertificate().Certificate[0]) != string(a.ServerCertificate().Certificate[0]) {
		t.Fatal("reopen created new certificates")
	}
	if _, err := b.CertIdentity(cert); err == nil {
		t.Fatal("revoked certificate accepted after reopen")
	}
	// Revoking by identity covers every certificate issued to it, and survives a reopen.
	cp2, _, _ := b.IssueClient("bob@example.com", time.Hour)
	cp3, _, _ := b.IssueClient("bob@example.com", time.Hour)
	if n, err := b.RevokeIdentity("bob@example.com"); err != nil || n != 2 {
		t.Fatalf("RevokeIdentity = %d, %v; want 2", n, err)
	}
	b2, err := Open(Config{Dir: dir, ServerName: "radius.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{cp2, cp3} {
		blk, _ := pem.Decode(p)
		c, _ := x509.ParseCertificate(blk.Bytes)
		if _, err := b2.CertIdentity(c); err == nil {
			t.Fatal("certificate of a revoked identity accepted")
		}
	}
	// A new name issues a new server certificate from the same CA.
	c, err := Open(Config{Dir: dir, ServerName: "radius2.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerName() != "radius2.example.com" || !c.CA().Equal(a.CA()) {
		t.Fatalf("name change: server name %q", c.ServerName())
	}
	// A certificate from another CA is refused.
	other, _ := Open(Config{Dir: t.TempDir(), ServerName: "x.example.com"})
	op, _, _ := other.IssueClient("mallory", time.Hour)
	blk, _ = pem.Decode(op)
	oc, _ := x509.ParseCertificate(blk.Bytes)
	if _, err := a.CertIdentity(oc); err == nil {
		t.Fatal("foreign certificate accepted")
	}
}

func TestOperatorCertificate(t *testing.T) {
	// Use a generated server certificate and chain as the "operator-provided" one.
	src, err := Open(Config{Dir: t.TempDir(), ServerName: "radius.operator.example"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	leaf, _ := os.ReadFile(filepath.Join(src.cfg.Dir, serverCertFile))
	chain := filepath.Join(t.TempDir(), "chain.pem")
	if err := os.WriteFile(chain, append(leaf, src.TrustAnchorPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Open(Config{Dir: dir, CertFile: chain, KeyFile: filepath.Join(src.cfg.Dir, serverKeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	if a.ServerName() != "radius.operator.example" || !a.TrustAnchor().Equal(src.CA()) {
		t.Fatalf("operator certificate not used: %q", a.ServerName())
	}
	if _, err := os.Stat(filepath.Join(dir, serverCertFile)); !os.IsNotExist(err) {
		t.Fatal("a server certificate was generated despite the operator's")
	}
	if a.CA().Equal(src.CA()) {
		t.Fatal("client CA should be the local one")
	}
}
