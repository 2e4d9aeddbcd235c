package appliance

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/devices"
	"github.com/deskgate/deskgate/appliance/eap"
	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
)

// radiusPart is the RADIUS server and what feeds it.
type radiusPart struct {
	srv *radius.Server
	dir *radius.CachingDirectory
	eap *eap.Server
	ca  *certs.Authority
	// pool holds static-IP assignments (the gateway's static leases).
	pool *radius.StorePool
}

// directory answers the RADIUS server's lookups from the store and policy.
type directory struct{ a *App }

func (d directory) Lookup(ctx context.Context, username string) (radius.Subject, error) {
	var subj radius.Subject
	now := d.a.now()
	err := d.a.store.View(func(tx *store.Tx) error {
		acct, err := tx.GetAccount(username)
		if errors.Is(err, store.ErrNotFound) {
			return radius.ErrUnknownUser
		}
		if err != nil {
			return err
		}
		_, dec, holds, err := d.a.res.DecideMemberAtUntil(tx, acct.MemberID, radius.LocationFromContext(ctx), now)
		if errors.Is(err, store.ErrNotFound) {
			return radius.ErrUnknownUser
		}
		if err != nil {
			return err
		}
		// The decision is computed now and is authoritative: an account
		// disabled by an earlier decision (say, before a membership
		// started at midnight) does not keep an allowed member out while
		// the schedule catches up, and the reverse holds too.
		if acct.Disabled && dec.Allowed && isPolicyReason(acct.DisabledReason) {
			acct.Disabled, acct.DisabledReason = false, ""
		}
		subj = radius.Subject{Account: acct, Decision: dec, Holds: holds}
		if holds.IsZero() {
			subj.Holds = now.Add(decisionCacheCap) // no time boundary: the cap
		}
		return nil
	})
	return subj, err
}

// decisionCacheCap is the longest the RADIUS directory keeps a decision:
// a safety cap only. A decision is kept until policy says it could change
// by itself (policy.DecideAtUntil) and dropped at once on any store change
// (the store's change count, checked on every hit) and on a reload.
const decisionCacheCap = 10 * time.Minute

// MemberOf implements radius.MemberFinder: the account's member, one
// read and no policy evaluation (accounting needs no decision).
func (d directory) MemberOf(ctx context.Context, username string) (string, error) {
	var member string
	err := d.a.store.View(func(tx *store.Tx) error {
		acct, err := tx.GetAccount(username)
		if errors.Is(err, store.ErrNotFound) {
			return radius.ErrUnknownUser
		}
		member = acct.MemberID
		return err
	})
	return member, err
}

func isPolicyReason(r string) bool {
	switch r {
	case model.DenyMemberInactive, model.DenyNoMembership, model.DenyNotStarted, model.DenyEnded, model.DenyNotApproved,
		model.DenyUnpaid, model.DenyUnmappedPlan, model.DenyPlanNoWiFi, model.DenyWrongLocation, model.DenyPassExpired, model.DenyUnknownUser:
		return true
	}
	return false
}

// radiusConfig translates the config's RADIUS section, resolving NAS and
// pool locations to OfficeRnD ids (known once locations are imported).
func (a *App) radiusConfig(cfg *config.Config) radius.Config {
	rc := radius.Config{
		AuthAddrs:       cfg.RADIUS.AuthListen,
		AcctAddrs:       cfg.RADIUS.AcctListen,
		InterimInterval: cfg.RADIUS.InterimInterval,
		DedupWindow:     cfg.RADIUS.DedupWindow,
		StaticPools:     map[string]netip.Prefix{},
		Clients:         a.radiusClients(cfg),
		PPSKUnknown:     cfg.RADIUS.PPSK.Unknown,
		PPSKGuestVLAN:   cfg.RADIUS.PPSK.GuestVLAN,
	}
	if rc.PPSKGuestVLAN == 0 {
		rc.PPSKGuestVLAN = cfg.Gateway.Guest.VLAN
	}
	for _, l := range cfg.Locations {
		if l.StaticPool == "" {
			continue
		}
		id, ok := a.res.LocationID(l.Location)
		if !ok {
			continue
		}
		if p, err := netip.ParsePrefix(l.StaticPool); err == nil {
			rc.StaticPools[id] = p
		}
	}
	return rc
}

