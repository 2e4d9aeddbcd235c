package peer

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Record kinds and their merge rules (see docs/fleet.md).
const (
	KindBox      = "box"     // LWW register: a box's URL and locations
	KindRemoved  = "removed" // grow-only set of removed boxes
	KindPassword = "pw"      // LWW register: NT hash of a member-chosen password
	KindWelcome  = "welcome" // LWW register: the box that queued the welcome email
	KindSession  = "session" // LWW register per box/session: a live device, with a lease
)

// Extension buckets in the store.
const (
	bucketLog     = "fleet_log"     // origin \x00 %016x seq -> Entry
	bucketVV      = "fleet_vv"      // origin -> highest contiguous seq
	bucketReg     = "fleet_reg"     // kind / key -> winning Entry
	bucketInvites = "fleet_invites" // token id -> invite
)

// BoxValue is a KindBox register.
type BoxValue struct {
	URL       string   `json:"url,omitempty"`
	Locations []string `json:"locations,omitempty"`
	// CA: this box holds the fleet CA key (it honours invites signed by
	// other boxes).
	CA bool `json:"ca,omitempty"`
	// Version is the software version the box runs (its daemon's build
	// version), re-announced when it changes (after an update).
	Version string `json:"version,omitempty"`
}

// PasswordValue is a KindPassword register.
type PasswordValue struct {
	NTHash []byte `json:"nt"`
	// Source is the account's password source (model.Password*); empty
	// means member (chosen on the onboarding page).
	Source string `json:"src,omitempty"`
}

// WelcomeValue is a KindWelcome register.
type WelcomeValue struct {
	Box string `json:"box"`
}

// SessionValue is a KindSession register: member's device MAC is online
// at the origin box until Until (a lease the box renews while the session
// lasts) unless Live is false.
type SessionValue struct {
	Member string    `json:"member"`
	MAC    string    `json:"mac,omitempty"`
	Live   bool      `json:"live"`
	Until  time.Time `json:"until"`
}

// RemovedValue is a KindRemoved set element.
type RemovedValue struct {
	By string `json:"by"`
}

// checkValue decodes raw as kind's value type, strictly.
func checkValue(kind string, raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var err error
	switch kind {
	case KindBox:
		var v BoxValue
		err = dec.Decode(&v)
		if err == nil && len(v.Locations) > 64 {
			err = errors.New("too many locations")
		}
		if err == nil && len(v.Version) > 128 {
			err = errors.New("version longer than 128 bytes")
		}
	case KindRemoved:
		var v RemovedValue
		err = dec.Decode(&v)
	case KindSession:
		var v SessionValue
		err = dec.Decode(&v)
		if err == nil && (v.Member == "" || len(v.Member) > maxIDLen || len(v.MAC) > 64) {
			err = errors.New("session without a member, or oversized fields")
		}
	case KindPassword:
		var v PasswordValue
		err = dec.Decode(&v)
		if err == nil && len(v.NTHash) != 16 {
			err = errors.New("NT hash is not 16 bytes")
		}
		if err == nil && v.Source != "" && v.Source != model.PasswordGenerated && v.Source != model.PasswordMember && v.Source != model.PasswordProperty {
			err = fmt.Errorf("unknown password source %.32q", v.Source)
		}
	case KindAudit:
		var v AuditValue
		err = dec.Decode(&v)
	case KindConfig:
		var v ConfigValue
		if err = dec.Decode(&v); err == nil {
			err = checkConfigValue(v)
		}
	case KindSent:
		var v SentValue
		if err = dec.Decode(&v); err == nil {
			err = checkSent(v)
		}
	case KindWelcome:
		var v WelcomeValue
		err = dec.Decode(&v)
		if err == nil && CheckBoxID(v.Box) != nil {
			err = errors.New("bad box id")
		}
	case KindIssuer, KindCert, KindCertRevoked, KindGuestMail, KindGuestDevice, KindDayPass:
		err = checkExtValue(kind, dec) // certs.go, guests.go
	default:
		err = checkRolloutValue(kind, raw) // rollout.go
	}
	if err != nil {
		return fmt.Errorf("%s value: %w", kind, err)
	}
	return nil
}

func logKey(origin string, seq uint64) string { return fmt.Sprintf("%s\x00%016x", origin, seq) }

func regKey(kind, key string) string { return kind + "/" + key }

// replica is the replication log and merged state inside the store.
type replica struct {
	self string
	key  *ecdsa.PrivateKey // signs what this box originates
	clk  *clock
	now  func() time.Time
}

