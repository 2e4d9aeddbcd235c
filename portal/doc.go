// Package portal is deskgate's captive portal: the HTTP side of guest access
// on the guest network.
//
// It serves the sign-in pages (access code, or member email plus WiFi
// password, with a recorded terms-of-use acceptance), the status page with
// the time left and a logout, the operating systems' captive-network probes,
// and the RFC 8908 Captive Portal API. Pages are server-rendered with
// html/template from embedded defaults that an operator may override file by
// file (Config.TemplatesDir); they need no JavaScript, are mobile-first and
// accessible, branded per location, and translated (English and German by
// default, chosen by Accept-Language and overridable with ?lang= and a
// cookie). Other pages that share the look, such as the member onboarding
// page, render through Server.RenderPage.
//
// # Captive-network detection
//
// netcfg DNATs port 80 of clients that are not yet allowed to the portal, so
// probe requests for foreign hosts arrive here and are routed by path, not by
// Host. Before login every probe is answered with a 302 to Config.PublicURL,
// which makes the OS open its sign-in sheet; after login the probes get the
// answers the OS expects:
//
//	Apple    /hotspot-detect.html, /library/test/success.html  the "Success" HTML page
//	Android  /generate_204, /gen_204                            204 No Content
//	Windows  /connecttest.txt                                   "Microsoft Connect Test"
//	         /ncsi.txt                                          "Microsoft NCSI"
//	         /redirect                                          302 to the portal (always)
//	Firefox  /success.txt                                       "success\n"
//	         /canonical.html                                    Firefox's canonical page
//	Linux    /check_network_status.txt (GNOME), /nm-check.txt   "NetworkManager is online\n"
//
// A probe from a client that has a live session but still reaches the portal
// (for example after a restart lost the network allow-list) re-allows the
// client before answering. The login flow ends with a 303 See Other to
// /status, a full navigation, so iOS re-probes and closes its sheet.
//
// # RFC 8908 Captive Portal API and DHCP option 114
//
// The API is served at /captive-portal/api with content type
// application/captive+json (captive, user-portal-url, venue-info-url,
// seconds-remaining, can-extend-session). RFC 8910 requires the URI handed
// out in DHCP option 114 (and IPv6 RA option 37) to be HTTPS, so configure
// CertFile, KeyFile and ListenTLS, and announce
//
//	https://<PublicURL host>/captive-portal/api
//
// (with ":port" appended when ListenTLS is not port 443); Server.APIURL returns
// exactly that string. Clients must be able to reach that address over TLS
// before login.
//
// # Abuse and state
//
// Requests are rate-limited per client IP (a token bucket), repeated wrong
// codes or member credentials lock the client out for Config.Lockout, every
// form carries a CSRF token (an HMAC of a per-browser cookie under a server
// key), and the only redirect target taken from a request is a same-origin
// path. Sessions live in the Backend, so they survive a restart; the portal's
// own state (rate limits, lockouts) is deliberately ephemeral, except for the
// CSRF key, which comes from Config.CSRFKey or is persisted in
// Config.CSRFKeyFile.
//
// portal imports no other deskgate package but internal/guestnet, whose
// Client, Session, Network and login errors it shares with the guest
// lifecycle: it declares Backend (codes and sessions, implemented by
// appliance/guests), Network (allow and revoke, implemented by netcfg) and
// ClientResolver, and the appliance wires them.
// It must not depend on bbolt, netlink or iptables.
package portal