func (a *App) radiusClients(cfg *config.Config) []radius.Client {
	var out []radius.Client
	for _, n := range cfg.RADIUS.Clients {
		pfx, err := radius.ClientPrefix(n.Address)
		if err != nil {
			continue // validation already rejected it
		}
		loc, ok := a.res.LocationID(n.Location)
		if !ok {
			loc = "unresolved:" + n.Location // no member is allowed there until it resolves
		}
		out = append(out, radius.Client{
			Name: n.Name, Prefix: pfx, Secret: []byte(n.Secret.Reveal()), LocationID: loc,
			Identifier: n.Identifier, Vendor: n.Vendor, Legacy: n.Legacy, CoA: n.CoA, CoAPort: n.CoAPort,
		})
	}
	return out
}

func (a *App) newRadius() error {
	cfg := a.Config()
	if len(cfg.RADIUS.Clients) == 0 {
		return nil // no NAS configured: nothing could talk to a RADIUS server
	}
	_ = a.store.View(func(tx *store.Tx) error { return a.res.Rebuild(tx) })
	a.radius.dir = radius.NewCachingDirectory(directory{a}, decisionCacheCap, a.now)
	a.radius.dir.SetVersion(a.store.ChangeSeq)
	pool, err := radius.NewStorePool(a.store)
	if err != nil {
		return fmt.Errorf("radius: static IP pool: %w", err)
	}
	a.radius.pool = pool
	if err := a.loadLeases(); err != nil {
		return fmt.Errorf("radius: %w", err)
	}
	rc := a.radiusConfig(cfg)
	if a.radius.eap, a.radius.ca, err = a.newEAP(); err != nil {
		return err
	}
	if a.radius.eap != nil {
		rc.EAP = a.radius.eap
	}
	rc.RemoteDevices = a.fleet.RemoteDevices // device limits count the fleet's other boxes
	sessions := radius.NewStoreSessions(a.store)
	// Counters-only Interim-Updates more often than every half interval
	// (NAS that ignore Acct-Interim-Interval) share the next write.
	iv := rc.InterimInterval
	if iv <= 0 {
		iv = 5 * time.Minute // radius.New's default
	}
	sessions.SetInterimCadence(iv / 2)
	srv, err := radius.New(rc, a.radius.dir, fleetSessions{leaseLearner{sessions, a}, a}, pool,
		radius.NewStoreAuditor(a.store), a.log, a.now)
	if err != nil {
		return fmt.Errorf("radius: %w", err)
	}
	a.radius.srv = srv
	if err := a.reg.Register(radiusCollector{srv}); err != nil {
		return fmt.Errorf("radius: register metrics: %w", err)
	}
	return nil
}

// radiusCollector exports the RADIUS server's packet counters, read from
// its atomics at scrape time.
type radiusCollector struct{ srv *radius.Server }

var (
	descRadiusRequests = prometheus.NewDesc("deskgate_radius_requests_total",
		"Well-formed RADIUS requests received, by port (auth, acct) and code. Malformed datagrams are under deskgate_radius_dropped_total{reason=\"malformed\"}.",
		[]string{"port", "code"}, nil)
	descRadiusResponses = prometheus.NewDesc("deskgate_radius_responses_total",
		"RADIUS replies sent, by code (retransmissions answered from the duplicate cache included).", []string{"code"}, nil)
	descRadiusDropped = prometheus.NewDesc("deskgate_radius_dropped_total",
		"RADIUS datagrams dropped without an answer, by reason.", []string{"reason"}, nil)
	descRadiusDuplicates = prometheus.NewDesc("deskgate_radius_duplicates_total",
		"RADIUS retransmissions answered from, or waiting on, the duplicate cache.", nil, nil)
)

func (radiusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRadiusRequests
	ch <- descRadiusResponses
	ch <- descRadiusDropped
	ch <- descRadiusDuplicates
}

