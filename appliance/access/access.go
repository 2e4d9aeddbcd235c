// Package access joins the configuration, the store and policy: it turns
// the operator's plan, group and location mapping into policy.Rules
// (resolving OfficeRnD location names to ids), gathers one member's data
// from the store into a policy.Input, and returns the decision. RADIUS, the
// sync's account reconciliation and the CLI's explain all ask it, so none
// of them re-derives access on its own.
package access

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/policy"
	"github.com/deskgate/deskgate/appliance/store"
)

// Resolver answers "what access does this member have now".
type Resolver struct {
	cfg atomic.Pointer[config.Config]

	mu    sync.RWMutex
	rules *policy.Rules
	plans map[string]model.Plan
	// unresolved lists config locations that match no OfficeRnD location.
	unresolved []string
	locs       []model.Location
}

// New returns a resolver for cfg. Call Rebuild once the store is open and
// whenever locations or plans change.
func New(cfg *config.Config) *Resolver {
	r := &Resolver{plans: map[string]model.Plan{}}
	r.cfg.Store(cfg)
	r.rules = buildRules(cfg, nil)
	return r
}

// SetConfig swaps the configuration (reload); call Rebuild after.
func (r *Resolver) SetConfig(cfg *config.Config) { r.cfg.Store(cfg) }

// Rebuild recomputes the rules from the config and the stored locations
// and plans.
func (r *Resolver) Rebuild(tx *store.Tx) error {
	var locs []model.Location
	if err := tx.ForEachLocation(func(l model.Location) error { locs = append(locs, l); return nil }); err != nil {
		return fmt.Errorf("rebuild rules: read locations: %w", err)
	}
	plans := map[string]model.Plan{}
	if err := tx.ForEachPlan(func(p model.Plan) error { plans[p.ID] = p; return nil }); err != nil {
		return fmt.Errorf("rebuild rules: read plans: %w", err)
	}
	cfg := r.cfg.Load()
	rules := buildRules(cfg, locs)
	var unresolved []string
	for _, lm := range cfg.Locations {
		if _, ok := matchLocation(lm.Location, locs); !ok {
			unresolved = append(unresolved, lm.Location)
		}
	}
	r.mu.Lock()
	r.rules, r.plans, r.unresolved, r.locs = rules, plans, unresolved, locs
	r.mu.Unlock()
	return nil
}

// Rules returns the current rules (read-only).
func (r *Resolver) Rules() *policy.Rules {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rules
}

// Unresolved returns config locations that match no OfficeRnD location.
func (r *Resolver) Unresolved() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.unresolved...)
}

