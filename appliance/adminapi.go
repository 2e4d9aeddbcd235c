package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/devices"
	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/policy"
	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/netcfg"
)

// adminAPI is the App as the admin API's Backend (appliance/admin serves
// it): it fills the API's shapes from the parts and says which failures
// answer with which status.
type adminAPI struct{ a *App }

var _ admin.Backend = adminAPI{}

func (b adminAPI) Status() (admin.Status, error) {
	a := b.a
	now := a.now()
	ss := a.syncer.Status()
	st := admin.Status{Version: Version, Started: a.started, Now: now, Ready: a.Ready(), Groups: map[string]int{}}
	st.Sync = admin.SyncStatus{
		LastSuccess: ss.LastSuccess, LastAttempt: ss.LastAttempt, LagSeconds: ss.Lag(now).Seconds(),
		Failures: ss.Failures, LastError: ss.LastError, ImportDone: ss.ImportDone,
		APICalls: a.api.Stats().Requests, RateWaits: a.api.Stats().RateLimitWaits,
	}
	if ss.LastRun != nil {
		st.Sync.LastRun, _ = json.Marshal(ss.LastRun)
	}
	err := a.store.View(func(tx *store.Tx) error {
		c, err := tx.Counts()
		if err != nil {
			return err
		}
		st.Counts = c
		return tx.ForEachAccount(func(ac model.Account) error {
			if ac.Disabled {
				st.Disabled++
			} else {
				st.Groups[ac.Group]++
			}
			return nil
		})
	})
	if err != nil {
		return st, err
	}
	st.Outbox, _ = a.store.OutboxLen()
	reg := a.hooks.Registration()
	st.Webhook = admin.Webhook{Registration: reg.State, URL: reg.URL, Detail: reg.Detail, SecretSet: a.hooks.Secret() != "",
		AutoRegister: a.hooks.AutoActive(), ReadOnlyScopes: a.api.ScopesReduced()}
	if st.Webhook.Registration == "" {
		st.Webhook.Registration = "none"
		if a.Config().Sync.WebhookSecret.IsSet() {
			st.Webhook.Registration = "configured"
		}
	}
	st.Webhook.Stats, _ = json.Marshal(ss.WebhookStats)
	for _, p := range a.res.UnmappedPlans() {
		st.Unmapped = append(st.Unmapped, p.Name)
	}
	st.Unresolved = a.res.Unresolved()
	st.RADIUS = a.radiusStatus()
	st.Console = a.consoleStatus()
	return st, nil
}

