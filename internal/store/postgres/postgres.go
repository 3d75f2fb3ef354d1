// Package postgres is the PostgreSQL statistics store (pgx, pgxpool).
//
// The schema comes from embedded, numbered migrations recorded in
// schema_migrations; each is applied in its own transaction, and the whole
// migration runs under a session advisory lock so that two processes
// starting at once do not both apply it. The tables live in the first
// schema of the connection's search_path.
//
// When the TimescaleDB extension is available, the raw and rollup tables
// become hypertables partitioned on their integer time column (Unix
// seconds), which makes retention cheap and time-range scans chunk-local.
// Otherwise they stay plain tables with B-tree indexes, which is what the
// test machine runs: the hypertable path is kept deliberately small
// (create_hypertable calls only) and is untested here.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/sqlbuild"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// lockKey is the advisory lock key of migrations and rollups: per schema,
// so that stores in different schemas of one database (the tests) do not
// wait for each other.
const lockKey = "hashtextextended('sentinel-store:' || current_schema(), 0)"

// Dialect is PostgreSQL's spelling of the shared SQL.
var Dialect = sqlbuild.Dialect{
	Name:        "postgres",
	Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
	Least:       "LEAST",
	Greatest:    "GREATEST",
	Collate:     ` COLLATE "C"`,
	ShareLock:   " FOR SHARE",
	UpdateLock:  " FOR UPDATE",
	RollupLock:  "SELECT pg_advisory_xact_lock(" + lockKey + ")",
}

// Store is the PostgreSQL backend of store.Store.
type Store struct {
	*sqlbuild.Engine
	pool *pgxpool.Pool
	// Timescale reports whether the tables are hypertables.
	Timescale bool
}

var _ store.Store = (*Store)(nil)

// Open connects to dsn (a postgres:// URL or key=value string; a
// search_path parameter selects the schema) and migrates the database.
func Open(ctx context.Context, dsn string, o store.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	s := &Store{pool: pool}
	s.Engine = sqlbuild.NewEngine(Dialect, backend{pool}, o)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return s, nil
}

// migrate applies the missing migrations, then makes hypertables when
// TimescaleDB is available.
func (s *Store) migrate(ctx context.Context) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock("+lockKey+")"); err != nil {
		return err
	}
	defer c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKey+")")
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := c.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		if applied[v] {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			// Simple protocol: a migration holds several statements.
			if _, err := tx.Exec(ctx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", v, base)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return s.timescale(ctx, c)
}

// hypertables are partitioned on their time column in chunks of a week
// (raw, 15m), 30 days (1h) or a year (1d), in seconds.
var hypertables = func() map[string][2]any {
	m := map[string][2]any{
		"incidents": {"time", 7 * 86400}, "passwords": {"time", 7 * 86400}, "ports": {"time", 7 * 86400},
	}
	for _, b := range []string{"incidents", "incidents_ta", "incidents_c", "incidents_dev", "incidents_devt", "incidents_devc", "incidents_ip", "incidents_ipt", "passwords", "passwords_pw", "passwords_pu", "passwords_ip", "ports", "ports_p", "ports_ip"} {
		m[b+"_15m"] = [2]any{"bucket", 7 * 86400}
		m[b+"_1h"] = [2]any{"bucket", 30 * 86400}
		m[b+"_1d"] = [2]any{"bucket", 365 * 86400}
	}
	return m
}()

func (s *Store) timescale(ctx context.Context, c *pgxpool.Conn) error {
	var avail bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')").Scan(&avail); err != nil {
		return err
	}
	if !avail {
		return nil
	}
	if _, err := c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb"); err != nil {
		// Available but not loadable (not in shared_preload_libraries,
		// or no privilege): plain tables work, just slower to prune.
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil
		}
		return err
	}
	for table, spec := range hypertables {
		if _, err := c.Exec(ctx, "SELECT create_hypertable($1::regclass, $2::name, chunk_time_interval => $3::bigint, if_not_exists => true, migrate_data => true)",
			table, spec[0], spec[1]); err != nil {
			return fmt.Errorf("hypertable %s: %w", table, err)
		}
	}
	s.Timescale = true
	return nil
}

// Status implements store.Store.
func (s *Store) Status(ctx context.Context) (store.Status, error) {
	st, err := s.Engine.Status(ctx)
	st.Backend = "postgres"
	if s.Timescale {
		st.Backend = "postgres+timescaledb"
	}
	if err != nil {
		return st, err
	}
	// Tables, indexes and TOAST of the store's schema (hypertable chunks,
	// which live in _timescaledb_internal, are counted through their
	// parent by hypertable_size).
	q := `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r'`
	if s.Timescale {
		q = `SELECT COALESCE(SUM(CASE WHEN h.hypertable_name IS NULL THEN pg_total_relation_size(c.oid)
			ELSE hypertable_size(c.oid) END), 0)::bigint FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN timescaledb_information.hypertables h ON h.hypertable_schema = n.nspname AND h.hypertable_name = c.relname
			WHERE n.nspname = current_schema() AND c.relkind = 'r'`
	}
	err = s.pool.QueryRow(ctx, q).Scan(&st.Bytes)
	return st, err
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// backend adapts pgx to sqlbuild.Backend.
type backend struct{ pool *pgxpool.Pool }

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type pgConn struct{ q querier }

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() { r.Rows.Close() }

func (c pgConn) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

func (c pgConn) Query(ctx context.Context, sql string, args ...any) (sqlbuild.Rows, error) {
	r, err := c.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}

func (b backend) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return pgConn{b.pool}.Exec(ctx, sql, args...)
}

func (b backend) Query(ctx context.Context, sql string, args ...any) (sqlbuild.Rows, error) {
	return pgConn{b.pool}.Query(ctx, sql, args...)
}

func (b backend) Tx(ctx context.Context, fn func(sqlbuild.Conn) error) error {
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return fn(pgConn{tx}) })
}

// BulkInsert uses COPY, the fastest way into PostgreSQL.
func (b backend) BulkInsert(ctx context.Context, tx sqlbuild.Conn, table string, cols []string, rows [][]any) error {
	t, ok := tx.(pgConn).q.(pgx.Tx)
	if !ok {
		return errors.New("postgres: bulk insert outside a transaction")
	}
	_, err := t.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
	return err
}

// Refused implements sqlbuild.Backend: SQLSTATE class 22 (data exception:
// a NUL or invalid UTF-8 in text, a value out of range), class 23
// (integrity constraint) and 54000 (a program limit such as the size of an
// index row) are refusals of the data. Everything else, connection errors
// (class 08, or no SQLSTATE at all), shutdown (57), lack of resources (53),
// conflicts to retry (40), is not.
func (backend) Refused(err error) (reason, code string, ok bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", "", false
	}
	switch {
	case strings.HasPrefix(pe.Code, "22"):
		return store.RejectInvalid, pe.Code, true
	case strings.HasPrefix(pe.Code, "23"):
		return store.RejectConstraint, pe.Code, true
	case pe.Code == "54000":
		return store.RejectTooLarge, pe.Code, true
	}
	return "", "", false
}
