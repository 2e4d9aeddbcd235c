// Package console is the operator console: the web pages community
// managers use every day (dashboard, members, guests, network, audit),
// served under /console/ on the admin listener. It owns the logins
// (argon2id password hashes, sessions with idle and absolute expiry on the
// daemon's clock, per-session CSRF tokens, lockout after wrong passwords),
// the roles (operator: read, guest codes, disconnect; admin: everything),
// the English and German texts, the form parsers and the server-rendered
// pages and SVG charts (html/template, assets embedded, no JavaScript).
//
// It reaches the daemon only through Backend, which the composition root
// implements (appliance/console.go); it imports appliance/model only.
package console
