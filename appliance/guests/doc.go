// Package guests turns OfficeRnD bookings and day passes into time-boxed
// WiFi access codes for the captive portal, and keeps the guest sessions
// those codes open.
//
// Meeting-room guests: every visitor of a booking of a meeting room (or team
// room) that is not cancelled gets one code, valid at the booking's location
// from the booking's start minus Config.BufferBefore to its end plus
// Config.BufferAfter. Moving the booking moves the window and keeps the code;
// the code is emailed (and sent by SMS) again only when an edge of the window
// moved by more than the buffer on that side, so small adjustments do not spam
// the guest. Cancelling or deleting the booking, or removing the visitor from
// it, deletes the code and revokes the clients using it. A booking without
// visitors creates nothing. An ended code answers ErrExpired until the next
// local midnight of its location, when it is cleaned up.
//
// Day passes: each pass (status valid or used) held by a member gives that
// member one code per location, valid Config.DayPassDuration from the first
// login (or from the pass's validFrom, Config.DayPassFrom "purchase"). A
// further pass extends the same code by DayPassDuration. Expired codes stay
// (logins get ErrExpired) until the next local midnight of their location,
// when the record, its sessions and its passes are cleaned up; a consumed
// pass never yields a code again.
//
// Codes are nine characters from an alphabet without look-alikes (no 0, O,
// 1, I, L), printed as "K7M-QX3-VH9": 44.6 bits from crypto/rand, unique
// among live codes. The store keeps only HMAC-SHA256 of the normalised code
// under Config.CodeKey, a key kept outside the database, so a copy of the
// database cannot check guesses offline; the plaintext exists in the sealed
// email Secret and, sealed with Config.SealKey, in the code record so moved
// bookings, extended passes and SMS retries can repeat it. Records written
// before codes were keyed (unkeyed SHA-256, no hash version) are re-keyed
// at start when their sealed copy opens, else at their first login, and
// work until they end either way. Logs carry a short keyed hash of the
// code, never the code.
//
// Sessions (client MAC/IP to code) persist in the store so a restart keeps
// guests online: Restore re-allows them. Run watches the store's change feed,
// reconciles, revokes sessions when they end (within a second) and cleans up
// at local midnight. Every creation, delivery, login, new device, extension,
// expiry and revocation is audited with its cause.
//
// guests imports appliance/store and appliance/model, never portal: its
// Client, Session, Network and login errors are internal/guestnet's, which
// the portal's Backend and Network are declared in too, so the composition
// root hands Manager to the portal as its Backend.
package guests
