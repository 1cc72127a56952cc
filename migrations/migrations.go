// Package migrations holds the SQL migrations of promptcascade's Postgres
// schema, embedded into the binaries. Files are named NNN_description.sql and
// applied in name order by store.Migrate, all pending ones in one transaction.
//
// Rules for a new file: never edit a file once released (Migrate refuses a
// database whose recorded checksum differs); create objects unqualified (the
// schema is the first one of the connection's search_path, never "public."
// hardcoded); nothing that cannot run inside a transaction (no CREATE INDEX
// CONCURRENTLY).
package migrations

import "embed"

// FS holds every *.sql migration file.
//
//go:embed *.sql
var FS embed.FS
