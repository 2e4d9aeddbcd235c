package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// messages are the built-in translations. Operators may add or replace
// entries (and add languages) with TemplatesDir/messages.<lang>.json, a flat
// JSON object of key → text.
var messages = map[string]map[string]string{
	"en": {
		"lang_name":           "English",
		"language":            "Language",
		"skip":                "Skip to content",
		"title_login":         "Guest WiFi",
		"title_status":        "Connected",
		"title_error":         "Something went wrong",
		"welcome":             "Welcome to %s",
		"login_heading":       "Get online",
		"code_intro":          "Enter the access code from your invitation email or text message.",
		"code_label":          "Access code",
		"code_hint":           "Letters and digits. Spaces and dashes do not matter.",
		"terms_heading":       "Terms of use",
		"terms_label":         "I accept the terms of use",
		"terms_default":       "Use this network lawfully and considerately. Do not attack, scan or disturb other devices or networks, and do not share your access code. Access may be logged and ended at any time.",
		"connect":             "Connect",
		"member_heading":      "Members: sign in with your WiFi password",
		"member_intro":        "Use the email address of your membership and your WiFi password.",
		"email_label":         "Email",
		"password_label":      "WiFi password",
		"member_submit":       "Sign in",
		"status_heading":      "You are online",
		"status_hello":        "Hello %s, you are connected.",
		"status_anon":         "Your device is connected.",
		"time_left":           "Time left",
		"until":               "Until",
		"hours_minutes":       "%d h %d min",
		"hours":               "%d h",
		"minutes":             "%d min",
		"under_minute":        "less than a minute",
		"layout_today":        "15:04",
		"layout_date":         "2 Jan 2006, 15:04",
		"continue":            "Continue to %s",
		"logout":              "Disconnect",
		"logout_hint":         "Disconnect this device from the guest network.",
		"logged_out":          "You are disconnected. Enter a code to connect again.",
		"venue_info":          "About this venue",
		"offer_heading":       "Use the members' network",
		"offer_text":          "As a member you can use the encrypted members' network instead of the guest network. Set it up once on this device.",
		"offer_link":          "Set up the secure network",
		"err_bad_code":        "This code is not valid. Check it and try again.",
		"err_bad_code_left":   "This code is not valid. Check it and try again (%d attempts left).",
		"err_bad_code_last":   "This code is not valid. Check it and try again (last attempt before a pause).",
		"err_not_yet_valid":   "This code is not valid yet. It starts working shortly before your booking begins.",
		"err_expired":         "This code has expired. Ask your host or the front desk for a new one.",
		"err_wrong_location":  "This code is for another location of this space.",
		"err_device_limit":    "This code is already in use on the maximum number of devices. Disconnect one of them first, or ask your host for a code of your own.",
		"err_bad_credentials": "The email address or the WiFi password is wrong.",
		"err_no_wifi":         "Your membership does not include WiFi here. Please ask the front desk.",
		"err_locked":          "Too many wrong attempts. Please wait %d minutes and try again.",
		"err_busy_codes":      "Too many wrong codes have been entered on this network. Code sign-in is paused for everyone for %d minutes; members can still sign in with their WiFi password.",
		"err_busy_members":    "Too many wrong member sign-ins on this network. Member sign-in is paused for %d minutes; guest codes still work.",
		"err_terms":           "Please accept the terms of use to connect.",
		"err_empty_code":      "Please enter your access code.",
		"err_empty_member":    "Please enter your email address and your WiFi password.",
		"err_csrf":            "This form has expired. Please try again.",
		"err_internal":        "Something went wrong on our side. Please try again in a moment.",
		"err_client":          "We could not recognise your device. Turn WiFi off and on again, then reload this page.",
		"err_rate":            "Too many requests. Please wait a moment.",
		"err_not_found":       "This page does not exist.",
		"back":                "Back to sign-in",
	},
	"de": {
		"lang_name":           "Deutsch",
		"language":            "Sprache",
		"skip":                "Zum Inhalt springen",
		"title_login":         "Gäste-WLAN",
		"title_status":        "Verbunden",
		"title_error":         "Etwas ist schiefgelaufen",
		"welcome":             "Willkommen bei %s",
		"login_heading":       "Ins Internet",
		"code_intro":          "Geben Sie den Zugangscode aus Ihrer Einladungs-E-Mail oder SMS ein.",
		"code_label":          "Zugangscode",
		"code_hint":           "Buchstaben und Ziffern. Leerzeichen und Bindestriche spielen keine Rolle.",
		"terms_heading":       "Nutzungsbedingungen",
		"terms_label":         "Ich akzeptiere die Nutzungsbedingungen",
		"terms_default":       "Nutzen Sie dieses Netz rechtmäßig und rücksichtsvoll. Greifen Sie keine anderen Geräte oder Netze an, scannen oder stören Sie sie nicht, und geben Sie Ihren Zugangscode nicht weiter. Der Zugang kann protokolliert und jederzeit beendet werden.",
		"connect":             "Verbinden",
		"member_heading":      "Mitglieder: mit WLAN-Passwort anmelden",
		"member_intro":        "Verwenden Sie die E-Mail-Adresse Ihrer Mitgliedschaft und Ihr WLAN-Passwort.",
		"email_label":         "E-Mail",
		"password_label":      "WLAN-Passwort",
		"member_submit":       "Anmelden",
		"status_heading":      "Sie sind online",
		"status_hello":        "Hallo %s, Sie sind verbunden.",
		"status_anon":         "Ihr Gerät ist verbunden.",
		"time_left":           "Verbleibende Zeit",
		"until":               "Bis",
		"hours_minutes":       "%d Std. %d Min.",
		"hours":               "%d Std.",
		"minutes":             "%d Min.",
		"under_minute":        "weniger als eine Minute",
		"layout_today":        "15:04 Uhr",
		"layout_date":         "02.01.2006, 15:04 Uhr",
		"continue":            "Weiter zu %s",
		"logout":              "Verbindung trennen",
		"logout_hint":         "Dieses Gerät vom Gäste-WLAN abmelden.",
		"logged_out":          "Die Verbindung ist getrennt. Geben Sie einen Code ein, um sich erneut zu verbinden.",
		"venue_info":          "Über diesen Ort",
		"offer_heading":       "Nutzen Sie das Mitgliedernetz",
		"offer_text":          "Als Mitglied können Sie statt des Gäste-WLANs das verschlüsselte Mitgliedernetz nutzen. Richten Sie es einmal auf diesem Gerät ein.",
		"offer_link":          "Sicheres Netz einrichten",
		"err_bad_code":        "Dieser Code ist ungültig. Bitte prüfen Sie ihn und versuchen Sie es erneut.",
		"err_bad_code_left":   "Dieser Code ist ungültig. Bitte prüfen Sie ihn und versuchen Sie es erneut (noch %d Versuche).",
		"err_bad_code_last":   "Dieser Code ist ungültig. Bitte prüfen Sie ihn und versuchen Sie es erneut (letzter Versuch vor einer Pause).",
		"err_not_yet_valid":   "Dieser Code gilt noch nicht. Er funktioniert kurz vor Beginn Ihrer Buchung.",
		"err_expired":         "Dieser Code ist abgelaufen. Bitten Sie Ihren Gastgeber oder den Empfang um einen neuen.",
		"err_wrong_location":  "Dieser Code gilt für einen anderen Standort.",
		"err_device_limit":    "Dieser Code wird bereits auf der höchstzulässigen Zahl von Geräten genutzt. Trennen Sie zuerst eines davon, oder bitten Sie Ihren Gastgeber um einen eigenen Code.",
		"err_bad_credentials": "E-Mail-Adresse oder WLAN-Passwort ist falsch.",
		"err_no_wifi":         "Ihre Mitgliedschaft umfasst hier kein WLAN. Bitte wenden Sie sich an den Empfang.",
		"err_locked":          "Zu viele Fehlversuche. Bitte warten Sie %d Minuten und versuchen Sie es dann erneut.",
		"err_busy_codes":      "In diesem Netz wurden zu viele falsche Codes eingegeben. Die Anmeldung mit Code ist für alle %d Minuten lang pausiert; Mitglieder können sich weiter mit ihrem WLAN-Passwort anmelden.",
		"err_busy_members":    "Zu viele fehlgeschlagene Mitglieder-Anmeldungen in diesem Netz. Die Mitglieder-Anmeldung ist %d Minuten lang pausiert; Gast-Codes funktionieren weiterhin.",
		"err_terms":           "Bitte akzeptieren Sie die Nutzungsbedingungen, um sich zu verbinden.",
		"err_empty_code":      "Bitte geben Sie Ihren Zugangscode ein.",
		"err_empty_member":    "Bitte geben Sie Ihre E-Mail-Adresse und Ihr WLAN-Passwort ein.",
		"err_csrf":            "Dieses Formular ist abgelaufen. Bitte versuchen Sie es erneut.",
		"err_internal":        "Bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es gleich noch einmal.",
		"err_client":          "Wir konnten Ihr Gerät nicht erkennen. Schalten Sie das WLAN aus und wieder ein und laden Sie die Seite neu.",
		"err_rate":            "Zu viele Anfragen. Bitte warten Sie einen Moment.",
		"err_not_found":       "Diese Seite gibt es nicht.",
		"back":                "Zurück zur Anmeldung",
	},
}

