package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/deskgate/deskgate/appliance/model"
)

// Accounts are keyed by lower-case username, so usernames are unique
// regardless of case; the username keeps the case it was written with.
// idx_account_member (member -> key) enforces one account per member and
// idx_account_token finds an account by onboarding token hash.

func (tx *Tx) account(key []byte) (model.Account, bool, error) {
	raw := tx.tx.Bucket(bucketAccounts).Get(key)
	if raw == nil {
		return model.Account{}, false, nil
	}
	var a model.Account
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, true, fmt.Errorf("decode account %q: %w", key, err)
	}
	return a, true, nil
}

// GetAccount returns the account with username (case-insensitive), or
// ErrNotFound.
func (tx *Tx) GetAccount(username string) (model.Account, error) {
	a, ok, err := tx.account(accountKey(username))
	if err != nil {
		return a, fmt.Errorf("get account: %w", err)
	}
	if !ok {
		return a, fmt.Errorf("get account %q: %w", username, ErrNotFound)
	}
	return a, nil
}

// AccountOfMember returns the member's account, or ErrNotFound.
func (tx *Tx) AccountOfMember(memberID string) (model.Account, error) {
	key := tx.tx.Bucket(idxAccountMember).Get([]byte(memberID))
	if key == nil {
		return model.Account{}, fmt.Errorf("account of member %q: %w", memberID, ErrNotFound)
	}
	a, ok, err := tx.account(key)
	if err != nil {
		return a, fmt.Errorf("account of member %q: %w", memberID, err)
	}
	if !ok {
		return a, fmt.Errorf("account of member %q: %w", memberID, ErrNotFound)
	}
	return a, nil
}

// AccountByOnboardToken returns the account whose OnboardTokenHash is
// tokenHash, or ErrNotFound. Expiry is the caller's business.
func (tx *Tx) AccountByOnboardToken(tokenHash []byte) (model.Account, error) {
	if len(tokenHash) == 0 {
		return model.Account{}, fmt.Errorf("account by onboard token: %w", ErrNotFound)
	}
	key := tx.tx.Bucket(idxAccountToken).Get(tokenHash)
	if key == nil {
		return model.Account{}, fmt.Errorf("account by onboard token: %w", ErrNotFound)
	}
	a, ok, err := tx.account(key)
	if err != nil {
		return a, fmt.Errorf("account by onboard token: %w", err)
	}
	if !ok || !bytes.Equal(a.OnboardTokenHash, tokenHash) {
		return model.Account{}, fmt.Errorf("account by onboard token: %w", ErrNotFound)
	}
	return a, nil
}

// PutAccount inserts or replaces a. It fails with ErrConflict if the
// username (case-insensitive) belongs to another member. If a.MemberID
// already has an account under another username, that account is removed:
// a rename. Writing the stored value again is a no-op that records no
// Change.
func (tx *Tx) PutAccount(a model.Account) error {
	if err := tx.writable("put account"); err != nil {
		return err
	}
	if a.Username == "" || a.MemberID == "" {
		return fmt.Errorf("put account %q: username and member are required", a.Username)
	}
	if err := validID(a.MemberID); err != nil {
		return fmt.Errorf("put account %q: member: %w", a.Username, err)
	}
	key := accountKey(a.Username)
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("put account %q: encode: %w", a.Username, err)
	}
	if stored := tx.tx.Bucket(bucketAccounts).Get(key); stored != nil && bytes.Equal(stored, raw) {
		return nil // unchanged: nothing to write, nothing to publish
	}
	cur, exists, err := tx.account(key)
	if err != nil {
		return fmt.Errorf("put account: %w", err)
	}
	if exists && cur.MemberID != a.MemberID {
		return fmt.Errorf("put account %q: username belongs to member %q: %w", a.Username, cur.MemberID, ErrConflict)
	}
	if prev := tx.tx.Bucket(idxAccountMember).Get([]byte(a.MemberID)); prev != nil && !bytes.Equal(prev, key) {
		if err := tx.deleteAccount(bytes.Clone(prev)); err != nil {
			return fmt.Errorf("put account %q: remove old username: %w", a.Username, err)
		}
	}
	if exists && len(cur.OnboardTokenHash) > 0 && !bytes.Equal(cur.OnboardTokenHash, a.OnboardTokenHash) {
		if err := tx.unindexToken(cur.OnboardTokenHash, key); err != nil {
			return fmt.Errorf("put account %q: %w", a.Username, err)
		}
	}
	if len(a.OnboardTokenHash) > 0 {
		if other := tx.tx.Bucket(idxAccountToken).Get(a.OnboardTokenHash); other != nil && !bytes.Equal(other, key) {
			return fmt.Errorf("put account %q: onboard token in use by %q: %w", a.Username, other, ErrConflict)
		}
		if err := tx.tx.Bucket(idxAccountToken).Put(bytes.Clone(a.OnboardTokenHash), key); err != nil {
			return fmt.Errorf("put account %q: index token: %w", a.Username, err)
		}
	}
	if err := tx.tx.Bucket(bucketAccounts).Put(key, raw); err != nil {
		return fmt.Errorf("put account %q: %w", a.Username, err)
	}
	if err := tx.tx.Bucket(idxAccountMember).Put([]byte(a.MemberID), key); err != nil {
		return fmt.Errorf("put account %q: index member: %w", a.Username, err)
	}
	if !exists {
		if err := tx.addCount(KindAccount, 1); err != nil {
			return fmt.Errorf("put account %q: %w", a.Username, err)
		}
	}
	tx.record(Change{Kind: KindAccount, ID: a.Username, Member: a.MemberID})
	return nil
}

// DeleteAccount removes the account with username (case-insensitive); an
// absent account is not an error.
func (tx *Tx) DeleteAccount(username string) error {
	if err := tx.writable("delete account"); err != nil {
		return err
	}
	if err := tx.deleteAccount(accountKey(username)); err != nil {
		return fmt.Errorf("delete account %q: %w", username, err)
	}
	return nil
}

func (tx *Tx) deleteAccount(key []byte) error {
	a, ok, err := tx.account(key)
	if err != nil || !ok {
		return err
	}
	if err := tx.tx.Bucket(bucketAccounts).Delete(key); err != nil {
		return err
	}
	mi := tx.tx.Bucket(idxAccountMember)
	if cur := mi.Get([]byte(a.MemberID)); bytes.Equal(cur, key) {
		if err := mi.Delete([]byte(a.MemberID)); err != nil {
			return err
		}
	}
	if len(a.OnboardTokenHash) > 0 {
		if err := tx.unindexToken(a.OnboardTokenHash, key); err != nil {
			return err
		}
	}
	if err := tx.addCount(KindAccount, -1); err != nil {
		return err
	}
	tx.record(Change{Kind: KindAccount, ID: a.Username, Deleted: true, Member: a.MemberID})
	return nil
}

func (tx *Tx) unindexToken(hash, key []byte) error {
	ti := tx.tx.Bucket(idxAccountToken)
	if cur := ti.Get(hash); bytes.Equal(cur, key) {
		return ti.Delete(hash)
	}
	return nil
}

// ForEachAccount calls fn for every account in lower-case username order.
// fn must not write accounts; collect and write after it returns.
func (tx *Tx) ForEachAccount(fn func(model.Account) error) error {
	return tx.tx.Bucket(bucketAccounts).ForEach(func(k, raw []byte) error {
		var a model.Account
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("for each account: decode %q: %w", k, err)
		}
		return fn(a)
	})
}
