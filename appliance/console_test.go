package appliance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/store"
)

// TestConsoleOnAdminListener: through the daemon's TCP admin listener the
// console needs no bearer token but its own session (a page without one
// redirects to the login form), the listener's Host and Origin checks
// still apply to it, and operator accounts change only over the unix
// socket, with bad input refused and nothing stored, every change audited,
// and only an argon2id hash at rest.
func TestConsoleOnAdminListener(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	token := startAdminHarness(t, h)
	base := "http://" + h.app.AdminAddr()
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := noFollow.Get(base + "/console/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
		t.Fatalf("dashboard without session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := adminDo(t, noFollow, base, "GET", "/console/login", "", "evil.example", ""); code != http.StatusForbidden {
		t.Errorf("console with a foreign Host: %d, want 403", code)
	}
	if code, _ := adminDo(t, noFollow, base, "POST", "/console/login", "", "", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("console POST from a foreign origin: %d, want 403", code)
	}

	ctx := context.Background()
	sock := admin.Dial(h.app.Config().Admin.Socket)
	tcp := admin.Dial(h.app.AdminAddr()).WithToken(token)
	add := map[string]string{"name": "frontdesk", "role": "operator", "password": consolePassword}
	if err := tcp.PostJSON(ctx, "/v1/operators", add, nil); err == nil || !strings.Contains(err.Error(), "unix socket") {
		t.Fatalf("operator add over TCP: %v, want a refusal", err)
	}
	for want, bad := range map[string]map[string]string{
		"password too short": {"name": "frontdesk", "role": "operator", "password": "short"},
		`role "root"`:        {"name": "frontdesk", "role": "root", "password": consolePassword},
		"2-32 characters":    {"name": "Front Desk", "role": "operator", "password": consolePassword},
	} {
		if err := sock.PostJSON(ctx, "/v1/operators", bad, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want an error saying %q", err, want)
		}
	}
	var ops []admin.OperatorView
	if err := sock.Get(ctx, "/v1/operators", nil, &ops); err != nil || len(ops) != 0 {
		t.Fatalf("bad input stored operators: %v %+v", err, ops)
	}
	if err := sock.PostJSON(ctx, "/v1/operators", add, nil); err != nil {
		t.Fatal(err)
	}
	if err := sock.PostJSON(ctx, "/v1/operators", add, nil); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second add: %v, want a refusal", err)
	}
	var op store.Operator
	_ = h.app.Store().View(func(tx *store.Tx) error { op, err = tx.GetOperator("frontdesk"); return err })
	if err != nil || !strings.HasPrefix(op.Hash, "$argon2id$") || strings.Contains(op.Hash, consolePassword) {
		t.Fatalf("stored operator %+v (%v)", op, err)
	}

	// The login works through the daemon; a password change ends the session.
	jar := newPortalClient(t, base)
	code, _ := jar.hc.Get(base + "/console/login")
	body := readBody(t, code)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("login page without token:\n%s", body)
	}
	r, err := jar.hc.PostForm(base+"/console/login", url.Values{"csrf": {m[1]}, "name": {"frontdesk"}, "password": {consolePassword}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/console/dashboard" {
		t.Fatalf("login: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r, err = jar.hc.Get(base + "/console/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, r); r.StatusCode != 200 || !strings.Contains(body, "No fleet update has been started.") || !strings.Contains(body, `id="self-update"`) {
		t.Fatalf("dashboard after login: %d, want the update card saying no fleet update was started:\n%s", r.StatusCode, body)
	}
	if err := sock.PostJSON(ctx, "/v1/operators/passwd", map[string]string{"name": "frontdesk", "password": "another password 2"}, nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := jar.hc.Get(base + "/console/dashboard"); r.StatusCode != http.StatusSeeOther {
		readBody(t, r)
		t.Fatalf("dashboard after a password change: %d, want the login again", r.StatusCode)
	} else {
		readBody(t, r)
	}
	if err := sock.PostJSON(ctx, "/v1/operators/remove", map[string]string{"name": "frontdesk"}, nil); err != nil {
		t.Fatal(err)
	}
	es, _ := h.app.Store().AuditTail(20)
	var actions []string
	for _, e := range es {
		if strings.HasPrefix(e.Action, "console.") {
			actions = append(actions, e.Action)
		}
	}
	if want := "console.operator_added console.login console.operator_password console.operator_removed"; strings.Join(actions, " ") != want {
		t.Errorf("audit %v, want %s", actions, want)
	}
}

const consolePassword = "front desk password 1"

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	r.Body.Close()
	return b.String()
}

// TestConsoleSelfSignedTLS: without admin.tls_cert_file the admin listener
// serves TLS with a self-signed certificate created on first start (key
// 0600) whose SHA-256 fingerprint deskgate status shows, keeps plain HTTP
// for loopback clients, sets the console's cookie Secure over TLS only,
// and keeps the certificate across restarts.
func TestConsoleSelfSignedTLS(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	h.start()
	waitFor(t, 5*time.Second, "admin listener", func() bool { return h.app.AdminAddr() != "" })
	var st admin.Status
	if err := admin.Dial(h.app.Config().Admin.Socket).Get(context.Background(), "/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Console == nil || !st.Console.SelfSigned || len(st.Console.Fingerprint) != 95 {
		t.Fatalf("status console %+v", st.Console)
	}
	var seen string
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			seen = strings.ToUpper(hex.EncodeToString(sum[:]))
			return nil
		}}}}
	resp, err := hc.Get("https://" + h.app.AdminAddr() + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || seen != strings.ReplaceAll(st.Console.Fingerprint, ":", "") {
		t.Fatalf("https: %d, served certificate %s, status says %s", resp.StatusCode, seen, st.Console.Fingerprint)
	}
	if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "Secure") {
		t.Errorf("login cookie over TLS without Secure: %q", c)
	}
	resp, err = http.Get("http://" + h.app.AdminAddr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain http from loopback: %v", err)
	}
	resp.Body.Close()
	fi, err := os.Stat(filepath.Join(h.app.Config().DataDir, admin.SelfSignedKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, fi)
	}
	h.stop()
	h.start()
	waitFor(t, 5*time.Second, "admin listener", func() bool { return h.app.AdminAddr() != "" })
	if st2 := h.app.consoleStatus(); st2 == nil || st2.Fingerprint != st.Console.Fingerprint {
		t.Fatalf("certificate changed across a restart: %+v", st2)
	}
}

