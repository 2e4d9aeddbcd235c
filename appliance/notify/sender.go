package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// Mailer delivers one message. Implementations: SMTPMailer, Mailbox.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Outbox is the durable queue the Sender drains; the store implements it.
type Outbox interface {
	// PendingEmails returns up to limit emails due at now (NextTry zero or
	// not after now), oldest first, with Secret opened.
	PendingEmails(now time.Time, limit int) ([]model.Email, error)
	// MarkEmailSent removes the email from the queue (or marks it done).
	MarkEmailSent(id string) error
	// MarkEmailFailed records a failed attempt: it increments Attempts and
	// stores errText and next as LastError and NextTry.
	MarkEmailFailed(id, errText string, next time.Time) error
}

// Retry policy.
const (
	// MinBackoff is the wait after the first failure; it doubles with
	// each further failure up to MaxBackoff.
	MinBackoff = time.Minute
	MaxBackoff = time.Hour
	// LoudAttempts is the number of attempts after which a permanent
	// failure (SMTP 5xx, invalid message, unknown kind) is logged at error
	// level on every further attempt. The email stays in the outbox and is
	// still retried every MaxBackoff, so fixing the address or the SMTP
	// settings delivers it.
	LoudAttempts = 10

	defaultPollInterval = 30 * time.Second
	defaultBatchSize    = 50
)

// Backoff returns the wait after the attempt-th failed attempt (1-based):
// 1m, 2m, 4m, ... capped at 1h.
func Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := MinBackoff
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// SenderStats counts what a Sender did since it was created.
type SenderStats struct {
	Sent int // emails delivered and marked sent
	// Skipped counts emails dropped unsent because another box of the
	// fleet had sent them (Claim).
	Skipped int
	Failed  int // failed attempts
	// Pending is the number of emails whose last attempt by this sender
	// failed and that await a retry.
	Pending   int
	LastSent  time.Time
	LastError string // the most recent failure, for status pages
}

// Sender drains an Outbox through a Mailer. Run it once; Kick and Flush
// may be called from any goroutine. Set the exported fields before Run.
type Sender struct {
	// PollInterval is how long Run sleeps between drains when not kicked;
	// default 30s.
	PollInterval time.Duration
	// BatchSize is the limit passed to PendingEmails; default 50.
	BatchSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Claim, if set, is asked before an email with a Once name is sent:
	// ok=false means another box (by) sent it, and the email is dropped
	// from the outbox unsent (the fleet's "sent" marks, docs/fleet.md).
	Claim func(e model.Email) (ok bool, by string, err error)

	outbox Outbox
	mailer Mailer
	tmpl   *Templates
	from   string
	log    *slog.Logger
	kick   chan struct{}

	drainMu sync.Mutex // one drain at a time: Run and Flush never send the same email twice

	mu      sync.Mutex
	stats   SenderStats
	failing map[string]bool
}

// NewSender returns a sender rendering outbox entries with t, from address
// from, and delivering them with m. A nil log discards.
func NewSender(o Outbox, m Mailer, t *Templates, from string, log *slog.Logger) *Sender {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		PollInterval: defaultPollInterval,
		BatchSize:    defaultBatchSize,
		Now:          time.Now,
		outbox:       o,
		mailer:       m,
		tmpl:         t,
		from:         from,
		log:          log,
		kick:         make(chan struct{}, 1),
		failing:      map[string]bool{},
	}
}

// Run drains the outbox, then sleeps until Kick or PollInterval, until ctx
// ends; it returns ctx.Err(). Delivery failures are recorded in the outbox
// and logged, never returned.
func (s *Sender) Run(ctx context.Context) error {
	poll := s.PollInterval
	if poll <= 0 {
		poll = defaultPollInterval
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if _, err := s.drain(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("email outbox", "err", err)
		}
		t.Reset(poll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.kick:
		case <-t.C:
		}
	}
}

// Kick wakes Run to drain the outbox now; it never blocks. Call it after
// enqueueing an email.
func (s *Sender) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Flush sends every email due now and returns when done. Its error joins
// the outbox error, if any, and every delivery failure (each also recorded
// in the outbox for a retry).
func (s *Sender) Flush(ctx context.Context) error {
	failures, err := s.drain(ctx)
	return errors.Join(append([]error{err}, failures...)...)
}

