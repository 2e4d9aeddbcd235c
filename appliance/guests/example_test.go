package guests_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/deskgate/deskgate/appliance/guests"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// printNet is a Network that prints what it is asked to do.
type printNet struct{}

func (printNet) Allow(_ context.Context, c guests.Client, until time.Time) error {
	fmt.Println("allow", c.MAC, "until", until.Format("15:04"))
	return nil
}

func (printNet) Revoke(_ context.Context, c guests.Client) error {
	fmt.Println("revoke", c.MAC)
	return nil
}

// The composition root builds a Manager from the store, the network and a
// Members checker, runs it, and adapts it to portal.Backend (the types and
// errors here mirror the portal's one to one).
func Example() {
	dir, _ := os.MkdirTemp("", "guests")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 27, 9, 50, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := store.Open(filepath.Join(dir, "deskgate.db"), store.Options{Now: clock})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	// What the sync writes: a meeting-room booking with one visitor.
	_ = st.Update(func(tx *store.Tx) error {
		_ = tx.PutResource(model.Resource{ID: "r1", Type: "meeting_room", Location: "loc1"})
		_ = tx.PutVisitor(model.Visitor{ID: "v1", Name: "Grace", Email: "grace@example.org"})
		return tx.PutBooking(model.Booking{ID: "b1", Resource: "r1", Location: "loc1",
			Start: now.Add(10 * time.Minute), End: now.Add(70 * time.Minute), Visitors: []string{"v1"}})
	})

	m := guests.New(guests.Config{
		Locations: map[string]guests.Location{"loc1": {Name: "Downtown", Network: "Downtown-Guest", TZ: time.UTC}},
	}, st, printNet{}, nil, slog.New(slog.DiscardHandler), clock)
	ctx := context.Background()
	if err := m.Reconcile(ctx); err != nil { // Run does this, and follows the change feed
		panic(err)
	}
	// The code reaches the guest by email (the outbox's sealed Secret).
	emails, _ := st.PendingEmails(now, 10)
	code := emails[0].Secret["code"]
	fmt.Println(emails[0].Kind, "to", emails[0].To, "valid", emails[0].Data["valid_from"], "to", emails[0].Data["valid_until"])

	phone := guests.Client{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, IP: netip.MustParseAddr("10.0.0.1")}
	s, err := m.LoginCode(ctx, code, phone, "loc1")
	fmt.Println(s.Kind, s.Name, err)
	_ = m.Logout(ctx, phone)
	// Output:
	// guest_code to grace@example.org valid Fri 27 Nov 2026, 09:45 UTC to Fri 27 Nov 2026, 11:15 UTC
	// allow 02:00:00:00:00:01 until 11:15
	// guest Grace <nil>
	// revoke 02:00:00:00:00:01
}
