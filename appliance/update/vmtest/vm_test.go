package vmtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The guest reaches two host services through qemu's user-mode network:
// the OfficeRnD simulator and a web server with the bundles, each relayed
// to the host's loopback by a copy of this test binary that qemu starts per
// connection (guestfwd cmd). The guest has an address in 10.0.2.0/24 and
// no default route, so nothing leaves that subnet; restrict=on would be
// tighter, but libslirp then drops the guest's UDP replies to hostfwd
// (RADIUS answers never reach the host: seen with qemu 7.2).
const (
	guestSim     = "10.0.2.100"
	guestBundles = "10.0.2.101"
	relayEnv     = "DG_VMTEST_RELAY"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(relayEnv); addr != "" {
		os.Exit(relay(addr))
	}
	os.Exit(m.Run())
}

// relay copies stdin/stdout to a TCP connection (one guest connection).
func relay(addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 1
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, c)
		close(done)
	}()
	_, _ = io.Copy(c, os.Stdin)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
	return 0
}

func root() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "../../.."))
}

// need fails (under CI) or skips the test when something is missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (scripts/install-test-deps.sh installs the tools)", what)
	}
	t.Skip(what)
}

func requireTools(t *testing.T) {
	t.Helper()
	need(t, os.Geteuid() == 0, "the image tests need root (loop-free, but the image build writes root-owned files)")
	for _, tool := range []string{"qemu-system-x86_64", "rauc", "debugfs", "genimage", "mksquashfs", "unsquashfs", "grub-mkimage", "grub-editenv", "dbus-daemon", "busybox", "radclient", "mkfs.ext4", "openssl", "cpio"} {
		_, err := exec.LookPath(tool)
		if err != nil {
			_, err = exec.LookPath("/usr/sbin/" + tool)
		}
		need(t, err == nil, tool+" is missing")
	}
}

// artifacts are built once per input hash and shared by every test (and
// by later runs while the inputs stay the same).
type artifacts struct {
	dir        string
	disk       string // factory image, version v1
	good       string // bundle v2 (same system, deskgated built as v2)
	broken     string // bundle v3 whose deskgated exits at start
	foreign    string // bundle v2 signed by a key the box does not trust
	buildTime  time.Duration
	bundleSize int64
}

var (
	buildOnce sync.Once
	built     *artifacts
	buildErr  error
)

