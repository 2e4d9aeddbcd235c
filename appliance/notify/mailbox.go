package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/deskgate/deskgate/internal/atomicfile"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// mailboxTimeFormat has no "-", so a file name splits at its first "-"
// into time and ID.
const mailboxTimeFormat = "20060102T150405.000000000Z"

// Mailbox is a Mailer that writes each message as an RFC 5322 .eml file
// into a directory instead of sending it: the demo's local mailbox. File
// names are <UTC time>-<id>.eml (id as in the Message-ID), mode 0600, written atomically (temp file,
// fsync, rename). It is idempotent per message ID: sending an ID that
// already has a file does nothing. It is safe for concurrent use within
// one process.
type Mailbox struct {
	dir string
	now func() time.Time
	mu  sync.Mutex
}

// NewMailbox returns a mailbox writing into dir, created (0700) on first
// use.
func NewMailbox(dir string) *Mailbox {
	return &Mailbox{dir: dir, now: time.Now}
}

// WithClock sets the clock for the Date header and the file names.
func (b *Mailbox) WithClock(now func() time.Time) *Mailbox {
	b.now = now
	return b
}

// Dir returns the mailbox directory.
func (b *Mailbox) Dir() string { return b.dir }

// Send writes m unless a file for m.ID exists. An empty m.ID gets a random
// one (no deduplication).
func (b *Mailbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.ID == "" {
		var r [8]byte
		_, _ = rand.Read(r[:])
		m.ID = hex.EncodeToString(r[:])
	}
	now := b.now()
	raw, err := Compose(m, now)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return fmt.Errorf("mailbox: %w", err)
	}
	if p, err := b.find(m.ID); err != nil {
		return err
	} else if p != "" {
		return nil
	}
	name := now.UTC().Format(mailboxTimeFormat) + "-" + idLocal(m.ID) + ".eml"
	if err := atomicfile.Write(filepath.Join(b.dir, name), raw, 0o600); err != nil {
		return fmt.Errorf("mailbox write %s: %w", name, err)
	}
	return nil
}

// Path returns the file holding message id, or "" if there is none.
func (b *Mailbox) Path(id string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.find(id)
}

// Files returns the paths of all messages in the mailbox, oldest first.
func (b *Mailbox) Files() ([]string, error) {
	ents, err := os.ReadDir(b.dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	var out []string
	for _, e := range ents { // ReadDir sorts by name, and names start with the time
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".eml") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(b.dir, e.Name()))
		}
	}
	return out, nil
}

func (b *Mailbox) find(id string) (string, error) {
	ents, err := os.ReadDir(b.dir)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("mailbox: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".eml")
		if !ok || e.IsDir() {
			continue
		}
		if _, fid, ok := strings.Cut(name, "-"); ok && fid == idLocal(id) {
			return filepath.Join(b.dir, e.Name()), nil
		}
	}
	return "", nil
}
