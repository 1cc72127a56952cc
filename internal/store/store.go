// Package store is promptcascade's Postgres layer (pgx/v5): it applies the
// embedded migrations, writes finished prompts and their attempts in batched,
// idempotent transactions, records what was enqueued, and runs the report
// queries behind cascadectl (status, summary, verify, export).
//
// Every write is one transaction and a fixed number of round trips whatever
// the number of rows (COPY straight into results and request_log; when a row
// exists already, that transaction is rolled back and the rows go through
// per-connection staging tables and INSERT ... SELECT ... ON CONFLICT DO
// NOTHING instead), so the worker can commit hundreds of prompts at once and
// redeliveries change nothing.
//
// Text that Postgres cannot store is made storable, never rejected: NUL bytes
// are removed and invalid UTF-8 is replaced by U+FFFD (prompt_sha256 and the
// character counts are taken from the original text). The same cleaning is
// applied to batch and prompt ids everywhere (Write, Existing, RecordEnqueued),
// so keys always match.
package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a pool of Postgres connections plus the write and report queries.
// It is safe for concurrent use.
type Store struct {
	pool         *pgxpool.Pool
	storePrompts bool
	prices       *priced // nil: Write records no prices

	// Tests: stagedOnly skips the direct write; staged counts staged writes;
	// directCopy, if set, COPYs the direct write's rows instead of
	// copyBinary (the pgx reference).
	stagedOnly bool
	staged     atomic.Int64
	directCopy func(ctx context.Context, tx pgx.Tx, t directTable, rows copyRows) error
}

// Option configures Open.
type Option func(*options)

type options struct {
	storePrompts bool
	maxConns     int32
	minConns     int32
	prices       PricesFunc
}

// WithStorePrompts sets whether prompt, system prompt and response text are
// stored (default true). When false those columns are NULL and only
// results.prompt_sha256, prompt_chars and response_chars are kept
// (STORE_PROMPTS=false). Note that a plain SHA-256 of a short, guessable
// prompt can be confirmed by anyone who guesses it.
func WithStorePrompts(store bool) Option {
	return func(o *options) { o.storePrompts = store }
}

// WithMaxConns caps the pool size (default: pgx's, max(4, NumCPU), or the
// DSN's pool_max_conns).
func WithMaxConns(n int32) Option {
	return func(o *options) { o.maxConns = n }
}

// WithMinConns raises the pool size to at least n, unless the DSN names
// pool_max_conns (the operator's choice wins) or WithMaxConns sets it: a
// worker with several committers and fetch groups checking for existing
// results at once needs more than pgx's default of max(4, NumCPU).
func WithMinConns(n int32) Option {
	return func(o *options) { o.minConns = n }
}

// Open parses dsn (a postgres:// URL or key=value string; PG* environment
// variables fill what it leaves out), connects and pings. Errors never contain
// the DSN, which may hold a password.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{storePrompts: true}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts passwords only on a best-effort basis, and the wrapped
		// url.Parse error quotes the whole string: name the parameter at
		// fault instead, and never show the string.
		return nil, dsnError(dsn)
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	} else if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, o.minConns)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "promptcascade"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", describe(cfg.ConnConfig.Config), oneLine{err})
	}
	st := &Store{pool: pool, storePrompts: o.storePrompts}
	if o.prices != nil {
		st.prices = &priced{f: o.prices}
	}
	return st, nil
}

// oneLine keeps an error's chain (errors.Is/As, IsTransient) but prints it
// on one line: pgx lists every address it tried on a line of its own.
type oneLine struct{ err error }

func (o oneLine) Error() string {
	var parts []string
	for _, l := range strings.Split(o.err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func (o oneLine) Unwrap() error { return o.err }

// describe names a database without its password.
func describe(c pgconn.Config) string {
	return fmt.Sprintf("postgres host=%s port=%d database=%s user=%s", c.Host, c.Port, c.Database, c.User)
}

// Close closes every connection; it waits for acquired ones to be released.
func (s *Store) Close() { s.pool.Close() }

// Pool returns the underlying pool, for ad-hoc queries and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// StorePrompts reports whether prompt and response text are stored.
func (s *Store) StorePrompts() bool { return s.storePrompts }

// Key identifies a prompt: results' primary key.
type Key struct{ BatchID, PromptID string }

// clean makes s storable in a Postgres text column: NUL bytes are removed
// and invalid UTF-8 sequences (including encoded surrogate halves) become
// U+FFFD. The common case returns s unchanged without allocating.
func clean(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// runeCount is utf8.RuneCountInString(s) (an invalid byte counts as one),
// 8 ASCII bytes at a time.
func runeCount(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			b := s[i : i+8]
			if (uint64(b[0])|uint64(b[1])<<8|uint64(b[2])<<16|uint64(b[3])<<24|
				uint64(b[4])<<32|uint64(b[5])<<40|uint64(b[6])<<48|uint64(b[7])<<56)&0x8080808080808080 == 0 {
				n, i = n+8, i+8
				continue
			}
		}
		if s[i] < utf8.RuneSelf {
			n, i = n+1, i+1
			continue
		}
		_, w := utf8.DecodeRuneInString(s[i:])
		n, i = n+1, i+w
	}
	return n
}

// nullText is clean(s), or nil (SQL NULL) when s is empty.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return clean(s)
}

func cleanKey(k Key) Key { return Key{clean(k.BatchID), clean(k.PromptID)} }
