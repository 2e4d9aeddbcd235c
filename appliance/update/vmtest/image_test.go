package vmtest

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

const member = "ada.lovelace@example.com"

var accepted = regexp.MustCompile(`Received Access-Accept`)

// TestImageBootsAndRefusesForeignBundle: the factory image boots under
// qemu, finds its config on the data partition, starts deskgated, imports
// the space and answers RADIUS from the host through the forwarded port; a
// bundle signed by a key the box does not trust is refused before anything
// is written (slot B and grubenv unchanged), and update status says why.
func TestImageBootsAndRefusesForeignBundle(t *testing.T) {
	a := image(t)
	b := newBox(t, a, "60s")
	slotB := readPartition(t, b.disk, 3)
	envBefore := grubenv(t, b.disk)

	v := b.boot()
	// Boot to the first RADIUS answer (any answer: before the import an
	// unknown user gets an Access-Reject).
	var first time.Duration
	for deadline := time.Now().Add(4 * time.Minute); first == 0; {
		if out, _ := v.radiusTry("probe@example.com", "x", 1, 3); strings.Contains(out, "Received Access-") {
			first = time.Since(v.booted)
		} else if time.Now().After(deadline) {
			t.Fatalf("no RADIUS answer within 4 minutes of power-on:\n%s", v.diag())
		}
	}
	v.waitShell()
	ready := v.waitReady(3 * time.Minute)
	pw := v.memberPassword(member)
	out, err := v.radius(member, pw)
	if err != nil || !accepted.MatchString(out) {
		t.Fatalf("radclient from the host: %v\n%s", err, out)
	}
	t.Logf("BENCH boot_to_first_radius_answer_seconds %.1f", first.Seconds())
	t.Logf("BENCH boot_to_ready_seconds %.1f (import from the simulator done)", ready.Seconds())
	t.Logf("BENCH bundle_bytes %d", a.bundleSize)
	if out, _ := v.radius(member, pw+"x"); !strings.Contains(out, "Access-Reject") {
		t.Fatalf("a wrong password got no Access-Reject:\n%s", out)
	}

	out, rc := v.sh(fmt.Sprintf("deskgate update install -no-reboot http://%s/foreign.raucb", guestBundles), 3*time.Minute)
	if rc == 0 {
		t.Fatalf("a bundle signed by another key was installed:\n%s", out)
	}
	if !strings.Contains(out, "bundle refused, nothing written") {
		t.Fatalf("install of a foreign bundle: want a refusal, got:\n%s", out)
	}
	st := v.updateStatus()
	if !regexp.MustCompile(`last attempt: .*failed: bundle refused, nothing written: .*signature`).MatchString(st) {
		t.Fatalf("update status does not say why the bundle was refused:\n%s", st)
	}
	v.poweroff()
	if !bytes.Equal(slotB, readPartition(t, b.disk, 3)) {
		t.Fatal("slot B changed although the bundle was refused")
	}
	envAfter := grubenv(t, b.disk)
	for _, k := range []string{"ORDER", "B_OK"} {
		if envAfter[k] != envBefore[k] {
			t.Fatalf("grubenv %s changed from %q to %q although the bundle was refused", k, envBefore[k], envAfter[k])
		}
	}
}