// UnmappedPlans lists stored plans no plan mapping matches.
func (r *Resolver) UnmappedPlans() []model.Plan {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []model.Plan
	for _, p := range r.plans {
		if _, ok := r.rules.PlanRuleFor(p); !ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LocationID resolves a config location key (OfficeRnD name, code or id)
// to the OfficeRnD location id, once the locations are imported.
func (r *Resolver) LocationID(key string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	l, ok := matchLocation(key, r.locs)
	return l.ID, ok
}

// Plan returns a stored plan by id from the resolver's cache.
func (r *Resolver) Plan(id string) (model.Plan, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.plans[id]
	return p, ok
}

// Input gathers everything policy needs about member m from tx.
func (r *Resolver) Input(tx *store.Tx, m *model.Member, now time.Time) (policy.Input, error) {
	in := policy.Input{Member: m, Now: now}
	r.mu.RLock()
	in.Plans = r.plans
	r.mu.RUnlock()
	if m == nil {
		return in, nil
	}
	ms, err := tx.MembershipsOfMember(m.ID)
	if err != nil {
		return in, fmt.Errorf("memberships of member %s: %w", m.ID, err)
	}
	in.Memberships = ms
	ps, err := tx.PassesOfMember(m.ID)
	if err != nil {
		return in, fmt.Errorf("passes of member %s: %w", m.ID, err)
	}
	in.Passes = ps
	if m.Company != "" {
		cms, err := tx.MembershipsOfCompany(m.Company)
		if err != nil {
			return in, fmt.Errorf("memberships of company %s: %w", m.Company, err)
		}
		for _, cm := range cms {
			if cm.IsPersonal && cm.Member != "" && cm.Member != m.ID {
				continue // a colleague's personal membership billed to the company
			}
			if cm.Member == m.ID {
				continue // already in the personal list
			}
			in.Memberships = append(in.Memberships, cm)
		}
	}
	return in, nil
}

// DecideMember returns the decision for member id at now. An unknown id
// yields a DenyUnknownUser decision and store.ErrNotFound.
func (r *Resolver) DecideMember(tx *store.Tx, id string, now time.Time) (model.Member, model.Decision, error) {
	m, err := tx.GetMember(id)
	if errors.Is(err, store.ErrNotFound) {
		return model.Member{}, policy.Decide(r.Rules(), policy.Input{Now: now}), err
	}
	if err != nil {
		return m, model.Decision{}, fmt.Errorf("decide member %s: %w", id, err)
	}
	in, err := r.Input(tx, &m, now)
	if err != nil {
		return m, model.Decision{}, fmt.Errorf("decide member %s: %w", id, err)
	}
	return m, policy.Decide(r.Rules(), in), nil
}

// DecideMemberAt is DecideMember for a request at a location (a NAS's):
// with several memberships, the best one that grants access there wins.
// An empty location is DecideMember.
func (r *Resolver) DecideMemberAt(tx *store.Tx, id, locationID string, now time.Time) (model.Member, model.Decision, error) {
	if locationID == "" {
		return r.DecideMember(tx, id, now)
	}
	m, d, _, err := r.DecideMemberAtUntil(tx, id, locationID, now)
	return m, d, err
}

// DecideMemberAtUntil is DecideMemberAt that also returns until when the
// decision holds while the store and rules stay as they are
// (policy.DecideAtUntil: zero = no time boundary, now = changes
// continuously). An unknown member's denial has no time boundary.
func (r *Resolver) DecideMemberAtUntil(tx *store.Tx, id, locationID string, now time.Time) (model.Member, model.Decision, time.Time, error) {
	m, err := tx.GetMember(id)
	if errors.Is(err, store.ErrNotFound) {
		return model.Member{}, policy.DecideAt(r.Rules(), policy.Input{Now: now}, locationID), time.Time{}, err
	}
	if err != nil {
		return m, model.Decision{}, time.Time{}, fmt.Errorf("decide member %s: %w", id, err)
	}
	in, err := r.Input(tx, &m, now)
	if err != nil {
		return m, model.Decision{}, time.Time{}, fmt.Errorf("decide member %s: %w", id, err)
	}
	d, until := policy.DecideAtUntil(r.Rules(), in, locationID)
	return m, d, until, nil
}

// FindMember resolves an operator's query (username, email or member id)
// to a member id.
func FindMember(tx *store.Tx, q string) (string, error) {
	q = strings.TrimSpace(q)
	if a, err := tx.GetAccount(q); err == nil {
		return a.MemberID, nil
	}
	if m, err := tx.GetMember(q); err == nil {
		return m.ID, nil
	}
	if m, err := tx.MemberByEmail(q); err == nil {
		return m.ID, nil
	}
	return "", fmt.Errorf("find member %q: %w", q, store.ErrNotFound)
}

func buildRules(cfg *config.Config, locs []model.Location) *policy.Rules {
	r := &policy.Rules{
		Groups:             map[string]policy.GroupRule{},
		Roaming:            cfg.Roaming.Policy,
		RequirePaidInvoice: cfg.Sync.RequirePaidInvoice,
	}
	for _, g := range cfg.Groups {
		r.Groups[g.Name] = policy.GroupRule{
			Name:           g.Name,
			Bandwidth:      model.Bandwidth{DownKbps: g.DownKbps, UpKbps: g.UpKbps},
			SessionTimeout: g.SessionTimeout,
			MaxDevices:     g.MaxDevices,
		}
	}
	for _, p := range cfg.Plans {
		enabled := p.Enabled == nil || *p.Enabled
		r.Plans = append(r.Plans, policy.PlanRule{
			Match:      p.Plan,
			Group:      p.Group,
			Duration:   p.Duration,
			Bandwidth:  model.Bandwidth{DownKbps: p.DownKbps, UpKbps: p.UpKbps},
			Enabled:    enabled,
			StaticIP:   p.StaticIP,
			MaxDevices: p.MaxDevices,
			Roaming:    p.Roaming,
		})
	}
	for _, lm := range cfg.Locations {
		l, ok := matchLocation(lm.Location, locs)
		if !ok {
			continue
		}
		tzName := lm.Timezone
		if tzName == "" {
			tzName = l.Timezone
		}
		tz := time.UTC
		if tzName != "" {
			if z, err := time.LoadLocation(tzName); err == nil {
				tz = z
			}
		}
		r.Locations = append(r.Locations, policy.LocationRule{
			LocationID: l.ID, Name: l.Name, Network: lm.Network, VLAN: lm.VLAN, TZ: tz,
		})
	}
	return r
}

func matchLocation(key string, locs []model.Location) (model.Location, bool) {
	k := strings.TrimSpace(key)
	for _, l := range locs {
		if l.ID == k {
			return l, true
		}
	}
	for _, l := range locs {
		if strings.EqualFold(l.Name, k) || (l.Code != "" && strings.EqualFold(l.Code, k)) {
			return l, true
		}
	}
	return model.Location{}, false
}
