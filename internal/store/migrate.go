package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/migrations"
)

// migrateLockClass is the first key of the advisory lock Migrate holds; the
// second is a hash of the target schema, so that migrations of different
// schemas (one per test) do not wait for each other.
const migrateLockClass = 0x70634d67 // "pcMg"

var migrationName = regexp.MustCompile(`^([0-9]{3,})_[a-z0-9_]+\.sql$`)

type migration struct {
	version string // file name without .sql
	sql     string
	sum     []byte
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	ms := make([]migration, 0, len(names))
	for _, name := range names {
		if !migrationName.MatchString(name) {
			return nil, fmt.Errorf("store: migration file %q: name must be NNN_lowercase_words.sql", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		ms = append(ms, migration{version: strings.TrimSuffix(name, ".sql"), sql: string(b), sum: sum[:]})
	}
	return ms, nil
}

// Migrate applies the embedded migrations that the database lacks, in name
// order, in one transaction that holds an advisory lock keyed on the target
// schema: several workers starting at once apply them exactly once, the others
// wait and then find nothing to do. The target schema is the first existing
// schema of the connection's search_path. Migrate refuses a database where an
// applied migration's recorded checksum differs from the embedded file.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		return err
	}
	return s.migrate(ctx, ms)
}

func (s *Store) migrate(ctx context.Context, ms []migration) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("store: migrate: current schema: %w", err)
	}
	if schema == nil {
		var path string
		_ = tx.QueryRow(ctx, `SHOW search_path`).Scan(&path)
		return fmt.Errorf("store: migrate: no schema of search_path %q exists; create it or fix the DSN's search_path", path)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(migrateLockClass), *schema); err != nil {
		return fmt.Errorf("store: migrate: advisory lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    text        PRIMARY KEY,
		checksum   bytea       NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("store: migrate: create schema_migrations in schema %q: %w", *schema, err)
	}
	applied := map[string][]byte{}
	rows, err := tx.Query(ctx, `SELECT version, checksum FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: migrate: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v string
		var sum []byte
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return fmt.Errorf("store: migrate: read schema_migrations: %w", err)
		}
		applied[v] = sum
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: migrate: read schema_migrations: %w", err)
	}

	pending := 0
	for _, m := range ms {
		if sum, ok := applied[m.version]; ok {
			if !bytes.Equal(sum, m.sum) {
				return fmt.Errorf("store: migrate: migration %s was changed after it was applied to schema %q (checksum differs); add a new migration instead", m.version, *schema)
			}
			continue
		}
		if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("store: migrate: apply %s: %w", m.version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)`, m.version, m.sum); err != nil {
			return fmt.Errorf("store: migrate: record %s: %w", m.version, err)
		}
		pending++
	}
	if pending == 0 {
		return nil // the deferred rollback releases the lock
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: migrate: commit: %w", err)
	}
	return nil
}

// Versions returns the applied migration versions in order.
func (s *Store) Versions(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("store: read schema_migrations: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: read schema_migrations: %w", err)
	}
	return vs, nil
}
