package guests

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/internal/testepoch"
)

// TestAdHocCode: an operator's code works at its location for its
// devices and duration, survives Reconcile (no booking asks for it), is
// emailed when an address is given, and revoking it ends its sessions.
func TestAdHocCode(t *testing.T) {
	e := newEnv(t, testepoch.Epoch(), Config{})
	e.put(func(tx *store.Tx) error { return tx.PutLocation(model.Location{ID: "loc1", Name: "Space loc1"}) })
	ctx := context.Background()
	code, info, err := e.m.CreateAdHoc(ctx, AdHoc{Name: "Walk In", Email: "walk.in@visitor.test", LocationID: "loc1", Duration: 2 * time.Hour, Devices: 1, Actor: "console:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !codeRE.MatchString(code) || !info.AdHoc || !info.Until.Equal(e.clk.Now().Add(2*time.Hour)) {
		t.Fatalf("code %q info %+v", code, info)
	}
	e.reconcile()
	if cs := e.codes(); len(cs) != 1 || cs[0].Hint != info.Hint {
		t.Fatalf("after reconcile: %+v", cs)
	}
	if mails := e.outbox(); len(mails) != 1 || mails[0].To != "walk.in@visitor.test" || mails[0].Secret["code"] != code {
		t.Fatalf("outbox %+v", mails)
	}
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.LoginCode(ctx, code, client(2), "loc1"); !errors.Is(err, ErrDeviceLimit) {
		t.Fatalf("second device: %v, want the limit of 1", err)
	}
	if a := e.audit("guest.code_created"); len(a) != 1 || !strings.Contains(a[0].Cause, "console:alice") {
		t.Fatalf("audit %+v", a)
	}
	if err := e.m.RevokeCode(ctx, "zzzzzzzz", "console:alice"); !errors.Is(err, ErrNoSuchCode) {
		t.Fatalf("bad hint: %v", err)
	}
	if err := e.m.RevokeCode(ctx, info.Hint, "console:alice"); err != nil {
		t.Fatal(err)
	}
	if r := e.net.Revokes(); len(r) != 1 || r[0] != mac(1) {
		t.Fatalf("revokes %v", r)
	}
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("revoked code: %v", err)
	}
}

// TestAdHocBadInput: each bad field is named and nothing is created.
func TestAdHocBadInput(t *testing.T) {
	e := newEnv(t, testepoch.Epoch(), Config{})
	e.put(func(tx *store.Tx) error { return tx.PutLocation(model.Location{ID: "loc1"}) })
	good := AdHoc{LocationID: "loc1", Duration: time.Hour, Devices: 2}
	for field, mod := range map[string]func(*AdHoc){
		"location": func(a *AdHoc) { a.LocationID = "nowhere" },
		"duration": func(a *AdHoc) { a.Duration = time.Minute },
		"devices":  func(a *AdHoc) { a.Devices = 0 },
		"email":    func(a *AdHoc) { a.Email = "not an address" },
		"name":     func(a *AdHoc) { a.Name = "two\nlines" },
	} {
		a := good
		mod(&a)
		_, _, err := e.m.CreateAdHoc(context.Background(), a)
		var ae *AdHocError
		if !errors.As(err, &ae) || ae.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	if cs := e.codes(); len(cs) != 0 {
		t.Fatalf("bad input created %+v", cs)
	}
}
