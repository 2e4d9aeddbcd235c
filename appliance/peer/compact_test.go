package peer

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func originEntries(t testing.TB, n *testNode, origin string) int {
	c := 0
	for _, e := range allEntries(t, n.st) {
		if e.Origin == origin {
			c++
		}
	}
	return c
}

// TestFleetCompaction: after N superseded writes the log holds
// O(registers) entries, not O(writes); a box that was down while the
// writes were made and compacted (behind the compaction horizon) catches
// up from the compacted log; and a box that joins after compaction
// converges to the same registers and vector.
func TestFleetCompaction(t *testing.T) {
	now := testClock()
	a, b := startNode(t, now, "Downtown"), startNode(t, now, "Downtown")
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	join := func(n *testNode, id string) {
		tok, _, err := a.Invite(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Join(context.Background(), tok, id); err != nil {
			t.Fatal(err)
		}
	}
	join(b, "box-b")
	waitFor(t, 5*time.Second, "a–b link", func() bool { return a.linkUp("box-b") && b.linkUp("box-a") })
	const members, rounds = 10, 30 // 300 writes to 10 registers
	write := func(round int) {
		for m := range members {
			setPassword(t, a, fmt.Sprintf("m%d", m), fmt.Sprintf("pw-%d-%d", m, round))
		}
	}
	for r := range rounds / 2 {
		write(r)
	}
	waitFor(t, 5*time.Second, "b caught up", func() bool { return regDump(t, a.st) == regDump(t, b.st) })
	b.stop() // b is behind for the second half
	for r := rounds / 2; r < rounds; r++ {
		write(r)
	}
	before := originEntries(t, a, "box-a")
	cs, err := a.Compact()
	if err != nil {
		t.Fatal(err)
	}
	after := originEntries(t, a, "box-a")
	t.Logf("compaction: %d entries of box-a before, %d after (log %d -> %d, %d registers)", before, after, cs.Before, cs.After, cs.Registers)
	if before < members*rounds || after > members+3 || cs.After > cs.Registers+2 {
		t.Errorf("log of box-a: %d -> %d entries for %d registers; want at most registers + a few", before, after, members)
	}
	// b, behind the horizon (its vector points into the compacted range),
	// restarts and converges.
	b2 := startNodeIn(t, b.dir, "127.0.0.1:0", now, "Downtown")
	took := waitFor(t, 5*time.Second, "b converges from the compacted log", func() bool { return regDump(t, a.st) == regDump(t, b2.st) })
	t.Logf("box-b behind the compaction horizon converged in %s", took)
	if _, err := b2.Compact(); err != nil {
		t.Fatal(err)
	}
	// A box joining after compaction converges too.
	c := startNode(t, now, "Uptown")
	join(c, "box-c")
	took = waitFor(t, 5*time.Second, "c converges", func() bool {
		da := regDump(t, a.st)
		return da == regDump(t, c.st) && da == regDump(t, b2.st)
	})
	t.Logf("box-c joining after compaction converged in %s; it holds %d log entries", took, len(allEntries(t, c.st)))
	if n := originEntries(t, c, "box-a"); n > members+3 {
		t.Errorf("c received %d entries of box-a, want the compacted %d", n, after)
	}
	// Compacting twice removes nothing more, and changes no register.
	if _, err := a.Compact(); err != nil {
		t.Fatal(err)
	}
	regs := regDump(t, a.st)
	if cs, _ := a.Compact(); cs.Before != cs.After || regDump(t, a.st) != regs {
		t.Errorf("second compaction removed %d entries or changed registers", cs.Before-cs.After)
	}
}
