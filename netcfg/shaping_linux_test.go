package netcfg

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// iperf runs iperf3 from role against the internet server on port and
// returns the receiver's rate in Mbit/s (download when reverse).
func (g *guestLab) iperf(role string, port int, reverse bool) (float64, error) {
	args := []string{"netns", "exec", g.ns[role], "iperf3", "-c", inet4, "-p", strconv.Itoa(port), "-t", "3", "-O", "1", "-J"}
	if reverse {
		args = append(args, "-R")
	}
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return 0, fmt.Errorf("iperf3 from %s: %w: %s", role, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("iperf3 json: %w", err)
	}
	if res.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", res.Error)
	}
	return res.End.SumReceived.BitsPerSecond / 1e6, nil
}

func within(t *testing.T, what string, got, want float64) {
	t.Helper()
	t.Logf("%s: %.2f Mbit/s (limit %.0f, %+.1f%%)", what, got, want, (got/want-1)*100)
	if got < want*0.9 || got > want*1.1 {
		t.Errorf("%s: %.2f Mbit/s, want %.0f ±10%%", what, got, want)
	}
}

func TestShaping(t *testing.T) {
	needRoot(t, "iperf3")
	g := newGuestLab(t)
	g.cfg.Guest.DownKbps, g.cfg.Guest.UpKbps = 20000, 20000
	c2 := client2()
	c2.DownKbps, c2.UpKbps = 10000, 8000
	g.cfg.Clients = []GuestClient{client1(time.Time{}), c2}
	g.cfg.Networks[0].DownKbps, g.cfg.Networks[0].UpKbps = 15000, 12000
	log, _ := testLogger(t)
	m := g.manager(log, -1)
	ctx := context.Background()
	if err := m.Set(ctx, g.cfg); err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"5201", "5202", "5203"} {
		g.start("in", "iperf3", "-s", "-p", port)
	}
	for _, port := range []string{"5201", "5202"} {
		deadline := time.Now().Add(3 * time.Second)
		for {
			c, err := g.dial("c1", "tcp", inet4+":"+port, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("iperf3 server %s not up: %v", port, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond) // let iperf3 finish the probe connection

	down, err := g.iperf("c1", 5201, true)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "c1 download", down, 20)
	up, err := g.iperf("c1", 5201, false)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "c1 upload", up, 20)

	// Two clients at once, each held to its own limit.
	for _, reverse := range []bool{true, false} {
		var wg sync.WaitGroup
		var r1, r2 float64
		var e1, e2 error
		wg.Add(2)
		go func() { defer wg.Done(); r1, e1 = g.iperf("c1", 5201, reverse) }()
		go func() { defer wg.Done(); r2, e2 = g.iperf("c2", 5202, reverse) }()
		wg.Wait()
		if e1 != nil || e2 != nil {
			t.Fatal(e1, e2)
		}
		dir, want2 := "upload", 8.0
		if reverse {
			dir, want2 = "download", 10.0
		}
		within(t, "concurrent c1 "+dir, r1, 20)
		within(t, "concurrent c2 "+dir, r2, want2)
	}

	// The member network's group limit.
	md, err := g.iperf("m1", 5203, true)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "member network download (group limit)", md, 15)
	mu, err := g.iperf("m1", 5203, false)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "member network upload (group limit)", mu, 12)

	// Limits change live.
	g.cfg.Clients[1].DownKbps = 5000
	if err := m.Set(ctx, g.cfg); err != nil {
		t.Fatal(err)
	}
	down, err = g.iperf("c2", 5202, true)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "c2 download after live change to 5 mbit", down, 5)
}
