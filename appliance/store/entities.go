package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/deskgate/deskgate/appliance/model"
	"go.etcd.io/bbolt"
)

// appendFill is the bbolt fill percent for buckets whose keys mostly
// arrive in order: OfficeRnD ids are time-ordered, audit seqs increase.
// bbolt's default (0.5) leaves such pages half empty.
const appendFill = 0.9

// indexEntry is one composite key parent\x00child in an index bucket.
type indexEntry struct {
	bucket []byte
	key    []byte
}

// entity describes how one model type is stored.
type entity[T any] struct {
	kind    string
	bucket  []byte
	id      func(T) string
	indexes func(T) []indexEntry
	member  func(T) string // member whose access a change affects; nil: none
}

func compositeKey(parent, child string) []byte {
	k := make([]byte, 0, len(parent)+1+len(child))
	k = append(k, parent...)
	k = append(k, 0)
	return append(k, child...)
}

// idx returns the index entry parent\x00child, or nothing if parent is "".
func idx(bucket []byte, parent, child string, into []indexEntry) []indexEntry {
	if parent == "" {
		return into
	}
	return append(into, indexEntry{bucket, compositeKey(parent, child)})
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

var (
	memberEntity = &entity[model.Member]{
		kind: KindMember, bucket: bucketMembers,
		id: func(v model.Member) string { return v.ID },
		indexes: func(v model.Member) []indexEntry {
			e := idx(idxMemberCompany, v.Company, v.ID, nil)
			return idx(idxMemberEmail, normEmail(v.Email), v.ID, e)
		},
		member: func(v model.Member) string { return v.ID },
	}
	companyEntity = &entity[model.Company]{
		kind: KindCompany, bucket: bucketCompanies,
		id: func(v model.Company) string { return v.ID },
	}
	membershipEntity = &entity[model.Membership]{
		kind: KindMembership, bucket: bucketMemberships,
		id: func(v model.Membership) string { return v.ID },
		indexes: func(v model.Membership) []indexEntry {
			e := idx(idxMembershipMember, v.Member, v.ID, nil)
			return idx(idxMembershipCompany, v.Company, v.ID, e)
		},
		member: func(v model.Membership) string { return v.Member },
	}
	planEntity = &entity[model.Plan]{
		kind: KindPlan, bucket: bucketPlans,
		id: func(v model.Plan) string { return v.ID },
	}
	locationEntity = &entity[model.Location]{
		kind: KindLocation, bucket: bucketLocations,
		id: func(v model.Location) string { return v.ID },
	}
	resourceEntity = &entity[model.Resource]{
		kind: KindResource, bucket: bucketResources,
		id: func(v model.Resource) string { return v.ID },
	}
	bookingEntity = &entity[model.Booking]{
		kind: KindBooking, bucket: bucketBookings,
		id: func(v model.Booking) string { return v.ID },
	}
	visitorEntity = &entity[model.Visitor]{
		kind: KindVisitor, bucket: bucketVisitors,
		id: func(v model.Visitor) string { return v.ID },
	}
	passEntity = &entity[model.Pass]{
		kind: KindPass, bucket: bucketPasses,
		id: func(v model.Pass) string { return v.ID },
		indexes: func(v model.Pass) []indexEntry {
			e := idx(idxPassMember, v.Member, v.ID, nil)
			return idx(idxPassCompany, v.Company, v.ID, e)
		},
		member: func(v model.Pass) string { return v.Member },
	}
)

func validID(id string) error {
	if id == "" {
		return fmt.Errorf("empty id")
	}
	if strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("id %q contains NUL", id)
	}
	return nil
}

func getRaw[T any](b *bbolt.Bucket, id string) (T, bool, error) {
	var v T
	raw := b.Get([]byte(id))
	if raw == nil {
		return v, false, nil
	}
	// json.Unmarshal copies everything it keeps, so v does not alias
	// bbolt's memory.
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, true, fmt.Errorf("decode %q: %w", id, err)
	}
	return v, true, nil
}

func get[T any](tx *Tx, e *entity[T], id string) (T, error) {
	v, ok, err := getRaw[T](tx.tx.Bucket(e.bucket), id)
	if err != nil {
		return v, fmt.Errorf("get %s: %w", e.kind, err)
	}
	if !ok {
		return v, fmt.Errorf("get %s %q: %w", e.kind, id, ErrNotFound)
	}
	return v, nil
}

func put[T any](tx *Tx, e *entity[T], v T) error {
	id := e.id(v)
	op := "put " + e.kind
	if err := tx.writable(op); err != nil {
		return err
	}
	if err := validID(id); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s %q: encode: %w", op, id, err)
	}
	b := tx.tx.Bucket(e.bucket)
	b.FillPercent = appendFill
	cur := b.Get([]byte(id))
	if cur != nil && bytes.Equal(cur, raw) {
		return nil // unchanged: nothing to write, nothing to publish
	}
	existed := cur != nil
	var old T
	if existed && (e.indexes != nil || e.member != nil) {
		// An undecodable old record is overwritten all the same (that is
		// how sync repairs it). Unmarshal keeps what it could decode; index
		// entries it lost stay behind, dangling: reads skip them and Check
		// reports them.
		_ = json.Unmarshal(cur, &old)
	}
	if e.indexes != nil {
		var oldIdx []indexEntry
		if existed {
			oldIdx = e.indexes(old)
		}
		if err := tx.reindex(oldIdx, e.indexes(v)); err != nil {
			return fmt.Errorf("%s %q: %w", op, id, err)
		}
	}
	if err := b.Put([]byte(id), raw); err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	if !existed {
		if err := tx.addCount(e.kind, 1); err != nil {
			return fmt.Errorf("%s %q: %w", op, id, err)
		}
	}
	c := Change{Kind: e.kind, ID: id}
	if e.member != nil {
		c.Member = e.member(v)
		// A record that moved away from a member affects that member too.
		if existed && e.member(old) != "" && e.member(old) != c.Member {
			tx.record(Change{Kind: e.kind, ID: id, Member: e.member(old)})
		}
	}
	tx.record(c)
	return nil
}

