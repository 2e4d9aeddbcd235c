package portal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestBrowser drives Debian's headless Chromium over the DevTools protocol
// through the portal on a phone-sized viewport: it loads the login page,
// types a wrong code and then a good one into the form, ticks the terms box
// and clicks the submit button (real input events, real form posts), lands
// on the status page, and logs out — in English and in German (chosen by
// Accept-Language). Screenshots of the login, error and status pages go to
// $DESKGATE_TEST_ARTIFACTS/portal-browser or the test's temp dir.
func TestBrowser(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found (apt-get install chromium); required when CI=true")
		}
		t.Skip("chromium not found; apt-get install chromium (required when CI=true)")
	}
	outDir := t.TempDir()
	if d := os.Getenv("DESKGATE_TEST_ARTIFACTS"); d != "" {
		outDir = filepath.Join(d, "portal-browser")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	ts := httptest.NewUnstartedServer(nil)
	clock := &fakeClock{t: time.Now()}
	backend := newFakeBackend(clock)
	netw := &MemNetwork{}
	srv, err := New(Config{
		PublicURL: "http://portal.deskgate.lan",
		Locations: map[string]Branding{"loc-berlin": {Name: "Deskgate Berlin", PrimaryColor: "#0f766e", TermsVersion: "v3",
			VenueInfoURL: "https://deskgate.example/berlin"}},
		DefaultLocation: "loc-berlin",
		Now:             clock.Now,
		RateLimit:       100, RateBurst: 200,
		OnboardURL: func(id string) string { return "/onboard?member=" + id },
	}, backend, netw, &StaticResolver{Derive: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	// Every host name resolves to the test server, as netcfg's DNAT makes
	// every port-80 request of a captive client reach the portal.
	page := startChromium(ctx, t, bin, "--host-resolver-rules=MAP * "+ts.Listener.Addr().String())
	defer page.close()

	page.call("Page.enable", nil)
	page.call("Network.enable", nil)
	page.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true})

	for _, lc := range []struct {
		lang, accept                         string
		loginText, errorText, statusText, ok string
		keyboard                             bool   // fill and submit with the keyboard only
		probe, online                        string // the OS probe the sign-in sheet starts from, its answer once online
	}{
		{"en", "en-US,en;q=0.9", "Access code", "This code is not valid", "Time left", "You are online", false,
			"http://captive.apple.com/hotspot-detect.html", "Success"},
		{"de", "de-DE,de;q=0.9,en;q=0.5", "Zugangscode", "Dieser Code ist ungültig", "Verbleibende Zeit", "Sie sind online", true,
			"http://www.msftconnecttest.com/connecttest.txt", "Microsoft Connect Test"},
	} {
		t.Run(lc.lang, func(t *testing.T) {
			page.t = t
			page.call("Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{"Accept-Language": lc.accept}})
			// Like a CNA sheet: open the probe URL, follow the redirect.
			page.navigate(lc.probe)
			d := page.dom()
			if d.Host != "portal.deskgate.lan" {
				t.Errorf("probe %s before login ended on host %q, want the portal", lc.probe, d.Host)
			}
			d.check(t, "login", "/", lc.lang, lc.loginText, "code-form")
			page.screenshot(filepath.Join(outDir, "login-"+lc.lang+".png"))

			submit := page.submitCode
			if lc.keyboard {
				submit = page.submitCodeKeyboard
			}
			submit("WRONG-CODE")
			d = page.dom()
			d.check(t, "error", "/login/code", lc.lang, lc.errorText, "code-form")
			page.screenshot(filepath.Join(outDir, "error-"+lc.lang+".png"))
			if _, ok := netw.Allowed(macOf("127.0.0.1")); ok {
				t.Fatal("network allowed after a wrong code")
			}

			submit("GOOD-CODE")
			d = page.dom()
			d.check(t, "status", "/status", lc.lang, lc.statusText, "logout-form")
			if !strings.Contains(d.Text, lc.ok) {
				t.Errorf("status page lacks %q", lc.ok)
			}
			page.screenshot(filepath.Join(outDir, "status-"+lc.lang+".png"))
			if _, ok := netw.Allowed(macOf("127.0.0.1")); !ok {
				t.Fatal("the browser's client was not allowed on the network")
			}
			// The OS re-probes and now sees the internet.
			page.navigate(lc.probe)
			if d := page.dom(); d.Host == "portal.deskgate.lan" || strings.TrimSpace(d.Text) != lc.online {
				t.Errorf("probe after login: host %q text %q, want %q", d.Host, d.Text, lc.online)
			}
			page.navigate("http://portal.deskgate.lan/status")

			page.click("#logout-form button")
			d = page.dom()
			d.check(t, "logged out", "/", lc.lang, lc.loginText, "code-form")
			if _, ok := netw.Allowed(macOf("127.0.0.1")); ok {
				t.Error("logout in the browser did not revoke the client")
			}
			if lc.keyboard {
				return
			}
			// A member opens the <details> (no script), signs in, and is
			// offered the secure network.
			page.clickNoWait("details.member summary")
			page.clickNoWait("#email")
			page.call("Input.insertText", map[string]any{"text": "ada@example.com"})
			page.clickNoWait("#password")
			page.call("Input.insertText", map[string]any{"text": "correct horse battery"})
			page.clickNoWait("#terms-member")
			page.click("#member-form button[type=submit]")
			d = page.dom()
			d.check(t, "member status", "/status", lc.lang, "Set up the secure network", "logout-form")
			page.screenshot(filepath.Join(outDir, "status-member-"+lc.lang+".png"))
			page.click("#logout-form button")
		})
	}
	t.Logf("screenshots in %s", outDir)
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// cdp is a minimal DevTools protocol client for one page target.
type cdp struct {
	t      *testing.T
	ctx    context.Context
	conn   *websocket.Conn
	cmd    *exec.Cmd
	mu     sync.Mutex
	nextID int
	wait   map[int]chan cdpMsg
	done   chan struct{}
}

type cdpMsg struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func startChromium(ctx context.Context, t *testing.T, bin string, extra ...string) *cdp {
	t.Helper()
	profile := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--remote-debugging-port=0", "--disable-dev-shm-usage",
		"--disable-extensions", "--hide-scrollbars", "--mute-audio", "--no-default-browser-check",
		"--disable-features=HttpsUpgrades"}
	args = append(append(args, extra...), "about:blank")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &cdp{t: t, ctx: ctx, cmd: cmd, wait: make(map[int]chan cdpMsg), done: make(chan struct{})}
	// Chromium writes its port to DevToolsActivePort in the profile.
	var port string
	for deadline := time.Now().Add(30 * time.Second); port == ""; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			port, _, _ = strings.Cut(string(b), "\n")
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("chromium did not start its DevTools endpoint:\n%s", stderr.String())
		}
	}
	var targets []struct {
		Type, WebSocketDebuggerURL string
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		targets = nil
		res, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&targets)
			res.Body.Close()
		}
		if err == nil && len(targets) > 0 && targets[0].Type == "page" {
			break
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("no page target (%v): %+v", err, targets)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, targets[0].WebSocketDebuggerURL, nil)
	if err != nil {
		p.kill()
		t.Fatal(err)
	}
	conn.SetReadLimit(64 << 20)
	p.conn = conn
	go p.read()
	return p
}

