// Package onboard owns the member pages: the pages a member reaches from
// their emails, on the member listener only. The single-use onboarding
// page sets the WiFi password (password policy "member"; the link's token
// is the only credential, stored hashed); the device-setup page behind a
// signed, expiring setup link offers the Apple profile, the CA for
// Android, EAP-TLS client certificates (PEM or a one-time PKCS#12
// profile) and PPSK device registration, each form bound to the link and
// the browser's cookie. It owns the setup-link key, the member listener's
// TLS certificate (issued from the EAP CA when none is configured) and the
// pages' security headers. What it needs of the rest of the daemon (the
// fleet, the PPSK devices, the access decision's network) it asks through
// App, which the composition root implements.
package onboard
