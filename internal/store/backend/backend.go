// Package backend opens the statistics store a DSN names, so that callers
// (the server, the CLI) choose SQLite or PostgreSQL by configuration only.
package backend

import (
	"context"
	"strings"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/postgres"
	"github.com/dynfw/sentinel/internal/store/sqlite"
)

// Open opens the store named by dsn:
//
//   - postgres://… or postgresql://… (pgx URL; a search_path parameter
//     selects the schema): PostgreSQL;
//   - sqlite:PATH or a plain file path: SQLite;
//   - :memory: or sqlite::memory:: a private in-memory SQLite database
//     (tests).
func Open(ctx context.Context, dsn string, o store.Options) (store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn, o)
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"), o)
	}
	return sqlite.Open(ctx, dsn, o)
}
