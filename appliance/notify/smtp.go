package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
)

// TLS modes for SMTPConfig.TLS.
const (
	TLSStartTLS = "starttls" // plain connect, then STARTTLS; required
	TLSImplicit = "implicit" // TLS from the first byte (port 465)
	TLSNone     = "none"     // no TLS; AUTH only to a loopback server
)

// ErrNoStartTLS reports that TLS is "starttls" but the server did not offer
// STARTTLS. deskgate never falls back to plaintext.
var ErrNoStartTLS = errors.New("smtp server does not offer STARTTLS")

// SMTPConfig configures an SMTPMailer. Password is a secret: it is sent
// only inside TLS (or to a loopback server with TLS "none") and never
// logged or included in errors.
type SMTPConfig struct {
	Host     string
	Port     int // default 587, or 465 when TLS is "implicit"
	Username string
	Password string
	From     string // default envelope sender when a Message has none
	// TLS is "starttls" (default; the server must offer it), "implicit"
	// or "none".
	TLS                string
	InsecureSkipVerify bool           // tests only
	RootCAs            *x509.CertPool // nil: the system roots
	HelloName          string         // EHLO name; default the hostname
	Timeout            time.Duration  // per connect and per command; default 30s
	// Now is the clock for the Date header and the server certificate's
	// validity; default time.Now.
	Now func() time.Time
}

// SMTPMailer sends messages through an SMTP submission server, one
// connection per message. It is safe for concurrent use.
type SMTPMailer struct {
	c   SMTPConfig
	now func() time.Time
}

// NewSMTPMailer returns a mailer for c. It does not connect; use Check to
// test the settings.
func NewSMTPMailer(c SMTPConfig) *SMTPMailer {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.Port == 0 {
		c.Port = 587
		if c.TLS == TLSImplicit {
			c.Port = 465
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.HelloName == "" {
		c.HelloName = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
			c.HelloName = h
		}
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &SMTPMailer{c: c, now: now}
}

// Send delivers m: connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT.
// An empty m.From uses the configured From. Server replies come back as
// errors wrapping *textproto.Error; IsPermanent tells 5xx from 4xx.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	if m.From == "" {
		m.From = s.c.From
	}
	from, to, err := m.envelope()
	if err != nil {
		return err
	}
	raw, err := Compose(m, s.now())
	if err != nil {
		return err
	}
	return s.session(ctx, func(c *smtp.Client, step func()) error {
		step()
		if err := c.Mail(from); err != nil {
			return fmt.Errorf("smtp mail from: %w", err)
		}
		for _, rcpt := range to {
			step()
			if err := c.Rcpt(rcpt); err != nil {
				return fmt.Errorf("smtp rcpt to: %w", err)
			}
		}
		step()
		w, err := c.Data()
		if err != nil {
			return fmt.Errorf("smtp data: %w", err)
		}
		if _, err := w.Write(raw); err != nil {
			w.Close()
			return fmt.Errorf("smtp data: %w", err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("smtp data: %w", err)
		}
		return nil
	})
}

// Check connects, greets, starts TLS and authenticates as Send would, then
// quits without sending anything. It is what `deskgate doctor` runs.
func (s *SMTPMailer) Check(ctx context.Context) error {
	return s.session(ctx, func(*smtp.Client, func()) error { return nil })
}

func (s *SMTPMailer) addr() string {
	return net.JoinHostPort(s.c.Host, strconv.Itoa(s.c.Port))
}

func (s *SMTPMailer) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         s.c.Host,
		RootCAs:            s.c.RootCAs,
		InsecureSkipVerify: s.c.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		Time:               s.now,
	}
}

// session runs one SMTP connection up to and including AUTH, calls fn, and
// quits. Cancelling ctx closes the connection, which aborts any command.
func (s *SMTPMailer) session(ctx context.Context, fn func(c *smtp.Client, step func()) error) (err error) {
	switch s.c.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return fmt.Errorf("smtp: unknown tls mode %q", s.c.TLS)
	}
	if s.c.Host == "" {
		return errors.New("smtp: no host configured")
	}
	addr := s.addr()
	dctx, cancel := context.WithTimeout(ctx, s.c.Timeout)
	defer cancel()
	var conn net.Conn
	if s.c.TLS == TLSImplicit {
		d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: s.tlsConfig()}
		conn, err = d.DialContext(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp connect %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("smtp %s: %w", addr, ctx.Err())
		}
	}()
	step := func() { _ = conn.SetDeadline(time.Now().Add(s.c.Timeout)) } // an I/O deadline, not a decision

	step()
	c, err := smtp.NewClient(conn, s.c.Host)
	if err != nil {
		return fmt.Errorf("smtp greeting from %s: %w", addr, err)
	}
	defer c.Close()
	step()
	if err := c.Hello(s.c.HelloName); err != nil {
		return fmt.Errorf("smtp ehlo %s: %w", addr, err)
	}
	if s.c.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s: %w", addr, ErrNoStartTLS)
		}
		step()
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("smtp starttls %s: %w", addr, err)
		}
	}
	if s.c.Username != "" {
		step()
		if err := s.auth(c, isLoopback(conn.RemoteAddr())); err != nil {
			return fmt.Errorf("smtp auth %s as %s: %w", addr, s.c.Username, err)
		}
	}
	if err := fn(c, step); err != nil {
		return err
	}
	// The server has accepted the message; a failed QUIT must not make the
	// caller send it again.
	step()
	_ = c.Quit()
	return nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// auth authenticates with PLAIN or LOGIN. Credentials go only over TLS,
// or in the clear to a loopback peer.
func (s *SMTPMailer) auth(c *smtp.Client, loopback bool) error {
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return errors.New("server does not offer AUTH")
	}
	var a smtp.Auth
	for _, m := range strings.Fields(strings.ToUpper(mechs)) {
		if m == "PLAIN" {
			a = &plainAuth{user: s.c.Username, pass: s.c.Password, loopback: loopback}
			break
		}
		if m == "LOGIN" {
			a = &loginAuth{user: s.c.Username, pass: s.c.Password, loopback: loopback}
		}
	}
	if a == nil {
		return fmt.Errorf("server offers neither PLAIN nor LOGIN (%s)", mechs)
	}
	return c.Auth(a)
}

var errInsecureAuth = errors.New("refusing to send credentials without TLS to a non-loopback server")

// plainAuth is SASL PLAIN (RFC 4616). Unlike net/smtp.PlainAuth it does not
// compare the server name, which the TLS handshake already verified.
type plainAuth struct {
	user, pass string
	loopback   bool
}

func (a *plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !a.loopback {
		return "", nil, errInsecureAuth
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a *plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge")
	}
	return nil, nil
}

// loginAuth is the obsolete but common AUTH LOGIN.
type loginAuth struct {
	user, pass string
	loopback   bool
}

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !a.loopback {
		return "", nil, errInsecureAuth
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(challenge))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN challenge %q", challenge)
}

// IsPermanent reports whether err is a permanent delivery failure: an SMTP
// 5xx reply, a missing STARTTLS, an invalid message or an unknown email
// kind. Everything else
// (4xx replies, network errors, timeouts) is temporary.
func IsPermanent(err error) bool {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 500 && te.Code < 600
	}
	return errors.Is(err, ErrNoStartTLS) || errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrUnknownKind)
}

// SMTPCode returns the SMTP reply code inside err, or 0.
func SMTPCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
