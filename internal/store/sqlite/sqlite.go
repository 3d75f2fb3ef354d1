// Package sqlite is the embedded statistics store: one SQLite file, pure Go
// (modernc.org/sqlite, so CGO_ENABLED=0 builds work).
//
// The database runs in WAL mode so that readers never wait for the writer.
// Writes go through a single connection: SQLite allows one writer at a
// time anyway, and serialising them in the pool rather than in SQLite's
// lock avoids SQLITE_BUSY retries; it also orders an Insert and a Rollup
// completely, which is what keeps late rows from slipping behind a
// watermark. Reads use a separate pool of read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/sqlbuild"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect is SQLite's spelling of the shared SQL.
var Dialect = sqlbuild.Dialect{
	Name:        "sqlite",
	Placeholder: func(n int) string { return "?" + strconv.Itoa(n) },
	Least:       "min",
	Greatest:    "max",
}

// Store is the SQLite backend of store.Store.
type Store struct {
	*sqlbuild.Engine
	path   string
	writer *sql.DB
	reader *sql.DB
}

var _ store.Store = (*Store)(nil)

// Memory is the path of a private in-memory database (for tests): it lives
// as long as the Store, on one connection shared by readers and the writer.
const Memory = ":memory:"

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string, o store.Options) (*Store, error) {
	s := &Store{path: path}
	pragmas := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(on)"
	if path == Memory {
		db, err := sql.Open("sqlite", "file::memory:?"+pragmas)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
		s.writer, s.reader = db, db
	} else {
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas +
			"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
		if err != nil {
			return nil, err
		}
		w.SetMaxOpenConns(1)
		r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
		if err != nil {
			w.Close()
			return nil, err
		}
		r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
		s.writer, s.reader = w, r
	}
	s.Engine = sqlbuild.NewEngine(Dialect, backend{s}, o)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	return s, nil
}

// migrate applies the embedded migrations newer than PRAGMA user_version,
// each in its own transaction with the version bump.
func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.writer.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		n, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		if n <= v {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(n)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Status implements store.Store.
func (s *Store) Status(ctx context.Context) (store.Status, error) {
	st, err := s.Engine.Status(ctx)
	st.Backend = "sqlite"
	if s.path != Memory {
		for _, suf := range []string{"", "-wal"} {
			if fi, err := os.Stat(s.path + suf); err == nil {
				st.Bytes += fi.Size()
			}
		}
	}
	return st, err
}

// Close implements store.Store.
func (s *Store) Close() error {
	err := s.writer.Close()
	if s.reader != s.writer {
		if e := s.reader.Close(); err == nil {
			err = e
		}
	}
	return err
}

// backend adapts database/sql to sqlbuild.Backend.
type backend struct{ s *Store }

type conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type sqlConn struct{ c conn }

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

func (c sqlConn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.c.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c sqlConn) Query(ctx context.Context, q string, args ...any) (sqlbuild.Rows, error) {
	r, err := c.c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (b backend) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqlConn{b.s.reader}.Exec(ctx, q, args...)
}

func (b backend) Query(ctx context.Context, q string, args ...any) (sqlbuild.Rows, error) {
	return sqlConn{b.s.reader}.Query(ctx, q, args...)
}

func (b backend) Tx(ctx context.Context, fn func(sqlbuild.Conn) error) error {
	tx, err := b.s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(sqlConn{tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// rowsPerInsert keeps a multi-row INSERT under SQLite's parameter limit
// while amortising statement preparation over many rows.
const rowsPerInsert = 200

func (b backend) BulkInsert(ctx context.Context, tx sqlbuild.Conn, table string, cols []string, rows [][]any) error {
	var stmt string
	var stmtRows int
	args := make([]any, 0, rowsPerInsert*len(cols))
	for len(rows) > 0 {
		n := min(len(rows), rowsPerInsert)
		if n != stmtRows {
			var sb strings.Builder
			sb.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
			for i := range n {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteByte('(')
				for j := range cols {
					if j > 0 {
						sb.WriteString(", ")
					}
					sb.WriteString("?")
				}
				sb.WriteByte(')')
			}
			stmt, stmtRows = sb.String(), n
		}
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := tx.Exec(ctx, stmt, args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// SQLite primary result codes that refuse the data of a row.
const (
	sqliteTooBig     = 18
	sqliteConstraint = 19
	sqliteMismatch   = 20
)

// Refused implements sqlbuild.Backend: SQLITE_CONSTRAINT (a CHECK, NOT
// NULL or trigger's RAISE), SQLITE_MISMATCH and SQLITE_TOOBIG are
// refusals of the data; a busy, full, read-only or closed database is not.
func (backend) Refused(err error) (reason, code string, ok bool) {
	var se interface{ Code() int }
	if !errors.As(err, &se) {
		return "", "", false
	}
	switch se.Code() & 0xff {
	case sqliteConstraint:
		return store.RejectConstraint, "SQLITE_CONSTRAINT", true
	case sqliteMismatch:
		return store.RejectInvalid, "SQLITE_MISMATCH", true
	case sqliteTooBig:
		return store.RejectTooLarge, "SQLITE_TOOBIG", true
	}
	return "", "", false
}
