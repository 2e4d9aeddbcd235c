package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/deskgate/deskgate/appliance/model"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestSender(t *testing.T, o Outbox, m Mailer) (*Sender, *syncBuffer, *time.Time) {
	t.Helper()
	logs := &syncBuffer{}
	s := NewSender(o, m, mustTemplates(t, ""), "WiFi <wifi@space.example>",
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	now := t0
	s.Now = func() time.Time { return now }
	t.Cleanup(func() {
		for _, secret := range []string{"correct-horse-battery-staple", testPass} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("logs contain the secret %q:\n%s", secret, logs)
			}
		}
	})
	return s, logs, &now
}

func TestSenderRetriesTemporaryFailure(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	ts.failData = []error{&gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "greylisted"}}
	o := NewMemOutbox()
	o.Add(welcomeEmail())
	s, logs, now := newTestSender(t, o, NewSMTPMailer(ts.config()))
	ctx := context.Background()

	if err := s.Flush(ctx); err == nil || SMTPCode(err) != 451 {
		t.Fatalf("first Flush = %v, want the 451", err)
	}
	e, sent, _, _ := o.Get("welcome-m1")
	if sent || e.Attempts != 1 || !e.NextTry.Equal(t0.Add(time.Minute)) || !strings.Contains(e.LastError, "451") {
		t.Fatalf("after 451: sent=%v attempts=%d next=%v err=%q", sent, e.Attempts, e.NextTry, e.LastError)
	}
	if st := s.Stats(); st.Failed != 1 || st.Pending != 1 || st.Sent != 0 {
		t.Errorf("stats = %+v", st)
	}

	// Not due yet: nothing happens.
	*now = t0.Add(59 * time.Second)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(ts.messages()) != 0 {
		t.Fatal("retried before the backoff")
	}

	*now = t0.Add(time.Minute)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 { // more flushes send nothing more
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_, sent, calls, _ := o.Get("welcome-m1")
	if !sent || calls != 1 {
		t.Errorf("sent=%v MarkEmailSent calls=%d, want true, 1", sent, calls)
	}
	msgs := ts.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	if st := s.Stats(); st.Sent != 1 || st.Failed != 1 || st.Pending != 0 || !st.LastSent.Equal(t0.Add(time.Minute)) {
		t.Errorf("stats = %+v", st)
	}

	p := parseMessage(t, msgs[0].Data)
	if !strings.Contains(p.text, "Password:       correct-horse-battery-staple") {
		t.Errorf("welcome text lacks the password:\n%s", p.text)
	}
	if !strings.Contains(p.html, "correct-horse-battery-staple") || !strings.Contains(p.html, "Ada &lt;Lovelace&gt;") {
		t.Errorf("welcome html:\n%s", p.html)
	}
	if p.header.Get("Message-Id") != "<welcome-m1@deskgate>" {
		t.Errorf("Message-ID = %q", p.header.Get("Message-Id"))
	}
	if p.header.Get("Subject") != "Welcome to Space & Co: your WiFi access for Space-WiFi" {
		t.Errorf("Subject = %q", p.header.Get("Subject"))
	}
	if to := p.header.Get("To"); to != `"Ada Lovelace" <ada@example.com>` {
		t.Errorf("To = %q", to)
	}
	if !strings.Contains(logs.String(), "email sent") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestSenderBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{
		0: time.Minute, 1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 6: 32 * time.Minute,
		7: time.Hour, 8: time.Hour, 100: time.Hour,
	} {
		if got := Backoff(attempt); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", attempt, got, want)
		}
	}

	o := NewMemOutbox()
	o.Add(welcomeEmail())
	tempFail := MailerFunc(func(context.Context, Message) error {
		return fmt.Errorf("smtp data: %w", &textproto.Error{Code: 421, Msg: "busy"})
	})
	s, _, now := newTestSender(t, o, tempFail)
	var got []time.Duration
	for range 8 {
		_ = s.Flush(context.Background())
		e, _, _, _ := o.Get("welcome-m1")
		got = append(got, e.NextTry.Sub(*now))
		*now = e.NextTry
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Minute {
			t.Fatalf("waits = %v, want %v minutes", got, want)
		}
	}
	if e, _, _, _ := o.Get("welcome-m1"); e.Attempts != 8 {
		t.Errorf("attempts = %d, want 8", e.Attempts)
	}
}

func TestSenderPermanentFailureIsLoud(t *testing.T) {
	o := NewMemOutbox()
	e := welcomeEmail()
	e.Attempts = LoudAttempts - 2
	o.Add(e)
	reject := MailerFunc(func(context.Context, Message) error {
		return fmt.Errorf("smtp rcpt to: %w", &textproto.Error{Code: 550, Msg: "5.1.1 no such user"})
	})
	s, logs, now := newTestSender(t, o, reject)
	_ = s.Flush(context.Background())
	if strings.Contains(logs.String(), "UNDELIVERABLE") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("attempt 9 logs:\n%s", logs)
	}
	*now = now.Add(time.Hour)
	_ = s.Flush(context.Background())
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "UNDELIVERABLE") ||
		!strings.Contains(logs.String(), "smtp_code=550") {
		t.Errorf("attempt 10 logs:\n%s", logs)
	}
	got, sent, _, _ := o.Get(e.ID)
	if sent || got.Attempts != LoudAttempts || !got.NextTry.Equal(now.Add(time.Hour)) {
		t.Errorf("kept email: sent=%v attempts=%d next=%v", sent, got.Attempts, got.NextTry)
	}
}

