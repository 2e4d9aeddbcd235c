package console

import (
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The form parsers turn submitted values into requests, or into errors
// per field (the key of fieldMsgs). They never act; the handlers act only
// on a form without errors, so bad input changes nothing.

// codeForm is the Guests page's form as typed.
type codeForm struct {
	Name, Email, Location, Duration, Devices string
}

// parseCodeForm checks the ad-hoc code form. locations are the valid
// location ids.
func parseCodeForm(v url.Values, locations []Location) (codeForm, CodeRequest, map[string]string) {
	f := codeForm{
		Name: strings.TrimSpace(v.Get("name")), Email: strings.TrimSpace(v.Get("email")),
		Location: v.Get("location"), Duration: strings.TrimSpace(v.Get("duration")), Devices: strings.TrimSpace(v.Get("devices")),
	}
	errs := map[string]string{}
	req := CodeRequest{Name: f.Name, Email: f.Email, Location: f.Location}
	if !utf8.ValidString(f.Name) || utf8.RuneCountInString(f.Name) > 100 || strings.ContainsAny(f.Name, "\r\n\x00") {
		errs["name"] = "name"
	}
	if f.Email != "" {
		if a, err := mail.ParseAddress(f.Email); err != nil || a.Address != f.Email || len(f.Email) > 254 {
			errs["email"] = "email"
		}
	}
	known := false
	for _, l := range locations {
		if l.ID == f.Location {
			known = true
		}
	}
	if !known {
		errs["location"] = "location"
	}
	d, ok := parseDuration(f.Duration)
	if !ok || d < 15*time.Minute || d > 7*24*time.Hour {
		errs["duration"] = "duration"
	}
	req.Duration = d
	n, err := strconv.Atoi(f.Devices)
	if err != nil || n < 1 || n > 10 {
		errs["devices"] = "devices"
	}
	req.Devices = n
	return f, req, errs
}

// parseDuration reads "2h", "90m", "1h30m" or "1d" (days), at most 16
// characters.
func parseDuration(s string) (time.Duration, bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 365 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

// auditForm is the Audit page's filter as typed.
type auditForm struct {
	Member, Kind, From, To string
}

var kindRE = regexp.MustCompile(`^[A-Za-z0-9._]{0,64}$`)

// parseAuditForm checks the audit filter; dates are local days of loc.
func parseAuditForm(v url.Values, loc *time.Location) (auditForm, AuditFilter, map[string]string) {
	f := auditForm{Member: strings.TrimSpace(v.Get("member")), Kind: strings.TrimSpace(v.Get("kind")),
		From: strings.TrimSpace(v.Get("from")), To: strings.TrimSpace(v.Get("to"))}
	errs := map[string]string{}
	af := AuditFilter{Member: f.Member, Kind: f.Kind}
	if len(f.Member) > 200 || !utf8.ValidString(f.Member) {
		errs["member"] = "member"
	}
	if !kindRE.MatchString(f.Kind) {
		errs["kind"] = "kind"
	}
	if f.From != "" {
		t, err := time.ParseInLocation("2006-01-02", f.From, loc)
		if err != nil {
			errs["from"] = "from"
		}
		af.From = t
	}
	if f.To != "" {
		t, err := time.ParseInLocation("2006-01-02", f.To, loc)
		if err != nil || (!af.From.IsZero() && t.Before(af.From)) {
			errs["to"] = "to"
		}
		af.To = t.AddDate(0, 0, 1) // the whole day
	}
	return f, af, errs
}

// safeNext returns next if it is a console path, else the dashboard: the
// login form's redirect must not leave the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "/console//") && !strings.ContainsAny(next, "\\\r\n") &&
		!strings.HasPrefix(next, "/console/logout") && !strings.HasPrefix(next, "/console/login") {
		if u, err := url.Parse(next); err == nil && u.Host == "" && u.Scheme == "" {
			return next
		}
	}
	return "/console/dashboard"
}
