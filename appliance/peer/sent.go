package peer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// KindSent is the outbox's "sent" mark of one message of the fleet, keyed
// by its Once name (model.Email.Once): the box that claimed it right
// before sending. Merge rule: the first claim by (HLC, origin) wins, so
// every box agrees on the sender; any mark means "do not send".
const KindSent = "sent"

// SentValue is a KindSent mark.
type SentValue struct {
	Box   string `json:"box"`
	Email string `json:"kind"` // the email kind (welcome, guest_code, ...)
}

// ClaimSend is the notify sender's Claim: before sending an email with a
// Once name it marks the message sent by this box, in one transaction
// with the check that no other box did. ok=false: box by sent it. A
// message this box claimed before (a retry after a failed attempt or a
// crash) is this box's to send again. Outside a fleet every claim is ok.
func (n *Node) ClaimSend(e model.Email) (ok bool, by string, err error) {
	k, rep := n.current()
	if k == nil || e.Once == "" {
		return true, "", nil
	}
	self := k.id.BoxID
	err = n.st.Update(func(tx *store.Tx) error {
		cur, found, err := register(tx, KindSent, e.Once)
		if err != nil {
			return err
		}
		if found {
			var v SentValue
			if err := json.Unmarshal(cur.Value, &v); err != nil {
				return fmt.Errorf("decode sent mark %s: %w", e.Once, err)
			}
			ok, by = v.Box == self, v.Box
			return nil
		}
		if _, err := rep.originate(tx, KindSent, e.Once, SentValue{Box: self, Email: e.Kind}); err != nil {
			return err
		}
		ok, by = true, self
		return nil
	})
	if err != nil {
		return false, "", fmt.Errorf("fleet: claim email %s: %w", e.Once, err)
	}
	if ok {
		n.nudgeAll()
	}
	return ok, by, nil
}

// SentBy reports which box marked the message once sent ("" = none).
func (n *Node) SentBy(once string) (string, error) {
	var by string
	err := n.st.View(func(tx *store.Tx) error {
		cur, found, err := register(tx, KindSent, once)
		if err != nil || !found {
			return err
		}
		var v SentValue
		if err := json.Unmarshal(cur.Value, &v); err != nil {
			return err
		}
		by = v.Box
		return nil
	})
	return by, err
}

func checkSent(v SentValue) error {
	if CheckBoxID(v.Box) != nil {
		return fmt.Errorf("bad box id %.64q", v.Box)
	}
	if v.Email == "" || len(v.Email) > 64 || strings.ContainsAny(v.Email, "/\x00") {
		return fmt.Errorf("bad email kind %.64q", v.Email)
	}
	return nil
}
