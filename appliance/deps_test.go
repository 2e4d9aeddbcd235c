package appliance

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

type goPkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []goPkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "github.com/deskgate/deskgate/...").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go list: %v", err)
		}
		t.Skipf("go list unavailable: %v", err)
	}
	var pkgs []goPkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p goPkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const mod = "github.com/deskgate/deskgate/"

// TestDependencyRules enforces the arrows in DESIGN.md: leaves stay leaves,
// only cmd imports appliance, only the composition root (appliance itself)
// imports portal, portal and netcfg keep their libraries out.
func TestDependencyRules(t *testing.T) {
	pkgs := listPackages(t)
	leaves := map[string][]string{ // package -> project packages it may import
		"appliance/model":     nil,
		"appliance/store":     {"appliance/model", "internal/keyfile"},
		"appliance/policy":    {"appliance/model"},
		"appliance/creds":     {"appliance/model"},
		"appliance/officernd": nil,
		"appliance/notify":    {"appliance/model", "internal/atomicfile"},
		"appliance/config":    nil,
		"netcfg":              nil,
		// Test-only packages: no non-test code, so no imports; their
		// tests build and run the binaries.
		"internal/fleettest": nil,
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, mod)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			irel := strings.TrimPrefix(imp, mod)
			if irel == "appliance" && !strings.HasPrefix(rel, "cmd/") {
				t.Errorf("%s imports appliance; only cmd/* may", rel)
			}
			if allowed, ok := leaves[rel]; ok {
				okImp := false
				for _, a := range allowed {
					if a == irel {
						okImp = true
					}
				}
				if !okImp {
					t.Errorf("%s is a leaf package but imports %s", rel, irel)
				}
			}
			if strings.HasPrefix(rel, "appliance/") && strings.HasPrefix(irel, "portal") {
				t.Errorf("%s imports %s; appliance/* must not import portal", rel, irel)
			}
		}
		if strings.HasPrefix(rel, "portal") || rel == "netcfg" {
			for _, d := range p.Deps {
				for _, banned := range []string{"go.etcd.io/bbolt", "layeh.com/radius", "github.com/gorilla/websocket"} {
					if d == banned {
						t.Errorf("%s depends on %s", rel, banned)
					}
				}
				if strings.HasPrefix(rel, "portal") && (d == "github.com/vishvananda/netlink" || d == "github.com/coreos/go-iptables/iptables") {
					t.Errorf("%s depends on %s", rel, d)
				}
			}
		}
	}
}

// TestPackageDocs: every package says what it owns in a doc comment.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
		}
		if p.Name == "main" && !strings.HasPrefix(p.Doc, "Command ") {
			t.Errorf("%s: a command's doc should start with \"Command <name>\", got %q", p.ImportPath, p.Doc)
		}
	}
}