// TestConsoleSearchIndexFollowsChanges: the member search's in-memory
// index sees a member renamed in OfficeRnD once the change is synced, and
// shows the decision in the words of deskgate explain.
func TestConsoleSearchIndexFollowsChanges(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	app := h.start()
	h.waitImport(30 * time.Second)
	b := consoleBackend{app}
	ctx := context.Background()
	rows, err := b.SearchMembers(ctx, "DIJKSTRA", 100)
	if err != nil || len(rows) != 1 || rows[0].Allowed || rows[0].Deny != "membership_ended" {
		t.Fatalf("search dijkstra: %v %+v", err, rows)
	}
	id := h.sim.Seeded().IDs["member:hotdesk-downtown"]
	if _, err := officernd.Update[officernd.Member](ctx, h.admin, "members", id, map[string]any{"name": "Augusta Ada King"}); err != nil {
		t.Fatal(err)
	}
	h.clock.Jump(time.Minute)
	if _, err := app.syncer.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "renamed member found", func() bool {
		rows, err := b.SearchMembers(ctx, "augusta", 100)
		return err == nil && len(rows) == 1 && rows[0].ID == id && rows[0].Allowed
	})
	if rows, _ := b.SearchMembers(ctx, "ada lovelace", 100); len(rows) != 0 {
		t.Fatalf("old name still found: %+v", rows)
	}
	if rows, _ := b.SearchMembers(ctx, "example", 3); len(rows) != 3 || rows[0].Name > rows[1].Name || rows[1].Name > rows[2].Name {
		t.Fatalf("limit and order: %+v", rows)
	}
}

// TestConsoleResetPassword: the console's password reset gives the member
// a new generated password, emailed (the old one stops working), and is
// audited with the operator; resend without reset keeps the password.
func TestConsoleResetPassword(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	app := h.start()
	h.waitImport(30 * time.Second)
	ctx := context.Background()
	ada := h.sim.Seeded().IDs["member:hotdesk-downtown"]
	ntHash := func() []byte {
		var ac model.Account
		_ = app.Store().View(func(tx *store.Tx) error { var err error; ac, err = tx.AccountOfMember(ada); return err })
		return ac.NTHash
	}
	mails := func() []string {
		if err := app.sender.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(h.dir + "/mailbox/*.eml")
		var out []string
		for _, f := range files {
			if b := qpDecode(readFile(t, f)); strings.Contains(b, "ada.lovelace@example.com>") || strings.Contains(b, "To: ada.lovelace@example.com") {
				out = append(out, b)
			}
		}
		return out
	}
	before, old := len(mails()), ntHash()
	b := consoleBackend{app}
	if err := b.ResendWelcome(ctx, "console:frontdesk", ada, false); err != nil {
		t.Fatal(err)
	}
	if got := mails(); len(got) != before+1 || !bytes.Equal(ntHash(), old) {
		t.Fatalf("resend: %d emails (want %d), password changed %v", len(got), before+1, !bytes.Equal(ntHash(), old))
	}
	if err := b.ResendWelcome(ctx, "console:frontdesk", ada, true); err != nil {
		t.Fatal(err)
	}
	got := mails()
	if len(got) != before+2 || bytes.Equal(ntHash(), old) {
		t.Fatalf("reset: %d emails (want %d), password changed %v", len(got), before+2, !bytes.Equal(ntHash(), old))
	}
	var pw string
	for _, m := range got {
		for _, l := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password:"); ok && !bytes.Equal(creds.NTHash(strings.TrimSpace(v)), old) {
				pw = strings.TrimSpace(v)
			}
		}
	}
	if pw == "" || !bytes.Equal(creds.NTHash(pw), ntHash()) {
		t.Fatalf("no email with the new password %q", pw)
	}
	es, _ := app.Store().AuditOf(ada, 10)
	var audited bool
	for _, e := range es {
		audited = audited || (e.Action == "account.password_reset" && e.Actor == "console:frontdesk" && !strings.Contains(e.Cause, pw))
	}
	if !audited {
		t.Errorf("reset not audited (without the password): %+v", es)
	}
	// A member without access gets nothing and nothing changes.
	if err := b.ResendWelcome(ctx, "console:frontdesk", h.sim.Seeded().IDs["member:expired"], true); err == nil {
		t.Error("reset for a member whose membership ended: no error")
	}
}
