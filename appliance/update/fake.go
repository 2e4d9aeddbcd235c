package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Fake is an in-memory Backend with two slots and GRUB's boot counting,
// for tests on the host (here, and for a fleet rollout driving many boxes
// as processes). A bundle's first line is "compatible version signer
// [sha256]"; it verifies when signer is the trusted Keyring and, when the
// digest is given, the bytes after the first line match it (a payload, as
// large as a test wants, standing in for the root image). Reboot follows
// grub.cfg: the first slot in Order that is good and untried boots, and is
// on trial until MarkGood.
type Fake struct {
	mu         sync.Mutex
	Compatible string
	Keyring    string
	Order      []string          // boot order, primary first
	OK, Try    map[string]bool   // grubenv's X_OK and X_TRY
	Version    map[string]string // installed version per slot
	BootedSlot string
	Reboots    int
	// FailInstall makes Install fail (after it marked the slot bad, as
	// RAUC does), e.g. to simulate a power cut mid-write.
	FailInstall error
	// Writes counts slot writes.
	Writes int
}

// NewFake returns a box booted from slot A (good), slot B empty.
func NewFake(compatible, keyring, version string) *Fake {
	return &Fake{
		Compatible: compatible, Keyring: keyring,
		Order: []string{"A", "B"},
		OK:    map[string]bool{"A": true}, Try: map[string]bool{"A": true},
		Version:    map[string]string{"A": version},
		BootedSlot: "A",
	}
}

func (f *Fake) other() string {
	if f.BootedSlot == "A" {
		return "B"
	}
	return "A"
}

// Status implements Backend.
func (f *Fake) Status(context.Context) (Slots, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Slots{Compatible: f.Compatible, Booted: f.BootedSlot, Primary: f.Order[0]}
	for _, n := range []string{"A", "B"} {
		s.Slots = append(s.Slots, Slot{Name: n, Booted: n == f.BootedSlot, Good: f.OK[n] && !f.Try[n], Version: f.Version[n]})
	}
	return s, nil
}

// Verify implements Backend.
func (f *Fake) Verify(_ context.Context, bundle string) (Bundle, error) {
	b, err := os.ReadFile(bundle)
	if err != nil {
		return Bundle{}, err
	}
	head, payload, _ := bytes.Cut(b, []byte("\n"))
	fs := strings.Fields(string(head))
	if len(fs) != 3 && len(fs) != 4 {
		return Bundle{}, errors.New("not a bundle")
	}
	if fs[2] != f.Keyring {
		return Bundle{}, fmt.Errorf("signature verification failed: signed by %q, not by the keyring", fs[2])
	}
	if len(fs) == 4 {
		if sum := sha256.Sum256(payload); hex.EncodeToString(sum[:]) != fs[3] {
			return Bundle{}, errors.New("signature verification failed: the payload does not match the signed digest")
		}
	}
	return Bundle{Compatible: fs[0], Version: fs[1]}, nil
}

// Install implements Backend.
func (f *Fake) Install(ctx context.Context, bundle string) error {
	b, err := f.Verify(ctx, bundle)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	to := f.other()
	f.OK[to], f.Try[to] = false, false
	if f.FailInstall != nil {
		f.Version[to] = ""
		return f.FailInstall
	}
	f.Writes++
	f.Version[to] = b.Version
	f.OK[to], f.Try[to] = true, false
	f.Order = []string{to, f.BootedSlot}
	return nil
}

// MarkGood implements Backend.
func (f *Fake) MarkGood(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.OK[f.BootedSlot], f.Try[f.BootedSlot] = true, false
	return nil
}

// MarkBad implements Backend.
func (f *Fake) MarkBad(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.OK[f.BootedSlot], f.Try[f.BootedSlot] = false, false
	return nil
}

// Reboot implements Backend: it records the reboot; Boot performs it.
func (f *Fake) Reboot(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Reboots++
	return nil
}

// Boot is what GRUB does at power-on; it returns the slot booted.
func (f *Fake) Boot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.Order {
		if f.OK[s] && !f.Try[s] {
			f.Try[s] = true
			f.BootedSlot = s
			return s
		}
	}
	f.BootedSlot = "A"
	return "A"
}

// Counts returns how many slot writes and reboots the fake has seen.
func (f *Fake) Counts() (writes, reboots int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Writes, f.Reboots
}
