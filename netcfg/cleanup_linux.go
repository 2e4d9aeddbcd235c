package netcfg

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CleanUp removes everything netcfg owns in opts.NetNS (or the caller's
// namespace): jumps to and the "dg-" chains themselves (IPv4 and IPv6), the
// "dg-" ipsets, HTB roots with handle dd:, ingress redirects with priority
// OwnedPrio (and the ingress qdisc when nothing else uses it), and "dg-"
// links. It is what `deskgate net teardown` and `deskgated --cleanup` run,
// and it is safe to call when nothing is left.
func CleanUp(ctx context.Context, opts Options) error {
	m, err := newManager(opts)
	if err != nil {
		return fmt.Errorf("netcfg cleanup: %w", err)
	}
	defer func() {
		m.nl.Close()
		m.ns.close()
	}()
	var errs []error
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	// Firewall first: after this nothing references the sets.
	for _, t := range []ipt{m.ipt4, m.ipt6} {
		for _, tb := range tables {
			chains, err := t.ListChains(tb)
			if err != nil {
				errs = append(errs, fmt.Errorf("list chains %s: %w", tb, err))
				continue
			}
			var owned []string
			for _, ch := range chains {
				if strings.HasPrefix(ch, Prefix) {
					owned = append(owned, ch)
				}
			}
			if len(owned) == 0 {
				continue
			}
			if err := removeChains(t, tb, owned); err != nil {
				errs = append(errs, err)
			}
			note("removed %s chains %s", tb, strings.Join(owned, ","))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sets, err := m.nl.IpsetListAll()
	if err != nil {
		errs = append(errs, fmt.Errorf("ipset list: %w", err))
	}
	for _, s := range sets {
		if strings.HasPrefix(s.SetName, Prefix) {
			if err := m.nl.IpsetDestroy(s.SetName); err != nil {
				errs = append(errs, fmt.Errorf("ipset destroy %s: %w", s.SetName, err))
			} else {
				note("destroyed ipset %s", s.SetName)
			}
		}
	}
	links, err := m.nl.LinkList()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("link list: %w", err))...)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if strings.HasPrefix(name, Prefix) {
			continue
		}
		removed, err := removeOwnedRoot(m.nl, l)
		if err != nil {
			errs = append(errs, err)
		} else if removed {
			note("removed root qdisc dd: from %s", name)
		}
		if err := m.shape.syncIngress(l, nil, note); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, Prefix) {
			if err := m.nl.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("link del %s: %w", name, err))
			} else {
				note("removed link %s", name)
			}
		}
	}
	for _, c := range changes {
		m.log.Info("netcfg cleanup", "what", c)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netcfg cleanup: %w", err)
	}
	return nil
}
