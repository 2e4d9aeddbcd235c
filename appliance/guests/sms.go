package guests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// smsCodeMark stands for the code in a queued SMS text; the code is put in
// only when sending, so the queue holds no plaintext code.
const smsCodeMark = "{code}"

// SMS retry policy: 30s, 1m, 2m, ... capped at 30m; a job is dropped when
// its code is gone or after smsMaxAttempts.
const (
	smsMinBackoff  = 30 * time.Second
	smsMaxBackoff  = 30 * time.Minute
	smsMaxAttempts = 30
	smsBatch       = 20
)

// smsJob is one queued SMS.
type smsJob struct {
	ID        string    `json:"id"`
	CodeHash  string    `json:"code"`
	To        string    `json:"to"`
	Text      string    `json:"text"` // with smsCodeMark
	CreatedAt time.Time `json:"createdAt"`
	Attempts  int       `json:"attempts,omitempty"`
	NextTry   time.Time `json:"nextTry,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

func queueSMS(tx *store.Tx, rec *codeRecord, text string, now time.Time) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	// Keys sort by creation time, so the oldest job goes first.
	id := fmt.Sprintf("%016x-%s", now.UnixNano(), hex.EncodeToString(b[:]))
	return tx.PutKV(bucketSMS, id, smsJob{ID: id, CodeHash: rec.Hash, To: rec.Phone, Text: text, CreatedAt: now})
}

func smsBackoff(attempt int) time.Duration {
	d := smsMinBackoff
	for i := 1; i < attempt && d < smsMaxBackoff; i++ {
		d *= 2
	}
	return min(d, smsMaxBackoff)
}

// flushSMS sends the due SMS jobs and returns when the next one is due
// (zero: none queued).
func (m *Manager) flushSMS(ctx context.Context) time.Time {
	if m.cfg.SMS.URL == "" {
		return time.Time{}
	}
	now := m.now()
	type item struct {
		job  smsJob
		code string // plaintext, "" when the code is gone
	}
	var due []item
	var next time.Time
	err := m.st.View(func(tx *store.Tx) error {
		return forEach(tx, bucketSMS, func(_ string, j smsJob) error {
			if j.NextTry.After(now) {
				if next.IsZero() || j.NextTry.Before(next) {
					next = j.NextTry
				}
				return nil
			}
			if len(due) >= smsBatch {
				next = now
				return nil
			}
			it := item{job: j}
			if rec, err := getCode(tx, j.CodeHash); err == nil {
				if code, err := m.seal.open(rec.Sealed, rec.Hash); err == nil {
					it.code = FormatCode(code)
				}
			}
			due = append(due, it)
			return nil
		})
	})
	if err != nil {
		m.log.Warn("sms queue", "err", err)
		return now.Add(smsMinBackoff)
	}
	for _, it := range due {
		j := it.job
		var sendErr error
		if it.code == "" {
			sendErr = fmt.Errorf("code %s gone", hint(j.CodeHash))
			j.Attempts = smsMaxAttempts
		} else {
			sendErr = m.postSMS(ctx, j.To, strings.ReplaceAll(j.Text, smsCodeMark, it.code))
			j.Attempts++
		}
		if ctx.Err() != nil {
			return time.Time{}
		}
		err := m.st.Update(func(tx *store.Tx) error {
			if sendErr == nil || j.Attempts >= smsMaxAttempts {
				if err := tx.DeleteKV(bucketSMS, j.ID); err != nil {
					return err
				}
				action, why := "guest.sms_sent", "SMS hook accepted"
				if sendErr != nil {
					action, why = "guest.sms_dropped", sendErr.Error()
				}
				return audit(tx, auditActor, action, "", "code "+hint(j.CodeHash), why)
			}
			j.LastError, j.NextTry = sendErr.Error(), now.Add(smsBackoff(j.Attempts))
			return tx.PutKV(bucketSMS, j.ID, j)
		})
		if err != nil {
			m.log.Warn("sms queue", "err", err)
		}
		if sendErr != nil {
			m.log.Warn("sms", "code", hint(j.CodeHash), "attempt", j.Attempts, "err", sendErr)
			if j.Attempts < smsMaxAttempts && (next.IsZero() || j.NextTry.Before(next)) {
				next = j.NextTry
			}
		}
	}
	return next
}

// postSMS delivers one text through the SMS hook. Errors never contain
// the text (it holds the code).
func (m *Manager) postSMS(ctx context.Context, to, text string) error {
	body, err := json.Marshal(struct {
		To   string `json:"to"`
		Text string `json:"text"`
		From string `json:"from,omitempty"`
	}{to, text, m.cfg.SMS.From})
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.SMS.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if m.cfg.SMS.TokenFile != "" {
		tok, err := os.ReadFile(m.cfg.SMS.TokenFile)
		if err != nil {
			return fmt.Errorf("sms token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return fmt.Errorf("sms post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sms post: status %d", resp.StatusCode)
	}
	return nil
}
