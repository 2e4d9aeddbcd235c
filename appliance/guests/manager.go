package guests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Manager owns guest codes and guest-network sessions. Its methods are safe
// for concurrent use.
type Manager struct {
	cfg     Config
	st      *store.Store
	net     Network
	members Members
	log     *slog.Logger
	now     func() time.Time
	seal    sealer
	codes   codeHasher
	http    *http.Client
	poke    chan struct{}
	settle  chan chan struct{}
	refresh chan struct{}
	// pendingClaims: a code waits for a fleet box to claim its delivery.
	pendingClaims atomic.Bool

	// mu orders writes with the Network calls that follow them, so a
	// revoke never overtakes the allow it cancels.
	mu sync.Mutex
}

// New returns a Manager. A nil log discards; a nil now is time.Now. Run it
// (or call Restore and Reconcile) to start.
func New(cfg Config, st *store.Store, net Network, members Members, log *slog.Logger, now func() time.Time) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	cfg = cfg.withDefaults()
	s, ephemeral, err := newSealer(cfg.SealKey)
	if err != nil {
		panic(err) // crypto/rand and AES-256 with a 32-byte key cannot fail
	}
	if ephemeral {
		log.Warn("guests: no seal key configured; codes cannot be re-sent after a restart")
	}
	codeKey := cfg.CodeKey
	if len(codeKey) != 32 {
		codeKey = make([]byte, 32)
		_, _ = rand.Read(codeKey) // never fails (crypto/rand)
		log.Warn("guests: no code key configured; codes stop working at a restart")
	}
	// The SMS hook's certificate is checked against the one clock.
	smsTransport := http.DefaultTransport.(*http.Transport).Clone()
	smsTransport.TLSClientConfig = &tls.Config{Time: now, MinVersion: tls.VersionTLS12}
	return &Manager{
		cfg: cfg, st: st, net: net, members: members, log: log, now: now, seal: s,
		codes: codeHasher{key: bytes.Clone(codeKey)},
		http:  &http.Client{Timeout: cfg.SMS.Timeout, Transport: smsTransport},
		poke:  make(chan struct{}, 1), settle: make(chan chan struct{}), refresh: make(chan struct{}, 1),
	}
}

// effects are the Network calls and nudges a committed transaction implies.
type effects struct {
	revoke []Client
	allow  []sessionRecord
	mail   bool
	sms    bool
	fleet  bool // entries for the fleet were originated
}

func (m *Manager) apply(ctx context.Context, fx effects) error {
	var errs []error
	for _, c := range fx.revoke {
		if err := m.net.Revoke(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("revoke %s: %w", device(c), err))
		}
	}
	for _, s := range fx.allow {
		if err := m.net.Allow(ctx, s.client(), s.Until); err != nil {
			errs = append(errs, fmt.Errorf("allow %s: %w", device(s.client()), err))
		}
	}
	if fx.fleet && m.cfg.Fleet != nil {
		m.cfg.Fleet.Nudge()
	}
	if fx.mail && m.cfg.KickMail != nil {
		m.cfg.KickMail()
	}
	if fx.sms || len(fx.allow) > 0 {
		m.wake()
	}
	if len(errs) > 0 {
		return &networkError{errors.Join(errs...)}
	}
	return nil
}

// networkError is a failed Network call after a committed write.
type networkError struct{ err error }

func (e *networkError) Error() string { return "guest network: " + e.err.Error() }
func (e *networkError) Unwrap() error { return e.err }

func (m *Manager) wake() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// update runs fn in one store transaction and then applies its effects.
func (m *Manager) update(ctx context.Context, fn func(tx *store.Tx, fx *effects) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var fx effects
	if err := m.st.Update(func(tx *store.Tx) error {
		fx = effects{}
		return fn(tx, &fx)
	}); err != nil {
		return err
	}
	return m.apply(ctx, fx)
}

// location describes id from the config, completed from the store.
func (m *Manager) location(tx *store.Tx, id string) Location {
	l := m.cfg.Locations[id]
	if l.Name == "" || l.TZ == nil {
		if sl, err := tx.GetLocation(id); err == nil {
			if l.Name == "" {
				l.Name = sl.Name
			}
			if l.TZ == nil && sl.Timezone != "" {
				if tz, err := time.LoadLocation(sl.Timezone); err == nil {
					l.TZ = tz
				}
			}
		}
	}
	if l.TZ == nil {
		l.TZ = time.UTC
	}
	return l
}

// nextMidnight is the first local midnight strictly after t in loc.
func nextMidnight(t time.Time, loc *time.Location) time.Time {
	y, mo, d := t.In(loc).Date()
	return time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
}

func fmtTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")
}

func fmtHours(d time.Duration) string {
	h := int(d.Round(time.Hour) / time.Hour)
	if h == 1 {
		return "1 hour"
	}
	return strconv.Itoa(h) + " hours"
}

// deliver queues the code's email and SMS. cause says why ("booking 65a…
// created").
func (m *Manager) deliver(tx *store.Tx, fx *effects, rec *codeRecord, cause string) error {
	if rec.Email == "" && (rec.Phone == "" || m.cfg.SMS.URL == "") {
		return nil
	}
	if send, err := m.claimDelivery(tx, fx, rec); err != nil || !send {
		return err
	}
	code, err := m.seal.open(rec.Sealed, rec.Hash)
	if err != nil {
		m.log.Warn("guest code cannot be re-sent", "code", rec.hint(), "err", err)
		return audit(tx, auditActor, "guest.delivery_skipped", rec.Member, "code "+rec.hint(), cause+"; code not recoverable")
	}
	loc := m.location(tx, rec.LocationID)
	from, until := "", ""
	switch {
	case !rec.Until.IsZero():
		from, until = fmtTime(rec.From, loc.TZ), fmtTime(rec.Until, loc.TZ)
	case m.now().Before(rec.From):
		from, until = fmtTime(rec.From, loc.TZ), fmtHours(rec.Granted)+" after your first sign-in"
	default:
		until = fmtHours(rec.Granted) + " after your first sign-in"
	}
	if rec.Email != "" {
		if _, err := tx.EnqueueEmail(model.Email{
			Kind: "guest_code", Once: rec.once(from, until), To: rec.Email, Member: rec.Member,
			Data: map[string]string{
				"name": rec.Name, "valid_from": from, "valid_until": until,
				"location": loc.Name, "network": loc.Network,
			},
			Secret: map[string]string{"code": FormatCode(code)},
		}); err != nil {
			return err
		}
		fx.mail = true
		if err := audit(tx, auditActor, "guest.email_queued", rec.Member, "code "+rec.hint(), cause); err != nil {
			return err
		}
	}
	if rec.Phone != "" && m.cfg.SMS.URL != "" {
		var b strings.Builder
		b.WriteString("Your WiFi guest code")
		if loc.Name != "" {
			b.WriteString(" for " + loc.Name)
		}
		b.WriteString(": " + smsCodeMark + ".")
		if loc.Network != "" {
			b.WriteString(" Network: " + loc.Network + ".")
		}
		if from != "" {
			b.WriteString(" From " + from + ".")
		}
		b.WriteString(" Valid until " + until + ".")
		if err := queueSMS(tx, rec, b.String(), m.now()); err != nil {
			return err
		}
		fx.sms = true
		if err := audit(tx, auditActor, "guest.sms_queued", rec.Member, "code "+rec.hint(), cause); err != nil {
			return err
		}
	}
	rec.Delivered = true
	return nil
}
