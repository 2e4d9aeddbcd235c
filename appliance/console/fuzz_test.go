package console

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzParseCodeForm(f *testing.F) {
	f.Add("Walk In", "a@b.example", "loc1", "2h", "2")
	f.Add("", "", "", "1d", "10")
	f.Add("x\ny", "<a@b>", "loc1", "-5m", "0")
	f.Fuzz(func(t *testing.T, name, email, loc, dur, dev string) {
		v := url.Values{"name": {name}, "email": {email}, "location": {loc}, "duration": {dur}, "devices": {dev}}
		_, req, errs := parseCodeForm(v, []Location{{ID: "loc1"}})
		if len(errs) > 0 {
			return
		}
		if req.Location != "loc1" || req.Duration < 15*time.Minute || req.Duration > 7*24*time.Hour || req.Devices < 1 || req.Devices > 10 ||
			strings.ContainsAny(req.Name, "\r\n") {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func FuzzParseAuditForm(f *testing.F) {
	f.Add("ada", "account.", "2026-01-01", "2026-01-02")
	f.Add("", "", "x", "")
	f.Fuzz(func(t *testing.T, member, kind, from, to string) {
		v := url.Values{"member": {member}, "kind": {kind}, "from": {from}, "to": {to}}
		_, af, errs := parseAuditForm(v, time.UTC)
		if len(errs) > 0 {
			return
		}
		if !af.From.IsZero() && !af.To.IsZero() && af.To.Before(af.From) {
			t.Fatalf("to before from: %+v", af)
		}
		if len(af.Member) > 200 || !kindRE.MatchString(af.Kind) {
			t.Fatalf("accepted %+v", af)
		}
	})
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/members?q=a", "//evil.example", "/console//evil", "https://x", "/console/../x", "/console/\\evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/console/") || strings.HasPrefix(got, "//") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
	})
}

func FuzzAcceptLanguage(f *testing.F) {
	f.Add("de-DE,de;q=0.9,en;q=0.8")
	f.Add(";q=,,,")
	f.Fuzz(func(t *testing.T, h string) {
		if l := acceptLanguage(h); !isLang(l) {
			t.Fatalf("acceptLanguage(%q) = %q", h, l)
		}
	})
}
