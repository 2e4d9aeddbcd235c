// Package store owns deskgate's local bbolt database, the source of truth
// for every access decision: the OfficeRnD entities as last synced, the WiFi
// accounts derived from them, the audit trail, the email outbox (secrets
// sealed at rest), sync state, webhook event ids and generic extension
// buckets for other components. It publishes a change feed after each
// committed write. One process owns the database file (bbolt's exclusive
// lock); it imports only the standard library, bbolt and appliance/model.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrNotFound reports a missing record.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a write that would break a uniqueness rule,
	// such as a username that belongs to another member.
	ErrConflict = errors.New("conflict")
	// ErrTimeout reports that another process holds the database.
	ErrTimeout = errors.New("database locked by another process")
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for bbolt's file lock; default 2s.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// SealKey is the 32-byte AES-256-GCM key sealing Email.Secret. When
	// nil, the key is read from seal.key next to the database file, or
	// created there with mode 0600.
	SealKey []byte
	// NoSync skips fsync on commit. Benchmarks only: a crash may lose or
	// corrupt data.
	NoSync bool
}

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db   *bbolt.DB
	path string
	now  func() time.Time
	aead aeadSealer

	wmu sync.Mutex // orders Update commits with their publication

	smu    sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	// changeSeq counts published changes (ChangeSeq).
	changeSeq atomic.Uint64

	auditHook atomic.Pointer[AuditHook] // see SetAuditHook
}

// Open opens or creates the database at path (mode 0600), creates every
// bucket and runs pending schema migrations in one transaction.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := opts.SealKey
	if key == nil {
		var err error
		key, err = loadSealKey(filepath.Join(filepath.Dir(path), "seal.key"))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	aead, err := newSealer(key)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w", path, ErrTimeout)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// bbolt applies the mode only when it creates the file.
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	current := false
	_ = db.View(func(tx *bbolt.Tx) error { current = schemaCurrent(tx); return nil })
	if !current {
		err = db.Update(initSchema)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{
		db:   db,
		path: path,
		now:  opts.Now,
		aead: aead,
		subs: make(map[*subscriber]struct{}),
	}, nil
}

// Close closes the database and every subscription channel.
func (s *Store) Close() error {
	s.smu.Lock()
	if !s.closed {
		s.closed = true
		for sub := range s.subs {
			close(sub.ch)
			delete(s.subs, sub)
		}
	}
	s.smu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Tx is a transaction. It is valid only inside the View, Update or Batch
// function it was passed to; values it returns are copies and outlive it.
// Write methods fail inside View.
type Tx struct {
	tx      *bbolt.Tx
	s       *Store
	changes []Change
	counts  map[string]int64 // pending counter deltas, see flushCounts
	// localAudit: audit entries of this transaction skip the audit hook
	// (see LocalAudit).
	localAudit bool
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.db.View(func(btx *bbolt.Tx) error {
		return fn(&Tx{tx: btx, s: s})
	})
}

// Update runs fn in one read-write transaction. If fn returns an error
// nothing is written. Changes recorded by fn are published to subscribers
// only after the commit succeeds. Do not call Store methods that write
// (Update, MarkEmailSent, ...) from inside fn: they would deadlock.
func (s *Store) Update(fn func(tx *Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var t *Tx
	err := s.db.Update(func(btx *bbolt.Tx) error {
		t = &Tx{tx: btx, s: s}
		if err := fn(t); err != nil {
			return err
		}
		return t.flushCounts()
	})
	if err != nil {
		return err
	}
	s.publish(t.changes)
	return nil
}

// Batch is Update through bbolt's DB.Batch: concurrent callers share one
// commit, so fn may run more than once and must be idempotent. Use it for
// high-rate writers such as RADIUS accounting.
func (s *Store) Batch(fn func(tx *Tx) error) error {
	var t *Tx
	err := s.db.Batch(func(btx *bbolt.Tx) error {
		t = &Tx{tx: btx, s: s} // the last run is the committed one
		if err := fn(t); err != nil {
			return err
		}
		return t.flushCounts()
	})
	if err != nil {
		return err
	}
	s.publish(t.changes)
	return nil
}

// SchemaVersion returns the schema version recorded in the database.
func (s *Store) SchemaVersion() (int, error) {
	var v int
	err := s.db.View(func(tx *bbolt.Tx) error {
		v = readSchema(tx)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Size returns the size of the database file in bytes (0 if unknown).
func (s *Store) Size() int64 {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// writable reports an error naming op when tx is read-only.
func (tx *Tx) writable(op string) error {
	if !tx.tx.Writable() {
		return fmt.Errorf("%s: %w", op, berrors.ErrTxNotWritable)
	}
	return nil
}

func (tx *Tx) record(c Change) { tx.changes = append(tx.changes, c) }

func (tx *Tx) nowTime() time.Time {
	if tx.s == nil || tx.s.now == nil {
		return time.Now()
	}
	return tx.s.now()
}
