package appliance

// The operator console (appliance/console) mounted on the admin listener,
// and the App's side of it: console.Backend and the per-minute counters of
// the dashboard. The operator accounts' routes (deskgate admin
// add|passwd|remove|list) are in appliance/admin (operators.go); the App's
// store side of them is in adminapi.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/console"
	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/guests"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/policy"
	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/appliance/update"
)

// consolePart is the console's state in the App.
type consolePart struct {
	srv  *console.Server
	ring console.Ring
	// index is the member search's haystack, rebuilt on the first search
	// after a member or account changed (stale is set by watchConsole).
	indexMu sync.Mutex
	index   []searchEntry
	stale   atomic.Bool
}

type searchEntry struct {
	id, name, user, hay string
}

// watchConsole marks the search index stale when members or accounts
// change.
func (a *App) watchConsole(ctx context.Context) error {
	feed, cancel := a.store.Subscribe(1)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-feed:
			if !ok {
				return nil
			}
			switch c.Kind {
			case store.KindMember, store.KindAccount, store.KindResync:
				a.console.stale.Store(true)
			}
		}
	}
}

// searchIndex returns the current index, rebuilding it when stale.
func (a *App) searchIndex(ctx context.Context) ([]searchEntry, error) {
	a.console.indexMu.Lock()
	defer a.console.indexMu.Unlock()
	if a.console.index != nil && !a.console.stale.Load() {
		return a.console.index, nil
	}
	a.console.stale.Store(false) // a change from here on marks it again
	var idx []searchEntry
	err := a.store.View(func(tx *store.Tx) error {
		users := map[string]string{}
		if err := tx.ForEachAccount(func(ac model.Account) error {
			users[ac.MemberID] = ac.Username
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEachMember(func(m model.Member) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			u := users[m.ID]
			idx = append(idx, searchEntry{id: m.ID, name: m.Name, user: u, hay: strings.ToLower(m.Name + " " + m.Email + " " + m.ID + " " + u)})
			return nil
		})
	})
	if err != nil {
		a.console.stale.Store(true)
		return nil, fmt.Errorf("member search index: %w", err)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i].name < idx[j].name })
	a.console.index = idx
	return idx, nil
}

// newConsole builds the console; it is served under console.Prefix on the
// admin listener (see adminServer).
func (a *App) newConsole() error {
	srv, err := console.New(console.Options{Backend: consoleBackend{a}, Log: a.log.With("component", "console"), Version: Version})
	if err != nil {
		return err
	}
	a.console.srv = srv
	// The console authenticates with its own sessions; the admin guard
	// still checks Host and Origin.
	a.adminSrv.MountOwnAuth(console.Prefix, srv)
	return nil
}

// consoleStatus is the console's line of deskgate status.
func (a *App) consoleStatus() *admin.ConsoleStatus {
	addr := a.AdminAddr()
	if addr == "" {
		return nil
	}
	fp, self := a.adminSrv.Fingerprint()
	return &admin.ConsoleStatus{URL: "https://" + addr + console.Prefix, Fingerprint: fp, SelfSigned: self}
}

// runConsoleStats samples the counters behind the dashboard's charts once
// a minute (and at start).
func (a *App) runConsoleStats(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		a.sampleConsoleStats()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *App) sampleConsoleStats() {
	var acc, rej uint64
	online := 0
	if a.radius.srv != nil {
		for _, x := range a.radius.srv.Stats().Counters().Responses {
			switch x.Code {
			case "Access-Accept":
				acc += x.Count
			case "Access-Reject":
				rej += x.Count
			}
		}
		online = len(a.radius.srv.Sessions(""))
	}
	hooks := a.syncer.Status().WebhookStats.Applied
	if gn := a.startedGuestNet(); gn != nil {
		online += len(gn.clients(a.now()))
	}
	a.console.ring.Record(a.now(), acc, rej, uint64(max(hooks, 0)), online)
}

// startedGuestNet is the guest allow-list once runGuests has set it up,
// else nil.
func (a *App) startedGuestNet() *guestNet {
	select {
	case <-a.guests.started:
		return a.guests.net
	default:
		return nil
	}
}

// consoleBackend implements console.Backend.
type consoleBackend struct{ a *App }

func (b consoleBackend) Now() time.Time { return b.a.now() }

