package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Languages the console speaks; the first is the default.
var languages = []string{"en", "de"}

// catalogue holds every text of the pages, per language. Tests check that
// both languages have the same keys and that the templates use no other.
var catalogue = map[string]map[string]string{
	"en": {
		"skip": "Skip to content", "nav": "Main", "other_lang": "Deutsch",
		"dashboard": "Dashboard", "members": "Members", "guests": "Guests", "network": "Network", "audit": "Audit",
		"logout": "Log out", "login": "Log in", "login_title": "Operator console", "username": "Username", "password": "Password",
		"role_operator": "operator", "role_admin": "admin",
		"sync": "Sync", "last_success": "Last success", "lag": "Lag", "officernd": "OfficeRnD", "reachable": "reachable",
		"unreachable": "unreachable", "webhooks": "Webhooks", "last_24h": "last 24 h", "latest": "latest", "outbox": "Email outbox",
		"version": "Version", "update": "Update", "never": "never",
		"updates": "Updates", "fleet_rollout": "Fleet rollout", "rollout_to": "Update to", "phase": "Phase", "reason": "Reason",
		"waiting": "waiting", "no_rollout": "No fleet update has been started.", "this_box": "This box", "running": "Running",
		"update_pending": "Undecided update", "slot": "slot", "last_attempt": "Last update", "no_attempt": "No update was attempted on this box yet.",
		"no_slots":       "This box has no update slots (it does not run an installed image), so it cannot be updated.",
		"st_in_progress": "in progress", "st_done": "done: every box runs the new version", "st_halted": "halted",
		"st_fetching": "fetching", "st_installing": "installing", "st_rebooting": "rebooting", "st_trial": "on trial (health gate deciding)",
		"st_good": "good", "st_failed": "failed",
		"radius_logins": "RADIUS logins", "accepts_per_min": "Accepted this minute", "rejects_per_min": "Rejected this minute",
		"accepts": "accepted", "rejects": "rejected", "online": "Online", "guests_online": "Guests online", "sessions": "Sessions",
		"group": "Group", "location": "Location", "no_sessions": "No live sessions.", "peers": "Peers", "box": "Box", "state": "State",
		"search": "Search", "search_hint": "Name, email or username", "name": "Name", "access": "Access", "plan": "Plan",
		"allowed": "allowed", "denied": "denied", "no_match": "No member matches.",
		"decision": "Decision", "until": "until", "resend_welcome": "Resend welcome email", "reset_password": "Reset password",
		"memberships": "Memberships", "status": "Status", "from": "From", "to": "To", "none": "None.", "since": "Since",
		"actions": "Actions", "disconnect": "Disconnect", "devices": "Devices", "certs": "EAP-TLS certificates", "serial": "Serial",
		"valid_until": "Valid until", "revoked": "revoked", "revoke": "Revoke", "whole_trail": "The whole audit trail of this member",
		"time": "Time", "who": "Who", "what": "What", "cause": "Cause",
		"new_code": "New guest code for a walk-in", "email": "Email (optional: the code is sent there)", "duration": "Duration",
		"duration_hint": "e.g. 2h, 90m, 1d", "create_code": "Create code", "codes": "Codes in use and upcoming", "kind": "Kind",
		"booking": "booking", "first_login": "24 h from first login", "kind_guest": "meeting guest", "kind_daypass": "day pass",
		"kind_adhoc": "walk-in", "guest_code": "WiFi guest code", "emailed_to": "sent to",
		"print_hint": "Print this page (Ctrl+P) to hand the code over on paper.",
		"address":    "Address", "check": "Check", "gateway": "Gateway", "allowed_clients": "Clients let through", "shaping": "Shaping per group",
		"down": "Down", "up": "Up", "portal_preview": "Captive portal preview", "portal_off": "The captive portal is off.",
		"filter": "Filter", "export_csv": "Export as CSV", "kind_hint": "e.g. account. or guest.code_created", "member": "Member",
		"forbidden": "Not allowed", "forbidden_text": "Your role may not do this. Ask an admin.",
		"not_found": "Not found", "bad_request": "Bad request", "error_title": "Something went wrong",
		"bad_login": "Wrong username or password.", "locked": "Too many wrong passwords. Try again after %s.",
		"expired": "Your session ended. Please log in again.", "csrf": "The form was stale or not from this console. Reload and try again.",
		"done_disconnect": "Disconnect sent; the access point acknowledged it.", "done_welcome": "Welcome email queued.",
		"done_reset": "Password reset; the new one is on its way by email.", "done_cert": "Certificate revoked.",
		"done_revoke_code": "Code revoked.",
	},
	"de": {
		"skip": "Zum Inhalt springen", "nav": "Hauptmenü", "other_lang": "English",
		"dashboard": "Übersicht", "members": "Mitglieder", "guests": "Gäste", "network": "Netzwerk", "audit": "Protokoll",
		"logout": "Abmelden", "login": "Anmelden", "login_title": "Betreiber-Konsole", "username": "Benutzername", "password": "Passwort",
		"role_operator": "Betreiber", "role_admin": "Admin",
		"sync": "Abgleich", "last_success": "Zuletzt erfolgreich", "lag": "Rückstand", "officernd": "OfficeRnD", "reachable": "erreichbar",
		"unreachable": "nicht erreichbar", "webhooks": "Webhooks", "last_24h": "letzte 24 Std.", "latest": "zuletzt", "outbox": "E-Mail-Ausgang",
		"version": "Version", "update": "Update", "never": "nie",
		"updates": "Updates", "fleet_rollout": "Update der Boxen", "rollout_to": "Update auf", "phase": "Phase", "reason": "Grund",
		"waiting": "wartet", "no_rollout": "Es wurde noch kein Update für alle Boxen gestartet.", "this_box": "Diese Box", "running": "Läuft mit",
		"update_pending": "Update noch nicht entschieden", "slot": "Slot", "last_attempt": "Letztes Update", "no_attempt": "Auf dieser Box wurde noch kein Update versucht.",
		"no_slots":       "Diese Box hat keine Update-Slots (sie läuft nicht von einem installierten Image) und kann nicht aktualisiert werden.",
		"st_in_progress": "läuft", "st_done": "fertig: alle Boxen laufen mit der neuen Version", "st_halted": "angehalten",
		"st_fetching": "lädt", "st_installing": "installiert", "st_rebooting": "startet neu", "st_trial": "auf Probe (Gesundheitsprüfung läuft)",
		"st_good": "gut", "st_failed": "fehlgeschlagen",
		"radius_logins": "RADIUS-Anmeldungen", "accepts_per_min": "Angenommen in dieser Minute", "rejects_per_min": "Abgelehnt in dieser Minute",
		"accepts": "angenommen", "rejects": "abgelehnt", "online": "Online", "guests_online": "Gäste online", "sessions": "Sitzungen",
		"group": "Gruppe", "location": "Standort", "no_sessions": "Keine aktiven Sitzungen.", "peers": "Weitere Boxen", "box": "Box", "state": "Zustand",
		"search": "Suchen", "search_hint": "Name, E-Mail oder Benutzername", "name": "Name", "access": "Zugang", "plan": "Tarif",
		"allowed": "erlaubt", "denied": "abgelehnt", "no_match": "Kein Mitglied gefunden.",
		"decision": "Entscheidung", "until": "bis", "resend_welcome": "Willkommens-E-Mail erneut senden", "reset_password": "Passwort zurücksetzen",
		"memberships": "Mitgliedschaften", "status": "Status", "from": "Von", "to": "Bis", "none": "Keine.", "since": "Seit",
		"actions": "Aktionen", "disconnect": "Trennen", "devices": "Geräte", "certs": "EAP-TLS-Zertifikate", "serial": "Seriennummer",
		"valid_until": "Gültig bis", "revoked": "widerrufen", "revoke": "Widerrufen", "whole_trail": "Das ganze Protokoll dieses Mitglieds",
		"time": "Zeit", "who": "Wer", "what": "Was", "cause": "Anlass",
		"new_code": "Neuer Gastcode für Laufkundschaft", "email": "E-Mail (optional: der Code wird dorthin geschickt)", "duration": "Dauer",
		"duration_hint": "z. B. 2h, 90m, 1d", "create_code": "Code erstellen", "codes": "Aktive und kommende Codes", "kind": "Art",
		"booking": "Buchung", "first_login": "24 Std. ab erster Anmeldung", "kind_guest": "Besprechungsgast", "kind_daypass": "Tagespass",
		"kind_adhoc": "Laufkundschaft", "guest_code": "WLAN-Gastcode", "emailed_to": "gesendet an",
		"print_hint": "Diese Seite drucken (Strg+P), um den Code auf Papier zu übergeben.",
		"address":    "Adresse", "check": "Prüfung", "gateway": "Gateway", "allowed_clients": "Freigeschaltete Geräte", "shaping": "Bandbreite je Gruppe",
		"down": "Download", "up": "Upload", "portal_preview": "Vorschau des Captive Portals", "portal_off": "Das Captive Portal ist aus.",
		"filter": "Filtern", "export_csv": "Als CSV exportieren", "kind_hint": "z. B. account. oder guest.code_created", "member": "Mitglied",
		"forbidden": "Nicht erlaubt", "forbidden_text": "Ihre Rolle darf das nicht. Fragen Sie einen Admin.",
		"not_found": "Nicht gefunden", "bad_request": "Ungültige Anfrage", "error_title": "Etwas ist schiefgegangen",
		"bad_login": "Benutzername oder Passwort falsch.", "locked": "Zu viele falsche Passwörter. Erneut versuchen nach %s.",
		"expired": "Ihre Sitzung ist abgelaufen. Bitte erneut anmelden.", "csrf": "Das Formular war veraltet oder nicht von dieser Konsole. Neu laden und erneut versuchen.",
		"done_disconnect": "Trennung gesendet; der Access Point hat sie bestätigt.", "done_welcome": "Willkommens-E-Mail eingereiht.",
		"done_reset": "Passwort zurückgesetzt; das neue kommt per E-Mail.", "done_cert": "Zertifikat widerrufen.",
		"done_revoke_code": "Code widerrufen.",
	},
}

