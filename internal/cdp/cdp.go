// Package cdp is a minimal Chrome DevTools Protocol driver for deskgate's
// browser tests: it starts headless Chromium, connects to its page target
// and drives it (navigation, mouse and keyboard input, JavaScript, DOM
// snapshots, screenshots). It is imported only from _test.go files.
package cdp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultTimeout bounds one command and one navigation when
// Options.Timeout is zero.
const DefaultTimeout = 20 * time.Second

// ChromiumPath returns $CHROMIUM, or the chromium (or chromium-browser)
// binary on $PATH, or "" when there is none.
func ChromiumPath() string {
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

// Options configure Start.
type Options struct {
	// Bin is the Chromium binary; "" means ChromiumPath().
	Bin string
	// Flags are command-line flags added after the standard ones.
	Flags []string
	// Prefix, if set, is a command Chromium runs under, such as
	// {"ip", "netns", "exec", ns}.
	Prefix []string
	// Dial, if set, connects to the DevTools endpoint (the HTTP target list
	// and the websocket), for example from inside a network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds one command and one navigation; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Page is a DevTools connection to the one page of a Chromium process.
type Page struct {
	// T is the test that failures go to; a subtest may set it to itself
	// while it drives the page.
	T testing.TB

	owner   testing.TB
	ctx     context.Context
	timeout time.Duration
	cmd     *exec.Cmd
	exited  chan struct{}
	out     syncBuffer
	conn    *websocket.Conn
	done    chan struct{}
	once    sync.Once

	wmu    sync.Mutex // serializes writes to conn
	mu     sync.Mutex // guards nextID and wait
	nextID int
	wait   map[int]chan message
}

type message struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Start runs headless Chromium with a fresh profile in a temporary
// directory and connects to its page. The browser is stopped by Close or,
// at the latest, when t's cleanups run. Commands fail once ctx is done.
func Start(ctx context.Context, t testing.TB, o Options) *Page {
	t.Helper()
	bin := o.Bin
	if bin == "" {
		if bin = ChromiumPath(); bin == "" {
			t.Fatal("chromium not found (apt-get install chromium)")
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	profile := t.TempDir()
	args := append(append([]string{}, o.Prefix...), bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--disable-dev-shm-usage",
		"--disable-extensions", "--hide-scrollbars", "--mute-audio", "--no-default-browser-check",
		"--disable-features=HttpsUpgrades")
	args = append(append(args, o.Flags...), "about:blank")
	p := &Page{T: t, owner: t, ctx: ctx, timeout: timeout, exited: make(chan struct{}),
		done: make(chan struct{}), wait: map[int]chan message{}}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.Close)

	// Chromium writes its DevTools port to DevToolsActivePort in the profile.
	var port string
	for deadline := time.Now().Add(30 * time.Second); port == ""; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			port, _, _ = strings.Cut(string(b), "\n")
		}
		select {
		case <-p.exited:
			t.Fatalf("chromium exited:\n%s", p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium did not start its DevTools endpoint:\n%s", p.out.String())
		}
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	var targets []struct{ Type, WebSocketDebuggerURL string }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		targets = nil
		res, err := hc.Get("http://127.0.0.1:" + port + "/json/list")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&targets)
			res.Body.Close()
		}
		if err == nil && len(targets) > 0 && targets[0].Type == "page" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no page target (%v): %+v", err, targets)
		}
	}
	wd := websocket.Dialer{NetDialContext: dial, HandshakeTimeout: 5 * time.Second}
	conn, _, err := wd.DialContext(ctx, targets[0].WebSocketDebuggerURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(64 << 20)
	p.conn = conn
	go p.read()
	return p
}

// Close disconnects and kills the browser (its whole process group). It
// logs the browser's output if the test that started it has failed.
func (p *Page) Close() {
	p.once.Do(func() {
		if p.conn != nil {
			p.conn.Close()
			<-p.done
		}
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if p.owner.Failed() {
			p.owner.Logf("chromium output:\n%s", p.out.String())
		}
	})
}

