package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

const (
	testUser = "deskgate@example.org"
	testPass = "s3cret-smtp-pass"
)

// received is one message the test server accepted.
type received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
}

// testServer is an in-process go-smtp server on 127.0.0.1:0.
type testServer struct {
	t    *testing.T
	addr *net.TCPAddr
	srv  *gosmtp.Server
	pool *x509.CertPool // trusts the server's certificate

	mu       sync.Mutex
	msgs     []received
	failData []error // errors returned by successive DATA commands before accepting
	auths    int
}

type serverOpts struct {
	noTLS        bool // do not offer STARTTLS
	insecureAuth bool // offer AUTH without TLS
	loginOnly    bool // offer AUTH LOGIN instead of PLAIN
}

func newTestServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	ts := &testServer{t: t}
	s := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &testSession{ts: ts, c: c, login: o.loginOnly}, nil
	}))
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.AllowInsecureAuth = o.insecureAuth
	s.ErrorLog = testLogger{t}
	if !o.noTLS {
		cert, pool := selfSigned(t)
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ts.pool = pool
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().(*net.TCPAddr)
	ts.srv = s
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		l.Close() // Serve may not have registered l with s yet
		s.Close()
		<-done
	})
	return ts
}

// config returns an SMTPConfig for ts with STARTTLS and AUTH.
func (ts *testServer) config() SMTPConfig {
	return SMTPConfig{
		Host:      "127.0.0.1",
		Port:      ts.addr.Port,
		Username:  testUser,
		Password:  testPass,
		From:      "WiFi <wifi@space.example>",
		TLS:       TLSStartTLS,
		RootCAs:   ts.pool,
		HelloName: "gw.test",
		Timeout:   5 * time.Second,
	}
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

type testLogger struct{ t *testing.T }

func (l testLogger) Printf(format string, v ...any) { l.t.Logf("smtp server: "+format, v...) }
func (l testLogger) Println(v ...any)               { l.t.Log(append([]any{"smtp server:"}, v...)...) }

type testSession struct {
	ts    *testServer
	login bool
	c     *gosmtp.Conn
	user  string
	from  string
	to    []string
}

func (s *testSession) AuthMechanisms() []string {
	if s.login {
		return []string{sasl.Login}
	}
	return []string{sasl.Plain}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	check := func(identity, username, password string) error {
		s.ts.mu.Lock()
		s.ts.auths++
		s.ts.mu.Unlock()
		if username != testUser || password != testPass {
			return gosmtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}
	if mech == sasl.Login {
		return &loginServer{check: check}, nil
	}
	return sasl.NewPlainServer(check), nil
}

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(identity, username, password string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check("", l.user, string(response))
	}
}

func (s *testSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.user == "" {
		return gosmtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	if len(s.ts.failData) > 0 {
		err := s.ts.failData[0]
		s.ts.failData = s.ts.failData[1:]
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.ts.msgs = append(s.ts.msgs, received{From: s.from, To: s.to, Data: b, TLS: isTLS, AuthUser: s.user})
	return nil
}

func (s *testSession) Reset()        { s.from, s.to = "", nil }
func (s *testSession) Logout() error { return nil }

// selfSigned returns a certificate for 127.0.0.1 and localhost and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func testMessage() Message {
	return Message{
		ID:      "em-1",
		To:      "Ada Lovelace <ada@example.com>",
		From:    "WiFi <wifi@space.example>",
		Subject: "Hello",
		Text:    "plain body",
		HTML:    "<p>html body</p>",
	}
}

func TestSMTPSendStartTLSAuth(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	m := NewSMTPMailer(ts.config())
	if err := m.Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	msgs := ts.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if !got.TLS {
		t.Error("message was not sent inside TLS")
	}
	if got.AuthUser != testUser {
		t.Errorf("auth user = %q, want %q", got.AuthUser, testUser)
	}
	if got.From != "wifi@space.example" || len(got.To) != 1 || got.To[0] != "ada@example.com" {
		t.Errorf("envelope = %q -> %q", got.From, got.To)
	}
	p := parseMessage(t, got.Data)
	if p.header.Get("Message-Id") != "<em-1@deskgate>" {
		t.Errorf("Message-ID = %q", p.header.Get("Message-Id"))
	}
	if p.text != "plain body\r\n" || p.html != "<p>html body</p>\r\n" {
		t.Errorf("parts = %q, %q", p.text, p.html)
	}
}

func TestSMTPAuthLogin(t *testing.T) {
	ts := newTestServer(t, serverOpts{loginOnly: true})
	if err := NewSMTPMailer(ts.config()).Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	if msgs := ts.messages(); len(msgs) != 1 || msgs[0].AuthUser != testUser {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestSMTPCheck(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	if err := NewSMTPMailer(ts.config()).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(ts.messages()) != 0 {
		t.Error("Check sent a message")
	}
	if ts.auths != 1 {
		t.Errorf("Check authenticated %d times, want 1", ts.auths)
	}
}

func TestSMTPStartTLSRequired(t *testing.T) {
	ts := newTestServer(t, serverOpts{noTLS: true, insecureAuth: true})
	c := ts.config()
	for _, name := range []string{"send", "check"} {
		var err error
		if name == "send" {
			err = NewSMTPMailer(c).Send(context.Background(), testMessage())
		} else {
			err = NewSMTPMailer(c).Check(context.Background())
		}
		if !errors.Is(err, ErrNoStartTLS) {
			t.Errorf("%s: err = %v, want ErrNoStartTLS", name, err)
		}
		if !IsPermanent(err) {
			t.Errorf("%s: IsPermanent(%v) = false", name, err)
		}
	}
	if ts.auths != 0 || len(ts.messages()) != 0 {
		t.Errorf("credentials or message went out without TLS: auths=%d msgs=%d", ts.auths, len(ts.messages()))
	}
}

func TestSMTPNoTLSLoopback(t *testing.T) {
	// tls: none is for a local relay; AUTH is allowed to a loopback address.
	ts := newTestServer(t, serverOpts{noTLS: true, insecureAuth: true})
	c := ts.config()
	c.TLS = TLSNone
	if err := NewSMTPMailer(c).Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	if len(ts.messages()) != 1 || ts.messages()[0].TLS {
		t.Fatalf("messages = %+v", ts.messages())
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ts := newTestServer(t, serverOpts{noTLS: true})
	// Re-serve the same backend behind a TLS listener.
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ts.srv.Serve(l) }()
	t.Cleanup(func() { l.Close(); <-done })
	c := ts.config()
	c.TLS = TLSImplicit
	c.Port = l.Addr().(*net.TCPAddr).Port
	c.RootCAs = pool
	if err := NewSMTPMailer(c).Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	if len(ts.messages()) != 1 || !ts.messages()[0].TLS {
		t.Fatalf("messages = %+v", ts.messages())
	}
}

func TestSMTPUntrustedCertificate(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c := ts.config()
	c.RootCAs = x509.NewCertPool()
	err := NewSMTPMailer(c).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
	if ts.auths != 0 {
		t.Error("authenticated over an unverified connection")
	}
}

func TestSMTPAuthFailure(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c := ts.config()
	c.Password = "wrong-password-xyz"
	err := NewSMTPMailer(c).Send(context.Background(), testMessage())
	if err == nil {
		t.Fatal("send with a wrong password succeeded")
	}
	if SMTPCode(err) != 535 || !IsPermanent(err) {
		t.Errorf("err = %v (code %d), want a permanent 535", err, SMTPCode(err))
	}
	if strings.Contains(err.Error(), c.Password) {
		t.Errorf("error %q contains the password", err)
	}
	if len(ts.messages()) != 0 {
		t.Error("message accepted without auth")
	}
}

func TestSMTPTemporaryFailure(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	ts.failData = []error{&gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}}
	err := NewSMTPMailer(ts.config()).Send(context.Background(), testMessage())
	if err == nil || SMTPCode(err) != 451 || IsPermanent(err) {
		t.Fatalf("err = %v (code %d), want a temporary 451", err, SMTPCode(err))
	}
}

func TestSMTPContextCancel(t *testing.T) {
	// A server that accepts and never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := SMTPConfig{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = NewSMTPMailer(c).Send(ctx, testMessage())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v after the context ended", d)
	}
}

func TestSMTPRefusesInvalidMessage(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	m := testMessage()
	m.Subject = "hi\r\nBcc: victim@example.com"
	err := NewSMTPMailer(ts.config()).Send(context.Background(), m)
	if !errors.Is(err, ErrHeaderInjection) {
		t.Fatalf("err = %v, want ErrHeaderInjection", err)
	}
	if ts.auths != 0 {
		t.Error("connected for an invalid message")
	}
}

func TestAuthRefusesPlaintextToRemote(t *testing.T) {
	remote := &smtp.ServerInfo{Name: "mail.example.com", TLS: false, Auth: []string{"PLAIN", "LOGIN"}}
	for _, a := range []smtp.Auth{
		&plainAuth{user: testUser, pass: testPass},
		&loginAuth{user: testUser, pass: testPass},
	} {
		if _, resp, err := a.Start(remote); !errors.Is(err, errInsecureAuth) || resp != nil {
			t.Errorf("%T.Start without TLS to a remote server: %q, %v", a, resp, err)
		}
		if _, _, err := a.Start(&smtp.ServerInfo{Name: "mail.example.com", TLS: true}); err != nil {
			t.Errorf("%T.Start with TLS: %v", a, err)
		}
	}
}
