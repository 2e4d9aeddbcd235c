package notify

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

type parsed struct {
	header     mail.Header
	text, html string
}

// parseMessage parses raw as a MIME message and returns its decoded parts.
func parseMessage(t *testing.T, raw []byte) parsed {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("message has a bare LF")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{header: msg.Header}
	for _, h := range []string{"Date", "From", "To", "Subject", "Message-Id", "Mime-Version", "Content-Type"} {
		if msg.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		ct := part.Header.Get("Content-Type")
		switch ct {
		case "text/plain; charset=utf-8":
			p.text = string(b)
		case "text/html; charset=utf-8":
			p.html = string(b)
		default:
			t.Errorf("unexpected part %q", ct)
		}
	}
	if p.text == "" || p.html == "" {
		t.Errorf("missing a part: text %d bytes, html %d bytes", len(p.text), len(p.html))
	}
	return p
}

func TestComposeHeaders(t *testing.T) {
	m := Message{
		ID:      "abc-123",
		To:      "Zoë Ünal <zoe@example.com>",
		From:    "Café Space <wifi@cafe.example>",
		Subject: "Willkommen im Café – WLAN",
		Text:    "Grüße\n" + strings.Repeat("long line ", 20),
		HTML:    "<p>Grüße</p>",
	}
	date := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	raw, err := Compose(m, date)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line longer than 998: %q", line)
		}
		for _, r := range line {
			if r > 127 {
				t.Fatalf("non-ASCII in message: %q", line)
			}
		}
	}
	p := parseMessage(t, raw)
	var dec mime.WordDecoder
	subj, err := dec.DecodeHeader(p.header.Get("Subject"))
	if err != nil || subj != m.Subject {
		t.Errorf("Subject = %q (%v), want %q", subj, err, m.Subject)
	}
	if !strings.HasPrefix(p.header.Get("Subject"), "=?utf-8?") {
		t.Errorf("raw Subject %q not RFC 2047 encoded", p.header.Get("Subject"))
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Zoë Ünal" || to[0].Address != "zoe@example.com" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if d, _ := p.header.Date(); !d.Equal(date) {
		t.Errorf("Date = %v, want %v", d, date)
	}
	if got := p.header.Get("Message-Id"); got != "<abc-123@deskgate>" {
		t.Errorf("Message-ID = %q", got)
	}
	if p.header.Get("Mime-Version") != "1.0" {
		t.Errorf("MIME-Version = %q", p.header.Get("Mime-Version"))
	}
	if !strings.HasPrefix(p.text, "Grüße\r\n") || !strings.Contains(p.html, "<p>Grüße</p>") {
		t.Errorf("parts = %q, %q", p.text, p.html)
	}
}

func TestMessageIDEscaping(t *testing.T) {
	for id, want := range map[string]string{
		"0123abcdef":    "<0123abcdef@deskgate>",
		"welcome-m1.v2": "<welcome-m1.v2@deskgate>",
		"welcome:m1":    "<welcome=3Am1@deskgate>",
		"a=3Ab":         "<a=3D3Ab@deskgate>",
		"../x y@z":      "<=2E=2E=2Fx=20y=40z@deskgate>",
		"a..b.":         "<a.=2Eb=2E@deskgate>",
		"":              "",
	} {
		if got := (Message{ID: id}).MessageID(); got != want {
			t.Errorf("MessageID(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestComposeTextOnly(t *testing.T) {
	raw, err := Compose(Message{To: "a@example.com", From: "b@example.com", Subject: "s", Text: "hi"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ct := msg.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if id := msg.Header.Get("Message-Id"); !strings.HasSuffix(id, "@deskgate>") || len(id) < 20 {
		t.Errorf("random Message-ID = %q", id)
	}
}

func TestMessageValidate(t *testing.T) {
	ok := testMessage()
	for _, tc := range []struct {
		name   string
		mod    func(*Message)
		inject bool
	}{
		{"subject CRLF", func(m *Message) { m.Subject = "hi\r\nBcc: x@example.com" }, true},
		{"subject LF", func(m *Message) { m.Subject = "hi\nBcc: x@example.com" }, true},
		{"to CR", func(m *Message) { m.To = "a@example.com\rBcc: x@example.com" }, true},
		{"from LF", func(m *Message) { m.From = "a@example.com\n" }, true},
		{"id LF", func(m *Message) { m.ID = "x\ny" }, true},
		{"bad to", func(m *Message) { m.To = "not an address" }, false},
		{"empty to", func(m *Message) { m.To = "" }, false},
		{"bad from", func(m *Message) { m.From = "a@@b" }, false},
		{"id too long", func(m *Message) { m.ID = strings.Repeat("x", 201) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ok
			tc.mod(&m)
			err := m.Validate()
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("Validate = %v, want ErrInvalidMessage", err)
			}
			if errors.Is(err, ErrHeaderInjection) != tc.inject {
				t.Errorf("Validate = %v, header injection %v", err, tc.inject)
			}
			if _, err := Compose(m, time.Now()); err == nil {
				t.Error("Compose accepted it")
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid message: %v", err)
	}
}
