package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SealedSecret is a secret as stored: ciphertext only, sealed by
// internal/secrets with the key KeyID names. The store never sees a value
// in clear.
type SealedSecret struct {
	// Name identifies the secret; configs refer to it as "secret:NAME".
	Name string `json:"name"`
	// Ciphertext is the sealed value; KeyID names the key that sealed it.
	Ciphertext []byte `json:"-"`
	KeyID      string `json:"key_id"`
	// UpdatedAt is when it was last set, UpdatedBy by whom.
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// PutSecrets stores the secrets, replacing those of the same names, all or
// none. Each needs a name, ciphertext, key ID and update time.
func (s *Store) PutSecrets(ctx context.Context, list ...SealedSecret) error {
	for _, sec := range list {
		fail := func(msg string) error { return fmt.Errorf("store: put secret %q: %s", sec.Name, msg) }
		switch {
		case sec.Name == "":
			return errors.New("store: put secret: no name")
		case len(sec.Ciphertext) == 0:
			return fail("no ciphertext")
		case sec.KeyID == "":
			return fail("no key ID")
		case sec.UpdatedAt.IsZero():
			return fail("zero update time")
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put secrets: begin: %w", err)
	}
	defer tx.Rollback()
	for _, sec := range list {
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, ciphertext, key_id, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, key_id = excluded.key_id,
	updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			sec.Name, sec.Ciphertext, sec.KeyID, sec.UpdatedAt.UnixMilli(), sec.UpdatedBy); err != nil {
			return fmt.Errorf("store: put secret %q: %w", sec.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put secrets: commit: %w", err)
	}
	return nil
}

// Secret returns the sealed secret name, or an error wrapping ErrNotFound
// that names it.
func (s *Store) Secret(ctx context.Context, name string) (SealedSecret, error) {
	sec := SealedSecret{Name: name}
	var at int64
	err := s.db.QueryRowContext(ctx, "SELECT ciphertext, key_id, updated_at, updated_by FROM secrets WHERE name = ?", name).
		Scan(&sec.Ciphertext, &sec.KeyID, &at, &sec.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return SealedSecret{}, fmt.Errorf("store: secret %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return SealedSecret{}, fmt.Errorf("store: secret %q: %w", name, err)
	}
	sec.UpdatedAt = time.UnixMilli(at).UTC()
	return sec, nil
}

// Secrets returns every sealed secret, by name.
func (s *Store) Secrets(ctx context.Context) ([]SealedSecret, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, ciphertext, key_id, updated_at, updated_by FROM secrets ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: list secrets: %w", err)
	}
	defer rows.Close()
	var out []SealedSecret
	for rows.Next() {
		var sec SealedSecret
		var at int64
		if err := rows.Scan(&sec.Name, &sec.Ciphertext, &sec.KeyID, &at, &sec.UpdatedBy); err != nil {
			return nil, fmt.Errorf("store: list secrets: %w", err)
		}
		sec.UpdatedAt = time.UnixMilli(at).UTC()
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list secrets: %w", err)
	}
	return out, nil
}

// DeleteSecret removes the secret name, or returns an error wrapping
// ErrNotFound when there is none.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM secrets WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("store: delete secret %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: delete secret %q: %w", name, ErrNotFound)
	}
	return nil
}
