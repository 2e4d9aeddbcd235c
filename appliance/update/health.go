package update

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
)

// DaemonHealth is the health the gate waits for: deskgated's local API
// answers and reports ready (the store opened, the initial import done in
// this run or an earlier one, the guest lifecycle settled), and its RADIUS
// auth socket answers: a probe datagram sent to it must show up in the
// daemon's RADIUS counters (as a request or a drop).
//
// LastExit names a file the supervisor writes when deskgated exits; its
// text is added to the reason, so `update status` says why it did not serve.
func DaemonHealth(c *admin.Client, lastExit string) Health {
	return func(ctx context.Context) error {
		err := daemonHealth(ctx, c)
		if err != nil && lastExit != "" {
			if b, rerr := os.ReadFile(lastExit); rerr == nil && len(b) > 0 {
				err = fmt.Errorf("%w (%s)", err, strings.TrimSpace(string(b)))
			}
		}
		return err
	}
}

func daemonHealth(ctx context.Context, c *admin.Client) error {
	st, err := status(ctx, c)
	if err != nil {
		return fmt.Errorf("deskgated's API does not answer: %w", err)
	}
	if !st.Ready {
		return errors.New("deskgated is running but not ready (initial import or store not settled)")
	}
	if st.RADIUS == nil || len(st.RADIUS.AuthAddrs) == 0 {
		return errors.New("deskgated reports no RADIUS auth listener")
	}
	before := radiusSeen(st.RADIUS)
	addr, err := probeAddr(st.RADIUS.AuthAddrs[0])
	if err != nil {
		return err
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return fmt.Errorf("probing RADIUS at %s: %w", addr, err)
	}
	defer conn.Close()
	// A Status-Server (code 12) from an address that is usually no NAS: the
	// server counts it (as a request or as a drop) without answering.
	probe := make([]byte, 20)
	probe[0], probe[1], probe[3] = 12, 0xd6, 20
	for i := 0; i < 10; i++ {
		if _, err := conn.Write(probe); err != nil {
			return fmt.Errorf("probing RADIUS at %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("probing RADIUS at %s: %w", addr, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		st, err := status(ctx, c)
		if err != nil {
			return fmt.Errorf("deskgated's API does not answer: %w", err)
		}
		if radiusSeen(st.RADIUS) > before {
			return nil
		}
	}
	return fmt.Errorf("RADIUS at %s does not see requests", addr)
}

func status(ctx context.Context, c *admin.Client) (admin.Status, error) {
	var st admin.Status
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := c.Get(ctx, "/v1/status", nil, &st)
	return st, err
}

func radiusSeen(r *admin.RADIUSStatus) uint64 {
	var n uint64
	if r == nil {
		return 0
	}
	for _, c := range r.Requests {
		n += c.Count
	}
	for _, d := range r.Drops {
		n += d
	}
	return n
}

// probeAddr turns a listen address (":1812", "0.0.0.0:1812", "[::]:1812")
// into one to send to.
func probeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("RADIUS listen address %q: %w", listen, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		if err == nil && ip.Is6() {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port), nil
}
