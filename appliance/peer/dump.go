package peer

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Dump is the replicated state of one box in a canonical form: two boxes
// that have converged produce equal dumps (and digests), whatever order
// the entries reached them in. `deskgate fleet dump` prints it; the
// partition tests compare it across boxes.
type Dump struct {
	Box string `json:"box"`
	// VV is the version vector: per origin, the highest contiguous seq held.
	VV map[string]uint64 `json:"versionVector"`
	// Registers are the merged registers (winning entry per kind/key),
	// sorted by kind and key.
	Registers []DumpRegister `json:"registers"`
	// Accounts are the enabled WiFi accounts (member, username, password
	// fingerprint and source), sorted by member. They follow from the
	// registers and from each box's own OfficeRnD sync, so they match
	// across boxes once every box has polled. Disabled accounts are left
	// out: a box that first heard of a member after the membership ended
	// never made one, one that knew her keeps hers disabled.
	Accounts []DumpAccount `json:"accounts"`
	// Digest is the SHA-256 of VV, Registers and Accounts (hex).
	Digest string `json:"digest"`
	// RegistersDigest is the SHA-256 of Registers alone (hex).
	RegistersDigest string `json:"registersDigest"`
}

// DumpRegister is one merged register. A password register shows the
// fingerprint of its NT hash, never the hash.
type DumpRegister struct {
	Kind   string          `json:"kind"`
	Key    string          `json:"key"`
	Origin string          `json:"origin"`
	Seq    uint64          `json:"seq"`
	Time   HLC             `json:"time"`
	Value  json.RawMessage `json:"value"`
}

// DumpAccount is one account as the dump shows it.
type DumpAccount struct {
	Member   string `json:"member"`
	Username string `json:"username"`
	// Password is PasswordFingerprint of the NT hash ("" = none set).
	Password string `json:"password,omitempty"`
	Source   string `json:"source,omitempty"`
}

// PasswordFingerprint names an NT hash without revealing it: the first 8
// bytes of its SHA-256, hex. Tests compute it from a password's NT hash.
func PasswordFingerprint(nt []byte) string {
	if len(nt) == 0 {
		return ""
	}
	s := sha256.Sum256(nt)
	return hex.EncodeToString(s[:8])
}

// Dump reads this box's replicated state in one transaction.
func (n *Node) Dump() (Dump, error) {
	k, _ := n.current()
	if k == nil {
		return Dump{}, ErrNotInFleet
	}
	d := Dump{Box: k.id.BoxID, Registers: []DumpRegister{}, Accounts: []DumpAccount{}}
	err := n.st.View(func(tx *store.Tx) error {
		var err error
		if d.VV, err = readVV(tx); err != nil {
			return err
		}
		if err := tx.ForEachKV(bucketReg, "", func(key string, raw []byte) error {
			var e Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode register %s: %w", key, err)
			}
			v := e.Value
			if e.Kind == KindPassword {
				var pv PasswordValue
				if err := json.Unmarshal(e.Value, &pv); err != nil {
					return fmt.Errorf("decode register %s: %w", key, err)
				}
				v, _ = json.Marshal(map[string]string{"password": PasswordFingerprint(pv.NTHash), "src": pv.Source})
			}
			d.Registers = append(d.Registers, DumpRegister{Kind: e.Kind, Key: e.Key, Origin: e.Origin, Seq: e.Seq, Time: e.Time, Value: v})
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEachAccount(func(a model.Account) error {
			if a.Disabled {
				return nil
			}
			d.Accounts = append(d.Accounts, DumpAccount{Member: a.MemberID, Username: a.Username,
				Password: PasswordFingerprint(a.NTHash), Source: a.PasswordSource})
			return nil
		})
	})
	if err != nil {
		return Dump{}, fmt.Errorf("fleet dump: %w", err)
	}
	slices.SortFunc(d.Registers, func(a, b DumpRegister) int {
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	slices.SortFunc(d.Accounts, func(a, b DumpAccount) int { return cmp.Compare(a.Member, b.Member) })
	regs, err := json.Marshal(d.Registers)
	if err != nil {
		return Dump{}, fmt.Errorf("fleet dump: %w", err)
	}
	all, err := json.Marshal([]any{d.VV, d.Registers, d.Accounts}) // map keys marshal sorted
	if err != nil {
		return Dump{}, fmt.Errorf("fleet dump: %w", err)
	}
	rs, as := sha256.Sum256(regs), sha256.Sum256(all)
	d.RegistersDigest, d.Digest = hex.EncodeToString(rs[:]), hex.EncodeToString(as[:])
	return d, nil
}
