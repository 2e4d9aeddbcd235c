package officerndsim

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// stateVersion is the SaveState format version.
const stateVersion = 1

type state struct {
	Version     int              `json:"version"`
	Org         string           `json:"org"`
	SavedAt     string           `json:"savedAt"`
	ClockOffset string           `json:"clockOffset,omitempty"`
	Counter     uint32           `json:"counter"`
	Seed        SeedInfo         `json:"seed"`
	Collections map[string][]doc `json:"collections"`
}

// SaveState writes every record (webhooks and their secrets included), the
// seed description and the own clock's offset as JSON, for LoadState.
// Tokens, faults, stats and queued deliveries are not saved.
func (s *Sim) SaveState(w io.Writer) error {
	s.mu.Lock()
	st := state{Version: stateVersion, Org: s.opts.OrgSlug, SavedAt: iso(s.nowLocked()), Counter: s.ids.counter,
		Seed: s.seed, Collections: map[string][]doc{}}
	if s.ownClock && s.offset != 0 {
		st.ClockOffset = s.offset.String()
	}
	for name, c := range s.cols {
		docs := make([]doc, 0, len(c.ids))
		for _, id := range c.ids {
			docs = append(docs, c.docs[id])
		}
		st.Collections[name] = docs
	}
	b, err := json.Marshal(st)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save sim state: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("save sim state: %w", err)
	}
	return nil
}

// LoadState replaces every record with those SaveState wrote.
func (s *Sim) LoadState(r io.Reader) error {
	var st state
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return fmt.Errorf("load sim state: %w", err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("load sim state: version %d, want %d", st.Version, stateVersion)
	}
	var off time.Duration
	if st.ClockOffset != "" {
		d, err := time.ParseDuration(st.ClockOffset)
		if err != nil {
			return fmt.Errorf("load sim state: clock offset: %w", err)
		}
		off = d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range resources {
		s.cols[name] = newCollection()
	}
	s.byMember, s.byCompany, s.tzCache = map[string][]string{}, map[string][]string{}, map[string]*time.Location{}
	for name, docs := range st.Collections {
		if resources[name] == nil {
			return fmt.Errorf("load sim state: unknown collection %q", name)
		}
		for _, d := range docs {
			if !isObjectID(str(d["_id"])) {
				return fmt.Errorf("load sim state: %s: bad _id %v", name, d["_id"])
			}
			s.store(name, d)
		}
	}
	if st.Seed.IDs == nil {
		st.Seed.IDs = map[string]string{}
	}
	st.Seed.Org = s.opts.OrgSlug
	s.seed = st.Seed
	s.ids.counter = max(s.ids.counter, st.Counter)
	if s.ownClock {
		s.offset = off
	}
	return nil
}
