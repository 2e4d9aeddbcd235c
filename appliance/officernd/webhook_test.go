package officernd

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// The worked example of officernd-api.md §6.
const (
	docSecret = "s3cr3t-from-webhook-create"
	docBody   = `{"event":"666f1a2b3c4d5e6f70818293","eventType":"membership.updated","data":{"object":{"_id":"603dfbc260f4054084125d30","status":"approved"},"previousAttributes":{"status":"not_approved"}},"createdAt":"2024-06-10T06:13:20.000Z"}`
	docSig    = "32f9812614b2f260c5326bafb7d15c908e13b78c1e483f32ba20729e171782ff"
	docT      = 1718000000
)

func TestSignatureDocVector(t *testing.T) {
	if len(docBody) != 228 {
		t.Fatalf("body is %d bytes, want 228", len(docBody))
	}
	at := time.Unix(docT, 0)
	if got, want := Sign(docSecret, []byte(docBody), at), "t=1718000000,signature="+docSig; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if err := VerifySignature("t=1718000000,signature="+docSig, []byte(docBody), docSecret, at.Add(299*time.Second), 300*time.Second); err != nil {
		t.Errorf("doc vector rejected: %v", err)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(docBody)
	at := time.Unix(docT, 0)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		secret string
		now    time.Time
		tol    time.Duration
		want   error
	}{
		{"keys reversed", "signature=" + docSig + ",t=1718000000", body, docSecret, at, time.Minute, nil},
		{"spaces and unknown keys", " t=1718000000 , v0=zz, signature=" + strings.ToUpper(docSig), body, docSecret, at, time.Minute, nil},
		{"two signatures one good", "t=1718000000,signature=00,signature=" + docSig, body, docSecret, at, time.Minute, nil},
		{"default tolerance 300s", "t=1718000000,signature=" + docSig, body, docSecret, at.Add(-300 * time.Second), 0, nil},
		{"v1 is not the key", "t=1718000000,v1=" + docSig, body, docSecret, at, time.Minute, ErrSignatureMissing},
		{"empty header", "", body, docSecret, at, time.Minute, ErrSignatureMissing},
		{"no t", "signature=" + docSig, body, docSecret, at, time.Minute, ErrSignatureMissing},
		{"body changed", "t=1718000000,signature=" + docSig, append([]byte(docBody), ' '), docSecret, at, time.Minute, ErrSignatureInvalid},
		{"wrong secret", "t=1718000000,signature=" + docSig, body, "other", at, time.Minute, ErrSignatureInvalid},
		{"timestamp changed", "t=1718000001,signature=" + docSig, body, docSecret, at, time.Minute, ErrSignatureInvalid},
		{"stripe order", "t=1718000000,signature=" + stripeOrder(docSecret, "1718000000", docBody), body, docSecret, at, time.Minute, ErrSignatureInvalid},
		{"not hex", "t=1718000000,signature=xyz", body, docSecret, at, time.Minute, ErrSignatureInvalid},
		{"bad t", "t=abc,signature=" + docSig, body, docSecret, at, time.Minute, ErrSignatureInvalid},
		{"empty secret", "t=1718000000,signature=" + docSig, body, "", at, time.Minute, ErrSignatureInvalid},
		{"too old", "t=1718000000,signature=" + docSig, body, docSecret, at.Add(301 * time.Second), 300 * time.Second, ErrSignatureStale},
		{"too far ahead", "t=1718000000,signature=" + docSig, body, docSecret, at.Add(-61 * time.Second), time.Minute, ErrSignatureStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.header, tc.body, tc.secret, tc.now, tc.tol)
			if tc.want == nil && err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), docSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	e, err := ParseEvent([]byte(docBody))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "666f1a2b3c4d5e6f70818293" || e.Type != "membership.updated" || e.ObjectID() != "603dfbc260f4054084125d30" {
		t.Errorf("event %+v", e)
	}
	if e.Entity() != "membership" || e.Action() != "updated" {
		t.Errorf("entity %q action %q", e.Entity(), e.Action())
	}
	if !e.CreatedAt.Equal(time.Date(2024, 6, 10, 6, 13, 20, 0, time.UTC)) {
		t.Errorf("createdAt %v", e.CreatedAt)
	}
	prev, err := DecodePrevious(e)
	if err != nil || string(prev["status"]) != `"not_approved"` {
		t.Errorf("previous %v %v", prev, err)
	}
	ms, err := DecodeObject[Membership](e)
	if err != nil || ms.ID != "603dfbc260f4054084125d30" || ms.Status != "approved" {
		t.Errorf("object %+v %v", ms, err)
	}

	ev := `{"event":"e1","eventType":"membership.created","data":{"object":{"_id":"ms1","office":"loc1","team":"c1","calculatedStatus":"active"}}}`
	e, err = ParseEvent([]byte(ev))
	if err != nil {
		t.Fatal(err)
	}
	ms, err = DecodeObject[Membership](e)
	if err != nil || ms.Location != "loc1" || ms.Company != "c1" || ms.CalculatedStatus != "active" {
		t.Errorf("v1 object %+v %v", ms, err)
	}
	if e.Entity() != "membership" {
		t.Errorf("entity %q", e.Entity())
	}

	for name, in := range map[string]string{
		"not json":       `nope`,
		"trailing":       docBody + `{}`,
		"no event":       `{"eventType":"member.updated","data":{"object":{"_id":"m1"}}}`,
		"long event":     `{"event":"` + strings.Repeat("a", 65) + `","eventType":"member.updated","data":{"object":{"_id":"m1"}}}`,
		"no type":        `{"event":"e1","data":{"object":{"_id":"m1"}}}`,
		"object array":   `{"event":"e1","eventType":"member.updated","data":{"object":[{"_id":"m1"}]}}`,
		"no object":      `{"event":"e1","eventType":"member.updated","data":{}}`,
		"no _id":         `{"event":"e1","eventType":"member.updated","data":{"object":{"name":"x"}}}`,
		"numeric _id":    `{"event":"e1","eventType":"member.updated","data":{"object":{"_id":5}}}`,
		"prev not obj":   `{"event":"e1","eventType":"member.updated","data":{"object":{"_id":"m1"},"previousAttributes":"x"}}`,
		"event a number": `{"event":5,"eventType":"member.updated","data":{"object":{"_id":"m1"}}}`,
	} {
		if _, err := ParseEvent([]byte(in)); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: got %v, want ErrInvalidEvent", name, err)
		}
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add("t=1718000000,signature="+docSig, []byte(docBody), docSecret, int64(docT))
	f.Add("signature=,t=,", []byte{}, "", int64(0))
	f.Add("t=99999999999999999999,signature=aa", []byte("x"), "k", int64(-1))
	f.Fuzz(func(t *testing.T, header string, body []byte, secret string, now int64) {
		_ = VerifySignature(header, body, secret, time.Unix(now, 0), time.Minute)
		if secret == "" || now <= 0 || now > 1<<40 {
			return
		}
		at := time.Unix(now, 0)
		if err := VerifySignature(Sign(secret, body, at), body, secret, at, time.Minute); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(docBody))
	f.Add([]byte(`{"event":"e1","eventType":"booking.created","data":{"object":{"_id":"b1","start":{"dateTime":"2026-01-01T00:00:00Z"}}}}`))
	f.Add([]byte(`{"event":"e","eventType":"x","data":{"object":{"_id":"m","team":{"_id":"c"}}}}`))
	f.Add([]byte(`{"event":"e","eventType":"member.paymentdetails.created","data":{"object":{"_id":"p"},"member":{"_id":"m","name":"n"},"company":{"id":"c"}}}`))
	f.Add([]byte(`{"event":"e","eventType":"booking.updated","data":{"object":{"_id":"b","canceled":true,"resourceId":"r","summary":"s"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseEvent(body)
		if err != nil {
			return
		}
		if e.ID == "" || e.Type == "" || e.ObjectID() == "" {
			t.Fatalf("accepted event without id/type/_id: %+v", e)
		}
		_, _ = DecodeObject[Member](e)
		_, _ = DecodeObject[Membership](e)
		_, _ = DecodeObject[Booking](e)
		_, _ = DecodePrevious(e)
		_ = e.Entity() + e.Action()
	})
}

// stripeOrder signs t + "." + body, the order OfficeRnD does not use.
func stripeOrder(secret, t, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(t + "." + body))
	return hex.EncodeToString(m.Sum(nil))
}
