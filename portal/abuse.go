package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

const csrfCookie = "dg_csrf"

// csrf issues and checks form tokens: a random per-browser cookie, and in
// each form the HMAC of that cookie under the server key. A forged form on
// another origin can neither read the cookie nor compute the HMAC.
type csrf struct {
	key    []byte
	secure bool
}

func (c *csrf) mac(v string) string {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte("deskgate-portal-csrf\x00"))
	h.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// token returns the form token for r, setting the cookie on w when the
// browser has none (or a malformed one).
func (c *csrf) token(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 22 {
		return c.mac(ck.Value)
	}
	b := make([]byte, 16)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: c.secure && r.TLS != nil, SameSite: http.SameSiteLaxMode})
	// Later reads in this request see the new cookie.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return c.mac(v)
}

// valid reports whether the posted token matches the cookie.
func (c *csrf) valid(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || len(ck.Value) != 22 {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(c.mac(ck.Value)))
}

// limiter is a per-key token bucket: rate tokens a second up to burst.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxBuckets = 4096

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: make(map[string]*bucket)}
}

// allow takes a token for key and reports whether there was one; when not,
// it also returns how long until the next one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// prune drops buckets that have refilled (they carry no information), and
// if that is not enough, all of them: memory stays bounded under a flood of
// spoofed addresses.
func (l *limiter) prune(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// lockouts counts failed logins per client key and locks a key out for a
// while once it reaches max failures.
type lockouts struct {
	mu     sync.Mutex
	max    int
	period time.Duration
	now    func() time.Time
	m      map[string]*lockout
}

type lockout struct {
	fails int
	until time.Time // locked until; zero when not locked
	last  time.Time
}

func newLockouts(max int, period time.Duration, now func() time.Time) *lockouts {
	return &lockouts{max: max, period: period, now: now, m: make(map[string]*lockout)}
}

// locked returns how long the longest lock among keys has left (0 = none).
func (l *lockouts) locked(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var left time.Duration
	for _, k := range keys {
		if e := l.m[k]; e != nil && now.Before(e.until) {
			left = max(left, e.until.Sub(now))
		}
	}
	return left
}

// fail records a failure for each key and returns the attempts left before
// a lockout (0 means now locked) and the lock's length.
func (l *lockouts) fail(keys ...string) (left int, lock time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.m) >= maxBuckets {
		for k, e := range l.m {
			if now.Sub(e.last) > l.period && now.After(e.until) {
				delete(l.m, k)
			}
		}
	}
	left = l.max
	for _, k := range keys {
		e := l.m[k]
		if e == nil || (now.Sub(e.last) > l.period && now.After(e.until)) {
			e = &lockout{}
			l.m[k] = e
		}
		e.fails++
		e.last = now
		if e.fails >= l.max {
			e.fails = 0
			e.until = now.Add(l.period)
		}
		left = min(left, (l.max-e.fails)%l.max)
	}
	if left == 0 {
		lock = l.period
	}
	return left, lock
}

// reset forgets the failures of keys (after a successful login).
func (l *lockouts) reset(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e := l.m[k]; e != nil && !l.now().Before(e.until) {
			delete(l.m, k)
		}
	}
}

// budget bounds the wrong logins of one method (codes, or member
// credentials) across all clients together, in fixed windows: a window
// opens at the first wrong login after the previous one closed and lasts
// period. Once max wrong logins (counting those still being checked) fall
// in a window, every login of that method is refused until it closes, so
// no mix of clients, however many MACs and addresses it rotates through,
// gets more than max guesses per window.
type budget struct {
	mu     sync.Mutex
	method string // "code" or "member", for the log
	max    int
	period time.Duration
	now    func() time.Time
	log    *slog.Logger

	end      time.Time // end of the current window; zero: none open
	wrong    int       // wrong logins in the window
	pending  int       // logins being checked by the backend
	clients  map[string]struct{}
	refused  int  // logins refused in the window because it was spent
	exhaust  bool // the window was spent (and logged)
	lastOpen time.Time
}

func newBudget(method string, max int, period time.Duration, now func() time.Time, log *slog.Logger) *budget {
	return &budget{method: method, max: max, period: period, now: now, log: log, clients: make(map[string]struct{})}
}

// roll closes the window if its time is up, logging what it refused.
func (b *budget) roll(now time.Time) {
	if b.end.IsZero() || now.Before(b.end) {
		return
	}
	if b.exhaust {
		b.log.Info("portal: guessing budget restored", "method", b.method, "wrong", b.wrong,
			"clients", len(b.clients), "refused", b.refused, "window_opened", b.lastOpen)
	}
	b.end, b.wrong, b.refused, b.exhaust = time.Time{}, 0, 0, false
	clear(b.clients)
}

// take reserves a login attempt. When the budget is spent it returns false
// and how long until the window closes.
func (b *budget) take() (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.roll(now)
	if b.wrong+b.pending >= b.max {
		b.refused++
		left := b.end.Sub(now)
		if b.end.IsZero() { // only pending logins: they settle within a request
			left = time.Second
		}
		return false, left
	}
	b.pending++
	return true, 0
}

// done settles an attempt reserved with take: wrong says whether it was a
// wrong code or wrong credentials; client names who made it (for the count
// of distinct clients in the log, never the code).
func (b *budget) done(wrong bool, client string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending--
	if !wrong {
		return
	}
	now := b.now()
	b.roll(now)
	if b.end.IsZero() {
		b.end, b.lastOpen = now.Add(b.period), now
	}
	b.wrong++
	if len(b.clients) < maxBuckets {
		b.clients[client] = struct{}{}
	}
	if b.wrong >= b.max && !b.exhaust {
		b.exhaust = true
		b.log.Warn("portal: guessing budget spent; logins refused for every client until the window closes",
			"method", b.method, "wrong", b.wrong, "clients", len(b.clients), "window", b.period, "until", b.end)
	}
}
