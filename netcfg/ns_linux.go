package netcfg

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsRunner runs functions inside the target network namespace (or in the
// caller's when it has none). Processes started inside (iptables) inherit
// the namespace of the locked thread that forks them.
type nsRunner struct {
	name   string
	target netns.NsHandle
}

func openNS(name string) (*nsRunner, error) {
	r := &nsRunner{name: name, target: -1}
	if name == "" {
		return r, nil
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	r.target = h
	return r, nil
}

func (r *nsRunner) close() {
	if r.target >= 0 {
		r.target.Close()
		r.target = -1
	}
}

func (r *nsRunner) do(fn func() error) error {
	if r.target < 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(r.target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", r.name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it is in the wrong namespace and the
		// runtime will discard it when this goroutine ends.
		return fmt.Errorf("leave netns %s: %w", r.name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// handle opens a netlink handle (route and netfilter sockets) in the namespace.
func (r *nsRunner) handle() (*netlink.Handle, error) {
	fams := []int{unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER}
	if r.target < 0 {
		h, err := netlink.NewHandle(fams...)
		if err != nil {
			return nil, fmt.Errorf("netlink handle: %w", err)
		}
		return h, nil
	}
	h, err := netlink.NewHandleAt(r.target, fams...)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", r.name, err)
	}
	return h, nil
}

func (r *nsRunner) writeSysctl(path, value string) error {
	return r.do(func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", path, err)
		}
		return nil
	})
}

// ipt is the subset of go-iptables that netcfg calls; the real one runs in
// the manager's namespace.
type ipt interface {
	List(table, chain string) ([]string, error)
	ListChains(table string) ([]string, error)
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	Append(table, chain string, rulespec ...string) error
	Insert(table, chain string, pos int, rulespec ...string) error
	Exists(table, chain string, rulespec ...string) (bool, error)
	Delete(table, chain string, rulespec ...string) error
	DeleteChain(table, chain string) error
	// Save returns `iptables-save -t table`: one process for a whole table.
	Save(table string) (string, error)
	// Restore feeds `iptables-restore --noflush`: chains it declares are
	// flushed and refilled atomically, everything else is left alone.
	Restore(input string) error
}

type nsIPT struct {
	ns      *nsRunner
	ipt     *iptables.IPTables
	save    string // iptables-save or ip6tables-save
	restore string
}

func newIPT(ns *nsRunner, v6 bool) (*nsIPT, error) {
	proto := iptables.ProtocolIPv4
	if v6 {
		proto = iptables.ProtocolIPv6
	}
	t, err := iptables.New(iptables.IPFamily(proto), iptables.Timeout(10))
	if err != nil {
		return nil, fmt.Errorf("iptables init: %w", err)
	}
	save := "iptables-save"
	if v6 {
		save = "ip6tables-save"
	}
	return &nsIPT{ns: ns, ipt: t, save: save, restore: strings.Replace(save, "-save", "-restore", 1)}, nil
}

func (n *nsIPT) List(table, chain string) (out []string, err error) {
	err = n.ns.do(func() (e error) { out, e = n.ipt.List(table, chain); return })
	return
}

func (n *nsIPT) ListChains(table string) (out []string, err error) {
	err = n.ns.do(func() (e error) { out, e = n.ipt.ListChains(table); return })
	return
}

func (n *nsIPT) NewChain(table, chain string) error {
	return n.ns.do(func() error { return n.ipt.NewChain(table, chain) })
}

func (n *nsIPT) ClearChain(table, chain string) error {
	return n.ns.do(func() error { return n.ipt.ClearChain(table, chain) })
}

func (n *nsIPT) Append(table, chain string, spec ...string) error {
	return n.ns.do(func() error { return n.ipt.Append(table, chain, spec...) })
}

func (n *nsIPT) Insert(table, chain string, pos int, spec ...string) error {
	return n.ns.do(func() error { return n.ipt.Insert(table, chain, pos, spec...) })
}

func (n *nsIPT) Exists(table, chain string, spec ...string) (ok bool, err error) {
	err = n.ns.do(func() (e error) { ok, e = n.ipt.Exists(table, chain, spec...); return })
	return
}

func (n *nsIPT) Delete(table, chain string, spec ...string) error {
	return n.ns.do(func() error { return n.ipt.Delete(table, chain, spec...) })
}

func (n *nsIPT) DeleteChain(table, chain string) error {
	return n.ns.do(func() error { return n.ipt.DeleteChain(table, chain) })
}

func (n *nsIPT) Save(table string) (string, error) {
	var out []byte
	err := n.ns.do(func() error {
		var stderr bytes.Buffer
		cmd := exec.Command(n.save, "-t", table)
		cmd.Stderr = &stderr
		var err error
		out, err = cmd.Output()
		if err != nil {
			return fmt.Errorf("%s -t %s: %w: %s", n.save, table, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return nil
	})
	return string(out), err
}

func (n *nsIPT) Restore(input string) error {
	return n.ns.do(func() error {
		var stderr bytes.Buffer
		cmd := exec.Command(n.restore, "--noflush", "--wait")
		cmd.Stdin = strings.NewReader(input)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", n.restore, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return nil
	})
}