func (b adminAPI) Members(q string, limit int) ([]admin.MemberRow, error) {
	a := b.a
	q = strings.ToLower(strings.TrimSpace(q))
	now := a.now()
	var rows []admin.MemberRow
	err := a.store.View(func(tx *store.Tx) error {
		return tx.ForEachMember(func(m model.Member) error {
			if q != "" && !strings.Contains(strings.ToLower(m.Name+" "+m.Email+" "+m.ID), q) {
				return nil
			}
			in, err := a.res.Input(tx, &m, now)
			if err != nil {
				return err
			}
			d := policy.Decide(a.res.Rules(), in)
			row := admin.MemberRow{ID: m.ID, Name: m.Name, Email: m.Email, Allowed: d.Allowed, Group: d.Group, Plan: d.PlanName, Deny: d.Deny}
			if ac, err := tx.AccountOfMember(m.ID); err == nil {
				row.Username, row.Disabled = ac.Username, ac.Disabled
			}
			rows = append(rows, row)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	if len(rows) > limit {
		rows = rows[:limit]
	}
	return rows, nil
}

func (b adminAPI) Explain(query, nas string) (admin.Explanation, error) {
	ex, err := b.a.Explain(query, nas)
	if errors.Is(err, store.ErrNotFound) {
		return ex, &admin.Error{Code: http.StatusNotFound, Err: errors.New("no member, account or email matches " + strconv.Quote(query))}
	}
	return ex, err
}

func (b adminAPI) Sync(ctx context.Context, full bool) (any, error) {
	var err error
	var out any
	if full {
		rl, e := b.a.syncer.FullPass(ctx, "full")
		out, err = rl, e
	} else {
		rl, e := b.a.syncer.Poll(ctx)
		out, err = rl, e
	}
	b.a.sender.Kick()
	return out, err
}

func (b adminAPI) SyncLog(limit int) (any, error) { return b.a.syncer.RunLogs(limit) }

func (b adminAPI) Doctor(ctx context.Context) []admin.Check { return b.a.Doctor(ctx) }

func (b adminAPI) Audit(member string, limit int) ([]model.AuditEntry, error) {
	a := b.a
	var id string
	if member != "" {
		err := a.store.View(func(tx *store.Tx) error { var e error; id, e = access.FindMember(tx, member); return e })
		if err != nil {
			return nil, err
		}
	}
	// In a fleet: every box's trail, in HLC order, with a box column.
	if entries, fleet, err := a.fleet.Audit(id, limit); fleet || err != nil {
		return entries, err
	}
	if id == "" {
		return a.store.AuditTail(limit)
	}
	return a.store.AuditOf(id, limit)
}

func (b adminAPI) Reload() error { return b.a.Reload() }

func (b adminAPI) NASCheck() any {
	if b.a.radius.srv == nil {
		return []radius.NASReport{}
	}
	out := b.a.radius.srv.NASWithoutMessageAuthenticator()
	if out == nil {
		out = []radius.NASReport{}
	}
	return out
}

func (b adminAPI) Sessions(member string) any {
	a := b.a
	if a.radius.srv == nil {
		return []radius.Session{}
	}
	if member != "" {
		_ = a.store.View(func(tx *store.Tx) error {
			if id, err := access.FindMember(tx, member); err == nil {
				member = id
			}
			return nil
		})
	}
	out := a.radius.srv.Sessions(member)
	if out == nil {
		out = []radius.Session{}
	}
	return out
}

func (b adminAPI) NetPlan() (map[string]string, error) {
	a := b.a
	nc, err := a.desiredNet(a.Config())
	if err != nil {
		return nil, err
	}
	mode := "plan only (gateway.enabled is false: nothing is applied)"
	if a.Config().Gateway.Enabled {
		mode = "applied and kept in place"
	}
	return map[string]string{"mode": mode, "plan": netcfg.Plan(nc)}, nil
}

func (b adminAPI) NetTeardown(ctx context.Context) (map[string]string, error) {
	a := b.a
	if a.Config().Gateway.Enabled {
		return nil, &admin.Error{Code: http.StatusConflict, Err: errors.New("gateway.enabled is true: set it to false and reload first, or stop deskgated and run deskgated -cleanup")}
	}
	if err := netcfg.CleanUp(ctx, a.netOptions()); err != nil {
		return nil, err
	}
	return map[string]string{"status": "removed every dg- chain, ipset, class and link"}, nil
}

// fleetErr: joining a fleet twice or acting outside one is a conflict;
// the fleet's other refusals are the request's fault.
func fleetErr(err error) error {
	if errors.Is(err, peer.ErrNotInFleet) || errors.Is(err, peer.ErrInFleet) {
		return &admin.Error{Code: http.StatusConflict, Err: err}
	}
	return err
}

func (b adminAPI) FleetStatus() (any, error) { return b.a.fleet.Status() }

func (b adminAPI) FleetDump() (any, error) {
	d, err := b.a.fleet.Dump()
	return d, fleetErr(err)
}

func (b adminAPI) FleetInit(box string) (any, error) {
	id, err := b.a.fleet.Init(box)
	if err != nil {
		return nil, fleetErr(err)
	}
	b.a.log.Info("fleet init", "box", id.BoxID, "fleet", id.FleetID)
	return id, nil
}

func (b adminAPI) FleetInvite(ttl time.Duration) (string, time.Time, error) {
	tok, exp, err := b.a.fleet.Invite(ttl)
	return tok, exp, fleetErr(err)
}

func (b adminAPI) FleetJoin(ctx context.Context, token, box string) (any, error) {
	id, err := b.a.fleet.Join(ctx, token, box)
	if err != nil {
		b.a.log.Warn("fleet join failed", "err", err)
		return nil, fleetErr(err)
	}
	return id, nil
}

func (b adminAPI) FleetRemove(box string) error { return fleetErr(b.a.fleet.Remove(box)) }

func (b adminAPI) FleetPartition(boxes []string) ([]string, error) {
	if !b.a.demoSwitches {
		return nil, admin.Errorf(http.StatusNotFound, "the partition switch is for demos and tests: start deskgated with %s=1", DemoSwitchesEnv)
	}
	if err := b.a.fleet.Partition(boxes...); err != nil {
		return nil, err
	}
	cut := b.a.fleet.Cut()
	if cut == nil {
		cut = []string{}
	}
	return cut, nil
}

// FleetConfigPush pushes doc (empty: this box's own fleet-wide sections)
// as the fleet's configuration (docs/fleet.md); a refusal is a conflict
// naming the boxes that refused and why.
func (b adminAPI) FleetConfigPush(ctx context.Context, doc string) (any, error) {
	a := b.a
	raw := []byte(doc)
	if len(raw) == 0 {
		base, err := os.ReadFile(a.cfgPath)
		if err == nil {
			raw, err = config.FleetSections(base)
		}
		if err != nil {
			return nil, fmt.Errorf("read this box's fleet-wide sections: %w", err)
		}
	}
	res, err := a.fleet.PushConfig(ctx, raw)
	if errors.Is(err, peer.ErrConfigRefused) {
		return nil, &admin.Error{Code: http.StatusConflict, Err: err}
	}
	if err != nil {
		return nil, fleetErr(err)
	}
	a.log.Info("fleet configuration pushed", "version", res.Version, "unreachable", res.Unreachable)
	return res, nil
}

var errNoEAP = &admin.Error{Code: http.StatusNotFound, Err: errors.New("certs: EAP is off, no client certificates")}

func clientCertView(i certs.Issued) admin.ClientCert {
	return admin.ClientCert{Serial: i.Serial, Identity: i.Identity, IssuedAt: i.IssuedAt, NotAfter: i.NotAfter, Revoked: i.Revoked, Live: i.Current}
}

func (b adminAPI) Certs(user string) ([]admin.ClientCert, error) {
	a := b.a
	if a.radius.ca == nil {
		return nil, errNoEAP
	}
	if user != "" {
		user = a.certIdentity(user)
	}
	out := []admin.ClientCert{}
	for _, i := range a.radius.ca.ListIssued(user) {
		out = append(out, clientCertView(i))
	}
	return out, nil
}

func (b adminAPI) RevokeCerts(target string) ([]admin.ClientCert, error) {
	a := b.a
	if a.radius.ca == nil {
		return nil, errNoEAP
	}
	if target == "" {
		return nil, &admin.Error{Code: http.StatusBadRequest, Err: errors.New("certs revoke: which user or serial?")}
	}
	is, err := a.radius.ca.RevokeSerial(target)
	switch {
	case err == nil:
		a.audit("admin", "cert.revoked", "", is.Identity, "client certificate "+is.Serial+" revoked by the operator")
		return []admin.ClientCert{clientCertView(is)}, nil
	case !errors.Is(err, certs.ErrUnknownSerial):
		return nil, fmt.Errorf("certs revoke %s: %w", target, err)
	}
	user := a.certIdentity(target)
	if len(a.radius.ca.ListIssued(user)) == 0 {
		return nil, &admin.Error{Code: http.StatusNotFound, Err: errors.New("certs revoke: no certificate with serial or for user " + strconv.Quote(target))}
	}
	n, err := a.radius.ca.RevokeIdentity(user)
	if err != nil {
		return nil, fmt.Errorf("certs revoke %s: %w", user, err)
	}
	if n > 0 {
		a.audit("admin", "cert.revoked", "", user, fmt.Sprintf("%d client certificate(s) revoked by the operator", n))
	}
	out := []admin.ClientCert{}
	for _, i := range a.radius.ca.ListIssued(user) {
		out = append(out, clientCertView(i))
	}
	return out, nil
}

// deviceErr: a refused device (bad MAC, name, limit) is the request's
// fault; anything else is the daemon's.
func deviceErr(err error) error {
	var de devices.Refused
	if errors.As(err, &de) {
		return &admin.Error{Code: http.StatusBadRequest, Err: err}
	}
	return err
}

func (b adminAPI) Devices(user string) ([]admin.Device, error) {
	member := ""
	if user != "" {
		id, err := b.a.ppsk.FindMember(user)
		if err != nil {
			return nil, &admin.Error{Code: http.StatusNotFound, Err: err}
		}
		member = id
	}
	out, err := b.a.ppsk.List(member)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

func (b adminAPI) AddDevice(user, mac, name string) (admin.Device, error) {
	id, err := b.a.ppsk.FindMember(user)
	if err != nil {
		return admin.Device{}, &admin.Error{Code: http.StatusNotFound, Err: err}
	}
	d, err := b.a.ppsk.Register(id, mac, name, "cli")
	if err != nil {
		return d, deviceErr(fmt.Errorf("devices add: %w", err))
	}
	return d, nil
}

func (b adminAPI) RemoveDevice(ctx context.Context, mac string) (admin.Device, error) {
	d, err := b.a.ppsk.Remove(ctx, mac, "", "cli")
	if err != nil {
		return d, deviceErr(fmt.Errorf("devices remove: %w", err))
	}
	return d, nil
}

// certIdentity resolves a username, email or member id to the account's
// username; an unknown one is taken as a username (certificates outlive
// deleted accounts).
func (a *App) certIdentity(q string) string {
	user := q
	_ = a.store.View(func(tx *store.Tx) error {
		id, err := access.FindMember(tx, q)
		if err != nil {
			return nil
		}
		if ac, err := tx.AccountOfMember(id); err == nil {
			user = ac.Username
		}
		return nil
	})
	return user
}

// Operators lists the console's operator accounts (admin.Operators).
func (b adminAPI) Operators() ([]admin.OperatorView, error) {
	var ops []store.Operator
	if err := b.a.store.View(func(tx *store.Tx) error { var e error; ops, e = tx.Operators(); return e }); err != nil {
		return nil, err
	}
	out := []admin.OperatorView{}
	for _, o := range ops {
		out = append(out, admin.OperatorView{Name: o.Name, Role: o.Role, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt})
	}
	return out, nil
}

// ChangeOperator adds, re-passwords or removes an operator account and
// audits it (admin.Operators; admin validated name, role and hash).
func (b adminAPI) ChangeOperator(op, name, role, hash string) error {
	now := b.a.now()
	return b.a.store.Update(func(tx *store.Tx) error {
		old, err := tx.GetOperator(name)
		exists := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if op != admin.OperatorAdd && !exists {
			return admin.Errorf(http.StatusNotFound, "no operator %s", name)
		}
		var action, cause string
		switch op {
		case admin.OperatorAdd:
			if exists {
				return admin.Errorf(http.StatusConflict, "operator %s exists; use deskgate admin passwd to change the password", name)
			}
			err = tx.PutOperator(store.Operator{Name: name, Role: role, Hash: hash, CreatedAt: now, UpdatedAt: now})
			action, cause = "console.operator_added", "console operator "+name+" added as "+role
		case admin.OperatorPasswd:
			old.Hash, old.UpdatedAt = hash, now
			if role != "" {
				old.Role = role
			}
			err = tx.PutOperator(old)
			action, cause = "console.operator_password", "password of console operator "+name+" changed; its sessions ended"
		case admin.OperatorRemove:
			err = tx.DeleteOperator(name)
			action, cause = "console.operator_removed", "console operator "+name+" removed; its sessions ended"
		default:
			return fmt.Errorf("operator %s: unknown change %q", name, op)
		}
		if err != nil {
			return err
		}
		return tx.Audit(model.AuditEntry{Time: now, Actor: "cli", Action: action, Subject: name, Cause: cause})
	})
}
