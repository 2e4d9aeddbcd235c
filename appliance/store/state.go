package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// GetState decodes the JSON stored under key into v, or returns
// ErrNotFound.
func (tx *Tx) GetState(key string, v any) error {
	raw := tx.tx.Bucket(bucketState).Get([]byte(key))
	if raw == nil {
		return fmt.Errorf("get state %q: %w", key, ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("get state %q: %w", key, err)
	}
	return nil
}

// PutState stores v as JSON under key.
func (tx *Tx) PutState(key string, v any) error {
	if err := tx.writable("put state"); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("put state: empty key")
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("put state %q: %w", key, err)
	}
	if err := tx.tx.Bucket(bucketState).Put([]byte(key), raw); err != nil {
		return fmt.Errorf("put state %q: %w", key, err)
	}
	return nil
}

// SeenEvent reports whether the webhook event id was marked (and not yet
// pruned).
func (tx *Tx) SeenEvent(id string) (bool, error) {
	return tx.tx.Bucket(bucketEvents).Get([]byte(id)) != nil, nil
}

// MarkEvent records the webhook event id as seen at at.
func (tx *Tx) MarkEvent(id string, at time.Time) error {
	if err := tx.writable("mark event"); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("mark event: empty id")
	}
	if err := tx.tx.Bucket(bucketEvents).Put([]byte(id), timeKey(at)); err != nil {
		return fmt.Errorf("mark event %q: %w", id, err)
	}
	return nil
}

// PruneEvents forgets event ids marked before before and returns how many.
// It scans every event id.
func (tx *Tx) PruneEvents(before time.Time) (int, error) {
	if err := tx.writable("prune events"); err != nil {
		return 0, err
	}
	limit := timeKey(before)
	b := tx.tx.Bucket(bucketEvents)
	var old [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if bytes.Compare(v, limit) < 0 {
			old = append(old, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("prune events: %w", err)
		}
	}
	return len(old), nil
}

// Extension buckets: components that need a small table of their own
// (RADIUS sessions, the static IP pool, NAS notes) keep JSON values in a
// bucket nested under "ext", created on first write.

func (tx *Tx) extBucket(name string, create bool) (*bbolt.Bucket, error) {
	if name == "" {
		return nil, errors.New("empty bucket name")
	}
	ext := tx.tx.Bucket(bucketExtension)
	if !create {
		return ext.Bucket([]byte(name)), nil
	}
	return ext.CreateBucketIfNotExists([]byte(name))
}

// PutKV stores v as JSON under key in the extension bucket named bucket.
// A json.RawMessage is stored as it is, not validated and compacted again
// (the caller encoded it; it must stay unmodified until the transaction
// ends).
func (tx *Tx) PutKV(bucket, key string, v any) error {
	if err := tx.writable("put kv"); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("put kv %s: empty key", bucket)
	}
	b, err := tx.extBucket(bucket, true)
	if err != nil {
		return fmt.Errorf("put kv %s/%s: %w", bucket, key, err)
	}
	raw, ok := v.(json.RawMessage)
	if !ok || len(raw) == 0 {
		if raw, err = json.Marshal(v); err != nil {
			return fmt.Errorf("put kv %s/%s: %w", bucket, key, err)
		}
	}
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("put kv %s/%s: %w", bucket, key, err)
	}
	return nil
}

// GetKV decodes the JSON under key in bucket into v, or returns
// ErrNotFound.
func (tx *Tx) GetKV(bucket, key string, v any) error {
	b, err := tx.extBucket(bucket, false)
	if err != nil {
		return fmt.Errorf("get kv %s/%s: %w", bucket, key, err)
	}
	var raw []byte
	if b != nil {
		raw = b.Get([]byte(key))
	}
	if raw == nil {
		return fmt.Errorf("get kv %s/%s: %w", bucket, key, ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("get kv %s/%s: %w", bucket, key, err)
	}
	return nil
}

// DeleteKV removes key from bucket; absent keys are not an error.
func (tx *Tx) DeleteKV(bucket, key string) error {
	if err := tx.writable("delete kv"); err != nil {
		return err
	}
	b, err := tx.extBucket(bucket, false)
	if err != nil {
		return fmt.Errorf("delete kv %s/%s: %w", bucket, key, err)
	}
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete kv %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ForEachKV calls fn for every key in bucket starting with prefix, in key
// order, with the raw JSON value (a copy). fn must not write to the same
// bucket; collect keys and write after ForEachKV returns.
func (tx *Tx) ForEachKV(bucket, prefix string, fn func(key string, raw []byte) error) error {
	return tx.ForEachKVFrom(bucket, prefix, prefix, fn)
}

// ForEachKVFrom is ForEachKV starting at the first key >= from (a key
// with the prefix: a seek, not a scan of what comes before it).
func (tx *Tx) ForEachKVFrom(bucket, prefix, from string, fn func(key string, raw []byte) error) error {
	if from < prefix {
		from = prefix
	}
	b, err := tx.extBucket(bucket, false)
	if err != nil {
		return fmt.Errorf("for each kv %s: %w", bucket, err)
	}
	if b == nil {
		return nil
	}
	p := []byte(prefix)
	c := b.Cursor()
	for k, v := c.Seek([]byte(from)); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if v == nil {
			continue // nested bucket
		}
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}
