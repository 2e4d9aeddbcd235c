package guests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Extension buckets (store KV).
const (
	bucketCodes    = "guests.codes"    // code hash -> codeRecord
	bucketSources  = "guests.sources"  // source key -> code hash
	bucketSessions = "guests.sessions" // client key -> sessionRecord
	bucketPassDone = "guests.passdone" // pass id -> time its access was used up
	bucketSMS      = "guests.sms"      // job id -> smsJob
	bucketTerms    = "guests.terms"    // client key -> termsRecord
)

const auditActor = "guests"

// codeRecord is one live code. Its key is Hash; the plaintext is only in
// Sealed.
type codeRecord struct {
	Hash string `json:"hash"`
	// HashV says how Hash was computed: hashKeyed, or hashLegacy for a
	// record written before codes were keyed (the field is absent there).
	HashV  int    `json:"hv,omitempty"`
	Kind   string `json:"kind"`   // KindGuest | KindDayPass
	Source string `json:"source"` // "b/<booking>/<visitor>" or "p/<member>/<location>"

	BookingID string   `json:"booking,omitempty"`
	VisitorID string   `json:"visitor,omitempty"`
	PassIDs   []string `json:"passes,omitempty"`
	Member    string   `json:"member,omitempty"` // host (booking) or holder (pass)

	Name       string `json:"name,omitempty"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	LocationID string `json:"location"`

	From time.Time `json:"from"`
	// Until is the end of access; zero for a day pass not yet used
	// (FromFirstLogin), which then grants Granted from its first login
	// if that happens before ActivateBy (zero: no deadline).
	Until      time.Time     `json:"until,omitzero"`
	Granted    time.Duration `json:"granted,omitempty"`
	ActivateBy time.Time     `json:"activateBy,omitzero"`
	FirstLogin time.Time     `json:"firstLogin,omitzero"`

	// Seed names a code derived from the fleet's key (HashV hashFleet)
	// across the fleet; Period, the pass that started a day pass's
	// current period when not its first (fleet.go).
	Seed   string `json:"seed,omitempty"`
	Period string `json:"period,omitempty"`

	Devices []string `json:"devices,omitempty"`
	// MaxDevices overrides Config.DevicesPerCode (ad-hoc codes); 0: the default.
	MaxDevices     int       `json:"maxDevices,omitempty"`
	Sealed         []byte    `json:"sealed,omitempty"`
	Delivered      bool      `json:"delivered,omitempty"`
	ExpiredAudited bool      `json:"expiredAudited,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
}

// end is when the code stops working; zero means not known yet (an unused
// day pass without deadline).
func (r codeRecord) end() time.Time {
	if !r.Until.IsZero() {
		return r.Until
	}
	return r.ActivateBy
}

func (r codeRecord) hint() string { return hint(r.Hash) }

// deviceLimit is the number of distinct devices the code admits.
func (r codeRecord) deviceLimit(def int) int {
	if r.MaxDevices > 0 {
		return r.MaxDevices
	}
	return def
}

// sessionRecord is one logged-in client.
type sessionRecord struct {
	Key          string    `json:"key"`
	ID           string    `json:"id"`
	MAC          string    `json:"mac,omitempty"`
	IP           string    `json:"ip,omitempty"`
	Kind         string    `json:"kind"`
	CodeHash     string    `json:"code,omitempty"`
	Name         string    `json:"name,omitempty"`
	MemberID     string    `json:"member,omitempty"`
	LocationID   string    `json:"location,omitempty"`
	Started      time.Time `json:"started"`
	Until        time.Time `json:"until"`
	TermsVersion string    `json:"terms,omitempty"`
}

func (s sessionRecord) client() Client {
	var c Client
	if s.MAC != "" {
		c.MAC, _ = net.ParseMAC(s.MAC)
	}
	if s.IP != "" {
		c.IP, _ = netip.ParseAddr(s.IP)
	}
	return c
}

func (s sessionRecord) session() Session {
	return Session{ID: s.ID, Kind: s.Kind, Name: s.Name, Until: s.Until, MemberID: s.MemberID, LocationID: s.LocationID}
}

type termsRecord struct {
	Version    string    `json:"version"`
	LocationID string    `json:"location,omitempty"`
	At         time.Time `json:"at"`
}

// clientKey identifies a device: its MAC, else its IP.
func clientKey(c Client) (string, error) {
	if len(c.MAC) > 0 {
		return "mac/" + c.MAC.String(), nil
	}
	if c.IP.IsValid() {
		return "ip/" + c.IP.String(), nil
	}
	return "", errors.New("client without MAC or IP")
}

// device is how a client counts against a code's device limit.
func device(c Client) string {
	if len(c.MAC) > 0 {
		return c.MAC.String()
	}
	return c.IP.String()
}

func getCode(tx *store.Tx, hash string) (codeRecord, error) {
	var r codeRecord
	err := tx.GetKV(bucketCodes, hash, &r)
	return r, err
}

func putCode(tx *store.Tx, r codeRecord) error { return tx.PutKV(bucketCodes, r.Hash, r) }

func forEach[T any](tx *store.Tx, bucket string, fn func(key string, v T) error) error {
	return tx.ForEachKV(bucket, "", func(key string, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
		}
		return fn(key, v)
	})
}

// sessionsOf returns the sessions opened with the code hash.
func sessionsOf(tx *store.Tx, hash string) ([]sessionRecord, error) {
	var out []sessionRecord
	err := forEach(tx, bucketSessions, func(_ string, s sessionRecord) error {
		if s.CodeHash == hash {
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

func audit(tx *store.Tx, actor, action, member, subject, cause string) error {
	return tx.Audit(model.AuditEntry{Actor: actor, Action: action, Member: member, Subject: subject, Cause: cause})
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

func notFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// once names the code email fleet-wide (model.Email.Once): the same code
// for the same source and validity is one message, whichever box queues
// it; a changed code or validity is a new one. A digest, so neither the
// code's hash nor the visitor's ids go into the fleet's log.
func (r *codeRecord) once(from, until string) string {
	sum := sha256.Sum256([]byte(r.Source + "\x00" + r.Hash + "\x00" + from + "\x00" + until))
	return "guest_code/" + hex.EncodeToString(sum[:16])
}
