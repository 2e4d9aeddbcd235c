package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Dnsmasq supervises one dnsmasq process serving DHCP and DNS for the
// networks of a Config. Apply rewrites its config file and restarts it only
// when the file changed (or the process died).
type Dnsmasq struct {
	ConfPath string         // generated config file
	Binary   string         // "dnsmasq" when empty
	NetNS    string         // run inside this named namespace when set
	Options  DnsmasqOptions // non-network settings
	Log      *slog.Logger

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Apply writes the config for c and (re)starts dnsmasq when needed. It
// reports whether dnsmasq was (re)started.
func (d *Dnsmasq) Apply(ctx context.Context, c *Config) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed, err := WriteFileIfChanged(d.ConfPath, DnsmasqConfig(c, d.Options))
	if err != nil {
		return false, fmt.Errorf("dnsmasq config: %w", err)
	}
	if !changed && d.running() {
		return false, nil
	}
	if err := d.stopLocked(); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bin := d.Binary
	if bin == "" {
		bin = "dnsmasq"
	}
	cmd := exec.Command(bin, "--keep-in-foreground", "--conf-file="+d.ConfPath, "--pid-file", "--log-facility=-")
	if d.Log != nil {
		w := logWriter{d.Log}
		cmd.Stdout, cmd.Stderr = w, w
	}
	ns, err := openNS(d.NetNS)
	if err != nil {
		return false, err
	}
	defer ns.close()
	if err := ns.do(cmd.Start); err != nil {
		return false, fmt.Errorf("dnsmasq start: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done
	if d.Log != nil {
		d.Log.Info("dnsmasq started", "pid", cmd.Process.Pid, "config_changed", changed)
	}
	return true, nil
}

// Pid returns the running dnsmasq's process id, or 0.
func (d *Dnsmasq) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running() {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *Dnsmasq) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Stop ends dnsmasq.
func (d *Dnsmasq) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}

func (d *Dnsmasq) stopLocked() error {
	if !d.running() {
		d.cmd = nil
		return nil
	}
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("dnsmasq stop: %w", err)
	}
	select {
	case <-d.done:
	case <-time.After(3 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
	return nil
}

// logWriter turns dnsmasq's output lines into debug log records.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.log.Debug("dnsmasq", "line", line)
	}
	return len(p), nil
}
