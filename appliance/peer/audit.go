package peer

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// KindAudit is one audit event of the origin box (docs/fleet.md, "Audit
// trail"): every box holds every box's trail. Each event is its own
// register, keyed by its HLC and origin, so the register bucket lists the
// fleet's trail in HLC order; nothing supersedes it.
const KindAudit = "audit"

// maxAuditCause bounds the cause replicated with an audit event.
const maxAuditCause = 4 << 10

// AuditValue is a KindAudit event.
type AuditValue struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Member  string    `json:"member,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Cause   string    `json:"cause,omitempty"`
}

// auditKey is the key of an audit event: its HLC in fixed-width hex, so
// keys sort in HLC order, then its origin (ties).
func auditKey(t HLC, origin string) string {
	return fmt.Sprintf("%016x.%08x/%s", uint64(t.Wall), t.Logical, origin)
}

func checkAuditKey(e Entry) error {
	if e.Kind == KindAudit && e.Key != auditKey(e.Time, e.Origin) {
		return fmt.Errorf("audit key %.80q does not match its timestamp and origin", e.Key)
	}
	return nil
}

// auditHook originates every local audit event for the fleet, in the
// transaction that writes it. Events audited while applying replicated
// entries are local consequences (tx.LocalAudit) and stay local.
func (n *Node) auditHook(tx *store.Tx, a model.AuditEntry) error {
	k, rep := n.current()
	if k == nil {
		return nil
	}
	if len(a.Cause) > maxAuditCause {
		a.Cause = a.Cause[:maxAuditCause]
	}
	v := AuditValue{Time: a.Time, Actor: a.Actor, Action: a.Action, Member: a.Member, Subject: a.Subject, Cause: a.Cause}
	if _, err := rep.originate(tx, KindAudit, "", v); err != nil {
		return fmt.Errorf("fleet: replicate audit event %s: %w", a.Action, err)
	}
	return nil
}

// Audit returns the fleet's audit trail, newest limit events (all when
// limit <= 0) in HLC order, oldest first, each with the box it was made
// at; member filters by member id. Outside a fleet it returns ok=false.
func (n *Node) Audit(member string, limit int) ([]model.AuditEntry, bool, error) {
	k, _ := n.current()
	if k == nil {
		return nil, false, nil
	}
	var out []model.AuditEntry
	err := n.st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketReg, KindAudit+"/", func(key string, raw []byte) error {
			var e Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			if member != "" && !strings.Contains(string(e.Value), `"member":`) {
				return nil
			}
			var v AuditValue
			if err := json.Unmarshal(e.Value, &v); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			if member != "" && v.Member != member {
				return nil
			}
			out = append(out, model.AuditEntry{Time: v.Time, Actor: v.Actor, Action: v.Action, Member: v.Member,
				Subject: v.Subject, Cause: v.Cause, Box: e.Origin})
			if limit > 0 && len(out) > 2*limit {
				out = append(out[:0], out[len(out)-limit:]...)
			}
			return nil
		})
	})
	if err != nil {
		return nil, true, fmt.Errorf("fleet audit trail: %w", err)
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, true, nil
}