func del[T any](tx *Tx, e *entity[T], id string) error {
	op := "delete " + e.kind
	if err := tx.writable(op); err != nil {
		return err
	}
	b := tx.tx.Bucket(e.bucket)
	// An undecodable record is deleted all the same; see put.
	old, existed, _ := getRaw[T](b, id)
	if !existed {
		return nil
	}
	if e.indexes != nil {
		if err := tx.reindex(e.indexes(old), nil); err != nil {
			return fmt.Errorf("%s %q: %w", op, id, err)
		}
	}
	if err := b.Delete([]byte(id)); err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	if err := tx.addCount(e.kind, -1); err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	c := Change{Kind: e.kind, ID: id, Deleted: true}
	if e.member != nil {
		c.Member = e.member(old)
	}
	tx.record(c)
	return nil
}

func forEach[T any](tx *Tx, e *entity[T], fn func(T) error) error {
	return tx.tx.Bucket(e.bucket).ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("for each %s: decode %q: %w", e.kind, k, err)
		}
		return fn(v)
	})
}

// reindex removes the old index entries that are not in want and adds want.
func (tx *Tx) reindex(old, want []indexEntry) error {
	for _, o := range old {
		keep := false
		for _, w := range want {
			if bytes.Equal(o.bucket, w.bucket) && bytes.Equal(o.key, w.key) {
				keep = true
				break
			}
		}
		if keep {
			continue
		}
		if err := tx.tx.Bucket(o.bucket).Delete(o.key); err != nil {
			return fmt.Errorf("unindex %s: %w", o.bucket, err)
		}
	}
	for _, w := range want {
		if err := tx.tx.Bucket(w.bucket).Put(w.key, nil); err != nil {
			return fmt.Errorf("index %s: %w", w.bucket, err)
		}
	}
	return nil
}

// children returns the child ids under parent in an index bucket.
func (tx *Tx) children(bucket []byte, parent string) []string {
	if parent == "" {
		return nil
	}
	prefix := compositeKey(parent, "")
	var ids []string
	c := tx.tx.Bucket(bucket).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// lookup loads the records an index names. Dangling entries are skipped
// here and reported by Check.
func lookup[T any](tx *Tx, e *entity[T], idxBucket []byte, parent string) ([]T, error) {
	b := tx.tx.Bucket(e.bucket)
	var out []T
	for _, id := range tx.children(idxBucket, parent) {
		v, ok, err := getRaw[T](b, id)
		if err != nil {
			return nil, fmt.Errorf("lookup %s by %s: %w", e.kind, idxBucket, err)
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// addCount notes a change in the number of records of kind; the counters
// are written once, when the transaction function returns (flushCounts).
func (tx *Tx) addCount(kind string, d int64) error {
	if tx.counts == nil {
		tx.counts = make(map[string]int64)
	}
	tx.counts[kind] += d
	return nil
}

// flushCounts writes the pending counter deltas.
func (tx *Tx) flushCounts() error {
	b := tx.tx.Bucket(bucketCounts)
	for kind, d := range tx.counts {
		if d == 0 {
			continue
		}
		n := int64(0)
		if v := b.Get([]byte(kind)); len(v) == 8 {
			n = int64(be64(v))
		}
		n = max(n+d, 0)
		if err := b.Put([]byte(kind), u64(uint64(n))); err != nil {
			return fmt.Errorf("update %s count: %w", kind, err)
		}
	}
	clear(tx.counts)
	return nil
}

// Counts returns the number of records per kind ("member", "account",
// "outbox", ...) from counters maintained on every write: O(1), no scan.
func (tx *Tx) Counts() (map[string]int, error) {
	out := make(map[string]int)
	for _, k := range countedKinds {
		out[k] = 0
	}
	err := tx.tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
		if len(v) == 8 {
			out[string(k)] = int(be64(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	for k, d := range tx.counts { // this transaction's own writes
		out[k] = max(out[k]+int(d), 0)
	}
	return out, nil
}

// countedKinds maps every counter to the bucket whose keys it counts.
var countedBuckets = map[string][]byte{
	KindMember: bucketMembers, KindCompany: bucketCompanies, KindMembership: bucketMemberships,
	KindPlan: bucketPlans, KindLocation: bucketLocations, KindResource: bucketResources,
	KindBooking: bucketBookings, KindVisitor: bucketVisitors, KindPass: bucketPasses,
	KindAccount: bucketAccounts, kindOutbox: bucketOutbox,
}

var countedKinds = []string{
	KindMember, KindCompany, KindMembership, KindPlan, KindLocation, KindResource,
	KindBooking, KindVisitor, KindPass, KindAccount, kindOutbox,
}

const kindOutbox = "outbox"
