package appliance

import (
	"context"

	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/radius"
)

// fleetSessions is the RADIUS session store that also tells the fleet
// about devices coming and going (device limits across boxes). The fleet
// write follows the local one; if it fails, the lease of the last
// recorded state bounds the error.
type fleetSessions struct {
	radius.SessionStore
	a *App
}

func (f fleetSessions) SaveSessions(ctx context.Context, ss []radius.Session) error {
	if err := f.SessionStore.SaveSessions(ctx, ss); err != nil {
		return err
	}
	ls := make([]peer.LocalSession, 0, len(ss))
	for _, s := range ss {
		ls = append(ls, peer.LocalSession{Key: s.Key, Member: s.MemberID, MAC: s.MAC, Live: s.Live()})
	}
	if err := f.a.fleet.RecordSessions(ls); err != nil {
		f.a.log.Warn("fleet: sessions not shared", "err", err)
	}
	return nil
}