func (b consoleBackend) Operator(name string) (console.Operator, error) {
	var op store.Operator
	err := b.a.store.View(func(tx *store.Tx) error {
		var err error
		op, err = tx.GetOperator(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return console.Operator{}, console.ErrNoOperator
	}
	if err != nil {
		return console.Operator{}, err
	}
	return console.Operator{Name: op.Name, Role: op.Role, Hash: op.Hash, Changed: op.UpdatedAt}, nil
}

func (b consoleBackend) Audit(actor, action, member, subject, cause string) error {
	return b.a.store.Update(func(tx *store.Tx) error {
		return tx.Audit(model.AuditEntry{Time: b.a.now(), Actor: actor, Action: action, Member: member, Subject: subject, Cause: cause})
	})
}

func (b consoleBackend) Dashboard(ctx context.Context) (console.Dashboard, error) {
	a := b.a
	b.a.sampleConsoleStats()
	now := a.now()
	ss := a.syncer.Status()
	d := console.Dashboard{Version: Version, SyncLast: ss.LastSuccess, SyncLag: ss.Lag(now), SyncError: ss.LastError,
		OfficeRnDUp: ss.Failures == 0 && !ss.LastSuccess.IsZero(), WebhookLast: ss.WebhookStats.LastApplied}
	d.WebhookState = a.hooks.Registration().State
	if d.WebhookState == "" {
		d.WebhookState = "none"
		if a.Config().Sync.WebhookSecret.IsSet() {
			d.WebhookState = "configured"
		}
	}
	d.Outbox, _ = a.store.OutboxLen()
	if gn := a.startedGuestNet(); gn != nil {
		d.GuestsOnline = len(gn.clients(now))
	}
	d.Accepts = a.console.ring.Series(console.SeriesAccepts, now)
	d.Rejects = a.console.ring.Series(console.SeriesRejects, now)
	d.Webhooks = a.console.ring.Series(console.SeriesWebhooks, now)
	d.Online = a.console.ring.Series(console.SeriesOnline, now)
	for _, n := range d.Webhooks {
		d.WebhooksRecent += n
	}
	if a.radius.srv != nil {
		count := map[[2]string]int{}
		sessions := a.radius.srv.Sessions("")
		_ = a.store.View(func(tx *store.Tx) error {
			for _, s := range sessions {
				group := "?"
				if ac, err := tx.AccountOfMember(s.MemberID); err == nil {
					group = ac.Group
				}
				loc := s.Location
				if l, err := tx.GetLocation(s.Location); err == nil {
					loc = l.Name
				}
				count[[2]string{group, loc}]++
			}
			return nil
		})
		for k, n := range count {
			d.Sessions = append(d.Sessions, console.GroupCount{Group: k[0], Location: k[1], N: n})
		}
		sort.Slice(d.Sessions, func(i, j int) bool {
			return d.Sessions[i].Group+d.Sessions[i].Location < d.Sessions[j].Group+d.Sessions[j].Location
		})
	}
	if fs, err := a.fleet.Status(); err == nil {
		for _, p := range fs.Peers {
			state := p.Link
			if p.Lag > 0 {
				state += fmt.Sprintf(", %d behind", p.Lag)
			}
			ver := p.Version
			if ver == "" {
				ver = "—" // a box from before versions were advertised
			}
			d.Peers = append(d.Peers, console.Peer{Box: p.Box, Version: ver, State: state})
		}
	}
	d.Rollout = a.lastRollout()
	d.Self = a.selfUpdate()
	return d, nil
}

// lastRollout is the newest fleet rollout for the dashboard (nil when
// none); it reads the replicated registers only.
func (a *App) lastRollout() *console.Rollout {
	st, err := a.rollout.Status()
	if err != nil {
		a.log.Warn("console: fleet rollout status", "err", err)
		return nil
	}
	if len(st.Rollouts) == 0 {
		return nil
	}
	r := st.Rollouts[0] // newest first
	out := &console.Rollout{ID: r.ID, Version: r.Version, State: r.State, Halted: r.Halted, Created: r.Created}
	for _, b := range r.Boxes {
		p := r.Progress[b]
		out.Boxes = append(out.Boxes, console.RolloutBox{Box: b, Phase: p.Phase, Version: p.Version, Reason: p.Reason, At: p.At})
	}
	return out
}

// selfUpdate is this box's update state for the dashboard: the running
// version and the attempts from the updater's state file (a file read;
// the slot service is not asked). Nil when the box has no update slots.
func (a *App) selfUpdate() *console.SelfUpdate {
	if a.updater == nil {
		return nil
	}
	st, err := a.updater.LoadState()
	if err != nil {
		a.log.Warn("console: update state", "err", err)
	}
	conv := func(at *update.Attempt) *console.UpdateAttempt {
		if at == nil {
			return nil
		}
		return &console.UpdateAttempt{Version: at.Version, From: at.From, To: at.To, Result: at.Result, Reason: at.Reason, Started: at.Started, Finished: at.Finished}
	}
	running := a.updater.RunningVersion
	if running == "" {
		running = Version
	}
	return &console.SelfUpdate{Running: running, Pending: conv(st.Pending), Last: conv(st.Last)}
}

func (b consoleBackend) SearchMembers(ctx context.Context, q string, limit int) ([]console.MemberRow, error) {
	a := b.a
	q = strings.ToLower(strings.TrimSpace(q))
	idx, err := a.searchIndex(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range idx { // sorted by name
		if strings.Contains(e.hay, q) {
			if ids = append(ids, e.id); len(ids) == limit {
				break
			}
		}
	}
	now := a.now()
	var rows []console.MemberRow
	err = a.store.View(func(tx *store.Tx) error {
		for _, id := range ids {
			m, err := tx.GetMember(id)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since the index was built
			}
			if err != nil {
				return err
			}
			in, err := a.res.Input(tx, &m, now)
			if err != nil {
				return err
			}
			d := policy.Decide(a.res.Rules(), in)
			row := console.MemberRow{ID: m.ID, Name: m.Name, Email: m.Email, Allowed: d.Allowed, Deny: d.Deny, Plan: d.PlanName, Group: d.Group}
			if ac, err := tx.AccountOfMember(m.ID); err == nil {
				row.Username = ac.Username
			}
			rows = append(rows, row)
		}
		return nil
	})
	return rows, err
}

func (b consoleBackend) Member(ctx context.Context, id string) (console.MemberPage, error) {
	a := b.a
	ex, err := a.Explain(id, "")
	if errors.Is(err, store.ErrNotFound) || (err == nil && (ex.Member == nil || ex.Member.ID != id)) {
		return console.MemberPage{}, console.ErrNotFound
	}
	if err != nil {
		return console.MemberPage{}, err
	}
	p := console.MemberPage{ID: id, Name: ex.Member.Name, Email: ex.Member.Email, Allowed: ex.Decision.Allowed, Deny: ex.Decision.Deny,
		Reasons: ex.Decision.Reasons, ValidUntil: ex.Decision.ValidUntil}
	if ex.Account != nil {
		p.Username = ex.Account.Username
	}
	err = a.store.View(func(tx *store.Tx) error {
		ms, err := tx.MembershipsOfMember(id)
		if err != nil {
			return err
		}
		for _, m := range ms {
			row := console.Membership{Plan: m.Name, Status: m.CalculatedStatus, Start: string(m.StartDate), End: string(m.EndDate), Location: m.Location}
			if pl, err := tx.GetPlan(m.Plan); err == nil {
				row.Plan = pl.Name
			}
			if l, err := tx.GetLocation(m.Location); err == nil {
				row.Location = l.Name
			}
			if row.Status == "" {
				row.Status = m.Status
			}
			p.Memberships = append(p.Memberships, row)
		}
		devs, err := tx.Devices(id)
		if err != nil {
			return err
		}
		for _, d := range devs {
			p.Devices = append(p.Devices, console.Device{MAC: d.MAC, Name: d.Name})
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("member %s: %w", id, err)
	}
	if a.radius.srv != nil {
		for _, s := range a.radius.srv.Sessions(id) {
			ip := ""
			if s.IP.IsValid() {
				ip = s.IP.String()
			}
			p.Sessions = append(p.Sessions, console.LiveSession{Key: s.Key, NAS: s.NAS, MAC: s.MAC, IP: ip, Username: s.Username, Start: s.Start})
		}
	}
	if a.radius.ca != nil && p.Username != "" {
		for _, c := range a.radius.ca.ListIssued(p.Username) {
			p.Certs = append(p.Certs, console.Cert{Serial: c.Serial, NotAfter: c.NotAfter, Revoked: !c.Revoked.IsZero()})
		}
	}
	p.Audit, err = a.store.AuditOf(id, 50)
	return p, err
}

func (b consoleBackend) Disconnect(ctx context.Context, actor, memberID, key string) error {
	a := b.a
	if a.radius.srv == nil {
		return errors.New("RADIUS is off")
	}
	i := slices.IndexFunc(a.radius.srv.Sessions(memberID), func(s radius.Session) bool { return s.Key == key })
	if i < 0 {
		return &console.FieldError{Field: "session", Msg: "no such live session of this member"}
	}
	s := a.radius.srv.Sessions(memberID)[i]
	if s.MAC == "" {
		return errors.New("the session has no Calling-Station-Id (MAC), so no Disconnect-Request can name it")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.radius.srv.DisconnectMAC(ctx, memberID, s.MAC); err != nil {
		return fmt.Errorf("disconnect %s at %s: %w", s.MAC, s.NAS, err)
	}
	if slices.ContainsFunc(a.radius.srv.Sessions(memberID), func(x radius.Session) bool { return x.Key == key }) {
		return fmt.Errorf("disconnect %s: NAS %s did not acknowledge (or takes no Disconnect-Request)", s.MAC, s.NAS)
	}
	return nil
}

func (b consoleBackend) ResendWelcome(ctx context.Context, actor, memberID string, reset bool) error {
	return b.a.syncer.ResendWelcome(memberID, actor, reset)
}

func (b consoleBackend) RevokeCert(ctx context.Context, actor, memberID, serial string) error {
	a := b.a
	if a.radius.ca == nil {
		return errors.New("EAP is off: no client certificates")
	}
	var user string
	_ = a.store.View(func(tx *store.Tx) error {
		if ac, err := tx.AccountOfMember(memberID); err == nil {
			user = ac.Username
		}
		return nil
	})
	if user == "" || !slices.ContainsFunc(a.radius.ca.ListIssued(user), func(c certs.Issued) bool { return c.Serial == serial }) {
		return &console.FieldError{Field: "serial", Msg: "no certificate with this serial for this member"}
	}
	is, err := a.radius.ca.RevokeSerial(serial)
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	}
	a.audit(actor, "cert.revoked", memberID, is.Identity, "client certificate "+is.Serial+" revoked by "+actor)
	return nil
}

func (b consoleBackend) guestMgr() (*guests.Manager, error) {
	b.a.guests.mu.Lock()
	defer b.a.guests.mu.Unlock()
	if b.a.guests.mgr == nil {
		return nil, errors.New("guest codes are not running yet")
	}
	return b.a.guests.mgr, nil
}

func (b consoleBackend) locations() []console.Location {
	var out []console.Location
	_ = b.a.store.View(func(tx *store.Tx) error {
		return tx.ForEachLocation(func(l model.Location) error {
			out = append(out, console.Location{ID: l.ID, Name: l.Name})
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (b consoleBackend) Guests(ctx context.Context) (console.GuestsPage, error) {
	p := console.GuestsPage{Locations: b.locations()}
	mgr, err := b.guestMgr()
	if err != nil {
		return p, nil // no codes yet: the page says none
	}
	codes, err := mgr.Codes(ctx)
	if err != nil {
		return p, err
	}
	names := map[string]string{}
	for _, l := range p.Locations {
		names[l.ID] = l.Name
	}
	for _, c := range codes {
		p.Codes = append(p.Codes, console.Code{Hint: c.Hint, Kind: c.Kind, Name: c.Name, Location: cmpOr(names[c.LocationID], c.LocationID),
			From: c.From, Until: c.Until, Sessions: c.Sessions, AdHoc: c.AdHoc, Expired: c.Expired, Booking: shortID(c.BookingID)})
	}
	return p, nil
}

func (b consoleBackend) CreateCode(ctx context.Context, actor string, req console.CodeRequest) (console.NewCode, error) {
	mgr, err := b.guestMgr()
	if err != nil {
		return console.NewCode{}, err
	}
	code, info, err := mgr.CreateAdHoc(ctx, guests.AdHoc{Name: req.Name, Email: req.Email, LocationID: req.Location,
		Duration: req.Duration, Devices: req.Devices, Actor: actor})
	var ae *guests.AdHocError
	if errors.As(err, &ae) {
		return console.NewCode{}, &console.FieldError{Field: ae.Field, Msg: ae.Msg}
	}
	if err != nil {
		return console.NewCode{}, err
	}
	loc := req.Location
	for _, l := range b.locations() {
		if l.ID == req.Location {
			loc = l.Name
		}
	}
	return console.NewCode{Code: code, Hint: info.Hint, Location: loc, Name: req.Name, Email: req.Email, Until: info.Until, Devices: req.Devices}, nil
}

func (b consoleBackend) RevokeCode(ctx context.Context, actor, hint string) error {
	mgr, err := b.guestMgr()
	if err != nil {
		return err
	}
	return mgr.RevokeCode(ctx, hint, actor)
}

func (b consoleBackend) Network(ctx context.Context) (console.NetworkPage, error) {
	a := b.a
	cfg := a.Config()
	p := console.NetworkPage{Portal: cfg.Portal.Enabled, Location: b.locations()}
	var reports map[string]int
	if a.radius.srv != nil {
		reports = map[string]int{}
		for _, r := range a.radius.srv.NASWithoutMessageAuthenticator() {
			reports[r.Name] = int(r.Count)
		}
	}
	for _, n := range cfg.RADIUS.Clients {
		row := console.NAS{Name: n.Name, Address: n.Address, Location: n.Location, CoA: cmpOr(n.CoA, "disconnect"), OK: true}
		if _, ok := a.res.LocationID(n.Location); !ok {
			row.OK, row.Detail = false, "location "+n.Location+" matches no OfficeRnD location"
		}
		if c := reports[n.Name]; c > 0 {
			row.OK, row.MissingMsgAuth = false, c
			row.Detail = fmt.Sprintf("%d Access-Requests without Message-Authenticator", c)
		}
		p.NAS = append(p.NAS, row)
	}
	if gn := a.startedGuestNet(); gn != nil {
		for _, c := range gn.clients(a.now()) {
			row := console.GuestClient{MAC: c.MAC.String(), Until: c.Until}
			if c.IP4.IsValid() {
				row.IP = c.IP4.String()
			}
			p.Clients = append(p.Clients, row)
		}
	}
	for _, g := range cfg.Groups {
		p.Shaping = append(p.Shaping, console.Shaping{Group: g.Name, Down: cmpOr(g.BandwidthDown, "unlimited"), Up: cmpOr(g.BandwidthUp, "unlimited")})
	}
	return p, nil
}

func (b consoleBackend) PortalPreview(ctx context.Context, location, lang string) ([]byte, error) {
	b.a.guests.mu.Lock()
	srv := b.a.guests.portal
	b.a.guests.mu.Unlock()
	if srv == nil {
		return nil, errors.New("the captive portal is not running")
	}
	page, err := srv.Preview(location, lang)
	if err != nil {
		return nil, err
	}
	// The page's links are root-relative: resolve them against the
	// portal's own address, so the preview shows its styles.
	if pub := strings.TrimSuffix(b.a.Config().Portal.PublicURL, "/"); pub != "" {
		page = bytes.Replace(page, []byte("<head>"), []byte(`<head><base href="`+html.EscapeString(pub)+`/">`), 1)
	}
	return page, nil
}

func (b consoleBackend) AuditTrail(ctx context.Context, f console.AuditFilter) ([]model.AuditEntry, error) {
	a := b.a
	var all []model.AuditEntry
	var err error
	if f.Member != "" {
		var id string
		err = a.store.View(func(tx *store.Tx) error { var e error; id, e = access.FindMember(tx, f.Member); return e })
		if errors.Is(err, store.ErrNotFound) {
			return nil, console.ErrNotFound
		}
		if err == nil {
			all, err = a.store.AuditOf(id, 0)
		}
	} else {
		all, err = a.store.AuditLog(0, 0)
	}
	if err != nil {
		return nil, err
	}
	var out []model.AuditEntry
	for i := len(all) - 1; i >= 0 && (f.Limit <= 0 || len(out) < f.Limit); i-- {
		e := all[i]
		if (f.Kind != "" && !strings.HasPrefix(e.Action, f.Kind)) || (!f.From.IsZero() && e.Time.Before(f.From)) || (!f.To.IsZero() && !e.Time.Before(f.To)) {
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(x, y model.AuditEntry) int { return y.Time.Compare(x.Time) })
	return out, nil
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}
