package peer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/deskgate/deskgate/appliance/store"
)

// Compaction (docs/fleet.md, "Compaction and snapshots"): an entry that no
// longer is the winner of its register (superseded by a later write, or
// its register pruned) is deleted from the log. What stays is, per
// register, the entry that wins it (for the grow-only `removed` set and
// the first-claim `sent` marks, the entry the register holds; every
// `audit` event is its own register) plus the newest entry of each
// origin, which anchors the version vector and the HLC after a restart.
// So the log holds O(registers) entries, and the compacted log is itself
// the snapshot a far-behind or new box needs: the sender streams what is
// left, and each entry says how many sequence numbers before it were
// compacted away (Entry.Skip), so the receiver accepts the gap. The
// skipped entries lost their registers to entries it receives anyway,
// and every merge is commutative and idempotent, so it converges to the
// same registers.

// compactBatch bounds the deletions of one transaction.
const compactBatch = 4096

// CompactStats says what a compaction did.
type CompactStats struct {
	Before, After int // log entries
	Registers     int
}

// Compact deletes superseded entries from the log.
func (n *Node) Compact() (CompactStats, error) {
	var cs CompactStats
	k, _ := n.current()
	if k == nil {
		return cs, ErrNotInFleet
	}
	for {
		var drop []string
		cs.Before, cs.Registers = 0, 0
		err := n.st.View(func(tx *store.Tx) error {
			vv, err := readVV(tx)
			if err != nil {
				return err
			}
			if err := tx.ForEachKV(bucketReg, "", func(string, []byte) error { cs.Registers++; return nil }); err != nil {
				return err
			}
			return tx.ForEachKV(bucketLog, "", func(key string, raw []byte) error {
				cs.Before++
				if len(drop) >= compactBatch {
					return nil
				}
				var e Entry
				if err := json.Unmarshal(raw, &e); err != nil {
					return fmt.Errorf("decode log %q: %w", key, err)
				}
				if e.Seq >= vv[e.Origin] {
					return nil // the newest of its origin stays
				}
				cur, ok, err := register(tx, e.Kind, e.Key)
				if err != nil {
					return err
				}
				if !ok || cur.Origin != e.Origin || cur.Seq != e.Seq {
					drop = append(drop, key)
				}
				return nil
			})
		})
		if err != nil {
			return cs, fmt.Errorf("fleet compaction: %w", err)
		}
		if len(drop) > 0 {
			err = n.st.Update(func(tx *store.Tx) error {
				for _, key := range drop {
					if err := tx.DeleteKV(bucketLog, key); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return cs, fmt.Errorf("fleet compaction: %w", err)
			}
		}
		if len(drop) < compactBatch {
			cs.After = cs.Before - len(drop)
			if len(drop) > 0 {
				n.log.Info("fleet log compacted", "entries_before", cs.Before, "entries_after", cs.After, "registers", cs.Registers)
			}
			return cs, nil
		}
	}
}

// logEntries counts the entries in the log.
func logEntries(tx *store.Tx) (int, error) {
	c := 0
	err := tx.ForEachKV(bucketLog, "", func(string, []byte) error { c++; return nil })
	return c, err
}

// entriesAfter returns up to limit entries of origin after seq, in seq
// order. The log may have gaps where compaction removed entries; each
// returned entry's Skip says how many sequence numbers before it (after
// the previous one returned, or after seq) are gone.
func entriesAfter(tx *store.Tx, origin string, after uint64, limit int) ([]Entry, error) {
	top, err := seqOf(tx, origin)
	if err != nil || top <= after {
		return nil, err
	}
	var out []Entry
	prev := after
	start := logKey(origin, after+1)
	prefix := origin + "\x00"
	errStop := fmt.Errorf("stop")
	err = tx.ForEachKVFrom(bucketLog, prefix, start, func(key string, raw []byte) error {
		if len(out) >= limit {
			return errStop
		}
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("read log %q: %w", strings.ReplaceAll(key, "\x00", "/"), err)
		}
		if e.Seq > top {
			return errStop
		}
		e.Skip = e.Seq - 1 - prev
		prev = e.Seq
		out = append(out, e)
		return nil
	})
	if err != nil && err != errStop {
		return nil, err
	}
	return out, nil
}