func readVV(tx *store.Tx) (map[string]uint64, error) {
	vv := map[string]uint64{}
	err := tx.ForEachKV(bucketVV, "", func(k string, raw []byte) error {
		var n uint64
		if err := json.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("decode vv %s: %w", k, err)
		}
		vv[k] = n
		return nil
	})
	return vv, err
}

func seqOf(tx *store.Tx, origin string) (uint64, error) {
	var n uint64
	err := tx.GetKV(bucketVV, origin, &n)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return n, err
}

// originate appends a local entry and merges it, inside tx.
func (r *replica) originate(tx *store.Tx, kind, key string, v any) (Entry, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return Entry{}, fmt.Errorf("encode %s value: %w", kind, err)
	}
	seq, err := seqOf(tx, r.self)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Origin: r.self, Seq: seq + 1, Time: r.clk.Now(), Kind: kind, Key: key, Value: raw}
	if kind == KindAudit {
		e.Key = auditKey(e.Time, e.Origin)
	}
	if err := e.check(); err != nil {
		return Entry{}, fmt.Errorf("originate %s %s: %w", kind, key, err)
	}
	if r.key != nil {
		if err := signEntry(r.key, &e); err != nil {
			return Entry{}, fmt.Errorf("originate %s %s: %w", kind, key, err)
		}
	}
	if err := r.append(tx, e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// apply appends a received entry if it is the next of its origin and
// merges it; it reports whether it was new. An entry already held is
// skipped; one after a gap too (the sender resends from our vector).
func (r *replica) apply(tx *store.Tx, e Entry) (bool, error) {
	if err := e.check(); err != nil {
		return false, err
	}
	if err := checkValue(e.Kind, e.Value); err != nil {
		return false, err
	}
	if err := checkAuditKey(e); err != nil {
		return false, err
	}
	seq, err := seqOf(tx, e.Origin)
	if err != nil {
		return false, err
	}
	// The next entry of its origin, or one after entries the sender
	// compacted away (Skip) that followed what this box holds.
	if e.Seq <= seq || e.Seq-1-e.Skip > seq {
		return false, nil
	}
	e.Skip = 0
	r.clk.Observe(e.Time)
	return true, r.append(tx, e)
}

func (r *replica) append(tx *store.Tx, e Entry) error {
	if err := tx.PutKV(bucketLog, logKey(e.Origin, e.Seq), e); err != nil {
		return fmt.Errorf("append %s/%d: %w", e.Origin, e.Seq, err)
	}
	if err := tx.PutKV(bucketVV, e.Origin, e.Seq); err != nil {
		return fmt.Errorf("append %s/%d: %w", e.Origin, e.Seq, err)
	}
	return r.merge(tx, e)
}

// wins reports whether a beats b under last-writer-wins by (HLC, origin).
func wins(a, b Entry) bool {
	if a.Time != b.Time {
		return b.Time.Less(a.Time)
	}
	return a.Origin > b.Origin
}

func (r *replica) merge(tx *store.Tx, e Entry) error {
	k := regKey(e.Kind, e.Key)
	var cur Entry
	err := tx.GetKV(bucketReg, k, &cur)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("merge %s: %w", k, err)
	case e.Kind == KindRemoved:
		return nil // a set: once in, always in
	case !mergeWins(e, cur):
		return nil
	}
	if err := tx.PutKV(bucketReg, k, e); err != nil {
		return fmt.Errorf("merge %s: %w", k, err)
	}
	if e.Kind == KindPassword {
		var v PasswordValue
		if err := json.Unmarshal(e.Value, &v); err != nil {
			return fmt.Errorf("merge %s: %w", k, err)
		}
		return r.applyPassword(tx, e.Key, v, e.Origin)
	}
	return nil
}

// applyPassword sets member's account to the replicated NT hash.
func (r *replica) applyPassword(tx *store.Tx, member string, v PasswordValue, origin string) error {
	nt := v.NTHash
	acct, err := tx.AccountOfMember(member)
	if errors.Is(err, store.ErrNotFound) {
		return nil // applied when the account is created (see reconcileAccount)
	}
	if err != nil {
		return fmt.Errorf("apply password of %s: %w", member, err)
	}
	if bytes.Equal(acct.NTHash, nt) {
		return nil
	}
	now := r.now()
	src, cause := v.Source, "member-chosen password replicated from box "+origin
	if src == "" {
		src = model.PasswordMember
	}
	if src != model.PasswordMember {
		cause = "the fleet's password (from box " + origin + ", made before the fleet existed) adopted"
	}
	acct.NTHash, acct.PasswordSource = bytes.Clone(nt), src
	acct.OnboardTokenHash, acct.OnboardExpires, acct.UpdatedAt = nil, time.Time{}, now
	if err := tx.PutAccount(acct); err != nil {
		return fmt.Errorf("apply password of %s: %w", member, err)
	}
	// A consequence of a change audited at its origin: not replicated.
	return tx.AuditLocal(model.AuditEntry{Time: now, Actor: "fleet", Action: "account.password_set", Member: member,
		Subject: acct.Username, Cause: cause})
}