func (c radiusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats().Counters()
	for _, x := range st.Requests {
		ch <- prometheus.MustNewConstMetric(descRadiusRequests, prometheus.CounterValue, float64(x.Count), x.Port, x.Code)
	}
	for _, x := range st.Responses {
		ch <- prometheus.MustNewConstMetric(descRadiusResponses, prometheus.CounterValue, float64(x.Count), x.Code)
	}
	for _, r := range radius.DropReasons() {
		ch <- prometheus.MustNewConstMetric(descRadiusDropped, prometheus.CounterValue, float64(st.Drops[r.String()]), r.String())
	}
	ch <- prometheus.MustNewConstMetric(descRadiusDuplicates, prometheus.CounterValue, float64(st.Duplicates))
}

func (a *App) runRadius(ctx context.Context) error {
	if a.radius.srv == nil {
		<-ctx.Done()
		return nil
	}
	return a.radius.srv.ListenAndServe(ctx)
}

// refreshRadiusClients re-resolves NAS locations (after an import or a
// location change) and applies new NAS entries (after a reload).
func (a *App) refreshRadiusClients(cfg *config.Config) {
	if a.radius.srv == nil {
		return
	}
	if err := a.radius.srv.SetClients(a.radiusClients(cfg)); err != nil {
		a.log.Error("radius: apply NAS clients", "err", err)
	}
	if a.radius.dir != nil {
		a.radius.dir.InvalidateAll()
	}
}

func (a *App) reloadRadius(cfg *config.Config) {
	if a.radius.srv == nil && len(cfg.RADIUS.Clients) > 0 {
		a.log.Warn("RADIUS clients added to a daemon started without any: restart deskgated to start the RADIUS server")
		return
	}
	a.refreshRadiusClients(cfg)
}

// watchChanges turns store changes into RADIUS actions: cached lookups are
// dropped, NAS locations re-resolved, and members whose access changed are
// re-authorized (Disconnect or CoA of their live sessions).
func (a *App) watchChanges(ctx context.Context) error {
	ch, cancel := a.store.Subscribe(4096)
	defer cancel()
	pending := map[string]time.Time{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	flush := func() {
		for m, at := range pending {
			if a.radius.srv != nil && a.accessChanged(ctx, m) {
				if err := a.radius.srv.Reauthorize(radius.WithChangeTime(ctx, at), m); err != nil {
					a.log.Warn("re-authorize member's sessions", "member", m, "err", err)
				}
			}
			delete(pending, m)
		}
	}
	a.refreshRadiusClients(a.Config())
	passes := time.NewTicker(15 * time.Second)
	defer passes.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-passes.C:
			a.activateDayPasses(ctx)
		case c, ok := <-ch:
			if !ok {
				return nil
			}
			if a.radius.dir != nil {
				a.radius.dir.InvalidateAll()
			}
			switch c.Kind {
			case store.KindLocation, store.KindResync:
				a.refreshRadiusClients(a.Config())
			case store.KindAccount:
				a.revokeIfEnded(c)
			}
			if c.Member != "" {
				if _, ok := pending[c.Member]; !ok {
					pending[c.Member] = time.Now() // a latency measurement on the monotonic clock (read with time.Since), not a decision
				}
				// Coalesce the burst one transaction publishes (membership,
				// account, audit) into one re-authorization.
				timer.Reset(20 * time.Millisecond)
			}
		case <-timer.C:
			flush()
		}
	}
}

func (a *App) radiusStatus() *admin.RADIUSStatus {
	if a.radius.srv == nil {
		return nil
	}
	auth, acct := a.radius.srv.Addrs()
	st := &admin.RADIUSStatus{NAS: len(a.Config().RADIUS.Clients), LiveSessions: len(a.radius.srv.Sessions(""))}
	c := a.radius.srv.Stats().Counters()
	for _, x := range c.Requests {
		st.Requests = append(st.Requests, admin.RADIUSCount(x))
	}
	for _, x := range c.Responses {
		st.Responses = append(st.Responses, admin.RADIUSCount(x))
	}
	st.Drops, st.Duplicates = c.Drops, c.Duplicates
	for _, x := range auth {
		st.AuthAddrs = append(st.AuthAddrs, x.String())
	}
	for _, x := range acct {
		st.AcctAddrs = append(st.AcctAddrs, x.String())
	}
	return st
}