func (p *cdp) read() {
	defer close(p.done)
	for {
		var m cdpMsg
		if err := p.conn.ReadJSON(&m); err != nil {
			return
		}
		if m.ID == 0 {
			continue // events: we poll the page state instead
		}
		p.mu.Lock()
		ch := p.wait[m.ID]
		delete(p.wait, m.ID)
		p.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

func (p *cdp) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func (p *cdp) close() {
	if p.conn != nil {
		p.conn.Close()
		<-p.done
	}
	p.kill()
}

// call sends a command and returns its result, failing the test on error.
func (p *cdp) call(method string, params any) json.RawMessage {
	p.t.Helper()
	res, err := p.try(method, params)
	if err != nil {
		p.t.Fatalf("%s: %v", method, err)
	}
	return res
}

func (p *cdp) try(method string, params any) (json.RawMessage, error) {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan cdpMsg, 1)
	p.wait[id] = ch
	p.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	if err := p.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, errors.New(m.Error.Message)
		}
		return m.Result, nil
	case <-p.done:
		return nil, errors.New("devtools connection closed")
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
}

// eval runs JavaScript in the page and decodes its (JSON-able) value into v.
func (p *cdp) eval(expr string, v any) error {
	res, err := p.try("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("javascript: %s", r.ExceptionDetails.Text)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(r.Result.Value, v)
}

// markAndWait runs act, which must cause a navigation, and waits until a new
// document has loaded (the marker set on the old one is gone).
func (p *cdp) markAndWait(act func()) {
	p.t.Helper()
	if err := p.eval("window.__dgOld = true", nil); err != nil {
		p.t.Fatal(err)
	}
	act()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var ready bool
		err := p.eval("window.__dgOld !== true && document.readyState === 'complete'", &ready)
		if err == nil && ready {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no navigation (last error %v)", err)
		}
	}
}

func (p *cdp) navigate(url string) {
	p.t.Helper()
	p.markAndWait(func() { p.call("Page.navigate", map[string]any{"url": url}) })
}

