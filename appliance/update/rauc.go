package update

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Rauc is the Backend on the box: it runs the rauc tool (whose install and
// status talk to `rauc service` over D-Bus) and reboot.
type Rauc struct {
	// Bin is the rauc binary ("rauc" from PATH when empty).
	Bin string
	// RebootCmd reboots the box ({"reboot"} when empty).
	RebootCmd []string
}

func (r Rauc) run(ctx context.Context, args ...string) ([]byte, error) {
	bin := r.Bin
	if bin == "" {
		bin = "rauc"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := raucError(stderr.String() + string(out))
		if msg == "" {
			msg = err.Error()
		}
		return out, fmt.Errorf("rauc %s: %s", args[0], msg)
	}
	return out, nil
}

// raucError keeps the lines of rauc's output that say what went wrong.
func raucError(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "installing") && strings.Contains(l, "%") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > 4 {
		keep = keep[len(keep)-4:]
	}
	return strings.Join(keep, "; ")
}

// raucStatus is `rauc status --detailed --output-format=json` (RAUC 1.8).
type raucStatus struct {
	Compatible  string                      `json:"compatible"`
	Booted      string                      `json:"booted"`
	BootPrimary string                      `json:"boot_primary"`
	Slots       []map[string]raucSlotStatus `json:"slots"`
}

type raucSlotStatus struct {
	Class      string `json:"class"`
	Device     string `json:"device"`
	Bootname   string `json:"bootname"`
	State      string `json:"state"`
	BootStatus string `json:"boot_status"`
	SlotStatus struct {
		Bundle struct {
			Version string `json:"version"`
		} `json:"bundle"`
		Installed struct {
			Timestamp string `json:"timestamp"`
		} `json:"installed"`
	} `json:"slot_status"`
}

// parseRaucStatus turns rauc's JSON into Slots.
func parseRaucStatus(b []byte) (Slots, error) {
	var rs raucStatus
	if err := json.Unmarshal(b, &rs); err != nil {
		return Slots{}, fmt.Errorf("reading rauc status: %w", err)
	}
	s := Slots{Compatible: rs.Compatible, Booted: rs.Booted}
	for _, m := range rs.Slots {
		for id, sl := range m {
			if sl.Bootname == "" {
				continue
			}
			x := Slot{
				Name:    sl.Bootname,
				Device:  sl.Device,
				Booted:  sl.State == "booted",
				Good:    sl.BootStatus == "good",
				Version: sl.SlotStatus.Bundle.Version,
			}
			if t, err := time.Parse(time.RFC3339, sl.SlotStatus.Installed.Timestamp); err == nil {
				x.Installed = t
			}
			if id == rs.BootPrimary {
				s.Primary = sl.Bootname
			}
			// RAUC 1.8's "booted" is not always the boot name; the slot
			// whose state is "booted" is.
			if sl.State == "booted" {
				s.Booted = sl.Bootname
			}
			s.Slots = append(s.Slots, x)
		}
	}
	if len(s.Slots) == 0 {
		return s, fmt.Errorf("rauc status lists no bootable slots")
	}
	return s, nil
}

// Status implements Backend.
func (r Rauc) Status(ctx context.Context) (Slots, error) {
	out, err := r.run(ctx, "status", "--detailed", "--output-format=json")
	if err != nil {
		return Slots{}, err
	}
	return parseRaucStatus(out)
}

// Verify implements Backend: `rauc info` checks the signature against the
// keyring of system.conf and prints the manifest.
func (r Rauc) Verify(ctx context.Context, bundle string) (Bundle, error) {
	out, err := r.run(ctx, "info", "--output-format=json", bundle)
	if err != nil {
		return Bundle{}, err
	}
	var b Bundle
	// rauc info may print messages before the JSON document.
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	if err := json.Unmarshal(out, &b); err != nil {
		return Bundle{}, fmt.Errorf("reading rauc info: %w", err)
	}
	return b, nil
}

// Install implements Backend.
func (r Rauc) Install(ctx context.Context, bundle string) error {
	_, err := r.run(ctx, "install", bundle)
	return err
}

// MarkGood implements Backend.
func (r Rauc) MarkGood(ctx context.Context) error {
	_, err := r.run(ctx, "status", "mark-good", "booted")
	return err
}

// MarkBad implements Backend.
func (r Rauc) MarkBad(ctx context.Context) error {
	_, err := r.run(ctx, "status", "mark-bad", "booted")
	return err
}

// Reboot implements Backend.
func (r Rauc) Reboot(ctx context.Context) error {
	argv := r.RebootCmd
	if len(argv) == 0 {
		argv = []string{"reboot"}
	}
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
