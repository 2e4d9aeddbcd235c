// Package radius is deskgate's RADIUS server: authentication (PAP and
// MS-CHAPv2 against the stored NT hash) and accounting for the location's
// access points, reply attributes translated from the access decision per
// NAS vendor, live-session tracking for device limits, and the RFC 5176
// Disconnect/CoA client that removes access when it changes.
//
// It is hardened against BlastRADIUS (CVE-2024-3596): an Access-Request
// without a valid Message-Authenticator is dropped unless its NAS is marked
// legacy, and every reply carries Message-Authenticator as its first
// attribute. Retransmissions get the cached reply bytes, not a second
// evaluation.
//
// The package declares the narrow interfaces it consumes (Directory,
// Auditor, SessionStore, IPPool) and imports no other deskgate package but
// appliance/model, appliance/store (for the bbolt-backed SessionStore and
// IPPool) and appliance/eap (the EAP server it carries in EAP-Message).
// Only the composition root (package appliance) and commands import it.
package radius
