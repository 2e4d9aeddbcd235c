package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
)

// statusKiB reads fields (VmRSS, RssAnon, RssFile) of a process's status.
func statusKiB(t *testing.T, pid int) map[string]int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && (strings.HasPrefix(f[0], "Rss") || f[0] == "VmRSS:") {
			n, _ := strconv.Atoi(f[1])
			out[strings.TrimSuffix(f[0], ":")] = n
		}
	}
	return out
}

// After importing 10,000 members the daemon gives back the store pages
// the import touched and its free heap: its resident set settles well
// below what it held before (about 67 MiB at 10,000 members, 130 MiB at
// 50,000), within a few seconds, while it keeps answering.
func TestDaemonMemorySettlesAfterImport(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 10,000 members")
	}
	d := newDaemonEnv(t, 10000, "")
	d.start()
	d.waitStatus(3*time.Minute, "import", func(st admin.Status) bool { return st.Sync.ImportDone })
	const limitKiB = 48 << 10
	var last map[string]int
	deadline := time.Now().Add(8 * time.Second)
	for {
		last = statusKiB(t, d.cmd.Process.Pid)
		if last["VmRSS"] < limitKiB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RSS %d KiB (anon %d, file %d) 8 s after the import: want under %d KiB", last["VmRSS"], last["RssAnon"], last["RssFile"], limitKiB)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("after the import of 10,000 members: RSS %d KiB (anon %d, file %d)", last["VmRSS"], last["RssAnon"], last["RssFile"])
	// Still serving from the store after the trim.
	if _, err := d.status(); err != nil {
		t.Fatalf("status after the trim: %v", err)
	}
	d.kill(syscall.SIGTERM)
}
