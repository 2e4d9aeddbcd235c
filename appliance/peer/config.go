package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// Fleet-wide configuration (docs/fleet.md, "Fleet configuration"): one
// LWW register holds the fleet's document (plans, groups, locations,
// roaming). A push is two-phase: every linked box dry-runs the document
// against its own per-box settings and votes; only when every vote is yes
// does the pushing box originate the register. Each box applies the
// winning register only if it validates there; otherwise it keeps its old
// configuration and says so in `fleet status`.
const (
	KindConfig = "config"
	configKey  = "fleet" // the one register of KindConfig

	TypeConfigCheck = "cfgcheck" // dry-run this document and vote
	TypeConfigVote  = "cfgvote"  // the answer to a cfgcheck

	maxConfigDoc = 48 << 10
	maxReason    = 4 << 10
	// configVoteWait bounds how long a push waits for the votes.
	configVoteWait = 5 * time.Second
	bucketState    = "fleet_state" // local bookkeeping: "config" -> ConfigStatus
)

// ConfigValue is the KindConfig register.
type ConfigValue struct {
	Version uint64 `json:"ver"`
	Doc     string `json:"doc"`
	By      string `json:"by"`
}

// ConfigCheck asks a peer to dry-run a document.
type ConfigCheck struct {
	ID  string `json:"id"`
	Doc string `json:"doc"`
}

