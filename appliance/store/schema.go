package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
)

// Bucket registry. Every top-level bucket is listed here and created in the
// transaction that opens the store, so no read path ever finds one missing.
var (
	bucketMeta   = []byte("meta")   // schemaKey -> big-endian uint64 version
	bucketCounts = []byte("counts") // kind -> big-endian uint64 record count

	bucketMembers     = []byte("members") // id -> JSON model.Member
	bucketCompanies   = []byte("companies")
	bucketMemberships = []byte("memberships")
	bucketPlans       = []byte("plans")
	bucketLocations   = []byte("locations")
	bucketResources   = []byte("resources")
	bucketBookings    = []byte("bookings")
	bucketVisitors    = []byte("visitors")
	bucketPasses      = []byte("passes")

	// Index buckets hold composite keys parent\x00child with empty values.
	idxMemberCompany     = []byte("idx_member_company")     // company\x00member
	idxMemberEmail       = []byte("idx_member_email")       // lower(email)\x00member
	idxMembershipMember  = []byte("idx_membership_member")  // member\x00membership
	idxMembershipCompany = []byte("idx_membership_company") // company\x00membership
	idxPassMember        = []byte("idx_pass_member")        // member\x00pass
	idxPassCompany       = []byte("idx_pass_company")       // company\x00pass

	bucketAccounts = []byte("accounts") // lower(username) -> JSON model.Account
	// One-to-one indexes; the value is the account key (lower(username)).
	idxAccountMember = []byte("idx_account_member") // member id -> account key
	idxAccountToken  = []byte("idx_account_token")  // onboard token hash -> account key

	bucketAudit     = []byte("audit")      // big-endian uint64 seq -> JSON model.AuditEntry
	bucketOutbox    = []byte("outbox")     // email id -> JSON storedEmail
	idxOutboxDue    = []byte("outbox_due") // due(8) created(8) id -> empty
	bucketSent      = []byte("sent")       // email id -> big-endian unix nanos when sent
	idxSentTime     = []byte("sent_time")  // sent(8) id -> empty
	bucketState     = []byte("state")      // key -> JSON
	bucketEvents    = []byte("events")     // webhook event id -> big-endian unix nanos
	bucketExtension = []byte("ext")        // nested buckets of JSON values, see PutKV
)

var allBuckets = [][]byte{
	bucketMeta, bucketCounts,
	bucketMembers, bucketCompanies, bucketMemberships, bucketPlans, bucketLocations,
	bucketResources, bucketBookings, bucketVisitors, bucketPasses,
	idxMemberCompany, idxMemberEmail, idxMembershipMember, idxMembershipCompany,
	idxPassMember, idxPassCompany,
	bucketAccounts, idxAccountMember, idxAccountToken,
	bucketAudit, bucketOutbox, idxOutboxDue, bucketSent, idxSentTime,
	bucketState, bucketEvents, bucketExtension,
}

var schemaKey = []byte("schema")

// A migration moves the database from version-1 to version. Migrations run
// in order, all in the transaction that opens the store, so a crash leaves
// the old schema or the new one.
type migration struct {
	version int
	name    string
	fn      func(tx *bbolt.Tx) error
}

// migrations is ordered by version; the last one is the current schema.
var migrations = []migration{
	// Version 0 is the prototype layout: entity buckets keyed by id and
	// accounts keyed by the username as typed, no indexes and no counts.
	{1, "lowercase account keys, build indexes and counts", migrateV1},
}

// currentSchema is the schema version this code reads and writes.
var currentSchema = migrations[len(migrations)-1].version

func readSchema(tx *bbolt.Tx) int {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(schemaKey)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

// schemaCurrent reports whether every bucket exists and the schema is
// current, so Open need not write.
func schemaCurrent(tx *bbolt.Tx) bool {
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return false
		}
	}
	return readSchema(tx) == currentSchema
}

// initSchema creates every bucket and runs the pending migrations.
func initSchema(tx *bbolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	v := readSchema(tx)
	if v > currentSchema {
		return fmt.Errorf("schema version %d is newer than this build's %d", v, currentSchema)
	}
	for _, m := range migrations {
		if m.version <= v {
			continue
		}
		if err := m.fn(tx); err != nil {
			return fmt.Errorf("migrate to schema %d (%s): %w", m.version, m.name, err)
		}
		v = m.version
	}
	return tx.Bucket(bucketMeta).Put(schemaKey, u64(uint64(v)))
}

func migrateV1(btx *bbolt.Tx) error {
	tx := &Tx{tx: btx}
	// Re-key accounts by lower-case username. Collect first: a bucket must
	// not be modified while a cursor walks it.
	type kv struct{ k, v []byte }
	var accts []kv
	b := btx.Bucket(bucketAccounts)
	if err := b.ForEach(func(k, v []byte) error {
		accts = append(accts, kv{bytes.Clone(k), bytes.Clone(v)})
		return nil
	}); err != nil {
		return err
	}
	for _, a := range accts {
		var acct struct {
			Username string `json:"username"`
		}
		if err := json.Unmarshal(a.v, &acct); err != nil {
			return fmt.Errorf("decode account %q: %w", a.k, err)
		}
		if acct.Username == "" {
			acct.Username = string(a.k)
		}
		key := accountKey(acct.Username)
		if !bytes.Equal(key, a.k) {
			if b.Get(key) != nil {
				return fmt.Errorf("account %q: %w: %q differs only in case", a.k, ErrConflict, key)
			}
			if err := b.Delete(a.k); err != nil {
				return err
			}
			if err := b.Put(key, a.v); err != nil {
				return err
			}
		}
	}
	return tx.rebuildDerived()
}

// rebuildDerived empties and refills every index and counter from the
// primary records.
func (tx *Tx) rebuildDerived() error {
	for _, name := range derivedBuckets {
		if err := tx.tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		if _, err := tx.tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	want, problems, err := tx.expectedDerived()
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("inconsistent records: %s", strings.Join(problems, "; "))
	}
	for name, keys := range want {
		b := tx.tx.Bucket([]byte(name))
		for k, v := range keys {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return fmt.Errorf("fill %s: %w", name, err)
			}
		}
	}
	return nil
}

// derivedBuckets are recomputable from the primary records.
var derivedBuckets = [][]byte{
	bucketCounts,
	idxMemberCompany, idxMemberEmail, idxMembershipMember, idxMembershipCompany,
	idxPassMember, idxPassCompany, idxAccountMember, idxAccountToken,
	idxOutboxDue, idxSentTime,
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func accountKey(username string) []byte { return []byte(strings.ToLower(username)) }