const langCookie = "dg_lang"

func (s *Server) loadMessages() error {
	s.msgs = make(map[string]map[string]string)
	for _, l := range s.cfg.Languages {
		l = strings.ToLower(strings.TrimSpace(l))
		m := make(map[string]string)
		for k, v := range messages["en"] {
			m[k] = v // English fills gaps in partial translations
		}
		for k, v := range messages[l] {
			m[k] = v
		}
		if s.cfg.TemplatesDir != "" {
			b, err := os.ReadFile(filepath.Join(s.cfg.TemplatesDir, "messages."+l+".json"))
			switch {
			case err == nil:
				var over map[string]string
				if err := json.Unmarshal(b, &over); err != nil {
					return fmt.Errorf("portal: messages.%s.json: %w", l, err)
				}
				for k, v := range over {
					m[k] = v
				}
			case !errors.Is(err, os.ErrNotExist):
				return fmt.Errorf("portal: read messages: %w", err)
			}
		}
		if _, ok := messages[l]; !ok && m["lang_name"] == messages["en"]["lang_name"] {
			return fmt.Errorf("portal: language %q has no built-in messages and no %s/messages.%s.json", l, s.cfg.TemplatesDir, l)
		}
		s.msgs[l] = m
		s.langs = append(s.langs, l)
	}
	return nil
}