func image(t *testing.T) *artifacts {
	t.Helper()
	requireTools(t)
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// inputsHash covers everything that goes into the image.
func inputsHash() (string, error) {
	h := sha256.New()
	r := root()
	for _, dir := range []string{"buildroot", "scripts/image", "cmd", "appliance", "internal", "netcfg", "portal"} {
		err := filepath.WalkDir(filepath.Join(r, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %d\n", p, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		b, _ := os.ReadFile(filepath.Join(r, f))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func run(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func build() (*artifacts, error) {
	hash, err := inputsHash()
	if err != nil {
		return nil, fmt.Errorf("hashing the image inputs: %w", err)
	}
	dir := filepath.Join(os.TempDir(), "deskgate-imagetest", hash)
	a := &artifacts{
		dir:     dir,
		disk:    filepath.Join(dir, "image", "disk.img"),
		good:    filepath.Join(dir, "good.raucb"),
		broken:  filepath.Join(dir, "broken.raucb"),
		foreign: filepath.Join(dir, "foreign.raucb"),
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		fi, _ := os.Stat(a.good)
		a.bundleSize = fi.Size()
		return a, nil
	}
	// One cached build at a time: drop those of other inputs.
	if old, err := filepath.Glob(filepath.Join(filepath.Dir(dir), "*")); err == nil {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	t0 := time.Now()
	r := root()
	board := filepath.Join(r, "buildroot/board/deskgate")
	keys := filepath.Join(dir, "keys")
	// The test's own update keys (never committed): the image trusts keys/.
	if err := run(r, nil, filepath.Join(board, "mkkeys.sh"), keys); err != nil {
		return nil, err
	}
	env := []string{"VERSION=v1", "DESKGATE_KEYS_DIR=" + keys, "DESKGATE_NO_BUNDLE=1"}
	if err := run(r, env, filepath.Join(r, "scripts/image/build.sh"), filepath.Join(dir, "image")); err != nil {
		return nil, err
	}
	// v2 and the broken v3: the factory root with another deskgated.
	bin := filepath.Join(dir, "bin")
	if err := run(r, []string{"DESKGATE_OPENSSL=1", "TAGS=timetzdata", "LDFLAGS=-s -w -X github.com/deskgate/deskgate/appliance.Version=v2"},
		filepath.Join(r, "scripts/gobuild.sh"), "-trimpath", "-o", filepath.Join(bin, "deskgated"), "./cmd/deskgated"); err != nil {
		return nil, err
	}
	brokenBin := filepath.Join(dir, "broken-deskgated")
	if err := os.WriteFile(brokenBin, []byte("#!/bin/sh\necho 'deskgated: this build fails at start (rollback test)' >&2\nexit 3\n"), 0o755); err != nil {
		return nil, err
	}
	rootfs := filepath.Join(dir, "image", "rootfs.squashfs")
	repack := func(name, version, deskgated string) (string, error) {
		tree := filepath.Join(dir, name+".tree")
		out := filepath.Join(dir, name+".squashfs")
		if err := run(dir, nil, "unsquashfs", "-q", "-n", "-d", tree, rootfs); err != nil {
			return "", err
		}
		defer os.RemoveAll(tree)
		b, err := os.ReadFile(deskgated)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tree, "usr/bin/deskgated"), b, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tree, "etc/deskgate/version"), []byte(version+"\n"), 0o644); err != nil {
			return "", err
		}
		if err := run(dir, nil, "mksquashfs", tree, out, "-comp", "gzip", "-all-root", "-noappend", "-quiet"); err != nil {
			return "", err
		}
		return out, nil
	}
	mkbundle := filepath.Join(board, "mkbundle.sh")
	goodRoot, err := repack("good", "v2", filepath.Join(bin, "deskgated"))
	if err != nil {
		return nil, err
	}
	if err := run(dir, []string{"DESKGATE_KEYS_DIR=" + keys}, mkbundle, goodRoot, "v2", a.good); err != nil {
		return nil, err
	}
	brokenRoot, err := repack("broken", "v3", brokenBin)
	if err != nil {
		return nil, err
	}
	if err := run(dir, []string{"DESKGATE_KEYS_DIR=" + keys}, mkbundle, brokenRoot, "v3", a.broken); err != nil {
		return nil, err
	}
	other := filepath.Join(dir, "other-keys")
	if err := run(r, nil, filepath.Join(board, "mkkeys.sh"), other); err != nil {
		return nil, err
	}
	if err := run(dir, []string{"DESKGATE_KEYS_DIR=" + other}, mkbundle, goodRoot, "v2", a.foreign); err != nil {
		return nil, err
	}
	fi, err := os.Stat(a.good)
	if err != nil {
		return nil, err
	}
	a.bundleSize = fi.Size()
	a.buildTime = time.Since(t0)
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o600); err != nil {
		return nil, err
	}
	return a, nil
}

// partition returns the byte offset and size of MBR partition n (1-based).
func partition(disk string, n int) (int64, int64, error) {
	f, err := os.Open(disk)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := io.ReadFull(f, mbr); err != nil {
		return 0, 0, err
	}
	e := mbr[446+16*(n-1):]
	start := int64(binary.LittleEndian.Uint32(e[8:]))
	size := int64(binary.LittleEndian.Uint32(e[12:]))
	if size == 0 {
		return 0, 0, fmt.Errorf("%s: partition %d is empty", disk, n)
	}
	return start * 512, size * 512, nil
}

// readPartition returns partition n's bytes.
func readPartition(t *testing.T, disk string, n int) []byte {
	t.Helper()
	off, size, err := partition(disk, n)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// grubenv reads the boot partition's grubenv from the disk (VM stopped).
func grubenv(t *testing.T, disk string) map[string]string {
	t.Helper()
	boot := filepath.Join(t.TempDir(), "boot.ext2")
	if err := os.WriteFile(boot, readPartition(t, disk, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("debugfs", "-R", "cat /grub/grubenv", boot).Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	return env
}

// box is one test's disk with its data partition seeded: a config that
// points at the simulator, the RADIUS secret, a static address, and a
// short health-gate deadline.
type box struct {
	t        *testing.T
	disk     string
	secret   string
	simAddr  string
	bundles  string // host address of the bundle server
	consoleF string
}

func newBox(t *testing.T, a *artifacts, gateDeadline string) *box {
	t.Helper()
	dir := t.TempDir()
	b := &box{t: t, disk: filepath.Join(dir, "disk.img"), secret: "vmtest-radius-secret", consoleF: filepath.Join(dir, "console.log")}
	if err := run(dir, nil, "cp", "--sparse=always", a.disk, b.disk); err != nil {
		t.Fatal(err)
	}
	sim := startSim(t)
	caPEM := ""
	b.simAddr, caPEM = tlsFront(t, sim)
	b.bundles = serveBundles(t, filepath.Dir(a.good))

	seed := filepath.Join(dir, "seed")
	cfg := filepath.Join(seed, "config")
	if err := os.MkdirAll(filepath.Join(cfg, "ca-certificates"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "ca-certificates", "test-ca.pem"), []byte(caPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"officernd.secret": "deskgate-demo-secret\n",
		"radius.secret":    b.secret + "\n",
		"network":          "IFACE=eth0 ADDRESS=10.0.2.15/24\n",
		"update.env":       "DEADLINE=" + gateDeadline + "\n",
		"marker":           "data written before the first boot\n",
		"deskgate.yaml": `data_dir: /data/deskgate
log: {level: info}
admin: {listen: "127.0.0.1:8417", socket: /run/deskgate.sock}
officernd:
  client_id: deskgate-demo
  client_secret: {file: /data/config/officernd.secret}
  org_slug: demo-space
  api_base: https://` + guestSim + `/api/v2
  token_url: https://` + guestSim + `/oauth/token
sync: {interval: 15m, webhooks: false}
users: {username_format: email, password_policy: generate, welcome_email: true}
plans:
  - {plan: Hot Desk, group: standard}
  - {plan: Dedicated Desk, group: premium}
  - {plan: Private Office, group: premium}
groups:
  - {name: standard, bandwidth_down: 20mbit, bandwidth_up: 5mbit, max_devices: 3}
  - {name: premium, bandwidth_down: 100mbit, bandwidth_up: 20mbit, max_devices: 5}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22}
  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22}
smtp: {mailbox_dir: /data/deskgate/mailbox, from: "WiFi <wifi@demo-space.example>"}
radius:
  auth_listen: [":1812"]
  acct_listen: [":1813"]
  clients:
    - {name: host, address: 10.0.2.2, secret: {file: /data/config/radius.secret}, location: Downtown, vendor: wispr}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(cfg, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data.ext4")
	off, size, err := partition(b.disk, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(dir, nil, "mkfs.ext4", "-q", "-F", "-L", "data", "-m", "0", "-d", seed, data, strconv.FormatInt(size/1024, 10)+"k"); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, nil, "dd", "if="+data, "of="+b.disk, "bs=1M", "oflag=seek_bytes", "seek="+strconv.FormatInt(off, 10), "conv=notrunc,sparse", "status=none"); err != nil {
		t.Fatal(err)
	}
	return b
}

// newEmptyBox is the factory disk as built: its data partition is empty,
// so the box starts with the first-boot default config. It reaches no
// simulator and no bundle server (the guest's forwards lead to a closed port).
func newEmptyBox(t *testing.T, a *artifacts) *box {
	t.Helper()
	dir := t.TempDir()
	b := &box{t: t, disk: filepath.Join(dir, "disk.img"), consoleF: filepath.Join(dir, "console.log"), simAddr: "127.0.0.1:9", bundles: "127.0.0.1:9"}
	if err := run(dir, nil, "cp", "--sparse=always", a.disk, b.disk); err != nil {
		t.Fatal(err)
	}
	return b
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSim runs the OfficeRnD simulator (seeded demo space) on loopback.
func startSim(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "officernd-sim")
	if err := run(root(), []string{"CGO_ENABLED=0"}, "go", "build", "-o", bin, "./cmd/officernd-sim"); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	cmd := exec.Command(bin, "-listen", addr, "-log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("officernd-sim did not listen on %s", addr)
	return ""
}

// tlsFront serves the simulator over TLS at the guest's name for it
// (10.0.2.100), with a CA made for this test; the box trusts it through
// /data/config/ca-certificates. OfficeRnD is https-only in the config.
func tlsFront(t *testing.T, sim string) (addr, caPEM string) {
	t.Helper()
	now := time.Now() // the guest's clock is the host's: certificates from the wall clock
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vmtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: guestSim},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(guestSim)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://" + sim)
	proxy := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String(), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
}

func serveBundles(t *testing.T, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// vm is one boot of the box under qemu (TCG). -no-reboot: a reboot in the
// guest ends qemu, and the test boots the disk again.
type vm struct {
	b          *box
	cmd        *exec.Cmd
	conn       net.Conn
	mu         sync.Mutex
	out        bytes.Buffer
	radiusPort int
	exited     chan struct{}
	seq        int
	booted     time.Time
}

func (b *box) boot() *vm {
	t := b.t
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "console.sock")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	v := &vm{b: b, radiusPort: freePort(t, "udp"), exited: make(chan struct{})}
	nic := fmt.Sprintf("user,model=virtio-net-pci,ipv6=off,hostfwd=udp:127.0.0.1:%d-:1812,"+
		"guestfwd=tcp:%s:443-cmd:env %s=%s %s,guestfwd=tcp:%s:80-cmd:env %s=%s %s",
		v.radiusPort, guestSim, relayEnv, b.simAddr, self, guestBundles, relayEnv, b.bundles, self)
	v.cmd = exec.Command("qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "512M", "-smp", "1",
		"-display", "none", "-no-reboot", "-monitor", "none",
		"-drive", "file="+b.disk+",format=raw,if=virtio,cache=unsafe",
		"-nic", nic,
		"-chardev", "socket,id=con,path="+sock+",server=on,wait=on",
		"-serial", "chardev:con")
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	v.cmd.Stderr = &stderr
	v.booted = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(v.kill)
	for i := 0; ; i++ {
		v.conn, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		select {
		case <-v.exited:
			t.Fatalf("qemu exited: %s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	go func() {
		r := bufio.NewReader(v.conn)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			v.mu.Lock()
			v.out.Write(bytes.ReplaceAll(buf[:n], []byte("\r"), nil))
			v.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return v
}

func (v *vm) console() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.String()
}

// kill is a power cut.
func (v *vm) kill() {
	if v.cmd.Process != nil {
		_ = v.cmd.Process.Kill()
	}
	<-v.exited
	if v.conn != nil {
		v.conn.Close()
	}
	if v.b.t.Failed() {
		_ = os.WriteFile(v.b.consoleF, []byte(v.console()), 0o600)
		v.b.t.Logf("console (also in %s):\n%s", v.b.consoleF, tail(v.console(), 6000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// wait waits until the console output after from matches re.
func (v *vm) wait(re *regexp.Regexp, from int, timeout time.Duration) []string {
	v.b.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s := v.console()
		if from < len(s) {
			if m := re.FindStringSubmatch(s[from:]); m != nil {
				return m
			}
		}
		select {
		case <-v.exited:
			v.b.t.Fatalf("qemu exited while waiting for %q:\n%s", re, tail(v.console(), 3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	v.b.t.Fatalf("no %q on the console within %s:\n%s", re, timeout, tail(v.console(), 3000))
	return nil
}

// waitShell waits for the console shell (rcS has finished).
func (v *vm) waitShell() {
	v.b.t.Helper()
	v.wait(regexp.MustCompile(`rcS: deskgate \S+ in slot [AB]`), 0, 4*time.Minute)
}

// sh runs a command in the console shell and returns its output and status.
func (v *vm) sh(cmd string, timeout time.Duration) (string, int) {
	v.b.t.Helper()
	v.seq++
	begin, end := fmt.Sprintf("__B%d__", v.seq), fmt.Sprintf("__E%d_", v.seq)
	from := len(v.console())
	line := fmt.Sprintf("echo %s; %s; echo %s$?__\n", begin, cmd, end)
	if _, err := v.conn.Write([]byte(line)); err != nil {
		v.b.t.Fatal(err)
	}
	m := v.wait(regexp.MustCompile(`(?s)\n`+begin+`\n(.*?)`+end+`(\d+)__`), from, timeout)
	rc, _ := strconv.Atoi(m[2])
	return m[1], rc
}

func (v *vm) mustSh(cmd string, timeout time.Duration) string {
	v.b.t.Helper()
	out, rc := v.sh(cmd, timeout)
	if rc != 0 {
		v.b.t.Fatalf("%s: exit %d\n%s", cmd, rc, out)
	}
	return out
}

// diag collects what explains a box that does not serve.
func (v *vm) diag() string {
	out, _ := v.sh("ip route; ps | grep -v '\\['; grep -v access- /var/log/deskgated.log | tail -n 40; cat /run/deskgate/last-exit; tail -n 20 /var/log/update-gate.log /var/log/rauc.log", 2*time.Minute)
	return out
}

// poweroff syncs and powers the box off, and waits for qemu to end.
func (v *vm) poweroff() {
	v.b.t.Helper()
	if _, err := v.conn.Write([]byte("sync; poweroff -f\n")); err != nil {
		v.b.t.Fatal(err)
	}
	v.waitExit(time.Minute)
}

// waitExit waits for the guest to reboot (qemu ends with -no-reboot).
func (v *vm) waitExit(timeout time.Duration) {
	v.b.t.Helper()
	select {
	case <-v.exited:
	case <-time.After(timeout):
		v.b.t.Fatalf("the box did not reboot within %s:\n%s", timeout, tail(v.console(), 3000))
	}
}

// waitReady waits until deskgated reports ready.
func (v *vm) waitReady(timeout time.Duration) time.Duration {
	v.b.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if out, _ := v.sh(`deskgate -json status 2>&1 | grep -c '"ready": true'`, time.Minute); strings.TrimSpace(out) == "1" {
			return time.Since(v.booted)
		}
		time.Sleep(time.Second)
	}
	v.b.t.Fatalf("deskgated not ready within %s:\n%s", timeout, v.diag())
	return 0
}

// memberPassword reads a member's WiFi password from their welcome email.
func (v *vm) memberPassword(email string) string {
	v.b.t.Helper()
	var out string
	for i := 0; i < 30; i++ {
		out, _ = v.sh(fmt.Sprintf(`f=$(grep -l 'To: .*%s' /data/deskgate/mailbox/*.eml 2>/dev/null | head -n1); [ -n "$f" ] && sed -n 's/^ *Password: *//p' "$f" | head -n1`, email), 30*time.Second)
		if p := strings.TrimSpace(out); p != "" {
			return p
		}
		time.Sleep(time.Second)
	}
	v.b.t.Fatalf("no welcome email with a password for %s", email)
	return ""
}

// radius sends an Access-Request from the host through the forwarded port.
func (v *vm) radius(user, password string) (string, error) {
	return v.radiusTry(user, password, 3, 5)
}

func (v *vm) radiusTry(user, password string, tries, timeout int) (string, error) {
	req := fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-IP-Address = 10.0.2.2\nMessage-Authenticator = 0x00\n", user, password)
	cmd := exec.Command("radclient", "-r", strconv.Itoa(tries), "-t", strconv.Itoa(timeout), "-x", fmt.Sprintf("127.0.0.1:%d", v.radiusPort), "auth", v.b.secret)
	cmd.Stdin = strings.NewReader(req)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (v *vm) updateStatus() string {
	v.b.t.Helper()
	return v.mustSh("deskgate update status", time.Minute)
}

// waitGate waits until update status shows a decided attempt for version.
func (v *vm) waitGate(version string) string {
	v.b.t.Helper()
	re := regexp.MustCompile(`last attempt: ` + regexp.QuoteMeta(version) + ` .*: (good|failed)`)
	var st string
	for i := 0; i < 90; i++ {
		st = v.updateStatus()
		if re.MatchString(st) {
			return st
		}
		time.Sleep(2 * time.Second)
	}
	v.b.t.Fatalf("the health gate did not decide on %s:\n%s", version, st)
	return st
}