// register reads the winning entry of kind/key.
func register(tx *store.Tx, kind, key string) (Entry, bool, error) {
	var e Entry
	err := tx.GetKV(bucketReg, regKey(kind, key), &e)
	if errors.Is(err, store.ErrNotFound) {
		return e, false, nil
	}
	return e, err == nil, err
}

// registers returns every register of kind, by key.
func registers(tx *store.Tx, kind string) (map[string]Entry, error) {
	out := map[string]Entry{}
	err := tx.ForEachKV(bucketReg, kind+"/", func(k string, raw []byte) error {
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("decode register %s: %w", k, err)
		}
		out[e.Key] = e
		return nil
	})
	return out, err
}

// boxes returns the box registers that are not removed.
func boxes(tx *store.Tx) (map[string]BoxValue, map[string]bool, error) {
	regs, err := registers(tx, KindBox)
	if err != nil {
		return nil, nil, err
	}
	rm, err := registers(tx, KindRemoved)
	if err != nil {
		return nil, nil, err
	}
	removed := map[string]bool{}
	for k := range rm {
		removed[k] = true
	}
	out := map[string]BoxValue{}
	for id, e := range regs {
		if removed[id] {
			continue
		}
		var v BoxValue
		if err := json.Unmarshal(e.Value, &v); err != nil {
			return nil, nil, fmt.Errorf("decode box %s: %w", id, err)
		}
		out[id] = v
	}
	return out, removed, nil
}

// accountDiffers reports whether member's account hash differs from the
// password register (what reconcileAccount would act on).
func accountDiffers(tx *store.Tx, member string) (bool, error) {
	acct, err := tx.AccountOfMember(member)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	reg, ok, err := register(tx, KindPassword, member)
	if err != nil || !ok {
		return len(acct.NTHash) == 16 && acct.PasswordSource == model.PasswordMember, err
	}
	var v PasswordValue
	if err := json.Unmarshal(reg.Value, &v); err != nil {
		return false, fmt.Errorf("decode password register of %s: %w", member, err)
	}
	return !bytes.Equal(acct.NTHash, v.NTHash), nil
}

// reconcileAccount keeps member's account and the password register in
// step: a local member-chosen password that differs from the register is
// originated; otherwise a register the account lacks is applied.
func (r *replica) reconcileAccount(tx *store.Tx, member string) (bool, error) {
	acct, err := tx.AccountOfMember(member)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	reg, ok, err := register(tx, KindPassword, member)
	if err != nil {
		return false, err
	}
	var regVal PasswordValue
	if ok {
		if err := json.Unmarshal(reg.Value, &regVal); err != nil {
			return false, fmt.Errorf("decode password register of %s: %w", member, err)
		}
	}
	regHash := regVal.NTHash
	if bytes.Equal(acct.NTHash, regHash) {
		return false, nil
	}
	if acct.PasswordSource == model.PasswordMember && len(acct.NTHash) == 16 {
		_, err := r.originate(tx, KindPassword, member, PasswordValue{NTHash: acct.NTHash})
		return err == nil, err
	}
	if ok {
		return false, r.applyPassword(tx, member, regVal, reg.Origin)
	}
	return false, nil
}

// adoptAccounts makes the accounts this box holds when it creates a fleet
// the fleet's: their password hashes become registers (so boxes that
// join later use the same passwords) and their welcome emails count as
// sent. One transaction.
func (r *replica) adoptAccounts(tx *store.Tx) (int, error) {
	var accts []model.Account
	if err := tx.ForEachAccount(func(a model.Account) error { accts = append(accts, a); return nil }); err != nil {
		return 0, err
	}
	for _, a := range accts {
		if len(a.NTHash) == 16 {
			src := a.PasswordSource
			if src == "" {
				src = model.PasswordGenerated
			}
			if _, err := r.originate(tx, KindPassword, a.MemberID, PasswordValue{NTHash: a.NTHash, Source: src}); err != nil {
				return 0, err
			}
		}
		if _, err := r.originate(tx, KindWelcome, a.MemberID, WelcomeValue{Box: r.self}); err != nil {
			return 0, err
		}
	}
	return len(accts), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
