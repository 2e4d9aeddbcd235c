package store

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/deskgate/deskgate/appliance/model"
)

// Devices registered for PPSK, keyed by MAC (aa:bb:cc:dd:ee:ff), and the
// WPA passphrases they are answered with: one per member or per Private
// Office ("scope"). A passphrase must be sent to the access point, so it
// is kept, but sealed with the store's AES-256-GCM key (seal.key, 0600)
// and bound to its scope: never plaintext at rest.
const (
	devicesBucket = "ppsk_devices" // MAC -> model.Device
	ppskKeyBucket = "ppsk_keys"    // scope -> sealedPassphrase
)

// KindDevice is the change kind of a device registration or removal.
const KindDevice = "device"

type sealedPassphrase struct {
	Sealed []byte `json:"sealed"`
}

// GetDevice returns the device with mac, or ErrNotFound.
func (tx *Tx) GetDevice(mac string) (model.Device, error) {
	var d model.Device
	if err := tx.GetKV(devicesBucket, mac, &d); err != nil {
		return d, fmt.Errorf("get device: %w", err)
	}
	return d, nil
}

// PutDevice registers d; a MAC registered to another member is
// ErrConflict.
func (tx *Tx) PutDevice(d model.Device) error {
	if d.MAC == "" || d.MemberID == "" {
		return errors.New("put device: mac and member are required")
	}
	old, err := tx.GetDevice(d.MAC)
	if err == nil && old.MemberID != d.MemberID {
		return fmt.Errorf("put device %s: registered to another member: %w", d.MAC, ErrConflict)
	}
	if err := tx.PutKV(devicesBucket, d.MAC, d); err != nil {
		return err
	}
	tx.record(Change{Kind: KindDevice, ID: d.MAC, Member: d.MemberID})
	return nil
}

// DeleteDevice removes the device with mac; ErrNotFound if there is none.
func (tx *Tx) DeleteDevice(mac string) (model.Device, error) {
	d, err := tx.GetDevice(mac)
	if err != nil {
		return d, err
	}
	if err := tx.DeleteKV(devicesBucket, mac); err != nil {
		return d, err
	}
	tx.record(Change{Kind: KindDevice, ID: mac, Deleted: true, Member: d.MemberID})
	return d, nil
}

// Devices returns the devices of member, or every device when member is "".
func (tx *Tx) Devices(member string) ([]model.Device, error) {
	var out []model.Device
	err := tx.ForEachKV(devicesBucket, "", func(key string, raw []byte) error {
		var d model.Device
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decode device %s: %w", key, err)
		}
		if member == "" || d.MemberID == member {
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// PPSKPassphrase returns the passphrase of scope ("member:<id>" or
// "office:<company id>"), or ErrNotFound.
func (tx *Tx) PPSKPassphrase(scope string) (string, error) {
	var sp sealedPassphrase
	if err := tx.GetKV(ppskKeyBucket, scope, &sp); err != nil {
		return "", fmt.Errorf("ppsk passphrase: %w", err)
	}
	plain, err := tx.s.openSealed(sp.Sealed, []byte("ppsk:"+scope))
	if err != nil {
		return "", fmt.Errorf("unseal ppsk passphrase of %s (seal.key replaced?): %w", scope, err)
	}
	return string(plain), nil
}

// EnsurePPSKPassphrase returns the passphrase of scope, generating and
// sealing one on first use.
func (tx *Tx) EnsurePPSKPassphrase(scope string) (string, error) {
	p, err := tx.PPSKPassphrase(scope)
	if !errors.Is(err, ErrNotFound) {
		return p, err
	}
	p, err = NewPassphrase()
	if err != nil {
		return "", err
	}
	return p, tx.putPassphrase(scope, p)
}

// RotatePPSKPassphrase replaces the passphrase of scope with a new one.
func (tx *Tx) RotatePPSKPassphrase(scope string) (string, error) {
	p, err := NewPassphrase()
	if err != nil {
		return "", err
	}
	return p, tx.putPassphrase(scope, p)
}

func (tx *Tx) putPassphrase(scope, p string) error {
	sealed, err := tx.s.sealBytes([]byte(p), []byte("ppsk:"+scope))
	if err != nil {
		return fmt.Errorf("seal ppsk passphrase: %w", err)
	}
	return tx.PutKV(ppskKeyBucket, scope, sealedPassphrase{Sealed: sealed})
}

// passphraseAlphabet has no look-alikes (0/o, 1/l/i) and no capitals: a
// passphrase is typed on TV remotes and printer panels.
const passphraseAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// NewPassphrase returns a random WPA passphrase: 16 characters from a
// 31-character alphabet (79 bits) in groups of four, 19 characters long.
func NewPassphrase() (string, error) {
	var b [16]byte
	var sb strings.Builder
	for i := 0; i < len(b); {
		if _, err := rand.Read(b[i : i+1]); err != nil {
			return "", fmt.Errorf("new passphrase: %w", err)
		}
		if b[i] >= 248 { // 248 = 8*31: reject to stay uniform
			continue
		}
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(passphraseAlphabet[int(b[i])%len(passphraseAlphabet)])
		i++
	}
	return sb.String(), nil
}
