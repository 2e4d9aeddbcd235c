package portal

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNeighborResolver(t *testing.T) {
	arp := filepath.Join(t.TempDir(), "arp")
	os.WriteFile(arp, []byte(`IP address       HW type     Flags       HW address            Mask     Device
10.30.0.20       0x1         0x2         aa:bb:cc:00:00:20     *        guest0
10.30.0.21       0x1         0x0         00:00:00:00:00:00     *        guest0
10.30.0.22       0x1         0x2         aa:bb:cc:00:00:22     *        guest0
`), 0o644)
	nr := NeighborResolver{Path: arp}
	for ip, want := range map[string]string{"10.30.0.20": "aa:bb:cc:00:00:20", "10.30.0.22": "aa:bb:cc:00:00:22", "10.30.0.21": "", "10.30.0.9": ""} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = ip + ":5555"
		c, err := nr.Resolve(r)
		if want == "" {
			if !errors.Is(err, ErrUnknownClient) {
				t.Errorf("%s: %v %v, want ErrUnknownClient", ip, c, err)
			}
			continue
		}
		if err != nil || c.MAC.String() != want || c.IP.String() != ip {
			t.Errorf("%s: %v %v, want %s", ip, c, err, want)
		}
	}
}

// Example wires the portal as the appliance does: the guest lifecycle as
// Backend, netcfg as Network, and the kernel's neighbour table to find MACs.
func Example() {
	var backend Backend      // appliance/guests
	network := &MemNetwork{} // netcfg in the daemon
	srv, err := New(Config{
		Listen:    ":8080", // netcfg DNATs the guest network's port 80 here
		ListenTLS: ":8443", CertFile: "/data/tls/portal.crt", KeyFile: "/data/tls/portal.key",
		PublicURL: "http://portal.deskgate.lan",
		Locations: map[string]Branding{
			"berlin": {Name: "Deskgate Berlin", PrimaryColor: "#0f766e", TermsVersion: "2026-01",
				TermsText: "Be nice.", Terms: map[string]string{"de": "Seien Sie nett."}, TimeZone: "Europe/Berlin"},
		},
		DefaultLocation: "berlin",
		TemplatesDir:    "/data/portal",
		CSRFKeyFile:     "/data/portal-csrf.key",
		OnboardURL:      func(memberID string) string { return "https://wifi.deskgate.example/onboard?m=" + memberID },
	}, backend, network, NeighborResolver{}, slog.Default().With("component", "portal"))
	if err != nil {
		panic(err)
	}
	// Announce srv.APIURL() in DHCP option 114.
	_ = srv.APIURL()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Run(ctx)
}
