package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory Manager for tests of packages that drive netcfg.
// Its String method renders the state a real Manager would program, as
// sorted text for golden comparisons.
type Fake struct {
	mu      sync.Mutex
	cfg     *Config
	clients map[string]GuestClient
	calls   []string
	closed  bool
}

var _ Manager = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake { return &Fake{clients: map[string]GuestClient{}} }

// Set validates and records c.
func (f *Fake) Set(_ context.Context, c *Config) error {
	if c == nil {
		return errors.New("netcfg set: nil config")
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("netcfg set: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = c.Clone()
	f.clients = map[string]GuestClient{}
	for _, cl := range f.cfg.Clients {
		f.clients[cl.MAC.String()] = cl
	}
	f.calls = append(f.calls, "set")
	return nil
}

// Allow records the client as allowed.
func (f *Fake) Allow(_ context.Context, c GuestClient) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("netcfg allow: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg == nil {
		return ErrNoConfig
	}
	f.clients[c.MAC.String()] = c.clone()
	f.calls = append(f.calls, "allow "+c.MAC.String())
	return nil
}

// Revoke forgets the client.
func (f *Fake) Revoke(_ context.Context, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg == nil {
		return ErrNoConfig
	}
	delete(f.clients, mac.String())
	f.calls = append(f.calls, "revoke "+mac.String())
	return nil
}

// Close marks the fake closed.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Allowed reports whether the client with this MAC is allowed.
func (f *Fake) Allowed(mac net.HardwareAddr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.clients[mac.String()]
	return ok
}

// Calls returns the calls made so far ("set", "allow MAC", "revoke MAC").
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// String renders the config with the current clients, the iptables and
// ip6tables rules and the shaping plan a real Manager would program.
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg == nil {
		return "no config\n"
	}
	c := f.cfg.Clone()
	c.Clients = c.Clients[:0]
	for _, cl := range f.clients {
		c.Clients = append(c.Clients, cl)
	}
	return Plan(c)
}

// Plan renders what a Manager programs for c: the config itself, the
// iptables and ip6tables rules and the shaping plan, as stable sorted text.
// It touches nothing; it is the output of `deskgate net plan` and the
// plan-only mode of `make demo`.
func Plan(c *Config) string {
	clients := map[string]GuestClient{}
	for _, cl := range c.Clients {
		clients[cl.MAC.String()] = cl
	}
	var b strings.Builder
	b.WriteString(c.String())
	r4, r6 := buildRules(c, false), buildRules(c, true)
	b.WriteString("# iptables\n")
	b.WriteString(r4.String())
	b.WriteString("# ip6tables\n")
	b.WriteString(r6.String())
	b.WriteString("# tc\n")
	b.WriteString(planTC(c, clients, assignMinors(clients, nil)).String())
	return b.String()
}
