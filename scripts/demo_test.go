// Package scripts_test runs `make demo`'s script as a new user would and
// checks what it prints: the radtest line it suggests gets Access-Accept,
// and a daemon that cannot start is explained with its own error.
package scripts_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// need skips, or fails under CI, when a tool is missing.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing (make test-deps installs it)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// build compiles the commands the demo runs into a temporary bin/.
func build(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/", "../cmd/deskgated", "../cmd/deskgate", "../cmd/officernd-sim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// demoEnv gives the demo its own directory and loopback addresses, so it
// cannot collide with a running demo or another test.
func demoEnv(t *testing.T, bin string) ([]string, string) {
	t.Helper()
	host := fmt.Sprintf("127.0.%d.%d", 1+rand.IntN(250), 2+rand.IntN(250))
	port := 20000 + rand.IntN(10000)
	addr := func(i int) string { return fmt.Sprintf("%s:%d", host, port+i) }
	return append(os.Environ(), "BIN="+bin, "DEMO_DIR="+t.TempDir(),
		"SIM_ADDR="+addr(0), "ADMIN_ADDR="+addr(1), "HOOK_ADDR="+addr(2), "MEMBER_ADDR="+addr(3),
		"PORTAL_ADDR="+addr(4), "RADIUS_HOST="+host), host
}

// startDemo runs scripts/demo.sh in its own process group until the test
// ends, and returns its combined output as lines.
func startDemo(t *testing.T, env []string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command("sh", "demo.sh")
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd, lines
}

var radtestLine = regexp.MustCompile(`^\s*(radtest -x .*)$`)

// TestDemoRadtestAccepted: the radtest line `make demo` prints, run as
// printed, gets Access-Accept (Debian 12's radtest sends
// Message-Authenticator).
func TestDemoRadtestAccepted(t *testing.T) {
	need(t, "radtest", "curl")
	env, _ := demoEnv(t, build(t))
	_, lines := startDemo(t, env)
	var out []string
	var line string
	deadline := time.After(90 * time.Second)
	for line == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended before printing a radtest line:\n%s", strings.Join(out, "\n"))
			}
			out = append(out, l)
			if m := radtestLine.FindStringSubmatch(l); m != nil {
				line = m[1]
			}
		case <-deadline:
			t.Fatalf("no radtest line within 90 s:\n%s", strings.Join(out, "\n"))
		}
	}
	if strings.Contains(line, "<password") {
		t.Fatalf("the demo printed no password: %s", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, _ := exec.CommandContext(ctx, "sh", "-c", line).CombinedOutput()
	if !strings.Contains(string(res), "Received Access-Accept") {
		t.Fatalf("%s:\n%s", line, res)
	}
	if !strings.Contains(string(res), "Message-Authenticator") {
		t.Errorf("radtest sent or received no Message-Authenticator:\n%s", res)
	}
	checkConsoleLogin(t, out)
}

var (
	consoleLine = regexp.MustCompile(`Operator console\s+(http://\S+/console/)`)
	loginLine   = regexp.MustCompile(`login: (\S+) / (\S+)`)
	csrfField   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// checkConsoleLogin: the console URL and operator login the demo printed
// open the dashboard.
func checkConsoleLogin(t *testing.T, out []string) {
	t.Helper()
	all := strings.Join(out, "\n")
	u, l := consoleLine.FindStringSubmatch(all), loginLine.FindStringSubmatch(all)
	if u == nil || l == nil {
		t.Fatalf("the demo printed no console URL and login:\n%s", all)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := hc.Get(u[1] + "login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("console login page:\n%s", page)
	}
	resp, err = hc.PostForm(u[1]+"login", url.Values{"csrf": {string(m[1])}, "name": {l[1]}, "password": {l[2]}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/console/dashboard" {
		t.Fatalf("console login with %s / %s: %d at %s:\n%.400s", l[1], l[2], resp.StatusCode, resp.Request.URL, page)
	}
}

// TestDemoExplainsStartFailure: with the RADIUS port taken (as a running
// FreeRADIUS would), the demo prints the daemon's own error and the fix,
// and exits non-zero.
func TestDemoExplainsStartFailure(t *testing.T) {
	need(t, "curl")
	env, host := demoEnv(t, build(t))
	taken, err := net.ListenPacket("udp", net.JoinHostPort(host, "1812"))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cmd, lines := startDemo(t, env)
	var out []string
	for l := range lines {
		out = append(out, l)
	}
	err = cmd.Wait()
	all := strings.Join(out, "\n")
	if err == nil {
		t.Fatalf("demo exited 0 with 1812 taken:\n%s", all)
	}
	for _, want := range []string{"deskgated did not start", host + ":1812", "address already in use", "systemctl stop freeradius", "deskgated.log"} {
		if !strings.Contains(all, want) {
			t.Errorf("demo output lacks %q:\n%s", want, all)
		}
	}
}