// lang picks the page language: ?lang= (remembered in a cookie), then the
// cookie, then Accept-Language, then the first configured language.
func (s *Server) lang(w http.ResponseWriter, r *http.Request) string {
	if q := strings.ToLower(r.URL.Query().Get("lang")); q != "" {
		if _, ok := s.msgs[q]; ok {
			if w != nil {
				http.SetCookie(w, &http.Cookie{Name: langCookie, Value: q, Path: "/", MaxAge: 365 * 24 * 3600,
					HttpOnly: true, SameSite: http.SameSiteLaxMode})
			}
			return q
		}
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if _, ok := s.msgs[c.Value]; ok {
			return c.Value
		}
	}
	if l := s.negotiate(r.Header.Get("Accept-Language")); l != "" {
		return l
	}
	return s.langs[0]
}

// negotiate returns the supported language with the highest q value in an
// Accept-Language header ("de-CH" matches "de"), or "".
func (s *Server) negotiate(h string) string {
	type cand struct {
		lang string
		q    float64
	}
	var cs []cand
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		if tag == "" {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		if q <= 0 {
			continue
		}
		base, _, _ := strings.Cut(tag, "-")
		for _, l := range []string{tag, base} {
			if _, ok := s.msgs[l]; ok {
				cs = append(cs, cand{l, q})
				break
			}
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].q > cs[j].q })
	if len(cs) == 0 {
		return ""
	}
	return cs[0].lang
}

// tr returns the message key in lang, formatted with args.
func (s *Server) tr(lang, key string, args ...any) string {
	m := s.msgs[lang]
	if m == nil {
		m = s.msgs[s.langs[0]]
	}
	v, ok := m[key]
	if !ok {
		v = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(v, args...)
	}
	return v
}

// duration formats a time span for people: "2 h 5 min", "7 min".
func (s *Server) duration(lang string, d time.Duration) string {
	if d < time.Minute {
		return s.tr(lang, "under_minute")
	}
	m := int(d / time.Minute)
	if m < 60 {
		return s.tr(lang, "minutes", m)
	}
	if m%60 == 0 {
		return s.tr(lang, "hours", m/60)
	}
	return s.tr(lang, "hours_minutes", m/60, m%60)
}