func (a *App) radiusChecks() []admin.Check {
	cfg := a.Config()
	if len(cfg.RADIUS.Clients) == 0 {
		return []admin.Check{{Name: "radius", OK: true, Warn: true, Detail: "no NAS configured under radius.clients: the RADIUS server is off",
			Fix: "add your access points or controller under radius.clients"}}
	}
	var out []admin.Check
	auth, _ := a.radius.srv.Addrs()
	if len(auth) == 0 {
		out = append(out, admin.Check{Name: "radius", Detail: "not listening", Fix: "check radius.auth_listen and the log for bind errors"})
	} else {
		out = append(out, admin.Check{Name: "radius", OK: true, Detail: fmt.Sprintf("listening on %v for %d NAS", auth, len(cfg.RADIUS.Clients))})
	}
	for _, n := range cfg.RADIUS.Clients {
		if _, ok := a.res.LocationID(n.Location); !ok {
			out = append(out, admin.Check{Name: "radius nas " + n.Name, Detail: "location " + n.Location + " matches no OfficeRnD location",
				Fix: "use the location's name or id as in OfficeRnD"})
		}
	}
	for _, r := range a.radius.srv.NASWithoutMessageAuthenticator() {
		c := admin.Check{Name: "radius nas " + r.Name, Detail: fmt.Sprintf("%d Access-Requests without Message-Authenticator (%d dropped), last from %s",
			r.Count, r.Dropped, r.LastSource), Fix: "update the NAS firmware to send Message-Authenticator (BlastRADIUS, CVE-2024-3596); mark it legacy: true only as a stopgap"}
		c.OK, c.Warn = r.Legacy, r.Legacy
		out = append(out, c)
	}
	return out
}

// radiusReply renders the reply a NAS would get for the explained member.
func (a *App) radiusReply(query, nas string, ex admin.Explanation) (string, []string) {
	if a.radius.srv == nil || ex.Account == nil {
		return "", nil
	}
	if nas == "" && ex.Member != nil && len(ex.Decision.Locations) > 0 {
		// The first NAS at the member's location.
		for _, n := range a.Config().RADIUS.Clients {
			if id, ok := a.res.LocationID(n.Location); ok && id == ex.Decision.Locations[0].LocationID {
				nas = n.Name
				break
			}
		}
	}
	res, err := a.radius.srv.Explain(context.Background(), ex.Account.Username, nas)
	if err != nil {
		return nas, []string{"(" + err.Error() + ")"}
	}
	lines := []string{res.Code, "Message-Authenticator = <computed per reply>"}
	for _, at := range res.Attributes {
		lines = append(lines, at.Name+" = "+at.Value)
	}
	for _, n := range res.Notes {
		lines = append(lines, "note: "+n)
	}
	return res.NAS, lines
}

// accessChanged reports whether member m's live sessions were authorized
// under a decision that no longer holds: access ended, or the membership,
// plan or location behind it changed. A change that leaves the decision
// as it was (a new phone number) does not disconnect anyone.
func (a *App) accessChanged(ctx context.Context, m string) bool {
	sessions := a.radius.srv.Sessions(m)
	if len(sessions) == 0 {
		return false
	}
	changed := false
	err := a.store.View(func(tx *store.Tx) error {
		acct, err := tx.AccountOfMember(m)
		if err != nil || acct.Disabled {
			changed = true
			return nil
		}
		for _, s := range sessions {
			f := strings.Split(s.Class, ";")
			if len(f) < 5 || f[0] != "dg1" || (s.Username != acct.Username && !devices.IsDeviceOf(tx, s.Username, m)) {
				changed = true // not issued by this decision scheme: re-check
				return nil
			}
			// The decision at the session's location, as RADIUS takes it.
			_, dec, err := a.res.DecideMemberAt(tx, m, f[4], a.now())
			if err != nil {
				return err
			}
			if _, ok := dec.At(f[4]); !dec.Allowed || !ok || f[2] != dec.MembershipID || f[3] != dec.PlanID {
				changed = true
				return nil
			}
		}
		return nil
	})
	return err != nil || changed
}

