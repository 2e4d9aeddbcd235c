package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane), which
// takes tens of milliseconds on the box; the parameters travel in the
// hash, so raising them later keeps old hashes valid.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	// MinPasswordLen is the shortest operator password accepted.
	MinPasswordLen = 10
	maxPasswordLen = 256
)

// CheckPassword says why pw is not acceptable as an operator password.
func CheckPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Errorf("password too short: use at least %d characters", MinPasswordLen)
	case len(pw) > maxPasswordLen:
		return fmt.Errorf("password too long: at most %d characters", maxPasswordLen)
	case strings.ContainsAny(pw, "\r\n\x00"):
		return errors.New("password contains a line break or NUL")
	}
	return nil
}

// HashPassword returns the argon2id hash of pw in PHC string format.
func HashPassword(pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks pw against a HashPassword hash in constant time.
func VerifyPassword(hash, pw string) bool {
	f := strings.Split(hash, "$")
	if len(f) != 6 || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m < 1024 || m > 1<<20 || t < 1 || t > 16 || p < 1 || p > 16 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(f[4])
	want, err2 := base64.RawStdEncoding.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when the account does not exist, so a
// wrong name takes as long as a wrong password.
var dummyHash = func() string {
	h, _ := HashPassword("not-a-real-password-0")
	return h
}()

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// session is a logged-in operator.
type session struct {
	id       string
	operator string
	csrf     string
	changed  time.Time // Operator.Changed at login
	created  time.Time
	seen     time.Time
}

// sessions holds the live sessions in memory: a restart logs everyone out.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	idle time.Duration
	max  time.Duration
}

func (s *sessions) create(op Operator, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Drop expired ones while here, so the map stays small.
	for id, x := range s.byID {
		if s.expired(x, now) {
			delete(s.byID, id)
		}
	}
	x := &session{id: randomToken(), operator: op.Name, csrf: randomToken(), changed: op.Changed, created: now, seen: now}
	s.byID[x.id] = x
	return x
}

func (s *sessions) expired(x *session, now time.Time) bool {
	return now.Sub(x.seen) >= s.idle || now.Sub(x.created) >= s.max || now.Before(x.created)
}

// get returns the live session with id and marks it used at now.
func (s *sessions) get(id string, now time.Time) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	if s.expired(x, now) {
		delete(s.byID, id)
		return nil, false
	}
	x.seen = now
	cp := *x
	return &cp, true
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// endOperator ends every session of name (its password or role changed,
// or it was removed).
func (s *sessions) endOperator(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, x := range s.byID {
		if x.operator == name {
			delete(s.byID, id)
		}
	}
}

// lockout counts wrong passwords per account and per source address on
// the daemon's clock: after max failures within window, logins for that
// key are refused until window has passed since the latest failure.
type lockout struct {
	mu      sync.Mutex
	window  time.Duration
	perUser int
	perSrc  int
	fails   map[string][]time.Time // "u:name" or "s:addr"
}

// lockedUntil reports until when a login as user from src is refused.
func (l *lockout) lockedUntil(user, src string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, k := range []struct {
		key string
		max int
	}{{"u:" + user, l.perUser}, {"s:" + src, l.perSrc}} {
		f := l.recent(k.key, now)
		if len(f) >= k.max {
			if u := f[len(f)-1].Add(l.window); u.After(until) {
				until = u
			}
		}
	}
	return until, !until.IsZero()
}

func (l *lockout) recent(key string, now time.Time) []time.Time {
	f := l.fails[key]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = f
	}
	return f
}

func (l *lockout) fail(user, src string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []string{"u:" + user, "s:" + src} {
		f := append(l.recent(k, now), now)
		if len(f) > 64 {
			f = f[len(f)-64:]
		}
		l.fails[k] = f
	}
	if len(l.fails) > 10000 { // many names or sources: drop what is past the window
		for k := range l.fails {
			l.recent(k, now)
		}
	}
}

// success forgets the account's failures (not the source's).
func (l *lockout) success(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "u:"+user)
}

func equalToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
