package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

var (
	// ErrInvalidMessage reports a message that cannot be sent as given: a
	// bad address, a header value with CR or LF, an unusable ID. Resending
	// it will not help.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrHeaderInjection reports a header value containing CR or LF. It
	// wraps ErrInvalidMessage.
	ErrHeaderInjection = fmt.Errorf("%w: line break in header value", ErrInvalidMessage)
)

// MessageIDDomain is the right-hand side of every Message-ID deskgate sends.
const MessageIDDomain = "deskgate"

// Message is one rendered email.
type Message struct {
	// ID identifies the email (the outbox ID). It becomes the Message-ID
	// <ID@deskgate>, stable across retries, so receivers can deduplicate.
	// Bytes other than letters, digits, "-_+~" and inner dots are written
	// as =XX in the Message-ID. Empty means a random Message-ID.
	ID      string
	To      string // one or more RFC 5322 addresses, comma-separated
	From    string // one RFC 5322 address
	Subject string
	Text    string // text/plain body
	HTML    string // text/html body; optional
}

// MessageID returns the Message-ID header value for m, angle brackets
// included; empty when m.ID is empty.
func (m Message) MessageID() string {
	if m.ID == "" {
		return ""
	}
	return "<" + idLocal(m.ID) + "@" + MessageIDDomain + ">"
}

// Validate checks the addresses, the ID and that no header value contains
// a line break. Errors wrap ErrInvalidMessage.
func (m Message) Validate() error {
	_, _, err := m.envelope()
	return err
}

// envelope validates m and returns the SMTP envelope sender and recipients.
func (m Message) envelope() (from string, to []string, err error) {
	for _, h := range []struct{ name, v string }{
		{"ID", m.ID}, {"To", m.To}, {"From", m.From}, {"Subject", m.Subject},
	} {
		if strings.ContainsAny(h.v, "\r\n") {
			return "", nil, fmt.Errorf("%w (%s)", ErrHeaderInjection, h.name)
		}
	}
	if len(m.ID) > 200 {
		return "", nil, fmt.Errorf("%w: id longer than 200 bytes", ErrInvalidMessage)
	}
	fa, err := mail.ParseAddress(m.From)
	if err != nil {
		return "", nil, fmt.Errorf("%w: from address: %v", ErrInvalidMessage, err)
	}
	tas, err := mail.ParseAddressList(m.To)
	if err != nil {
		return "", nil, fmt.Errorf("%w: to address: %v", ErrInvalidMessage, err)
	}
	for _, a := range tas {
		to = append(to, a.Address)
	}
	return fa.Address, to, nil
}

// idLocal returns the Message-ID left-hand side for id: id itself when it
// is made of letters, digits and "-_+~" with single inner dots (the usual
// case: the store's hex IDs), otherwise id with every other byte written as
// =XX (hex), which keeps the mapping one-to-one and stable.
func idLocal(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '+', c == '~':
			b.WriteByte(c)
		case c == '.' && i > 0 && i < len(id)-1 && id[i-1] != '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// Compose renders m as an RFC 5322 message with CRLF line endings:
// Date, From, To, Subject (RFC 2047 encoded when not ASCII), Message-ID,
// MIME-Version, and a UTF-8 quoted-printable body, multipart/alternative
// when m has both a text and an HTML part. An empty m.ID gets a random
// Message-ID.
func Compose(m Message, date time.Time) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	from, _ := mail.ParseAddress(m.From)
	tos, _ := mail.ParseAddressList(m.To)
	toStrs := make([]string, len(tos))
	for i, a := range tos {
		toStrs[i] = a.String()
	}
	msgID := m.MessageID()
	if msgID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		msgID = "<" + hex.EncodeToString(b[:]) + "@" + MessageIDDomain + ">"
	}

	var buf bytes.Buffer
	hdr := func(k, v string) { buf.WriteString(k + ": " + v + "\r\n") }
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("From", from.String())
	hdr("To", strings.Join(toStrs, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Message-ID", msgID)
	hdr("MIME-Version", "1.0")

	if m.HTML == "" {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		buf.WriteString("\r\n")
		if err := writeQP(&buf, m.Text); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if m.Text == "" {
		hdr("Content-Type", "text/html; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		buf.WriteString("\r\n")
		if err := writeQP(&buf, m.HTML); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}

	mw := multipart.NewWriter(&buf)
	hdr("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	buf.WriteString("\r\n")
	for _, p := range []struct{ ctype, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		if err := writeQP(w, p.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	buf.WriteString("\r\n")
	return buf.Bytes(), nil
}

// writeQP writes s quoted-printable encoded with CRLF line endings.
func writeQP(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	if _, err := qp.Write([]byte(s)); err != nil {
		return err
	}
	return qp.Close()
}
