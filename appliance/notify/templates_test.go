package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/model"
)

func welcomeEmail() model.Email {
	return model.Email{
		ID:       "welcome-m1",
		Kind:     "welcome",
		To:       "Ada Lovelace <ada@example.com>",
		Member:   "m1",
		Username: "ada",
		Data: map[string]string{
			"name":        "Ada <Lovelace>",
			"username":    "ada.lovelace",
			"location":    "Berlin Mitte",
			"network":     "Space-WiFi",
			"portal_url":  "https://wifi.space.example/",
			"profile_url": "https://wifi.space.example/profile/abc.mobileconfig",
			"space_name":  "Space & Co",
			"server_name": "radius.space.example",
		},
		Secret: map[string]string{"password": "correct-horse-battery-staple"},
	}
}

func mustTemplates(t *testing.T, dir string) *Templates {
	t.Helper()
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestRenderWelcomePassword(t *testing.T) {
	tm := mustTemplates(t, "")
	m, err := tm.Render(welcomeEmail(), "WiFi <wifi@space.example>")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "welcome-m1" || m.To != "Ada Lovelace <ada@example.com>" || m.From != "WiFi <wifi@space.example>" {
		t.Errorf("addressing = %+v", m)
	}
	if m.Subject != "Welcome to Space & Co: your WiFi access for Space-WiFi" {
		t.Errorf("Subject = %q", m.Subject)
	}
	for _, want := range []string{
		"Hi Ada <Lovelace>,", "Space-WiFi", "ada.lovelace", "correct-horse-battery-staple",
		"PEAP", "MSCHAPv2", "radius.space.example", "Berlin Mitte",
		"https://wifi.space.example/profile/abc.mobileconfig", "https://wifi.space.example/",
		"only time we send your password",
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	for _, want := range []string{
		"Ada &lt;Lovelace&gt;", "Space &amp; Co", "correct-horse-battery-staple", "PEAP", "MSCHAPv2",
		"radius.space.example", `href="https://wifi.space.example/profile/abc.mobileconfig"`,
		`name="viewport"`,
	} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if strings.Contains(m.HTML, "<Lovelace>") {
		t.Error("html does not escape the name")
	}
	if strings.Contains(m.Text, "set your WiFi password") || strings.Contains(m.Text, "<no value>") {
		t.Errorf("text:\n%s", m.Text)
	}
}

func TestRenderWelcomeOnboard(t *testing.T) {
	tm := mustTemplates(t, "")
	e := welcomeEmail()
	e.Secret = map[string]string{"onboard_url": "https://wifi.space.example/onboard?t=tok123"}
	e.Data["expires"] = "28 Nov 2026 18:00"
	delete(e.Data, "server_name")
	m, err := tm.Render(e, "wifi@space.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Set your WiFi password here", "https://wifi.space.example/onboard?t=tok123", "expires 28 Nov 2026 18:00"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if !strings.Contains(m.HTML, `href="https://wifi.space.example/onboard?t=tok123"`) {
		t.Errorf("html lacks the onboarding link:\n%s", m.HTML)
	}
	for _, bad := range []string{"Password:", "certificate"} {
		if strings.Contains(m.Text, bad) {
			t.Errorf("text has %q:\n%s", bad, m.Text)
		}
	}
}

func TestRenderGuestCode(t *testing.T) {
	tm := mustTemplates(t, "")
	m, err := tm.Render(model.Email{
		ID: "g1", Kind: "guest_code", To: "guest@example.com",
		Data: map[string]string{"name": "Grace", "code": "K7P-2QX", "valid_from": "27 Nov 14:00",
			"valid_until": "27 Nov 16:00", "location": "Berlin Mitte", "network": "Space-Guest"},
	}, "wifi@space.example")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Your WiFi guest code for Berlin Mitte" {
		t.Errorf("Subject = %q", m.Subject)
	}
	for _, want := range []string{"K7P-2QX", "Space-Guest", "from 27 Nov 14:00 until 27 Nov 16:00"} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("text or html lacks %q:\n%s\n%s", want, m.Text, m.HTML)
		}
	}
}

func TestRenderSubjectLineBreaks(t *testing.T) {
	tm := mustTemplates(t, "")
	e := welcomeEmail()
	e.Data["space_name"] = "Evil\r\nBcc: victim@example.com"
	m, err := tm.Render(e, "wifi@space.example")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("Subject = %q", m.Subject)
	}
}

func TestRenderErrors(t *testing.T) {
	tm := mustTemplates(t, "")
	e := welcomeEmail()
	e.Kind = "nope"
	if _, err := tm.Render(e, "wifi@space.example"); !errors.Is(err, ErrUnknownKind) || !IsPermanent(err) {
		t.Errorf("unknown kind: %v", err)
	}
	e = welcomeEmail()
	e.To = "ada@example.com\r\nBcc: x@example.com"
	if _, err := tm.Render(e, "wifi@space.example"); !errors.Is(err, ErrHeaderInjection) {
		t.Errorf("injected To: %v", err)
	} else if strings.Contains(err.Error(), "correct-horse") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestTemplateOverrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("welcome.subject.txt", "Hej {{.name}}")
	write("party.subject.txt", "Party at {{.location}}")
	write("party.txt", "Bring {{.thing}}{{.missing}}.")
	tm := mustTemplates(t, dir)
	m, err := tm.Render(welcomeEmail(), "wifi@space.example")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Hej Ada <Lovelace>" {
		t.Errorf("overridden Subject = %q", m.Subject)
	}
	if !strings.Contains(m.Text, "correct-horse-battery-staple") || m.HTML == "" {
		t.Error("default text and html not kept beside the subject override")
	}
	m, err = tm.Render(model.Email{ID: "p1", Kind: "party", To: "a@example.com",
		Data: map[string]string{"location": "the roof", "thing": "snacks"}}, "wifi@space.example")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Party at the roof" || m.Text != "Bring snacks." || m.HTML != "" {
		t.Errorf("new kind = %+v", m)
	}
	if got := strings.Join(tm.Kinds(), ","); got != "guest_code,party,welcome" {
		t.Errorf("Kinds = %s", got)
	}

	// A broken override is an error naming the file.
	write("guest_code.html", "{{if .x}}unclosed")
	if _, err := LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "guest_code.html") {
		t.Errorf("broken override: %v", err)
	}
	// A kind without a subject is an error.
	os.Remove(filepath.Join(dir, "guest_code.html"))
	write("lonely.txt", "hi")
	if _, err := LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "lonely.subject.txt") {
		t.Errorf("kind without subject: %v", err)
	}
	if _, err := LoadTemplates(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing override dir accepted")
	}
}

// TestPrintWelcome shows the default welcome email with -v.
func TestPrintWelcome(t *testing.T) {
	m, err := mustTemplates(t, "").Render(welcomeEmail(), "wifi@space.example")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Subject: %s\n\n%s", m.Subject, m.Text)
	e := welcomeEmail()
	e.Secret = map[string]string{"onboard_url": "https://x.example/o?t=1&u=2"}
	e.Data["expires"] = "tomorrow 18:00"
	m, _ = mustTemplates(t, "").Render(e, "wifi@space.example")
	t.Logf("%s\n%s", m.Text, m.HTML)
	g, _ := mustTemplates(t, "").Render(model.Email{ID: "g", Kind: "guest_code", To: "g@example.com", Data: map[string]string{"code": "ABC123", "valid_until": "18:00"}}, "wifi@space.example")
	t.Logf("%s\n%s", g.Subject, g.Text)
}
