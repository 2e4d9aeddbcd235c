package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/deskgate/deskgate/appliance/store"
)

// Per-origin signing (docs/fleet.md, "Trust"): every entry is signed by
// its origin box's key (ECDSA P-256, the key of its box certificate) and
// verified against that box's certificate before it is applied, so a box
// holding a fleet certificate can no longer write as another origin. Box
// certificates travel with the entries (Message.Certs, once per origin
// per link) and are checked against the fleet CA before use.

const (
	bucketCerts  = "fleet_certs" // box id -> DER box certificate (verified)
	maxSigLen    = 128
	maxCerts     = 64
	maxCertBytes = 4 << 10
	sigDomain    = "deskgate fleet entry v1\x00"
)

var (
	errNoSignature  = errors.New("no signature")
	errBadSignature = errors.New("bad signature: not signed by its origin box")
)

// entryDigest is what an entry's signature covers: origin, seq, HLC,
// kind, key and the value in canonical (compact, HTML-escaped) JSON, so a
// relay's re-encoding does not break it.
func entryDigest(e Entry) ([32]byte, error) {
	var b bytes.Buffer
	b.WriteString(sigDomain)
	b.WriteString(e.Origin)
	b.WriteByte(0)
	var n [20]byte
	binary.BigEndian.PutUint64(n[0:], e.Seq)
	binary.BigEndian.PutUint64(n[8:], uint64(e.Time.Wall))
	binary.BigEndian.PutUint32(n[16:], e.Time.Logical)
	b.Write(n[:])
	b.WriteString(e.Kind)
	b.WriteByte(0)
	b.WriteString(e.Key)
	b.WriteByte(0)
	if len(e.Value) > 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, e.Value); err != nil {
			return [32]byte{}, fmt.Errorf("value: %w", err)
		}
		json.HTMLEscape(&b, c.Bytes())
	}
	return sha256.Sum256(b.Bytes()), nil
}

func signEntry(key *ecdsa.PrivateKey, e *Entry) error {
	d, err := entryDigest(*e)
	if err != nil {
		return err
	}
	sig, err := ecdsa.SignASN1(randReader, key, d[:])
	if err != nil {
		return fmt.Errorf("sign entry: %w", err)
	}
	e.Sig = sig
	return nil
}

// certBook holds the verified box certificates' keys by box id.
type certBook struct {
	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
	der  map[string][]byte
}

func newCertBook() *certBook {
	return &certBook{keys: map[string]*ecdsa.PublicKey{}, der: map[string][]byte{}}
}

func (b *certBook) get(box string) (*ecdsa.PublicKey, []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keys[box], b.der[box]
}

// verify checks e's signature against its origin's certificate.
func (b *certBook) verify(e Entry) error {
	if len(e.Sig) == 0 {
		return errNoSignature
	}
	pub, _ := b.get(e.Origin)
	if pub == nil {
		return fmt.Errorf("no certificate of origin box %s", e.Origin)
	}
	d, err := entryDigest(e)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(pub, d[:], e.Sig) {
		return errBadSignature
	}
	return nil
}

// learnCert checks a box certificate against the fleet CA (at the
// daemon's time, for client auth, a valid box id as CommonName) and keeps
// its key for verifying that box's entries. A box has one key: a
// different certificate for a known box replaces it only if it verifies
// (a renewed certificate).
func (n *Node) learnCert(k *keys, der []byte) (string, error) {
	if len(der) == 0 || len(der) > maxCertBytes {
		return "", fmt.Errorf("certificate of %d bytes", len(der))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("parse box certificate: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: k.pool(), CurrentTime: n.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", fmt.Errorf("box certificate not from this fleet's CA: %w", err)
	}
	id := cert.Subject.CommonName
	if err := CheckBoxID(id); err != nil {
		return "", err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("box certificate of %s: not an ECDSA key", id)
	}
	if _, have := n.book.get(id); bytes.Equal(have, der) {
		return id, nil
	}
	n.book.mu.Lock()
	n.book.keys[id], n.book.der[id] = pub, bytes.Clone(der)
	n.book.mu.Unlock()
	if err := n.st.Update(func(tx *store.Tx) error { return tx.PutKV(bucketCerts, id, der) }); err != nil {
		return id, fmt.Errorf("store certificate of %s: %w", id, err)
	}
	return id, nil
}

// loadCerts fills the book from the store (certificates verified when
// they were learned) and this box's own certificate.
func (n *Node) loadCerts(k *keys) error {
	err := n.st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketCerts, "", func(id string, raw []byte) error {
			var der []byte
			if err := json.Unmarshal(raw, &der); err != nil {
				return fmt.Errorf("decode certificate of %s: %w", id, err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("parse certificate of %s: %w", id, err)
			}
			if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok && cert.Subject.CommonName == id {
				n.book.mu.Lock()
				n.book.keys[id], n.book.der[id] = pub, der
				n.book.mu.Unlock()
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load fleet certificates: %w", err)
	}
	_, err = n.learnCert(k, k.boxCert.Raw)
	return err
}

// learnCerts takes the certificates a peer sent along with entries; one
// that does not verify closes the link.
func (l *link) learnCerts(k *keys, certs [][]byte) error {
	for _, der := range certs {
		if _, err := l.n.learnCert(k, der); err != nil {
			return fmt.Errorf("certificate sent by %s: %w", l.peer, err)
		}
	}
	return nil
}