// TestImageUpdateAndRollback: A→B with a good bundle, as a fleet rollout
// (`deskgate fleet update`, one box), keeps the database and config and
// reports the new version after the reboot, in update status and in fleet
// update status; then a bundle
// whose deskgated exits at start is tried in A, fails the health gate,
// and the box falls back to B on its own, with update status saying why.
func TestImageUpdateAndRollback(t *testing.T) {
	a := image(t)
	b := newBox(t, a, "45s")

	v := b.boot()
	v.waitShell()
	v.waitReady(3 * time.Minute)
	pw := v.memberPassword(member)
	v.mustSh("echo kept >/data/config/marker2", 10*time.Second)
	welcomes := `grep -l 'To: .*` + member + `' /data/deskgate/mailbox/*.eml | wc -l`
	mails := strings.TrimSpace(v.mustSh(welcomes, 10*time.Second))

	// A→B as a fleet rollout driven by deskgated (a fleet of this one box,
	// its own canary): the bundle is verified by RAUC, cut into chunks on
	// the data partition, reassembled in /tmp and installed through
	// appliance/update, then the box reboots.
	v.mustSh(fmt.Sprintf("wget -q -O /tmp/good.raucb http://%s/good.raucb", guestBundles), 3*time.Minute)
	v.mustSh("deskgate fleet init --id vm-a", time.Minute)
	t0 := time.Now()
	out := v.mustSh("deskgate fleet update /tmp/good.raucb", 5*time.Minute)
	if !regexp.MustCompile(`rollout \S+ of v2 started: \d+ chunks; canary vm-a, then no other box`).MatchString(out) {
		t.Fatalf("fleet update: %s", out)
	}
	v.waitExit(4 * time.Minute)
	install := time.Since(t0)

	// B boots; the gate marks it good once deskgated serves.
	v = b.boot()
	v.waitShell()
	if !strings.Contains(v.console(), "in slot B") {
		t.Fatalf("after the update the box did not boot slot B:\n%s", tail(v.console(), 2000))
	}
	v.waitReady(3 * time.Minute)
	st := v.waitGate("v2")
	if !regexp.MustCompile(`(?m)^running v2 in slot B`).MatchString(st) || !regexp.MustCompile(`last attempt: v2 .*: good`).MatchString(st) {
		t.Fatalf("update status after A→B:\n%s", st)
	}
	if ver := v.mustSh(`deskgate -json status | sed -n 's/^ *"version": "\(.*\)",$/\1/p'`, 30*time.Second); strings.TrimSpace(ver) != "v2" {
		t.Fatalf("deskgated reports version %q after the update, want v2", ver)
	}
	var fst string
	for i := 0; i < 30; i++ {
		if fst = v.mustSh("deskgate fleet update status", time.Minute); regexp.MustCompile(`(?m)^rollout \S+: v2 from vm-a, .*: done$`).MatchString(fst) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if !regexp.MustCompile(`(?m)^rollout \S+: v2 from vm-a, .*: done$`).MatchString(fst) || !regexp.MustCompile(`(?m)^vm-a +good +(\d+)/\d+ +v2 `).MatchString(fst) {
		t.Fatalf("fleet update status after the reboot:\n%s", fst)
	}
	chunks := ""
	for i := 0; i < 10 && chunks != "0"; i++ {
		time.Sleep(time.Second)
		chunks = strings.TrimSpace(v.mustSh("ls /data/deskgate/rollout/chunks | wc -l", 10*time.Second))
	}
	if chunks != "0" {
		t.Fatalf("%s chunks left on the data partition after the rollout", chunks)
	}
	if got := v.mustSh("cat /data/config/marker /data/config/marker2", 10*time.Second); !strings.Contains(got, "before the first boot") || !strings.Contains(got, "kept") {
		t.Fatalf("data partition not kept: %q", got)
	}
	if got := strings.TrimSpace(v.mustSh(welcomes, 10*time.Second)); got != mails {
		t.Fatalf("emails to %s: %s before the update, %s after (the database was not kept?)", member, mails, got)
	}
	if out, err := v.radius(member, pw); err != nil || !accepted.MatchString(out) {
		t.Fatalf("the member's password no longer works after the update: %v\n%s", err, out)
	}
	t.Logf("rauc status after A→B (the shape appliance/update parses):\n%s", v.mustSh("rauc status --detailed --output-format=json 2>/dev/null", time.Minute))
	t.Logf("BENCH install_seconds %.1f (fleet update of one box: verify, chunk, reassemble, write, reboot into B)", install.Seconds())

	// v3's deskgated exits at start: A is tried, fails the gate, and the
	// box falls back to B by itself.
	t0 = time.Now()
	out = v.mustSh(fmt.Sprintf("deskgate update install http://%s/broken.raucb", guestBundles), 5*time.Minute)
	if !strings.Contains(out, "installed v3 into slot A") {
		t.Fatalf("install: %s", out)
	}
	v.waitExit(2 * time.Minute)
	v = b.boot()
	v.wait(regexp.MustCompile(`rcS: deskgate v3 in slot A`), 0, 4*time.Minute)
	v.waitExit(3 * time.Minute) // the gate gives up and reboots
	v = b.boot()
	v.waitShell()
	if !strings.Contains(v.console(), "rcS: deskgate v2 in slot B") {
		t.Fatalf("after the failed gate the box did not fall back to B:\n%s", tail(v.console(), 2000))
	}
	rollback := time.Since(t0)
	v.waitReady(3 * time.Minute)
	st = v.waitGate("v3")
	for _, want := range []string{
		`(?m)^running v2 in slot B`,
		`last attempt: v3 .*: failed: deskgated was not healthy within 45s: .*deskgated exited with status 3.*; rolled back to slot B`,
	} {
		if !regexp.MustCompile(want).MatchString(st) {
			t.Fatalf("update status after the rollback does not match %q:\n%s", want, st)
		}
	}
	if out, err := v.radius(member, pw); err != nil || !accepted.MatchString(out) {
		t.Fatalf("RADIUS after the rollback: %v\n%s", err, out)
	}
	t.Logf("BENCH rollback_seconds %.1f (install v3, boot A, gate deadline 45s, reboot, B serving)", rollback.Seconds())
}

// TestImagePowerCutDuringInstall: qemu is killed while RAUC writes slot B;
// the box boots A again with its data intact, and update status says the
// install was interrupted.
func TestImagePowerCutDuringInstall(t *testing.T) {
	a := image(t)
	b := newBox(t, a, "60s")
	v := b.boot()
	v.waitShell()
	v.waitReady(3 * time.Minute)
	pw := v.memberPassword(member)
	// Start the install and cut the power as soon as RAUC has begun to
	// write slot B (its squashfs magic appears at the slot's start).
	from := len(v.console())
	cmd := fmt.Sprintf(`(deskgate update install -no-reboot http://%s/good.raucb >/run/install.log 2>&1 &); `+
		`while [ "$(head -c 4 /dev/disk/by-partuuid/d35c9a7e-03)" != hsqs ]; do sleep 0.05; done; echo RAUC_WRITING`+"\n", guestBundles)
	if _, err := v.conn.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	v.wait(regexp.MustCompile(`\nRAUC_WRITING`), from, 4*time.Minute)
	v.kill()
	// What reached the disk depends on the guest's write-back: either
	// way slot B is not bootable (RAUC marked it bad before writing).
	t.Logf("slot B's start on disk after the power cut: %q", readPartition(t, b.disk, 3)[:4])
	if env := grubenv(t, b.disk); env["B_OK"] != "0" {
		t.Fatalf("grubenv after the power cut: B_OK=%q, want 0", env["B_OK"])
	}

	v = b.boot()
	v.waitShell()
	if !strings.Contains(v.console(), "in slot A") {
		t.Fatalf("after the power cut the box did not boot slot A:\n%s", tail(v.console(), 2000))
	}
	v.waitReady(3 * time.Minute)
	if got := v.mustSh("cat /data/config/marker", 10*time.Second); !strings.Contains(got, "before the first boot") {
		t.Fatalf("data partition damaged: %q", got)
	}
	st := v.waitGate("v2")
	if !regexp.MustCompile(`last attempt: v2 .*: failed: the install into slot B was interrupted`).MatchString(st) {
		t.Fatalf("update status after the power cut:\n%s", st)
	}
	if out, err := v.radius(member, pw); err != nil || !accepted.MatchString(out) {
		t.Fatalf("RADIUS after the power cut: %v\n%s", err, out)
	}
}

// TestImageFirstBoot: the factory image with its data partition as built
// (empty) boots, writes the first-boot default config, and deskgated
// starts with it and stays up (no crash loop); `deskgate doctor` says what
// to fill in. The gateway's tools run on the image's kernel: iptables (nf_tables
// backend) adds and lists a rule, ipset creates a set, tc sets an htb
// qdisc, dnsmasq prints its version.
func TestImageFirstBoot(t *testing.T) {
	a := image(t)
	b := newEmptyBox(t, a)
	v := b.boot()
	v.waitShell()
	if !strings.Contains(v.console(), "rcS: first boot: wrote /data/config/deskgate.yaml") {
		t.Fatalf("rcS did not write the first-boot config:\n%s", tail(v.console(), 2000))
	}
	var st string
	for deadline := time.Now().Add(2 * time.Minute); ; {
		out, rc := v.sh("deskgate status", time.Minute)
		if rc == 0 {
			st = out
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deskgated's API does not answer with the first-boot config:\n%s\n%s", out, v.diag())
		}
		time.Sleep(time.Second)
	}
	doc, rc := v.sh("deskgate doctor", 2*time.Minute)
	if rc == 0 {
		t.Fatalf("doctor passes with the first-boot config:\n%s", doc)
	}
	for _, want := range []string{
		`\[FAIL\] first-boot config +officernd.client_id / org_slug are still not-configured`,
		`fix: edit /data/config/deskgate.yaml: set officernd.client_id and org_slug, write the client secret into the officernd.client_secret file, list your access points under radius.clients`,
		`no NAS configured under radius.clients`,
	} {
		if !regexp.MustCompile(want).MatchString(doc) {
			t.Fatalf("doctor with the first-boot config does not say %q:\n%s\nstatus:\n%s", want, doc, st)
		}
	}
	tools := []struct{ cmd, want string }{
		{"iptables -V", `iptables v\S+ \(nf_tables\)`},
		{"iptables -A INPUT -s 192.0.2.7 -j DROP && iptables -S INPUT && iptables -D INPUT -s 192.0.2.7 -j DROP", `-A INPUT -s 192.0.2.7/32 -j DROP`},
		{"iptables -t nat -L POSTROUTING -n", `Chain POSTROUTING \(policy ACCEPT\)`},
		{"ipset create dgtest hash:ip && ipset add dgtest 192.0.2.8 && ipset list dgtest && ipset destroy dgtest", `(?s)Type: hash:ip.*192\.0\.2\.8`},
		// The console's busybox sh runs its own tc applet for a bare "tc"
		// (standalone shell); iproute2's is /usr/sbin/tc.
		{"/usr/sbin/tc -V", `iproute2`},
		{"/usr/sbin/tc qdisc add dev lo root handle 1: htb default 10 && /usr/sbin/tc qdisc show dev lo && /usr/sbin/tc qdisc del dev lo root", `qdisc htb 1: root`},
		{"dnsmasq --version", `Dnsmasq version`},
		// The shipped daemon signs RSA through OpenSSL (internal/rsasign).
		{"deskgated -version", `rsa signatures: openssl \(OpenSSL 3\.`},
	}
	for _, tc := range tools {
		out, rc := v.sh(tc.cmd+" 2>&1", time.Minute)
		if rc != 0 || !regexp.MustCompile(tc.want).MatchString(out) {
			t.Fatalf("%s: exit %d, want %q:\n%s", tc.cmd, rc, tc.want, out)
		}
	}
	// Still the first start of deskgated: the supervisor counts each one.
	if out := strings.TrimSpace(v.mustSh("cat /run/deskgate/starts; cat /run/deskgate/last-exit 2>/dev/null; true", 10*time.Second)); out != "1" {
		t.Fatalf("deskgated restarted with the first-boot config (starts, last exit):\n%s\n%s", out, v.diag())
	}
	t.Logf("BENCH first_boot_to_doctor_seconds %.1f", time.Since(v.booted).Seconds())
	v.poweroff()
}
