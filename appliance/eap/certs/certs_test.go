package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// TestClientLimitListRevokeSerial: IssueClientUpTo refuses beyond the limit
// of live certificates; an expired or revoked one frees a slot; ListIssued
// shows what was issued and RevokeSerial revokes one certificate; an
// issued.json from before expiry was recorded still loads.
func TestClientLimitListRevokeSerial(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	// An old-format issued.json: serial -> identity.
	if err := os.WriteFile(filepath.Join(dir, "issued.json"), []byte(`{"abc123": "old@example.com"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Open(Config{Dir: dir, ServerName: "radius.example.com", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if n := a.LiveCount("old@example.com"); n != 1 {
		t.Fatalf("old-format record: live %d, want 1", n)
	}
	var serials []string
	for i := 0; i < 2; i++ {
		_, _, sn, err := a.IssueClientUpTo("carol@example.com", time.Hour, 2)
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, sn)
	}
	if _, _, _, err := a.IssueClientUpTo("carol@example.com", time.Hour, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("third certificate with limit 2: %v, want ErrLimit", err)
	}
	if got := len(a.ListIssued("carol@example.com")); got != 2 {
		t.Fatalf("ListIssued = %d entries, want 2", got)
	}
	if _, err := a.RevokeSerial("ffff"); !errors.Is(err, ErrUnknownSerial) {
		t.Fatalf("RevokeSerial(unknown) = %v", err)
	}
	is, err := a.RevokeSerial(strings.ToUpper(serials[0]))
	if err != nil || is.Identity != "carol@example.com" || is.Revoked.IsZero() {
		t.Fatalf("RevokeSerial = %+v, %v", is, err)
	}
	if _, _, _, err := a.IssueClientUpTo("carol@example.com", time.Hour, 2); err != nil {
		t.Fatalf("after a revocation: %v", err)
	}
	now = now.Add(2 * time.Hour) // all of carol's expire
	if n := a.LiveCount("carol@example.com"); n != 0 {
		t.Fatalf("after expiry: live %d", n)
	}
	b, err := Open(Config{Dir: dir, ServerName: "radius.example.com", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	list := b.ListIssued("")
	if len(list) != 4 || list[len(list)-1].Identity != "old@example.com" {
		t.Fatalf("after reopen: %+v", list)
	}
	for _, i := range list {
		if i.Serial == serials[0] && i.Revoked.IsZero() {
			t.Fatal("revocation by serial lost on reopen")
		}
	}
}

// TestIssueServer: the in-memory server certificate verifies against the
// local CA for its name.
func TestIssueServer(t *testing.T) {
	a, err := Open(Config{Dir: t.TempDir(), ServerName: "radius.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.IssueServer([]string{"wifi.example.com", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(a.CA())
	for _, n := range []string{"wifi.example.com", "127.0.0.1"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots}); err != nil {
			t.Errorf("verify for %s: %v", n, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "other.example.com", Roots: roots}); err == nil {
		t.Error("verified for a name it does not carry")
	}
}

// TestVerifiedCertIdentity: a client certificate the TLS stack verified against ClientCAs is mapped
// without checking the local CA's signature a second time, and revocation and foreign issuers are still
// refused.
func TestVerifiedCertIdentity(t *testing.T) {
	a, err := Open(Config{Dir: t.TempDir(), ServerName: "radius.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(a *Authority, id string) *x509.Certificate {
		t.Helper()
		p, _, err := a.IssueClient(id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(p)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	verify := func(c *x509.Certificate, roots *x509.CertPool) [][]*x509.Certificate {
		t.Helper()
		ch, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	alice := issue(a, "alice@example.com")
	chains := verify(alice, a.ClientCAs())
	if id, err := a.VerifiedCertIdentity(alice, chains); err != nil || id != "alice@example.com" {
		t.Fatalf("VerifiedCertIdentity = %q, %v", id, err)
	}
	// The saving: no signature verification (ECDSA verification allocates; the map lookups do not
	// allocate as much).
	full := testing.AllocsPerRun(20, func() { _, _ = a.CertIdentity(alice) })
	short := testing.AllocsPerRun(20, func() { _, _ = a.VerifiedCertIdentity(alice, chains) })
	if short >= full {
		t.Errorf("VerifiedCertIdentity allocates %.0f times per call, CertIdentity %.0f: the signature is checked again", short, full)
	}
	// A chain to another CA is no proof of the local CA's signature: checked as before, refused.
	other, _ := Open(Config{Dir: t.TempDir(), ServerName: "x.example.com"})
	mallory := issue(other, "mallory")
	if _, err := a.VerifiedCertIdentity(mallory, verify(mallory, other.ClientCAs())); err == nil {
		t.Fatal("foreign certificate accepted")
	}
	// No chains (the caller verified nothing): the signature is checked.
	if _, err := a.VerifiedCertIdentity(mallory, nil); err == nil {
		t.Fatal("foreign certificate accepted without chains")
	}
	// Revocation is checked on the short path too.
	if err := a.Revoke(alice); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifiedCertIdentity(alice, chains); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked certificate: %v", err)
	}
}