func TestSenderRenderFailure(t *testing.T) {
	o := NewMemOutbox()
	e := welcomeEmail()
	e.Kind = "unknown"
	o.Add(e)
	calls := 0
	s, _, _ := newTestSender(t, o, MailerFunc(func(context.Context, Message) error { calls++; return nil }))
	if err := s.Flush(context.Background()); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Flush = %v", err)
	}
	if got, _, _, _ := o.Get(e.ID); got.Attempts != 1 || calls != 0 {
		t.Errorf("attempts=%d mailer calls=%d", got.Attempts, calls)
	}
}

func TestSenderCancelledSendIsNotAFailure(t *testing.T) {
	o := NewMemOutbox()
	o.Add(welcomeEmail())
	ctx, cancel := context.WithCancel(context.Background())
	block := MailerFunc(func(ctx context.Context, _ Message) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	s, _, _ := newTestSender(t, o, block)
	if err := s.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush = %v", err)
	}
	if e, sent, _, _ := o.Get("welcome-m1"); sent || e.Attempts != 0 {
		t.Errorf("sent=%v attempts=%d, want still due", sent, e.Attempts)
	}
}

func TestSenderRunKick(t *testing.T) {
	o := NewMemOutbox()
	var mu sync.Mutex
	sends := map[string]int{}
	mailer := MailerFunc(func(_ context.Context, m Message) error {
		mu.Lock()
		defer mu.Unlock()
		sends[m.ID]++
		return nil
	})
	s, _, _ := newTestSender(t, o, mailer)
	s.PollInterval = time.Hour // only Kick can wake it
	s.BatchSize = 3
	s.Now = time.Now

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		e := welcomeEmail()
		e.ID = fmt.Sprintf("e%02d", i)
		o.Add(e)
		s.Kick()
		if i%5 == 0 {
			wg.Add(1)
			go func() { defer wg.Done(); _ = s.Flush(ctx) }() // concurrent with Run
		}
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Sent < n && time.Now().Before(deadline) {
		s.Kick()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sends) != n {
		t.Errorf("sent %d distinct emails, want %d", len(sends), n)
	}
	for id, c := range sends {
		_, sent, calls, _ := o.Get(id)
		if c != 1 || !sent || calls != 1 {
			t.Errorf("%s: sends=%d sent=%v MarkEmailSent calls=%d", id, c, sent, calls)
		}
	}
}

func TestSenderMailboxEndToEnd(t *testing.T) {
	o := NewMemOutbox()
	o.Add(welcomeEmail())
	b := NewMailbox(t.TempDir())
	s, _, _ := newTestSender(t, o, b)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := b.Files()
	if len(files) != 1 {
		t.Fatalf("files = %q", files)
	}
}

// TestSenderClaim: an email with a fleet-wide name is claimed before it
// is sent; one another box claimed is dropped from the outbox unsent; a
// claim error is a failed attempt (retried), never a send.
func TestSenderClaim(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	o := NewMemOutbox()
	mine, theirs, broken, plain := welcomeEmail(), welcomeEmail(), welcomeEmail(), welcomeEmail()
	mine.ID, mine.Once = "w-mine", "welcome/m1"
	theirs.ID, theirs.Once = "w-theirs", "welcome/m2"
	broken.ID, broken.Once = "w-broken", "welcome/m3"
	plain.ID = "w-plain"
	for _, e := range []model.Email{mine, theirs, broken, plain} {
		o.Add(e)
	}
	s, logs, _ := newTestSender(t, o, NewSMTPMailer(ts.config()))
	var claimed []string
	s.Claim = func(e model.Email) (bool, string, error) {
		claimed = append(claimed, e.Once)
		switch e.Once {
		case "welcome/m2":
			return false, "box-b", nil
		case "welcome/m3":
			return false, "", errors.New("store closed")
		}
		return true, "box-a", nil
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Error("the claim error was not reported")
	}
	if n := len(ts.messages()); n != 2 {
		t.Errorf("server got %d messages, want 2 (mine and the one without a name)", n)
	}
	if _, sent, _, _ := o.Get("w-theirs"); !sent {
		t.Error("the email another box sent is still in the outbox")
	}
	if e, sent, _, _ := o.Get("w-broken"); sent || e.Attempts != 1 {
		t.Errorf("claim error: sent=%v attempts=%d, want a failed attempt", sent, e.Attempts)
	}
	if len(claimed) != 3 {
		t.Errorf("claimed %v, want the three named emails", claimed)
	}
	if st := s.Stats(); st.Sent != 2 || st.Skipped != 1 || st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "another box of the fleet sent it") {
		t.Errorf("logs:\n%s", logs)
	}
}
