package officernd

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SignatureHeader is the HTTP header carrying a delivery's signature.
const SignatureHeader = "officernd-signature"

// DefaultTolerance is the signature timestamp tolerance used when
// VerifySignature is given a tolerance of zero or less.
const DefaultTolerance = 300 * time.Second

// Sign returns the officernd-signature header value for body signed with
// secret at t: "t=<unix>,signature=<hex(HMAC-SHA256(secret, body.t))>".
func Sign(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",signature=" + hex.EncodeToString(mac(secret, body, ts))
}

func mac(secret string, body []byte, ts string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	return m.Sum(nil)
}

// VerifySignature checks an officernd-signature header against the raw
// request body: HMAC-SHA256 keyed with the webhook secret over body + "." +
// t, hex-encoded, compared in constant time, and |now-t| <= tolerance
// (DefaultTolerance when tolerance <= 0). Keys may come in any order;
// unknown keys (v1=, ...) are ignored. It returns ErrSignatureMissing,
// ErrSignatureInvalid or ErrSignatureStale (wrapped).
func VerifySignature(header string, body []byte, secret string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if strings.TrimSpace(header) == "" {
		return fmt.Errorf("verify webhook signature: %w: empty header", ErrSignatureMissing)
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "t":
			ts = strings.TrimSpace(v)
		case "signature":
			sigs = append(sigs, strings.TrimSpace(v))
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("verify webhook signature: %w: want t=<unix>,signature=<hex>", ErrSignatureMissing)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || unix <= 0 {
		return fmt.Errorf("verify webhook signature: %w: bad timestamp", ErrSignatureInvalid)
	}
	if secret == "" {
		return fmt.Errorf("verify webhook signature: %w: no secret configured", ErrSignatureInvalid)
	}
	want := mac(secret, body, ts)
	matched := false
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("verify webhook signature: %w", ErrSignatureInvalid)
	}
	const maxSkew = int64(1 << 40) // keeps the subtraction from overflowing
	if unix > maxSkew {
		return fmt.Errorf("verify webhook signature: %w: timestamp %d", ErrSignatureStale, unix)
	}
	skew := now.Sub(time.Unix(unix, 0))
	if skew < 0 {
		skew = -skew
	}
	if skew > tolerance {
		return fmt.Errorf("verify webhook signature: %w: timestamp %d is %s from now (tolerance %s)",
			ErrSignatureStale, unix, skew.Round(time.Second), tolerance)
	}
	return nil
}

// ParseEvent decodes a webhook envelope and checks it: event id of 1..64
// characters, an eventType, and data.object a JSON object with a string _id.
func ParseEvent(body []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("parse webhook event: %w: %v", ErrInvalidEvent, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("parse webhook event: %w: trailing data", ErrInvalidEvent)
	}
	if n := len(e.ID); n == 0 || n > 64 || !utf8.ValidString(e.ID) {
		return Event{}, fmt.Errorf("parse webhook event: %w: event id must be 1..64 characters", ErrInvalidEvent)
	}
	if e.Type == "" || len(e.Type) > 128 {
		return Event{}, fmt.Errorf("parse webhook event %s: %w: missing eventType", e.ID, ErrInvalidEvent)
	}
	if !isObject(e.Data.Object) {
		return Event{}, fmt.Errorf("parse webhook event %s: %w: data.object is not an object", e.ID, ErrInvalidEvent)
	}
	var id struct {
		ID any `json:"_id"`
	}
	if err := json.Unmarshal(e.Data.Object, &id); err != nil {
		return Event{}, fmt.Errorf("parse webhook event %s: %w: %v", e.ID, ErrInvalidEvent, err)
	}
	if s, ok := id.ID.(string); !ok || s == "" {
		return Event{}, fmt.Errorf("parse webhook event %s: %w: data.object has no _id", e.ID, ErrInvalidEvent)
	}
	if p := e.Data.PreviousAttributes; len(p) > 0 && !isNull(p) && !isObject(p) {
		return Event{}, fmt.Errorf("parse webhook event %s: %w: previousAttributes is not an object", e.ID, ErrInvalidEvent)
	}
	return e, nil
}

// ObjectID returns data.object's _id (ParseEvent guarantees one).
func (e Event) ObjectID() string {
	var id struct {
		ID string `json:"_id"`
	}
	_ = json.Unmarshal(e.Data.Object, &id)
	return id.ID
}

// Entity returns the entity part of the event type ("membership" for
// "membership.updated", "invoice.charge" for "invoice.charge.created").
func (e Event) Entity() string {
	i := strings.LastIndexByte(e.Type, '.')
	if i < 0 {
		return e.Type
	}
	return e.Type[:i]
}

// Action returns the last part of the event type ("created", "updated",
// "removed").
func (e Event) Action() string {
	return e.Type[strings.LastIndexByte(e.Type, '.')+1:]
}

// DecodeObject decodes data.object into T with the tolerant (v1-aware)
// decoders, e.g. DecodeObject[Membership](e).
func DecodeObject[T any](e Event) (T, error) {
	var out T
	if err := json.Unmarshal(e.Data.Object, &out); err != nil {
		return out, fmt.Errorf("decode %s object of event %s: %w", e.Type, e.ID, err)
	}
	return out, nil
}

// DecodePrevious decodes data.previousAttributes into a map of raw values;
// it is empty when the event has none.
func DecodePrevious(e Event) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if len(e.Data.PreviousAttributes) == 0 || isNull(e.Data.PreviousAttributes) {
		return out, nil
	}
	if err := json.Unmarshal(e.Data.PreviousAttributes, &out); err != nil {
		return nil, fmt.Errorf("decode previous attributes of event %s: %w", e.ID, err)
	}
	return out, nil
}