// fieldMsgs are the messages next to form fields, per language.
var fieldMsgs = map[string]map[string]string{
	"en": {
		"duration": "Give a duration between 15m and 7d, e.g. 2h.", "devices": "Give a number of devices from 1 to 10.",
		"location": "Choose a location.", "email": "This is not an email address.", "name": "At most 100 characters on one line.",
		"from": "Give a date as YYYY-MM-DD.", "to": "Give a date as YYYY-MM-DD, not before From.", "member": "At most 200 characters.",
		"kind": "Letters, digits, dots and underscores only.",
	},
	"de": {
		"duration": "Eine Dauer zwischen 15m und 7d angeben, z. B. 2h.", "devices": "Eine Geräteanzahl von 1 bis 10 angeben.",
		"location": "Einen Standort wählen.", "email": "Das ist keine E-Mail-Adresse.", "name": "Höchstens 100 Zeichen in einer Zeile.",
		"from": "Ein Datum als JJJJ-MM-TT angeben.", "to": "Ein Datum als JJJJ-MM-TT angeben, nicht vor Von.", "member": "Höchstens 200 Zeichen.",
		"kind": "Nur Buchstaben, Ziffern, Punkte und Unterstriche.",
	},
}

const langCookie = "dg_console_lang"

// pickLang chooses the page language: ?lang=, then the cookie, then
// Accept-Language, then English.
func pickLang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); isLang(l) {
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && isLang(c.Value) {
		return c.Value
	}
	return acceptLanguage(r.Header.Get("Accept-Language"))
}

func isLang(l string) bool {
	for _, x := range languages {
		if l == x {
			return true
		}
	}
	return false
}

// acceptLanguage returns the best language of an Accept-Language header
// (highest q, earliest on ties) that the console speaks.
func acceptLanguage(h string) string {
	best, bestQ := languages[0], -1.0
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if !isLang(base) {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if n, err := parseQ(v); err == nil {
				q = n
			}
		}
		if q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}

func parseQ(s string) (float64, error) {
	q, err := strconv.ParseFloat(s, 64)
	if err != nil || len(s) > 5 || q < 0 || q > 1 {
		return 0, errors.New("bad q value")
	}
	return q, nil
}
