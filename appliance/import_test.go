package appliance

import (
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// want is what the seed plan table says a seeded member gets.
type want struct {
	allowed  bool
	group    string
	deny     string
	network  string
	staticIP bool
	account  bool // an enabled WiFi account exists
}

// seedExpectations maps each seeded role to its expected decision, from the
// seed plan table: Hot Desk → standard, Dedicated Desk → premium, Private
// Office → premium + static IP, Virtual Office → no WiFi, Day Pass →
// daypass; under roaming "single" the membership's location's network.
var seedExpectations = map[string]want{
	"hotdesk-downtown":      {allowed: true, group: "standard", network: "downtown-secure", account: true},
	"hotdesk-downtown-2":    {allowed: true, group: "standard", network: "downtown-secure", account: true},
	"hotdesk-uptown":        {allowed: true, group: "standard", network: "uptown-secure", account: true},
	"hotdesk-uptown-2":      {allowed: true, group: "standard", network: "uptown-secure", account: true},
	"desk-downtown":         {allowed: true, group: "premium", network: "downtown-secure", account: true},
	"desk-uptown":           {allowed: true, group: "premium", network: "uptown-secure", account: true},
	"desk-uptown-2":         {allowed: true, group: "premium", network: "uptown-secure", account: true},
	"two-memberships":       {allowed: true, group: "premium", network: "downtown-secure", account: true}, // Dedicated Desk beats Hot Desk
	"fixed-term":            {allowed: true, group: "premium", network: "downtown-secure", account: true},
	"starts-today":          {allowed: true, group: "standard", network: "uptown-secure", account: true},
	"acme-1":                {allowed: true, group: "premium", network: "downtown-secure", staticIP: true, account: true},
	"acme-2":                {allowed: true, group: "premium", network: "downtown-secure", staticIP: true, account: true},
	"acme-3":                {allowed: true, group: "premium", network: "downtown-secure", staticIP: true, account: true},
	"initech-1":             {allowed: true, group: "premium", network: "uptown-secure", account: true},
	"initech-2":             {allowed: true, group: "standard", network: "uptown-secure", account: true},
	"daypass-valid":         {allowed: true, group: "daypass", network: "downtown-secure", account: true},
	"virtual-office":        {deny: model.DenyPlanNoWiFi},
	"virtual-office-uptown": {deny: model.DenyPlanNoWiFi},
	"expired":               {deny: model.DenyEnded},
	"former":                {deny: model.DenyEnded},
	"not-started":           {deny: model.DenyNotStarted},
	"not-approved":          {deny: model.DenyNotApproved},
	"daypass-used":          {deny: model.DenyPassExpired},
	"lead":                  {deny: model.DenyMemberInactive},
}

func TestImportSeededSpace(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	app := h.start()
	h.waitImport(30 * time.Second)

	seed := h.sim.Seeded()
	if len(seed.Members) < 20 {
		t.Fatalf("seed has %d members, want ≥ 20", len(seed.Members))
	}
	for _, sm := range seed.Members {
		w, ok := seedExpectations[sm.Role]
		if !ok {
			t.Errorf("seeded role %q (%s) has no expectation in this test", sm.Role, sm.Name)
			continue
		}
		ex, err := app.Explain(sm.Email, "")
		if err != nil {
			t.Errorf("%s (%s): explain: %v", sm.Role, sm.Email, err)
			continue
		}
		d := ex.Decision
		if d.Allowed != w.allowed || d.Group != w.group || d.Deny != w.deny || d.StaticIP != w.staticIP {
			t.Errorf("%s (%s): allowed=%v group=%q deny=%q static=%v, want allowed=%v group=%q deny=%q static=%v\nreasons: %v",
				sm.Role, sm.Name, d.Allowed, d.Group, d.Deny, d.StaticIP, w.allowed, w.group, w.deny, w.staticIP, d.Reasons)
			continue
		}
		if w.allowed {
			if len(d.Locations) != 1 || d.Locations[0].Network != w.network {
				t.Errorf("%s: locations %+v, want only %s under roaming single", sm.Role, d.Locations, w.network)
			}
		}
		hasAcct := ex.Account != nil && !ex.Account.Disabled && ex.Account.PasswordSet
		if hasAcct != w.account {
			t.Errorf("%s: enabled account with password = %v, want %v (%+v)", sm.Role, hasAcct, w.account, ex.Account)
		}
		if w.account && ex.Account.Username != sm.Email {
			t.Errorf("%s: username %q, want the email %q", sm.Role, ex.Account.Username, sm.Email)
		}
	}
	if err := app.Store().Check(); err != nil {
		t.Fatalf("store inconsistent after import: %v", err)
	}
	// Every account got exactly one welcome email in the outbox or sent.
	var accounts int
	_ = app.Store().View(func(tx *store.Tx) error {
		return tx.ForEachAccount(func(model.Account) error { accounts++; return nil })
	})
	var wantAccounts int
	for _, w := range seedExpectations {
		if w.account {
			wantAccounts++
		}
	}
	if accounts != wantAccounts {
		t.Errorf("%d accounts, want %d", accounts, wantAccounts)
	}
}
