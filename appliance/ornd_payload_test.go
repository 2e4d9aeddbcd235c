package appliance

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/guests"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
	"github.com/deskgate/deskgate/appliance/store"
)

// guestCodes lists the daemon's guest codes of booking (all when "").
func guestCodes(t *testing.T, app *App, booking string) []guests.CodeInfo {
	t.Helper()
	app.guests.mu.Lock()
	mgr := app.guests.mgr
	app.guests.mu.Unlock()
	if mgr == nil {
		return nil
	}
	all, err := mgr.Codes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []guests.CodeInfo
	for _, c := range all {
		if booking == "" || c.BookingID == booking {
			out = append(out, c)
		}
	}
	return out
}

// TestCancellationFromV1Payload: OfficeRnD cancels a booking while its API
// is failing, so the event cannot be re-read and its payload is applied as
// sent. The payload uses the v1 names (canceled, resourceId, summary, …);
// the cancellation must not be lost: the booking's guest codes are revoked.
func TestCancellationFromV1Payload(t *testing.T) {
	portalAddr := freePort(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true,
		extraYAML: fmt.Sprintf("portal: {enabled: true, listen: %q, public_url: \"http://%s\", default_location: Downtown}\nguests: {guest_network: downtown-guest}\n", portalAddr, portalAddr)})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	id := h.sim.Seeded().IDs["booking:two-visitors"]
	waitFor(t, 10*time.Second, "the seeded booking's two guest codes", func() bool { return len(guestCodes(t, app, id)) == 2 })

	h.sim.SetFaults(officerndsim.Faults{Down: true}) // re-reads fail; deliveries still go out
	if err := h.sim.CancelBooking(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the webhook applied", func() bool { return app.syncer.Status().WebhookStats.Applied > 0 })
	waitFor(t, 10*time.Second, "codes of the cancelled booking revoked", func() bool { return len(guestCodes(t, app, id)) == 0 })
	// The payload's v1 fields all arrived: cancelled, and the resource and
	// title kept (a dropped resourceId would also have ended the codes, for
	// the wrong reason).
	var bk model.Booking
	if err := app.Store().View(func(tx *store.Tx) error {
		var err error
		bk, err = tx.GetBooking(id)
		return err
	}); err != nil || !bk.IsCancelled || bk.Resource != h.sim.Seeded().IDs["resource:Boardroom"] || bk.Title != "Investor demo" {
		t.Fatalf("stored booking %+v (%v): want cancelled, Boardroom, \"Investor demo\"", bk, err)
	}
}

// TestPopulatedEnvelopeRefs: data.member and data.company arrive as
// populated objects instead of id strings; the delivery is accepted, not
// answered 400.
func TestPopulatedEnvelopeRefs(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true, webhooks: true})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	id := h.sim.Seeded().IDs["member:hotdesk-downtown"]
	body := []byte(`{"event":"6f0000000000000000000001","eventType":"member.paymentdetails.created","data":{"object":{"_id":"6f0000000000000000000002"},` +
		`"member":{"_id":"` + id + `","name":"x"},"company":{"_id":"6f0000000000000000000003"}},"createdAt":"` + h.clock.Now().UTC().Format(time.RFC3339) + `"}`)
	resp := post(t, h, body, app.hooks.Secret(), h.clock.Now())
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("populated data.member answered %d, want 202", resp.StatusCode)
	}
	waitFor(t, 5*time.Second, "event handled", func() bool { return app.syncer.Status().WebhookStats.Ignored > 0 })
}
