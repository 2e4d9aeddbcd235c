package radius

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnknownNAS is returned by Explain for a NAS name not in the config.
var ErrUnknownNAS = errors.New("unknown nas")

// Explain shows what the server would answer to a correct password from
// username at the named NAS (the first configured NAS when nasName is
// empty): the code, the deny reason, and the exact reply attributes in
// order after Message-Authenticator. It changes nothing (no static IP is
// assigned).
func (s *Server) Explain(ctx context.Context, username, nasName string) (ExplainResult, error) {
	t := s.clients.Load()
	var nas *nasState
	if nasName == "" {
		if len(t.all) == 0 {
			return ExplainResult{}, fmt.Errorf("explain %s: %w: no clients configured", username, ErrUnknownNAS)
		}
		nas = t.all[0]
	} else if nas = t.byName[nasName]; nas == nil {
		return ExplainResult{}, fmt.Errorf("explain %s at %s: %w", username, nasName, ErrUnknownNAS)
	}
	ev := evaluation{nas: nas, username: username, now: s.now(), location: nas.LocationID, method: "explain"}
	res := ExplainResult{Username: username, NAS: nas.Name, Location: nas.LocationID, Vendor: nas.Vendor}
	subj, err := s.dir.Lookup(WithLocation(ctx, nas.LocationID), username)
	switch {
	case errors.Is(err, ErrUnknownUser):
		ev.deny = "unknown_user"
	case err != nil:
		return ExplainResult{}, fmt.Errorf("explain %s: lookup: %w", username, err)
	default:
		ev.subj = subj
		res.Reasons = subj.Decision.Reasons
		if len(subj.Account.NTHash) != 16 {
			ev.deny, ev.detail = "wrong_password", "account has no password set"
		} else if subj.Account.Disabled {
			ev.deny, ev.detail = "account_disabled", subj.Account.DisabledReason
		} else {
			// A device not yet online: the device limit applies.
			s.decide(&ev)
		}
	}
	if ev.deny != "" {
		res.Code = "Access-Reject"
		res.Deny = ev.deny
		if ev.detail != "" {
			res.Notes = append(res.Notes, ev.detail)
		}
		res.Attributes = []ExplainAttr{{Name: "Reply-Message", Value: strconv.Quote(replyMessage(ev.deny))}}
		return res, nil
	}
	res.Code = "Access-Accept"
	ip, err := s.staticIP(ctx, &ev, false)
	if err != nil {
		return ExplainResult{}, fmt.Errorf("explain %s: static ip: %w", username, err)
	}
	if subj.Decision.StaticIP && !ip.IsValid() {
		if p, ok := s.cfg.StaticPools[ev.location]; ok {
			res.Notes = append(res.Notes, "Framed-IP-Address: assigned from "+p.String()+" at first login")
		} else {
			res.Notes = append(res.Notes, "plan has a static IP but location "+ev.location+" has no static pool")
		}
	}
	attrs, _ := appendDecisionAttrs(nil, nil, nas.Vendor, subj, ev.access, ev.location, ip, s.cfg.InterimInterval, ev.now)
	for _, a := range attrs {
		res.Attributes = append(res.Attributes, ExplainAttr{Name: a.name(), Value: a.value()})
	}
	if d := subj.Decision.MaxDevices; d > 0 {
		online := strings.Join(s.idx.devices(subj.Account.MemberID), ", ")
		if online == "" {
			online = "none"
		}
		res.Notes = append(res.Notes, fmt.Sprintf("device limit %d, online now: %s", d, online))
	}
	return res, nil
}

// String renders the result as the operator sees it.
func (r ExplainResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s for %s at %s (location %s, vendor %s)\n", r.Code, r.Username, r.NAS, r.Location, r.Vendor)
	if r.Deny != "" {
		fmt.Fprintf(&b, "reason: %s\n", r.Deny)
	}
	b.WriteString("\tMessage-Authenticator = <computed per reply>\n")
	for _, a := range r.Attributes {
		fmt.Fprintf(&b, "\t%s = %s\n", a.Name, a.Value)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}
