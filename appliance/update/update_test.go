package update

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/internal/testepoch"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func newTest(t *testing.T) (*Updater, *Fake, string) {
	t.Helper()
	dir := t.TempDir()
	f := NewFake("deskgate-x86_64", "fleet-key", "v1")
	f.Boot()
	c := &clock{t: testepoch.Epoch()}
	u := &Updater{Backend: f, Dir: filepath.Join(dir, "update"), Now: c.now, RunningVersion: "v1"}
	return u, f, dir
}

func writeBundle(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var healthy Health = func(context.Context) error { return nil }

func TestInstallGateGood(t *testing.T) {
	u, f, dir := newTest(t)
	ctx := context.Background()
	// First boot of the factory image: marked good at once.
	if _, err := u.Gate(ctx, healthy, time.Second, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a, err := u.Install(ctx, writeBundle(t, dir, "v2.raucb", "deskgate-x86_64 v2 fleet-key"), true)
	if err != nil {
		t.Fatal(err)
	}
	if a.To != "B" || a.Version != "v2" || a.Result != Rebooting || f.Reboots != 1 {
		t.Fatalf("install: %+v, reboots %d", a, f.Reboots)
	}
	if got := f.Boot(); got != "B" {
		t.Fatalf("booted %s after install, want B", got)
	}
	res, err := u.Gate(ctx, healthy, time.Second, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decided == nil || res.Decided.Result != Good || res.Rebooting {
		t.Fatalf("gate: %+v", res)
	}
	r, err := u.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Slot("B")
	if r.Booted != "B" || !b.Good || b.Version != "v2" || r.Pending != nil || r.Last.Result != Good {
		t.Fatalf("status: %+v", r)
	}
	// A normal reboot afterwards stays in B (marked good again at boot).
	if got := f.Boot(); got != "B" {
		t.Fatalf("reboot: %s", got)
	}
	if _, err := u.Gate(ctx, func(context.Context) error { return errors.New("not ready") }, 10*time.Millisecond, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if f.Reboots != 1 || !f.OK["B"] || f.Try["B"] {
		t.Fatalf("a normal boot must not be gated: reboots %d, B ok=%v try=%v", f.Reboots, f.OK["B"], f.Try["B"])
	}
}

func TestGateRollsBackUnhealthySlot(t *testing.T) {
	u, f, dir := newTest(t)
	ctx := context.Background()
	if _, err := u.Gate(ctx, healthy, time.Second, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Install(ctx, writeBundle(t, dir, "v3.raucb", "deskgate-x86_64 v3 fleet-key"), true); err != nil {
		t.Fatal(err)
	}
	f.Boot()
	res, err := u.Gate(ctx, func(context.Context) error { return errors.New("deskgated exited with status 3") }, 30*time.Millisecond, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Rebooting || res.Decided.Result != Failed || !strings.Contains(res.Decided.Reason, "deskgated exited with status 3") ||
		!strings.Contains(res.Decided.Reason, "rolled back to slot A") {
		t.Fatalf("gate: %+v %+v", res, res.Decided)
	}
	if f.OK["B"] || f.Reboots != 2 {
		t.Fatalf("a slot that failed its gate must be marked bad and the box rebooted: B ok=%v, reboots %d", f.OK["B"], f.Reboots)
	}
	if got := f.Boot(); got != "A" {
		t.Fatalf("after a failed gate the box booted %s, want A", got)
	}
	if _, err := u.Gate(ctx, healthy, time.Second, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r, _ := u.Status(ctx)
	if r.Booted != "A" || r.Last == nil || r.Last.Version != "v3" || r.Last.Result != Failed {
		t.Fatalf("status after rollback: %+v last %+v", r, r.Last)
	}
}

func TestGateBootFailedBeforeGate(t *testing.T) {
	u, f, dir := newTest(t)
	ctx := context.Background()
	if _, err := u.Install(ctx, writeBundle(t, dir, "v2.raucb", "deskgate-x86_64 v2 fleet-key"), true); err != nil {
		t.Fatal(err)
	}
	f.Boot() // B: the kernel panics before the gate runs
	if got := f.Boot(); got != "A" {
		t.Fatalf("GRUB fallback: %s", got)
	}
	res, err := u.Gate(ctx, healthy, time.Second, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decided == nil || res.Decided.Result != Failed || !strings.Contains(res.Decided.Reason, "slot B never came up") {
		t.Fatalf("gate: %+v", res.Decided)
	}
}

func TestInstallInterrupted(t *testing.T) {
	u, f, dir := newTest(t)
	ctx := context.Background()
	f.FailInstall = errors.New("power cut")
	if _, err := u.Install(ctx, writeBundle(t, dir, "v2.raucb", "deskgate-x86_64 v2 fleet-key"), true); err == nil {
		t.Fatal("install succeeded")
	}
	// A power cut leaves the attempt as "installing": simulate that state.
	st, _ := u.LoadState()
	a := *st.Last
	a.Result, a.Reason, a.Finished = Installing, "", time.Time{}
	if err := u.saveState(State{Pending: &a}); err != nil {
		t.Fatal(err)
	}
	if got := f.Boot(); got != "A" {
		t.Fatalf("booted %s after an interrupted install", got)
	}
	res, err := u.Gate(ctx, healthy, time.Second, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decided == nil || !strings.Contains(res.Decided.Reason, "interrupted") {
		t.Fatalf("gate: %+v", res.Decided)
	}
}

func TestInstallRefusesForeignBundle(t *testing.T) {
	u, f, dir := newTest(t)
	ctx := context.Background()
	for _, c := range [][2]string{
		{"foreign", "deskgate-x86_64 v2 someone-else"},
		{"arm", "deskgate-rpi4_64 v2 fleet-key"},
	} {
		name := c[0]
		_, err := u.Install(ctx, writeBundle(t, dir, name, c[1]), true)
		if err == nil || !strings.Contains(err.Error(), "refused, nothing written") {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
	if f.Writes != 0 || f.Reboots != 0 || f.Version["B"] != "" || f.Order[0] != "A" {
		t.Fatalf("a refused bundle changed the box: %+v", f)
	}
	r, _ := u.Status(ctx)
	if r.Last == nil || r.Last.Result != Failed || !strings.Contains(r.Last.Reason, "is for \"deskgate-rpi4_64\"") {
		t.Fatalf("status: %+v", r.Last)
	}
}

func TestInstallFromURL(t *testing.T) {
	u, f, _ := newTest(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2.raucb" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("deskgate-x86_64 v2 fleet-key"))
	}))
	defer srv.Close()
	if _, err := u.Install(context.Background(), srv.URL+"/missing.raucb", false); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing bundle: %v", err)
	}
	a, err := u.Install(context.Background(), srv.URL+"/v2.raucb", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != "v2" || f.Version["B"] != "v2" || f.Reboots != 0 {
		t.Fatalf("install from URL: %+v", a)
	}
	if _, err := os.Stat(filepath.Join(u.Dir, "download.raucb")); !os.IsNotExist(err) {
		t.Fatalf("the download was not removed: %v", err)
	}
	// A second install while the first waits for its reboot is refused.
	if _, err := u.Install(context.Background(), srv.URL+"/v2.raucb", false); !errors.Is(err, ErrBusy) {
		t.Fatalf("second install: %v", err)
	}
}

func TestParseRaucStatus(t *testing.T) {
	b, err := os.ReadFile("testdata/rauc-status.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseRaucStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Slot("A")
	bb, _ := s.Slot("B")
	if s.Booted != "B" || s.Primary != "B" || s.Compatible != "deskgate-x86_64" || !bb.Booted || !bb.Good || bb.Version != "v2" || a.Booted || bb.Installed.IsZero() {
		t.Fatalf("parsed: %+v", s)
	}
	if _, err := parseRaucStatus([]byte(`{"slots":[]}`)); err == nil {
		t.Fatal("no slots accepted")
	}
}
