package peer

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// Invites from any box (docs/fleet.md, "Identity"): only the box that ran
// fleet init holds the CA key, but any box may invite. A box without the
// key signs the token with its own box key (over the token id, the hash
// of its secret, the expiry and the CA fingerprint) and points it at the
// CA box's address; the CA box verifies that signature against the
// inviting box's certificate (it must not be removed), and from there
// treats it as its own invite: single use (recorded when it signs), the
// expiry on the daemon's clock, the box id free. The CA box must be
// reachable when the new box joins.

func inviteDigest(fp, id string, secretHash []byte, expires int64, inviter string) [32]byte {
	var b []byte
	b = append(b, "deskgate fleet invite v1\x00"...)
	b = append(b, fp...)
	b = append(b, 0)
	b = append(b, id...)
	b = append(b, 0)
	b = append(b, secretHash...)
	b = binary.BigEndian.AppendUint64(b, uint64(expires))
	b = append(b, inviter...)
	return sha256.Sum256(b)
}

// caAddr is the host:port of the box holding the fleet CA key, from its
// box register.
func caAddr(tx *store.Tx) (string, string, error) {
	all, _, err := boxes(tx)
	if err != nil {
		return "", "", err
	}
	for _, id := range sortedKeys(all) {
		if b := all[id]; b.CA {
			u, err := url.Parse(b.URL)
			if err != nil || u.Host == "" {
				return id, "", fmt.Errorf("the CA box %s announces no address", id)
			}
			return id, u.Host, nil
		}
	}
	return "", "", errors.New("no box of the fleet announces the CA key")
}

// signedInvite makes a token signed by this box for the CA box to honour.
func (n *Node) signedInvite(k *keys, ttl time.Duration) (string, time.Time, error) {
	var caBox, addr string
	if err := n.st.View(func(tx *store.Tx) error { var err error; caBox, addr, err = caAddr(tx); return err }); err != nil {
		return "", time.Time{}, fmt.Errorf("invite through the CA box: %w", err)
	}
	id, err := randomHex(8)
	if err != nil {
		return "", time.Time{}, err
	}
	secret := make([]byte, 32)
	if _, err := randRead(secret); err != nil {
		return "", time.Time{}, err
	}
	sum := sha256.Sum256(secret)
	exp := n.now().Add(ttl).Truncate(time.Second)
	fp := Fingerprint(k.ca)
	d := inviteDigest(fp, id, sum[:], exp.Unix(), k.id.BoxID)
	sig, err := ecdsa.SignASN1(randReader, k.boxKey, d[:])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign invite: %w", err)
	}
	n.log.Info("fleet invite created (signed by this box, honoured by the CA box)", "token", id, "expires", exp, "ca_box", caBox)
	return Token{CAFingerprint: fp, Addr: addr, ID: id, Secret: secret, Inviter: k.id.BoxID, Expires: exp.Unix(), Sig: sig}.Encode(), exp, nil
}

// signedInviteRecord checks, on the CA box inside the admitting
// transaction, a token another box signed; it returns the invite to
// treat it as, or a refusal reason.
func (n *Node) signedInviteRecord(tx *store.Tx, k *keys, req joinRequest) (invite, string, error) {
	if CheckBoxID(req.Inviter) != nil || len(req.InviteSig) == 0 {
		return invite{}, "join token invalid", nil
	}
	if _, ok, err := register(tx, KindRemoved, req.Inviter); err != nil || ok {
		if ok {
			return invite{}, "join token from box " + req.Inviter + ", which was removed from the fleet", nil
		}
		return invite{}, "", err
	}
	pub, _ := n.book.get(req.Inviter)
	sum := sha256.Sum256(req.Secret)
	d := inviteDigest(Fingerprint(k.ca), req.TokenID, sum[:], req.Expires, req.Inviter)
	if pub == nil || !ecdsa.VerifyASN1(pub, d[:], req.InviteSig) {
		return invite{}, "join token invalid", nil
	}
	exp := time.Unix(req.Expires, 0)
	if exp.After(n.now().Add(7*24*time.Hour + time.Minute)) {
		return invite{}, "join token invalid (valid for more than 7 days)", nil
	}
	return invite{Hash: sum[:], Expires: exp}, "", nil
}