// click presses and releases the mouse in the middle of the element.
func (p *cdp) clickNoWait(selector string) {
	p.t.Helper()
	var box struct{ X, Y float64 }
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: "center"});
		const r = e.getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`, selector)
	if err := p.eval(js, &box); err != nil {
		p.t.Fatalf("find %s: %v", selector, err)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		p.call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": box.X, "y": box.Y, "button": "left", "clickCount": 1})
	}
}

func (p *cdp) click(selector string) {
	p.t.Helper()
	p.markAndWait(func() { p.clickNoWait(selector) })
}

// submitCode types code into the code field, ticks the terms box and
// clicks Connect, then waits for the next page.
func (p *cdp) submitCode(code string) {
	p.t.Helper()
	p.clickNoWait("#code")
	if err := p.eval(`document.activeElement && document.activeElement.id === "code" || (() => { throw new Error("code field not focused") })()`, nil); err != nil {
		p.t.Fatal(err)
	}
	p.call("Input.insertText", map[string]any{"text": code})
	p.clickNoWait("#terms-code")
	var checked bool
	if err := p.eval(`document.getElementById("terms-code").checked`, &checked); err != nil || !checked {
		p.t.Fatalf("terms box not ticked (%v)", err)
	}
	p.click("#code-form button[type=submit]")
}

// key presses and releases one key.
func (p *cdp) key(key, code string, vk int, text string) {
	p.t.Helper()
	down := map[string]any{"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
	if text != "" {
		down["text"] = text
	}
	p.call("Input.dispatchKeyEvent", down)
	p.call("Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk})
}

// tabTo presses Tab until the element matching selector has the focus, and
// checks that the focus is visible (an outline).
func (p *cdp) tabTo(selector string) {
	p.t.Helper()
	for range 12 {
		var st struct {
			On      bool
			Outline string
		}
		js := fmt.Sprintf(`(() => { const a = document.activeElement; return {On: !!a && a.matches(%q),
			Outline: a ? getComputedStyle(a).outlineStyle : ""}; })()`, selector)
		if err := p.eval(js, &st); err != nil {
			p.t.Fatal(err)
		}
		if st.On {
			if st.Outline == "none" || st.Outline == "" {
				p.t.Errorf("%s has the keyboard focus but no visible outline", selector)
			}
			return
		}
		p.key("Tab", "Tab", 9, "")
	}
	p.t.Fatalf("Tab never reached %s", selector)
}

// submitCodeKeyboard does what submitCode does with the keyboard alone:
// Tab to the field, type, Tab to the terms box, Space, Tab to the button,
// Enter.
func (p *cdp) submitCodeKeyboard(code string) {
	p.t.Helper()
	p.tabTo("#code")
	p.call("Input.insertText", map[string]any{"text": code})
	p.tabTo("#terms-code")
	p.key(" ", "Space", 32, " ")
	var checked bool
	if err := p.eval(`document.getElementById("terms-code").checked`, &checked); err != nil || !checked {
		p.t.Fatalf("Space did not tick the terms box (%v)", err)
	}
	p.tabTo("#code-form button[type=submit]")
	p.markAndWait(func() { p.key("Enter", "Enter", 13, "\r") })
}

type domState struct {
	Text  string
	Host  string
	Path  string
	Lang  string
	Forms []string
}

func (p *cdp) dom() domState {
	p.t.Helper()
	var d domState
	err := p.eval(`({Text: document.body ? document.body.innerText : "", Path: location.pathname, Host: location.host,
		Lang: document.documentElement.lang, Forms: [...document.forms].map(f => f.id)})`, &d)
	if err != nil {
		p.t.Fatal(err)
	}
	return d
}

// check fails when the page is blank, lacks its form or text, or is not the
// expected page.
func (d domState) check(t *testing.T, name, path, lang, text, form string) {
	t.Helper()
	if len(strings.TrimSpace(d.Text)) < 40 {
		t.Fatalf("%s page is blank: %q", name, d.Text)
	}
	if d.Path != path || d.Lang != lang {
		t.Errorf("%s page: path %q lang %q, want %q %q", name, d.Path, d.Lang, path, lang)
	}
	if !strings.Contains(d.Text, text) {
		t.Errorf("%s page lacks %q:\n%s", name, text, d.Text)
	}
	hasForm := false
	for _, f := range d.Forms {
		hasForm = hasForm || f == form
	}
	if !hasForm {
		t.Errorf("%s page lacks form #%s (forms %q)", name, form, d.Forms)
	}
}

// screenshot writes a full-page PNG and fails if it is blank.
func (p *cdp) screenshot(path string) {
	p.t.Helper()
	var size struct{ W, H float64 }
	if err := p.eval(`({W: document.documentElement.clientWidth, H: document.documentElement.scrollHeight})`, &size); err != nil {
		p.t.Fatal(err)
	}
	res := p.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": size.W, "height": size.H, "scale": 1}})
	var r struct{ Data string }
	if err := json.Unmarshal(res, &r); err != nil {
		p.t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", path, err)
	}
	colors := map[[4]uint32]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 7 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 7 {
			r, g, b, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, b, a}] = true
		}
	}
	if len(colors) < 8 {
		p.t.Errorf("screenshot %s looks blank (%d colours)", path, len(colors))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s (%dx%d)", path, bounds.Dx(), bounds.Dy())
}