func (p *Page) read() {
	defer close(p.done)
	for {
		var m message
		if err := p.conn.ReadJSON(&m); err != nil {
			return
		}
		if m.ID == 0 {
			continue // an event: the tests poll the page instead
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

// Call sends a command and returns its result, failing the test on error.
func (p *Page) Call(method string, params any) json.RawMessage {
	p.T.Helper()
	res, err := p.Try(method, params)
	if err != nil {
		p.T.Fatalf("%s: %v", method, err)
	}
	return res
}

// Try sends a command and returns its result within the page's timeout.
func (p *Page) Try(method string, params any) (json.RawMessage, error) {
	return p.TryTimeout(method, params, p.timeout)
}

// TryTimeout sends a command and returns its result within timeout.
func (p *Page) TryTimeout(method string, params any, timeout time.Duration) (json.RawMessage, error) {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan message, 1)
	p.wait[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.wait, id)
		p.mu.Unlock()
	}()
	if params == nil {
		params = struct{}{}
	}
	p.wmu.Lock()
	err := p.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	p.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
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
	case <-timer.C:
		return nil, fmt.Errorf("%s: no answer within %v", method, timeout)
	}
}

// Eval runs JavaScript in the page, awaiting a promise, and decodes its
// (JSON-able) value into v unless v is nil.
func (p *Page) Eval(expr string, v any) error {
	res, err := p.Try("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
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

// MarkAndWait runs act, which must cause a navigation, and waits until a
// new document has loaded (the marker set on the old one is gone).
func (p *Page) MarkAndWait(act func() error) error {
	if err := p.Eval("window.__dgOld = true", nil); err != nil {
		return err
	}
	if err := act(); err != nil {
		return err
	}
	for deadline := time.Now().Add(p.timeout); ; time.Sleep(50 * time.Millisecond) {
		var ready bool
		err := p.Eval("window.__dgOld !== true && document.readyState === 'complete'", &ready)
		if err == nil && ready {
			return nil
		}
		if time.Now().After(deadline) {
			var where string
			p.Eval("location.href", &where)
			return fmt.Errorf("no new page within %v (still at %q, last error %v)", p.timeout, where, err)
		}
	}
}

// TryNavigate opens url and waits until it has loaded.
func (p *Page) TryNavigate(url string) error {
	err := p.MarkAndWait(func() error {
		// Page.navigate returns once the response has started to arrive.
		res, err := p.Try("Page.navigate", map[string]any{"url": url})
		if err != nil {
			return err
		}
		var r struct{ ErrorText string }
		if json.Unmarshal(res, &r) == nil && r.ErrorText != "" {
			return errors.New(r.ErrorText)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("navigate to %s: %w", url, err)
	}
	return nil
}

// Navigate opens url and waits until it has loaded, failing the test if
// it does not.
func (p *Page) Navigate(url string) {
	p.T.Helper()
	if err := p.TryNavigate(url); err != nil {
		p.T.Fatal(err)
	}
}

// ClickNoWait scrolls the element into view and presses and releases the
// mouse in its middle.
func (p *Page) ClickNoWait(selector string) {
	p.T.Helper()
	var box struct{ X, Y float64 }
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: "center"});
		const r = e.getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`, selector)
	if err := p.Eval(js, &box); err != nil {
		p.T.Fatalf("find %s: %v", selector, err)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		p.Call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": box.X, "y": box.Y, "button": "left", "clickCount": 1})
	}
}

// Click clicks the element and waits for the page it leads to.
func (p *Page) Click(selector string) {
	p.T.Helper()
	if err := p.MarkAndWait(func() error { p.ClickNoWait(selector); return nil }); err != nil {
		p.T.Fatalf("click %s: %v", selector, err)
	}
}

// InsertText types text into the focused element.
func (p *Page) InsertText(text string) {
	p.T.Helper()
	p.Call("Input.insertText", map[string]any{"text": text})
}

// Key presses and releases one key; text is what it types, if anything.
func (p *Page) Key(key, code string, vk int, text string) {
	p.T.Helper()
	down := map[string]any{"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
	if text != "" {
		down["text"] = text
	}
	p.Call("Input.dispatchKeyEvent", down)
	p.Call("Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk})
}

// SubmitCode fills in the portal's access-code form with the mouse: it
// clicks into the code field, types code, ticks the terms box and clicks
// the submit button, then waits for the next page.
func (p *Page) SubmitCode(code string) {
	p.T.Helper()
	p.ClickNoWait("#code")
	var focused bool
	if err := p.Eval(`document.activeElement && document.activeElement.id === "code"`, &focused); err != nil || !focused {
		p.T.Fatalf("code field not focused by the click (%v)", err)
	}
	p.InsertText(code)
	p.ClickNoWait("#terms-code")
	var checked bool
	if err := p.Eval(`document.getElementById("terms-code").checked`, &checked); err != nil || !checked {
		p.T.Fatalf("terms box not ticked (%v)", err)
	}
	p.Click("#code-form button[type=submit]")
}

// DOM is a snapshot of the page.
type DOM struct {
	Text  string   // the body's innerText
	Host  string   // location.host
	Path  string   // location.pathname
	Lang  string   // the <html> element's lang
	Forms []string // the ids of the forms
}

// DOM takes a snapshot of the page.
func (p *Page) DOM() DOM {
	p.T.Helper()
	var d DOM
	err := p.Eval(`({Text: document.body ? document.body.innerText : "", Host: location.host, Path: location.pathname,
		Lang: document.documentElement.lang, Forms: [...document.forms].map(f => f.id)})`, &d)
	if err != nil {
		p.T.Fatal(err)
	}
	return d
}

// Want is what a page should be; empty fields are not checked.
type Want struct {
	Host, Path, Lang string
	Text             string // a part of the page's text
	Form             string // the id of one of its forms
}

// Check fails t at once if the page is blank, and reports each way the
// page differs from want: with t.Fatalf if fatal, else with t.Errorf.
func (d DOM) Check(t testing.TB, name string, want Want, fatal bool) {
	t.Helper()
	if len(strings.TrimSpace(d.Text)) < 40 {
		t.Fatalf("%s page is blank: %q", name, d.Text)
	}
	report := t.Errorf
	if fatal {
		report = t.Fatalf
	}
	if (want.Host != "" && d.Host != want.Host) || (want.Path != "" && d.Path != want.Path) {
		report("%s page: at %s%s, want %s%s:\n%s", name, d.Host, d.Path, want.Host, want.Path, d.Text)
	}
	if want.Lang != "" && d.Lang != want.Lang {
		report("%s page: lang %q, want %q", name, d.Lang, want.Lang)
	}
	if !strings.Contains(d.Text, want.Text) {
		report("%s page lacks %q:\n%s", name, want.Text, d.Text)
	}
	if want.Form != "" && !slices.Contains(d.Forms, want.Form) {
		report("%s page lacks form #%s (forms %q)", name, want.Form, d.Forms)
	}
}

// Screenshot writes a full-page PNG to path and fails the test if it looks
// blank.
func (p *Page) Screenshot(path string) {
	p.T.Helper()
	var size struct{ W, H float64 }
	if err := p.Eval(`({W: document.documentElement.clientWidth, H: document.documentElement.scrollHeight})`, &size); err != nil {
		p.T.Fatal(err)
	}
	res := p.Call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": size.W, "height": size.H, "scale": 1}})
	var r struct{ Data string }
	if err := json.Unmarshal(res, &r); err != nil {
		p.T.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		p.T.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		p.T.Fatalf("screenshot %s: %v", path, err)
	}
	colors := map[[4]uint32]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 5 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 5 {
			r, g, b, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, b, a}] = true
		}
	}
	if len(colors) < 8 {
		p.T.Errorf("screenshot %s looks blank (%d colours)", path, len(colors))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.T.Fatal(err)
	}
	p.T.Logf("screenshot %s (%dx%d)", path, bounds.Dx(), bounds.Dy())
}

// syncBuffer is a bytes.Buffer safe for the browser's output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
