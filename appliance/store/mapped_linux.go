package store

import (
	"fmt"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleaseMapped drops this process's page mappings of the database file,
// which count in its resident set once a pass over the store (an import,
// the start-up evaluation) has touched them. The pages stay in the page
// cache; the next read maps them again with a minor fault. bbolt maps the
// file read-only and writes with pwrite, so nothing is lost.
func (s *Store) ReleaseMapped() error {
	// A read transaction holds bbolt's mmap lock: the mapping cannot move
	// while it is advised.
	return s.db.View(func(tx *bbolt.Tx) error {
		data, size := tx.DB().Info().Data, uintptr(tx.Size())
		if data == 0 || size == 0 {
			return nil
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, data, size, unix.MADV_DONTNEED); e != 0 {
			return fmt.Errorf("release store mapping: %w", e)
		}
		return nil
	})
}
