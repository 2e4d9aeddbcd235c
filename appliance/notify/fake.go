package notify

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// MailerFunc adapts a function to the Mailer interface.
type MailerFunc func(ctx context.Context, m Message) error

// Send calls f(ctx, m).
func (f MailerFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// MemOutbox is an in-memory Outbox for tests and demos. It keeps sent
// emails (with Sent set) so tests can inspect them. Safe for concurrent use.
type MemOutbox struct {
	mu     sync.Mutex
	emails map[string]*memEmail
}

type memEmail struct {
	model.Email
	sent      bool
	sentCalls int
}

// NewMemOutbox returns an empty outbox.
func NewMemOutbox() *MemOutbox { return &MemOutbox{emails: map[string]*memEmail{}} }

// Add enqueues e (replacing any email with the same ID).
func (o *MemOutbox) Add(e model.Email) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.emails[e.ID] = &memEmail{Email: e}
}

// Get returns the email id, whether it was marked sent and how many times
// MarkEmailSent was called for it.
func (o *MemOutbox) Get(id string) (e model.Email, sent bool, sentCalls int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	me, ok := o.emails[id]
	if !ok {
		return model.Email{}, false, 0, false
	}
	return me.Email, me.sent, me.sentCalls, true
}

// PendingEmails implements Outbox: unsent emails due at now, oldest first.
func (o *MemOutbox) PendingEmails(now time.Time, limit int) ([]model.Email, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []model.Email
	for _, me := range o.emails {
		if !me.sent && !me.NextTry.After(now) {
			out = append(out, me.Email)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// MarkEmailSent implements Outbox.
func (o *MemOutbox) MarkEmailSent(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	me, ok := o.emails[id]
	if !ok {
		return fmt.Errorf("outbox: email %s not found", id)
	}
	me.sent = true
	me.sentCalls++
	return nil
}

// MarkEmailFailed implements Outbox.
func (o *MemOutbox) MarkEmailFailed(id, errText string, next time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	me, ok := o.emails[id]
	if !ok {
		return fmt.Errorf("outbox: email %s not found", id)
	}
	me.Attempts++
	me.LastError = errText
	me.NextTry = next
	return nil
}
