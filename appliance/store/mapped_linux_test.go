package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/model"
)

// rssFileKiB is this process's file-backed resident memory.
func rssFileKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// After a pass over every account the database's pages count in the
// process's RSS; ReleaseMapped gives them back, and every account still
// reads the same afterwards.
func TestReleaseMapped(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{SealKey: testKey, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 20000
	pad := strings.Repeat("x", 400)
	if err := s.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.PutAccount(model.Account{Username: fmt.Sprintf("user%05d", i), MemberID: fmt.Sprintf("m%05d", i), DisabledReason: pad}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		t.Helper()
		if err := s.View(func(tx *Tx) error {
			for i := range n {
				a, err := tx.GetAccount(fmt.Sprintf("user%05d", i))
				if err != nil || a.MemberID != fmt.Sprintf("m%05d", i) {
					return fmt.Errorf("account %d: %+v %v", i, a, err)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	readAll()
	touched := rssFileKiB(t)
	if err := s.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	released := rssFileKiB(t)
	t.Logf("RssFile %d KiB after reading %d accounts, %d KiB after ReleaseMapped", touched, n, released)
	if touched-released < 4096 {
		t.Errorf("RssFile went from %d to %d KiB: want at least 4 MiB of the store's pages released", touched, released)
	}
	readAll()
}
