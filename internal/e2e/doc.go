// Package e2e holds deskgate's end-to-end tests: real gateway topologies in
// network namespaces (a guest client, the gateway running netcfg and the
// captive portal, and an "internet"), exercised with real traffic and a real
// browser. It has no non-test code; the tests need root and skip without it
// (or fail when CI=true).
package e2e
