// Package keyfile owns the box's secret key files: 32 random bytes in a
// file of mode 0600, created once and never silently replaced, because a
// new key would invalidate what the old one sealed or signed.
package keyfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Size is the length of every key.
const Size = 32

// LoadOrCreate returns the key at path, creating it from crypto/rand when
// there is none. what names the key in errors ("guest code key"). A file of
// another size, or one that group or others may read, is an error and is
// left as it is. Creation writes a temporary file and links it into place,
// so two processes starting at once end with the same key.
func LoadOrCreate(path, what string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, path, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s %s: mode %04o, want 0600", what, path, fi.Mode().Perm())
		}
		if len(key) != Size {
			return nil, fmt.Errorf("%s %s: %d bytes, want %d (move it aside to start afresh; what it protected stops working)", what, path, len(key), Size)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	key = make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate %s: %w", what, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key.*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", what, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful link
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(key)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", what, err)
	}
	// Link, not rename: if another process created the key meanwhile, keep
	// theirs rather than replacing a key that may already be in use.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreate(path, what)
		}
		return nil, fmt.Errorf("create %s: %w", what, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return key, nil
}
