package appliance

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
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

// allowedImports is every package of the module with the module packages it
// may import (its non-test imports), keeping the arrows in DESIGN.md pointing
// one way. A package missing here fails TestDependencyRules: declare a new
// package, and what it may depend on, when you add it.
var allowedImports = map[string][]string{
	// The composition root builds and wires everything.
	"appliance": {
		"appliance/access", "appliance/admin", "appliance/config", "appliance/console", "appliance/creds",
		"appliance/devices", "appliance/eap", "appliance/eap/certs", "appliance/eap/profile", "appliance/guests",
		"appliance/mirror", "appliance/model", "appliance/notify", "appliance/officernd",
		"appliance/onboard", "appliance/peer", "appliance/policy", "appliance/radius", "appliance/rollout", "appliance/store",
		"appliance/update", "internal/atomicfile", "internal/guestnet", "internal/keyfile", "netcfg", "portal",
	},
	"appliance/access":                {"appliance/config", "appliance/model", "appliance/policy", "appliance/store"},
	"appliance/admin":                 {"appliance/console", "appliance/model", "internal/atomicfile"},
	"appliance/config":                nil,
	"appliance/console":               {"appliance/model"},
	"appliance/creds":                 {"appliance/model"},
	"appliance/devices":               {"appliance/access", "appliance/admin", "appliance/config", "appliance/model", "appliance/store"},
	"appliance/eap":                   {"appliance/creds", "internal/rsasign"},
	"appliance/eap/certs":             {"internal/atomicfile"},
	"appliance/eap/internal/benchsrv": {"appliance/creds", "appliance/eap", "appliance/eap/certs"},
	"appliance/eap/profile":           nil,
	"appliance/guests":                {"appliance/model", "appliance/store", "internal/guestnet"},
	"appliance/mirror": {
		"appliance/access", "appliance/config", "appliance/creds", "appliance/model",
		"appliance/officernd", "appliance/store", "internal/atomicfile",
	},
	"appliance/model":                  nil,
	"appliance/notify":                 {"appliance/model", "internal/atomicfile"},
	"appliance/notify/notifytest":      nil,
	"appliance/officernd":              nil,
	"appliance/officernd/officerndsim": {"appliance/officernd"},
	"appliance/onboard": {
		"appliance/access", "appliance/admin", "appliance/config", "appliance/creds",
		"appliance/eap/certs", "appliance/eap/profile", "appliance/model", "appliance/store",
		"internal/keyfile",
	},
	"appliance/peer":          {"appliance/creds", "appliance/model", "appliance/store", "internal/atomicfile"},
	"appliance/policy":        {"appliance/model"},
	"appliance/radius":        {"appliance/eap", "appliance/model", "appliance/store"},
	"appliance/rollout":       {"appliance/admin", "appliance/peer", "appliance/update", "internal/atomicfile"},
	"appliance/store":         {"appliance/model", "internal/keyfile"},
	"appliance/update":        {"appliance/admin", "internal/atomicfile"},
	"appliance/update/vmtest": nil,
	"cmd/deskgate":            {"appliance/admin", "appliance/config", "appliance/update"},
	"cmd/deskgated":           {"appliance", "appliance/config", "internal/rsasign"},
	"cmd/officernd-sim":       {"appliance/officernd/officerndsim"},
	"cmd/radload":             {"appliance/creds", "appliance/model", "appliance/radius", "appliance/store"},
	"internal/atomicfile":     nil,
	"internal/cdp":            nil,
	"internal/e2e":            nil,
	"internal/fleettest":      nil, // tests only: they build and run the binaries
	"internal/guestnet":       nil,
	"internal/keyfile":        nil,
	"internal/rsasign":        nil,
	"internal/testepoch":      nil,
	"netcfg":                  nil,
	"portal":                  {"internal/guestnet"},
	"scripts":                 nil,
}

// TestDependencyRules enforces the arrows in DESIGN.md: every package
// imports only what allowedImports grants it (so only cmd/* imports
// appliance, leaves stay leaves, appliance/* never imports portal), the
// table names no package that is gone, and portal and netcfg keep bbolt,
// RADIUS and websockets (portal also netlink and iptables) out of their
// dependencies.
func TestDependencyRules(t *testing.T) {
	pkgs := listPackages(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, mod)
		seen[rel] = true
		allowed, ok := allowedImports[rel]
		if !ok {
			t.Errorf("%s is not declared in allowedImports (deps_test.go): add it with the module packages it may import", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			irel := strings.TrimPrefix(imp, mod)
			if !slices.Contains(allowed, irel) {
				t.Errorf("%s imports %s, which allowedImports does not grant it", rel, irel)
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
	for rel, allowed := range allowedImports {
		if !seen[rel] {
			t.Errorf("allowedImports declares %s, which is not a package of the module", rel)
		}
		for _, a := range allowed {
			if strings.HasPrefix(rel, "appliance/") && strings.HasPrefix(a, "portal") {
				t.Errorf("allowedImports lets %s import %s; appliance/* must not import portal", rel, a)
			}
			if a == "appliance" && !strings.HasPrefix(rel, "cmd/") {
				t.Errorf("allowedImports lets %s import appliance; only cmd/* may", rel)
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
