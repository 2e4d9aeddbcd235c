package portal

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// budgetEnv is an env whose server logs to a buffer.
func budgetEnv(t *testing.T, mod func(*Config)) (*env, func() string) {
	t.Helper()
	var mu sync.Mutex
	var logs strings.Builder
	e := newEnv(t, mod)
	srv, err := New(e.srv.cfg, e.backend, e.net, e.res, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return e, func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
}

func countCalls(e *env, prefix string) int {
	n := 0
	for _, c := range e.backend.Calls() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// TestCodeGuessingBudget: clients that each stay under the per-client
// lockout, but rotate through addresses and MACs, together hit the portal's
// code budget; then code logins are refused for everyone (without asking
// the backend) with a clear message, logged once with counts and no codes,
// while member logins go on; after the window (injected clock) codes work
// again.
func TestCodeGuessingBudget(t *testing.T) {
	e, logs := budgetEnv(t, func(c *Config) {
		c.MaxAttempts, c.CodeBudget, c.BudgetWindow = 5, 20, 10*time.Minute
	})
	// 10 clients, 2 wrong codes each: no client gets near its own lockout.
	for i := range 10 {
		b := e.browser(fmt.Sprintf("10.40.0.%d", 10+i))
		for j := range 2 {
			res, html := b.loginCode(fmt.Sprintf("WRONG-%d-%d", i, j))
			if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "This code is not valid") {
				t.Fatalf("client %d guess %d: %d, want 422 wrong code", i, j, res.StatusCode)
			}
		}
	}
	if n := countCalls(e, "LoginCode "); n != 20 {
		t.Fatalf("backend saw %d code logins, want 20", n)
	}
	// Budget spent: a new client (new IP, new MAC) with a valid code is
	// refused, and the backend is not asked.
	fresh := e.browser("10.40.1.1")
	res, html := fresh.loginCode("GOOD-CODE")
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(html, "Code sign-in is paused for everyone for 10 minutes") {
		t.Fatalf("code login with the budget spent: %d\n%s", res.StatusCode, html)
	}
	if ra := res.Header.Get("Retry-After"); ra != "601" {
		t.Errorf("Retry-After = %q, want 601", ra)
	}
	if n := countCalls(e, "LoginCode "); n != 20 {
		t.Errorf("backend asked while the budget was spent (%d calls)", n)
	}
	// German, too.
	fresh.lang = "de"
	if _, html := fresh.loginCode("GOOD-CODE"); !strings.Contains(html, "für alle 10 Minuten lang pausiert") {
		t.Errorf("German page lacks the paused message")
	}
	// Members have their own path and budget.
	m := e.browser("10.40.1.2")
	if res, _ := m.post("/", "/login/member", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}, "terms": {"v3"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("member login with the code budget spent: %d, want 303", res.StatusCode)
	}

	out := logs()
	if n := strings.Count(out, "guessing budget spent"); n != 1 {
		t.Errorf("budget exhaustion logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "method=code wrong=20 clients=10") {
		t.Errorf("exhaustion log lacks the counts:\n%s", out)
	}

	// Still refused one second before the window closes; open after it.
	e.clock.Add(10*time.Minute - time.Second)
	if res, _ := e.browser("10.40.1.3").loginCode("GOOD-CODE"); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("just before the window closes: %d, want 429", res.StatusCode)
	}
	e.clock.Add(time.Second)
	if res, html := e.browser("10.40.1.4").loginCode("GOOD-CODE"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: %d, want 303\n%s", res.StatusCode, html)
	}
	out = logs()
	if !strings.Contains(out, "guessing budget restored") || !strings.Contains(out, "refused=3") {
		t.Errorf("restore log lacks the refused count:\n%s", out)
	}
	for i := range 10 {
		for j := range 2 {
			if c := fmt.Sprintf("WRONG-%d-%d", i, j); strings.Contains(out, c) {
				t.Errorf("log contains code %q", c)
			}
		}
	}
	if strings.Contains(out, "GOOD-CODE") {
		t.Error("log contains a code")
	}
	// A fresh window: wrong guesses are counted from zero again.
	if res, _ := e.browser("10.40.2.1").loginCode("WRONG-AGAIN"); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("wrong code in the new window: %d, want 422", res.StatusCode)
	}
}

// TestCodeGuessingBudgetConcurrent: many clients guessing at once get no
// more wrong codes to the backend than the budget, because attempts in
// flight count against it.
func TestCodeGuessingBudgetConcurrent(t *testing.T) {
	e, _ := budgetEnv(t, func(c *Config) { c.CodeBudget = 7 })
	var wg sync.WaitGroup
	for i := range 40 {
		b := e.browser(fmt.Sprintf("10.41.0.%d", 10+i))
		_, page := b.get("/") // CSRF cookie and token, before the race
		form := codeForm(fmt.Sprintf("WRONG-%d", i))
		form.Set("csrf", csrfRE.FindStringSubmatch(page)[1])
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.do("POST", "/login/code", form)
		}()
	}
	wg.Wait()
	if n := countCalls(e, "LoginCode "); n > 7 || n == 0 {
		t.Fatalf("backend checked %d wrong codes, want 1..7 (the budget)", n)
	}
}

// TestMemberGuessingBudget: wrong member credentials from many clients
// spend the member budget, which pauses member logins but not codes.
func TestMemberGuessingBudget(t *testing.T) {
	e, logs := budgetEnv(t, func(c *Config) { c.MemberBudget, c.BudgetWindow = 4, 5*time.Minute })
	form := func(pw string) url.Values {
		return url.Values{"email": {"ada@example.com"}, "password": {pw}, "terms": {"v3"}}
	}
	for i := range 4 {
		if res, _ := e.browser(fmt.Sprintf("10.42.0.%d", 10+i)).post("/", "/login/member", form("wrong-pw-xyz")); res.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("wrong password %d: %d, want 422", i, res.StatusCode)
		}
	}
	res, html := e.browser("10.42.1.1").post("/", "/login/member", form("correct horse battery"))
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(html, "Member sign-in is paused for 5 minutes") {
		t.Fatalf("member login with the member budget spent: %d\n%s", res.StatusCode, html)
	}
	if res, _ := e.browser("10.42.1.2").loginCode("GOOD-CODE"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("code login with the member budget spent: %d, want 303", res.StatusCode)
	}
	if out := logs(); !strings.Contains(out, "method=member wrong=4 clients=4") || strings.Contains(out, "correct horse") || strings.Contains(out, "wrong-pw-xyz") {
		t.Errorf("member budget log:\n%s", out)
	}
	e.clock.Add(5 * time.Minute)
	if res, _ := e.browser("10.42.1.1").post("/", "/login/member", form("correct horse battery")); res.StatusCode != http.StatusSeeOther {
		t.Errorf("member login after the window: %d, want 303", res.StatusCode)
	}
}