// activateDayPasses starts the 24 hours of day passes whose holder is
// online: a live accounting session is the first login. It runs every 15
// seconds over every live session: a read transaction finds the passes to
// start, and only when there are some does one write transaction (one
// commit, one fsync) start them all.
func (a *App) activateDayPasses(ctx context.Context) {
	if a.radius.srv == nil {
		return
	}
	first := map[string]time.Time{}
	for _, s := range a.radius.srv.Sessions("") {
		if t, ok := first[s.MemberID]; s.MemberID != "" && (!ok || s.Start.Before(t)) {
			first[s.MemberID] = s.Start
		}
	}
	a.fleetPassStarts() // first used at another box: that start holds here too
	if len(first) == 0 {
		return
	}
	// A pass is startable by a login before its first use, also when one
	// is known already: a later login at another box may have reached the
	// fleet before this box's tick, and the earliest login wins.
	startable := func(p model.Pass, at time.Time) bool {
		return (p.FirstUse.IsZero() || at.Before(p.FirstUse)) && (p.Status == "valid" || p.Status == "") && p.Count > p.UsedCount
	}
	// Most ticks start nothing: find the members with a startable pass in
	// one read transaction before taking the write lock.
	var due []string
	err := a.store.View(func(tx *store.Tx) error {
		for m := range first {
			ps, err := tx.PassesOfMember(m)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(ps, func(p model.Pass) bool { return startable(p, first[m]) }) {
				due = append(due, m)
			}
		}
		return nil
	})
	if err != nil {
		a.log.Warn("activate day passes: read passes", "err", err)
		return
	}
	if len(due) == 0 {
		return
	}
	err = a.store.Update(func(tx *store.Tx) error {
		for _, m := range due {
			t := first[m]
			ps, err := tx.PassesOfMember(m)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if !startable(p, t) {
					continue
				}
				p.FirstUse = t
				// The fleet hears of it (the earliest first use wins).
				if err := a.fleet.RecordDayPassStart(tx, passKey(p.ID), t); err != nil {
					return err
				}
				if err := tx.PutPass(p); err != nil {
					return err
				}
				if err := tx.Audit(model.AuditEntry{Time: a.now(), Actor: "radius", Action: "daypass.activated", Member: m,
					Cause: "day pass " + p.ID + " started by first WiFi login at " + t.Format(time.RFC3339)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		a.log.Warn("activate day passes", "members", len(due), "err", err)
		return
	}
	a.fleet.Nudge()
}

// revokeIfEnded revokes the client certificates of an account that was
// deleted or disabled.
func (a *App) revokeIfEnded(c store.Change) {
	if c.Deleted {
		a.revokeCerts(c.ID)
		return
	}
	var acct model.Account
	if err := a.store.View(func(tx *store.Tx) error { var err error; acct, err = tx.GetAccount(c.ID); return err }); err == nil && acct.Disabled {
		a.revokeCerts(acct.Username)
	}
}

// revokeCerts revokes the EAP-TLS certificates of an account whose access
// ended (disabled or deleted).
func (a *App) revokeCerts(username string) {
	if a.radius.ca == nil || username == "" {
		return
	}
	n, err := a.radius.ca.RevokeIdentity(username)
	if err != nil {
		a.log.Error("revoke client certificates", "user", username, "err", err)
		return
	}
	if n > 0 {
		a.audit("radius", "cert.revoked", "", username, fmt.Sprintf("%d client certificate(s) revoked: access ended", n))
	}
}

func (a *App) audit(actor, action, member, subject, cause string) {
	err := a.store.Update(func(tx *store.Tx) error {
		return tx.Audit(model.AuditEntry{Time: a.now(), Actor: actor, Action: action, Member: member, Subject: subject, Cause: cause})
	})
	if err != nil {
		a.log.Error("audit", "action", action, "err", err)
	}
}