// ConfigVote is a box's answer to a ConfigCheck.
type ConfigVote struct {
	ID     string `json:"id,omitempty"`
	Box    string `json:"box,omitempty"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// PushResult says what a push did.
type PushResult struct {
	Applied bool         `json:"applied"`
	Version uint64       `json:"version,omitempty"`
	Votes   []ConfigVote `json:"votes"`
	// Unreachable boxes were not asked; they get the document by
	// anti-entropy and apply it only if it validates there.
	Unreachable []string `json:"unreachable,omitempty"`
}

// ConfigStatus is what this box did with the fleet's configuration.
type ConfigStatus struct {
	Version uint64 `json:"version"`
	By      string `json:"by"`
	Time    HLC    `json:"time"`
	Origin  string `json:"origin"`
	// State is "applied" or "refused" (kept the previous configuration).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// ErrConfigRefused is returned by PushConfig when a box refused.
var ErrConfigRefused = errors.New("fleet configuration refused")

func checkConfigValue(v ConfigValue) error {
	switch {
	case v.Version == 0:
		return errors.New("version 0")
	case len(v.Doc) == 0 || len(v.Doc) > maxConfigDoc:
		return fmt.Errorf("document of %d bytes, want 1..%d", len(v.Doc), maxConfigDoc)
	case CheckBoxID(v.By) != nil:
		return fmt.Errorf("bad box id %.64q", v.By)
	}
	return nil
}

func checkConfigMsg(m *Message) error {
	if len(m.Entries) > 0 || len(m.VV) > 0 || len(m.Hint) > 0 {
		return fmt.Errorf("%s: carries entries, a vector or a hint", m.Type)
	}
	switch m.Type {
	case TypeConfigCheck:
		c := m.Check
		if c == nil || m.Vote != nil || !validNonce(c.ID) || len(c.Doc) == 0 || len(c.Doc) > maxConfigDoc {
			return errors.New("cfgcheck: want an id and a document of 1..48 KiB")
		}
	case TypeConfigVote:
		v := m.Vote
		if v == nil || m.Check != nil || !validNonce(v.ID) || len(v.Reason) > maxReason || v.Box != "" {
			return errors.New("cfgvote: want an id and a reason of at most 4 KiB")
		}
	}
	return nil
}

func validNonce(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// voteBox collects the votes of one push.
type voteBox struct {
	mu    sync.Mutex
	votes map[string]ConfigVote
	want  int
	done  chan struct{}
}

func (v *voteBox) add(vote ConfigVote) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, dup := v.votes[vote.Box]; dup {
		return
	}
	v.votes[vote.Box] = vote
	if len(v.votes) == v.want {
		close(v.done)
	}
}

// PushConfig validates doc here (Options.CheckConfig), asks every linked
// box to dry-run it, and only when all said yes originates the fleet's
// configuration register (applied here at once, elsewhere as it
// arrives). A refusal changes nothing anywhere; the result names who
// refused and why.
func (n *Node) PushConfig(ctx context.Context, doc []byte) (PushResult, error) {
	var res PushResult
	k, rep := n.current()
	if k == nil {
		return res, ErrNotInFleet
	}
	if n.opts.CheckConfig == nil || n.opts.ApplyConfig == nil {
		return res, errors.New("this box cannot check fleet configuration")
	}
	self := k.id.BoxID
	if len(doc) > maxConfigDoc {
		return res, fmt.Errorf("%w: document of %d bytes exceeds %d", ErrConfigRefused, len(doc), maxConfigDoc)
	}
	if err := n.opts.CheckConfig(doc); err != nil {
		res.Votes = []ConfigVote{{Box: self, OK: false, Reason: trunc(err.Error(), maxReason)}}
		return res, fmt.Errorf("%w by %s: %v", ErrConfigRefused, self, err)
	}
	res.Votes = []ConfigVote{{Box: self, OK: true}}
	id, err := randomHex(16)
	if err != nil {
		return res, err
	}
	n.mu.Lock()
	var ls []*link
	for _, l := range n.links {
		if l.up() {
			ls = append(ls, l)
		}
	}
	vb := &voteBox{votes: map[string]ConfigVote{}, want: len(ls), done: make(chan struct{})}
	if n.votes == nil {
		n.votes = map[string]*voteBox{}
	}
	n.votes[id] = vb
	n.mu.Unlock()
	defer func() { n.mu.Lock(); delete(n.votes, id); n.mu.Unlock() }()
	if len(ls) == 0 {
		close(vb.done)
	}
	for _, l := range ls {
		l.send(Message{Type: TypeConfigCheck, Check: &ConfigCheck{ID: id, Doc: string(doc)}})
	}
	t := time.NewTimer(configVoteWait)
	defer t.Stop()
	select {
	case <-vb.done:
	case <-t.C:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	vb.mu.Lock()
	refused := false
	asked := map[string]bool{self: true}
	for _, l := range ls {
		v, ok := vb.votes[l.peer]
		if !ok {
			// A link that looked up but carried no answer (the box went
			// away while we asked) counts as unreachable, not as a
			// refusal: like any cut-off box it validates the document
			// itself when it hears of it, and keeps its own if it must.
			res.Votes = append(res.Votes, ConfigVote{Box: l.peer, Reason: fmt.Sprintf("no answer within %s", configVoteWait)})
			continue
		}
		asked[l.peer] = true
		refused = refused || !v.OK
		res.Votes = append(res.Votes, v)
	}
	vb.mu.Unlock()
	slices.SortFunc(res.Votes, func(a, b ConfigVote) int { return cmpStr(a.Box, b.Box) })
	var why []string
	for _, v := range res.Votes {
		if !v.OK {
			why = append(why, v.Box+": "+v.Reason)
		}
	}
	if refused {
		n.log.Warn("fleet configuration push refused; nothing applied", "refusals", why)
		return res, fmt.Errorf("%w: %v", ErrConfigRefused, why)
	}
	err = n.st.Update(func(tx *store.Tx) error {
		all, _, err := boxes(tx)
		if err != nil {
			return err
		}
		for _, id := range sortedKeys(all) {
			if !asked[id] {
				res.Unreachable = append(res.Unreachable, id)
			}
		}
		var cur ConfigValue
		if e, ok, err := register(tx, KindConfig, configKey); err != nil {
			return err
		} else if ok {
			if err := json.Unmarshal(e.Value, &cur); err != nil {
				return fmt.Errorf("decode fleet configuration: %w", err)
			}
		}
		res.Version = cur.Version + 1
		_, err = rep.originate(tx, KindConfig, configKey, ConfigValue{Version: res.Version, Doc: string(doc), By: self})
		return err
	})
	if err != nil {
		return res, fmt.Errorf("fleet config push: %w", err)
	}
	n.log.Info("fleet configuration pushed", "version", res.Version, "unreachable", res.Unreachable)
	n.applyConfig()
	n.nudgeAll()
	st, _ := n.ConfigStatus()
	res.Applied = st != nil && st.Version == res.Version && st.State == "applied"
	return res, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// answerCheck dry-runs a peer's document and votes.
func (l *link) answerCheck(c *ConfigCheck) {
	v := ConfigVote{ID: c.ID, OK: true}
	check := l.n.opts.CheckConfig
	var err error
	if check == nil {
		err = errors.New("this box cannot check fleet configuration")
	} else {
		err = check([]byte(c.Doc))
	}
	if err != nil {
		v.OK, v.Reason = false, trunc(err.Error(), maxReason)
		l.n.log.Warn("fleet configuration refused in the dry run", "pushed_by", l.peer, "reason", err)
	}
	l.send(Message{Type: TypeConfigVote, Vote: &v})
}

func (n *Node) deliverVote(peer string, v *ConfigVote) {
	n.mu.Lock()
	vb := n.votes[v.ID]
	n.mu.Unlock()
	if vb != nil {
		vb.add(ConfigVote{Box: peer, OK: v.OK, Reason: v.Reason})
	}
}

// applyConfig applies the fleet's configuration register if this box has
// not yet acted on it: only when it validates here (else it keeps the old
// configuration and records why, for fleet status).
func (n *Node) applyConfig() {
	n.cfgMu.Lock()
	defer n.cfgMu.Unlock()
	if n.opts.ApplyConfig == nil || n.opts.CheckConfig == nil {
		return
	}
	var reg Entry
	var found bool
	var st ConfigStatus
	err := n.st.View(func(tx *store.Tx) error {
		var err error
		if reg, found, err = register(tx, KindConfig, configKey); err != nil || !found {
			return err
		}
		if err := tx.GetKV(bucketState, "config", &st); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil || !found || (st.Time == reg.Time && st.Origin == reg.Origin) {
		if err != nil {
			n.log.Error("fleet: read configuration register", "err", err)
		}
		return
	}
	var v ConfigValue
	if err := json.Unmarshal(reg.Value, &v); err != nil {
		n.log.Error("fleet: decode configuration register", "err", err)
		return
	}
	st = ConfigStatus{Version: v.Version, By: v.By, Time: reg.Time, Origin: reg.Origin, State: "applied"}
	err = n.opts.CheckConfig([]byte(v.Doc))
	if err == nil {
		err = n.opts.ApplyConfig([]byte(v.Doc))
	}
	if err != nil {
		st.State, st.Reason = "refused", trunc(err.Error(), maxReason)
		n.log.Warn("fleet configuration refused here; keeping the previous configuration", "version", v.Version, "by", v.By, "reason", err)
	} else {
		n.log.Info("fleet configuration applied", "version", v.Version, "by", v.By)
	}
	if err := n.st.Update(func(tx *store.Tx) error { return tx.PutKV(bucketState, "config", st) }); err != nil {
		n.log.Error("fleet: record configuration state", "err", err)
	}
}

// ConfigStatus reports what this box did with the fleet's configuration
// (nil: no fleet configuration yet).
func (n *Node) ConfigStatus() (*ConfigStatus, error) {
	var st ConfigStatus
	err := n.st.View(func(tx *store.Tx) error { return tx.GetKV(bucketState, "config", &st) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet configuration state: %w", err)
	}
	return &st, nil
}
