package radius

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestVendorGolden checks, per vendor profile, the reply attributes as
// Explain renders them and as radclient decodes the real reply with
// FreeRADIUS's dictionaries, against testdata/vendor-<name>.golden.
func TestVendorGolden(t *testing.T) {
	t.Parallel()
	for _, vendor := range []string{VendorWISPr, VendorMikroTik, VendorUbiquiti, VendorCisco} {
		t.Run(vendor, func(t *testing.T) {
			cs := defaultClients()
			cs[0].Vendor = vendor
			e := startServer(t, cs, func(c *Config) {
				c.StaticPools = map[string]netip.Prefix{"loc-a": netip.MustParsePrefix("10.20.0.0/24")}
			})
			s := hotDesk("sam", "m-sam", "pw-sam")
			s.Decision.StaticIP = true
			s.Decision.PlanName = "Dedicated Desk"
			s.Decision.Group = "dedicated"
			e.dir.Put(s)

			var got strings.Builder
			got.WriteString("# vendor profile " + vendor + ": member with VLAN 100, 50/10 Mbit/s, 12 h sessions, static IP\n")
			got.WriteString("-- radclient --\n")
			if _, err := os.Stat("/usr/bin/radclient"); err == nil || os.Getenv("CI") == "true" {
				r := radclient(t, e.auth, "auth", testSecret, `User-Name = "sam"`, `User-Password = "pw-sam"`, `Message-Authenticator = 0x00`)
				if r.Code != "Access-Accept" {
					t.Fatalf("code %q\n%s", r.Code, r.Out)
				}
				for _, a := range r.Attrs {
					if a[0] == "Message-Authenticator" {
						a[1] = "<per reply>"
					}
					got.WriteString(a[0] + " = " + a[1] + "\n")
				}
			} else {
				t.Skip("radclient not installed")
			}
			got.WriteString("-- explain --\n")
			res, err := e.srv.Explain(context.Background(), "sam", "ap-alpha")
			if err != nil {
				t.Fatal(err)
			}
			got.WriteString(res.String())

			path := filepath.Join("testdata", "vendor-"+vendor+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestVendorGolden -update)", err)
			}
			if d := cmp.Diff(string(want), got.String()); d != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, d)
			}
		})
	}
}
