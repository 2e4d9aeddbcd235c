// Package notify renders and delivers deskgate's emails: the welcome email
// with a member's WiFi credentials and the guest-code email, from embedded
// templates that operators may override per file.
//
// Delivery is durable. Emails wait in the store's outbox (the Outbox
// interface); a Sender drains it through a Mailer (SMTP, or the demo's
// local Mailbox of .eml files), marks each email sent exactly once from its
// point of view, and retries failures with exponential backoff.
//
// # Crash safety
//
// Exactly-once delivery across a crash is impossible here without help from
// the receiver: if the process dies after the SMTP server accepted a message
// (250 after DATA) but before MarkEmailSent committed, the outbox still holds
// the email and the Sender sends it again after restart. The window is short
// but real, and no ordering of the two steps closes it (marking first would
// lose the email instead). Delivery is therefore at-least-once, and every
// send of the same outbox entry carries the same Message-ID, <ID@deskgate>,
// so receivers and mail clients that deduplicate by Message-ID (and the
// Mailbox, which keeps one file per ID) see one message.
//
// Secrets (the generated WiFi password, onboarding tokens, the SMTP
// password) are never logged; errors name the email's ID and kind only.
//
// notify imports only the standard library and appliance/model; it does not
// import config or store. The composition root (package appliance) adapts
// the config and the store to SMTPConfig and Outbox.
package notify
