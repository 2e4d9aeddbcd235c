package config

import (
	"strings"
	"testing"
)

func TestFleetDoc(t *testing.T) {
	base := []byte("data_dir: /x\nplans:\n  - {plan: A, group: g}\ngroups:\n  - {name: g}\nradius:\n  auth_listen: [\"127.0.0.1:0\"]\n")
	sec, err := FleetSections(base)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(sec); !strings.Contains(s, "plans:") || !strings.Contains(s, "groups:") || strings.Contains(s, "radius") || strings.Contains(s, "data_dir") {
		t.Errorf("fleet sections:\n%s", s)
	}
	for _, bad := range []string{"radius:\n  clients: []\n", "- a\n", "", "plans: [\n", "roaming: {policy: all}\nsmtp: {host: x}\n"} {
		if err := CheckFleetDoc([]byte(bad)); err == nil {
			t.Errorf("CheckFleetDoc(%q) accepted", bad)
		}
	}
	if err := CheckFleetDoc([]byte("groups: [" + strings.Repeat("{name: x}, ", MaxFleetDoc/10) + "]")); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized doc: %v", err)
	}
	merged, err := WithFleet(base, []byte("groups:\n  - {name: g, max_devices: 7}\nroaming: {policy: all}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(merged)
	for _, want := range []string{"max_devices: 7", "policy: all", "plan: A", "data_dir: /x", "auth_listen"} {
		if !strings.Contains(s, want) {
			t.Errorf("merged lacks %q:\n%s", want, s)
		}
	}
	if _, err := WithFleet(base, []byte("data_dir: /elsewhere\n")); err == nil {
		t.Error("a per-box key was merged")
	}
}

// FuzzFleetDoc: a pushed fleet document (from another box or the CLI)
// never panics the checks; what WithFleet accepts merges into a mapping
// whose fleet sections are again a valid fleet document.
func FuzzFleetDoc(f *testing.F) {
	base := []byte("data_dir: /x\nplans:\n  - {plan: A, group: g}\ngroups:\n  - {name: g}\n")
	f.Add([]byte("groups:\n  - {name: g, max_devices: 7}\nroaming: {policy: all}\n"))
	f.Add([]byte("plans: &a [1]\nlocations: *a\n"))
	f.Add([]byte("radius: {}\n"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte("groups: !!binary aGk=\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if CheckFleetDoc(doc) != nil {
			return
		}
		merged, err := WithFleet(base, doc)
		if err != nil {
			return
		}
		sec, err := FleetSections(merged)
		if err != nil {
			t.Fatalf("merged document unreadable: %v\n%s", err, merged)
		}
		if err := CheckFleetDoc(sec); err != nil && len(sec) <= MaxFleetDoc {
			t.Fatalf("fleet sections of a merged document refused: %v\n%s", err, sec)
		}
		_, _ = Parse(merged, "")
	})
}
