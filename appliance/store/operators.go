package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Operator accounts of the web console live in the database, not in a
// file: the daemon holds the database, so every change goes through its
// unix socket (deskgate admin add/passwd/remove), is one transaction with
// its audit entry, and travels with the database's backups. Only an
// argon2id hash of the password is kept (PHC string format).
const operatorsBucket = "console_operators" // name -> Operator

// Operator is one console login.
type Operator struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"` // "operator" or "admin"
	Hash      string    `json:"hash"` // $argon2id$v=19$m=...,t=...,p=...$salt$key
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// GetOperator returns the operator called name, or ErrNotFound.
func (tx *Tx) GetOperator(name string) (Operator, error) {
	var op Operator
	if err := tx.GetKV(operatorsBucket, name, &op); err != nil {
		return op, fmt.Errorf("get operator: %w", err)
	}
	return op, nil
}

// PutOperator creates or replaces op.
func (tx *Tx) PutOperator(op Operator) error {
	if op.Name == "" || op.Hash == "" || op.Role == "" {
		return errors.New("put operator: name, role and hash are required")
	}
	return tx.PutKV(operatorsBucket, op.Name, op)
}

// DeleteOperator removes the operator called name; ErrNotFound if there is
// none.
func (tx *Tx) DeleteOperator(name string) error {
	if _, err := tx.GetOperator(name); err != nil {
		return err
	}
	return tx.DeleteKV(operatorsBucket, name)
}

// Operators lists every operator, by name.
func (tx *Tx) Operators() ([]Operator, error) {
	var out []Operator
	err := tx.ForEachKV(operatorsBucket, "", func(_ string, raw []byte) error {
		var op Operator
		if err := json.Unmarshal(raw, &op); err != nil {
			return fmt.Errorf("operators: %w", err)
		}
		out = append(out, op)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}
