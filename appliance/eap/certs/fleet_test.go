package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// memRegistry is an in-memory Registry: the fleet's registers of two
// boxes seen from one (the replicated one is tested through the daemons
// in appliance/fleetcert_test.go).
type memRegistry struct {
	mu      sync.Mutex
	issuers []*x509.Certificate
	issued  map[string]Issued
	revoked map[string]time.Time
}

func (r *memRegistry) Issuers() []*x509.Certificate { return r.issuers }
func (r *memRegistry) RecordIssued(i Issued, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issued[i.Serial] = i
	return nil
}
func (r *memRegistry) RecordRevoked(serial, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.revoked[serial]; !ok {
		r.revoked[serial] = time.Now()
	}
	return nil
}
func (r *memRegistry) Issued(identity string) []Issued {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Issued
	for _, i := range r.issued {
		if identity == "" || i.Identity == identity {
			i.Revoked = r.revoked[i.Serial]
			out = append(out, i)
		}
	}
	return out
}
func (r *memRegistry) Revoked(serial string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.revoked[serial]
	return t, ok
}

func testCA(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, pathLen int, eku []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: pathLen >= 0, MaxPathLen: max(pathLen, 0), MaxPathLenZero: pathLen == 0, ExtKeyUsage: eku}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// TestFleetIssuing: in a fleet, client certificates are issued by the
// box's issuing CA with the chain in the PEM; a certificate of another
// box's issuing CA is accepted, one the fleet CA signed directly (a box
// certificate) or an unknown intermediate issued is refused; a serial the
// fleet revoked is refused; listing and revoking cover the other box's
// certificates; certificates of the local CA from before keep working.
func TestFleetIssuing(t *testing.T) {
	root, rootKey := testCA(t, "fleet", nil, nil, 1, nil)
	issA, issAKey := testCA(t, "issuing box-a", root, rootKey, 0, nil)
	issB, issBKey := testCA(t, "issuing box-b", root, rootKey, 0, nil)
	rogue, rogueKey := testCA(t, "rogue", nil, nil, 0, nil)
	reg := &memRegistry{issuers: []*x509.Certificate{issA, issB}, issued: map[string]Issued{}, revoked: map[string]time.Time{}}

	dir := t.TempDir()
	local, err := Open(Config{Dir: dir, ServerName: "radius.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	oldPEM, _, err := local.IssueClient("old@example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(Config{Dir: dir, ServerName: "radius.example.com", Fleet: &Fleet{Root: root, Issuing: issA, Key: issAKey, Registry: reg}})
	if err != nil {
		t.Fatal(err)
	}
	parse := func(p []byte) []*x509.Certificate {
		var out []*x509.Certificate
		for b, rest := pem.Decode(p); b != nil; b, rest = pem.Decode(rest) {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}
	p, _, sn, err := a.IssueClientUpTo("alice@example.com", time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	chain := parse(p)
	if len(chain) != 2 || !chain[1].Equal(issA) || chain[0].CheckSignatureFrom(issA) != nil {
		t.Fatalf("want the certificate from box-a's issuing CA and that CA, got %d", len(chain))
	}
	if _, ok := reg.issued[sn]; !ok {
		t.Fatal("the fleet did not hear of the certificate")
	}
	if id, err := a.CertIdentity(chain[0]); err != nil || id != "alice@example.com" {
		t.Fatalf("own certificate: %q %v", id, err)
	}
	if id, err := a.CertIdentity(parse(oldPEM)[0]); err != nil || id != "old@example.com" {
		t.Fatalf("a certificate of the local CA from before the fleet: %q %v", id, err)
	}
	leaf := func(cn string, parent *x509.Certificate, key *ecdsa.PrivateKey) *x509.Certificate {
		c, _ := testCA(t, cn, parent, key, -1, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
		return c
	}
	fromB := leaf("alice@example.com", issB, issBKey)
	reg.issued[fromB.SerialNumber.Text(16)] = Issued{Serial: fromB.SerialNumber.Text(16), Identity: "alice@example.com", IssuedAt: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	if _, err := a.CertIdentity(fromB); err != nil {
		t.Fatalf("a certificate from box-b's issuing CA: %v", err)
	}
	for name, c := range map[string]*x509.Certificate{
		"signed by the fleet CA directly": leaf("box-c", root, rootKey),
		"from another CA":                 leaf("alice@example.com", rogue, rogueKey),
	} {
		if _, err := a.CertIdentity(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := a.LiveCount("alice@example.com"); n != 2 {
		t.Fatalf("live certificates across the fleet: %d, want 2", n)
	}
	if _, _, _, err := a.IssueClientUpTo("alice@example.com", time.Hour, 2); err != ErrLimit {
		t.Fatalf("a third certificate with a limit of 2 across the fleet: %v", err)
	}
	// Revoked at box-b (in the fleet's set): refused here.
	_ = reg.RecordRevoked(sn, "alice@example.com")
	if _, err := a.CertIdentity(chain[0]); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a certificate the fleet revoked: %v", err)
	}
	// Revoking box-b's certificate here by its serial reaches the fleet.
	if i, err := a.RevokeSerial(fromB.SerialNumber.Text(16)); err != nil || i.Current || i.Revoked.IsZero() {
		t.Fatalf("revoke box-b's certificate at box-a: %+v %v", i, err)
	}
	if _, ok := reg.revoked[fromB.SerialNumber.Text(16)]; !ok {
		t.Fatal("the revocation did not reach the fleet")
	}
	if l := a.ListIssued("alice@example.com"); len(l) != 2 || l[0].Current || l[1].Current {
		t.Fatalf("list across the fleet: %+v", l)
	}
	if _, err := a.RevokeSerial("abcdef"); err != ErrUnknownSerial {
		t.Fatalf("unknown serial: %v", err)
	}
}