// Stats returns a snapshot of the counters.
func (s *Sender) Stats() SenderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Pending = len(s.failing)
	return st
}

// drain sends due emails in batches until none are left. It returns the
// delivery failures and, separately, an outbox or context error.
func (s *Sender) drain(ctx context.Context) (failures []error, err error) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	batch := s.BatchSize
	if batch <= 0 {
		batch = defaultBatchSize
	}
	seen := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return failures, err
		}
		list, err := s.outbox.PendingEmails(s.Now(), batch)
		if err != nil {
			return failures, fmt.Errorf("read outbox: %w", err)
		}
		progress := false
		for _, e := range list {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			progress = true
			if err := s.sendOne(ctx, e); err != nil {
				if ctx.Err() != nil {
					return failures, ctx.Err()
				}
				failures = append(failures, err)
			}
		}
		if !progress || len(list) < batch {
			return failures, nil
		}
	}
}

// sendOne renders and delivers e and records the outcome in the outbox.
func (s *Sender) sendOne(ctx context.Context, e model.Email) error {
	log := s.log.With("email", e.ID, "kind", e.Kind)
	if e.Member != "" {
		log = log.With("member", e.Member)
	}
	var err error
	if s.Claim != nil && e.Once != "" {
		ok, by, cerr := s.Claim(e)
		switch {
		case cerr != nil:
			err = fmt.Errorf("claim %s: %w", e.Once, cerr)
		case !ok:
			s.mu.Lock()
			s.stats.Skipped++
			delete(s.failing, e.ID)
			s.mu.Unlock()
			if merr := s.outbox.MarkEmailSent(e.ID); merr != nil {
				return fmt.Errorf("email %s: drop (sent by %s): %w", e.ID, by, merr)
			}
			log.Info("email not sent: another box of the fleet sent it", "once", e.Once, "sent_by", by)
			return nil
		}
	}
	var m Message
	if err == nil {
		m, err = s.tmpl.Render(e, s.from)
	}
	if err == nil {
		err = s.mailer.Send(ctx, m)
	}
	if err == nil {
		s.mu.Lock()
		s.stats.Sent++
		s.stats.LastSent = s.Now()
		delete(s.failing, e.ID)
		s.mu.Unlock()
		if merr := s.outbox.MarkEmailSent(e.ID); merr != nil {
			// The message went out; the next drain may send it again,
			// with the same Message-ID (see the package doc).
			log.Error("email sent but not marked sent; it may be sent again", "err", merr)
			return fmt.Errorf("email %s: mark sent: %w", e.ID, merr)
		}
		log.Info("email sent", "attempt", e.Attempts+1)
		return nil
	}
	if ctx.Err() != nil {
		// Shutting down: leave the email due; it is not the email's fault.
		return ctx.Err()
	}

	attempt := e.Attempts + 1
	wait := Backoff(attempt)
	next := s.Now().Add(wait)
	s.mu.Lock()
	s.stats.Failed++
	s.stats.LastError = fmt.Sprintf("email %s (%s): %v", e.ID, e.Kind, err)
	s.failing[e.ID] = true
	s.mu.Unlock()
	if merr := s.outbox.MarkEmailFailed(e.ID, err.Error(), next); merr != nil {
		log.Error("email failed and could not be marked failed", "err", err, "mark_err", merr)
		return fmt.Errorf("email %s: %w (mark failed: %v)", e.ID, err, merr)
	}
	if IsPermanent(err) && attempt >= LoudAttempts {
		log.Error("email UNDELIVERABLE: permanent failure; kept in outbox and retried hourly; fix the address or SMTP settings",
			"attempt", attempt, "smtp_code", SMTPCode(err), "err", err)
	} else {
		log.Warn("email send failed; will retry", "attempt", attempt, "permanent", IsPermanent(err),
			"retry_in", wait, "err", err)
	}
	return fmt.Errorf("email %s: %w", e.ID, err)
}
